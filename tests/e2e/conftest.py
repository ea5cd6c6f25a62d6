"""Fixtures of the end-to-end tests: a practice with patients ready for a home visit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_practice
from tests.visit_pack_data import make_visit_practice


@pytest.fixture(scope="module")
def visit_practice_files(prepared_practice: Path, tmp_path_factory: Any) -> tuple[Path, list[str]]:
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("visit-practice"))
    return path, make_visit_practice(path)


@pytest.fixture
def visit_practice(
    visit_practice_files: tuple[Path, list[str]], tmp_path: Path
) -> tuple[Path, list[str]]:
    path, mrns = visit_practice_files
    return copy_practice(path, tmp_path / "practice"), mrns
