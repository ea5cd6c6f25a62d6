"""Inputs that crashed the commands (issue 16), each performed and required to be one plain
line on stderr with a non-zero exit: deeply nested JSON, lone surrogates, a million
medications, ``--start 9999-12-31``, absurd weights for ``protocol``, ``import-patients
/dev/zero`` (refused after reading one byte past the 50 MB cap, not 6.4 GB).

One back end: every input here is refused before any practice is opened.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import ADMIN, PASSWORD, OpenPractice
from tests.reliability._cli_in_process import CliRun, run_in_process


def _one_line(run: CliRun) -> str:
    assert run.code != 0, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("ketadesk: ") and "Traceback" not in run.err
    return lines[0]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str, db: Path | None = None, stdin: str = "") -> CliRun:
        return run_in_process(monkeypatch, capsys, db, *args, stdin=stdin)

    return run


def test_deeply_nested_json_is_refused_before_parsing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    line = _one_line(cli("check-interactions", "--json", str(nested)))
    assert "nested more than 32 levels" in line


def test_lone_surrogates_are_refused_in_words(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text('{"medications": ["sertraline\\ud800"]}')
    line = _one_line(cli("check-interactions", "--json", str(bad)))
    assert "broken character" in line


def test_a_million_medications_are_refused_at_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"medications": ["x"] * 1_000_000}))
    started = time.monotonic()
    line = _one_line(cli("check-interactions", "--json", str(many)))
    assert time.monotonic() - started < 10  # it took 46 s and 758 MB before
    assert "1,000,000 entries" in line


def test_a_json_input_larger_than_the_cap_is_not_read_whole(cli) -> None:  # type: ignore[no-untyped-def]
    line = _one_line(cli("check-interactions", "--json", "/dev/zero"))
    assert "larger than 10 MB" in line


def test_dates_far_in_the_future_and_absurd_weights_are_worded(cli) -> None:  # type: ignore[no-untyped-def]
    run = cli("protocol", "schedule", "--template", "Intranasal", "--weight-kg", "70",
              "--start", "9999-12-31")
    assert run.code == 2 and "outside 1900-2199" in run.err
    assert len(run.err.strip().splitlines()) == 1
    for weight in ("1e-300", "1e308", "0", "-3", "nan", "inf"):
        line = _one_line(cli("protocol", "check", "--template", "Weekly", "--weight-kg", weight))
        assert "between 2 and 400 kg" in line, (weight, line)


def test_import_patients_from_a_device_stops_at_the_cap(
    cli, practice: OpenPractice  # type: ignore[no-untyped-def]
) -> None:
    practice.db.close()
    started = time.monotonic()
    line = _one_line(cli("import-patients", "/dev/zero", "--as", ADMIN, "--password-stdin",
                         db=practice.path, stdin=PASSWORD + "\n"))
    assert "larger than 50 MB" in line
    assert time.monotonic() - started < 30
