"""The dependency arrow: ui -> core, models, storage, reports; never back (no Qt below the UI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ketadesk"
QT_FREE = ("core", "models", "storage", "reports")
FORBIDDEN = ("PySide6", "shiboken6", "ketadesk.ui")


def _imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", QT_FREE)
def test_qt_free_layers_import_neither_qt_nor_the_ui(layer):
    offenders = []
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found in ketadesk/{layer}"
    for source in files:
        for name in _imported_modules(source):
            if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN):
                offenders.append(f"{source.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


def test_the_check_finds_a_violation(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from PySide6.QtCore import QObject\nimport ketadesk.ui.common.ops\n")
    assert {"PySide6.QtCore", "ketadesk.ui.common.ops"} <= _imported_modules(probe)
