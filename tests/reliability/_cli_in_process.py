"""Run one ``python -m ketadesk`` command in this process (fast: no interpreter start-up), with
passwords on standard input, and return the exit code, stdout and stderr."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ketadesk.cli import run_cli


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def run_in_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db: Path | None,
    *args: str,
    stdin: str = "",
) -> CliRun:
    capsys.readouterr()
    # A non-default hook keeps run_cli from installing the crash reporter in the test process.
    monkeypatch.setattr(sys, "excepthook", lambda *exc: sys.__excepthook__(*exc))
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    argv = (["--db", str(db)] if db is not None else []) + list(args)
    try:
        code = run_cli(argv)
    except SystemExit as done:  # argparse's own refusals exit from inside the parser
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)
