"""Shared pieces of the fault and attack suite: file hashes, practice copies, child writers.

Figures (crash trials, damage detection, ...) are appended as JSON lines to the file named by
``KETADESK_FIGURES`` when it is set, so ``docs/reliability.md`` can be refreshed from a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, PHYSICIAN, copy_practice

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("_writer.py")


def folder_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder``, keyed by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def changed_files(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Files that were changed, removed or added between two ``folder_hashes`` snapshots."""
    return {name for name in set(before) | set(after) if before.get(name) != after.get(name)}


def record_figure(name: str, **values: object) -> None:
    """Append one measured figure to ``$KETADESK_FIGURES`` (JSON lines) when it is set."""
    target = os.environ.get("KETADESK_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"figure": name, **values}) + "\n")


def child_env(tmp_dir: Path | None = None) -> dict[str, str]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        PYTHONPATH=str(ROOT),
    )
    if tmp_dir is not None:
        env.update(TMPDIR=str(tmp_dir), TEMP=str(tmp_dir), TMP=str(tmp_dir))
    return env


@dataclass
class WriterOutput:
    """What a killed writer reported: committed single patients and committed batches."""

    patient_ids: list[int] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    busy: int = 0
    ready: bool = False
    other: list[str] = field(default_factory=list)

    def take(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "P":
            self.patient_ids.append(int(rest))
        elif kind == "B":
            self.batches.append(rest.split()[0])
        elif kind == "BUSY":
            self.busy += 1
        elif kind == "READY":
            self.ready = True
        elif line:
            self.other.append(line)


def start_writer(
    db_path: Path, *, tag: str, batch_size: int = 25, pause_ms: int = 0
) -> subprocess.Popen[str]:
    """A separate process that unlocks ``db_path`` with the password and writes until killed."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            "write",
            str(db_path),
            PHYSICIAN,
            tag,
            str(batch_size),
            str(pause_ms),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    assert process.stdin is not None
    process.stdin.write(PASSWORD + "\n")
    process.stdin.close()
    return process


def wait_for_line(process: subprocess.Popen[str], output: WriterOutput, wanted: str) -> None:
    """Read the writer's stdout until a line starting with ``wanted`` arrives."""
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip("\n")
        output.take(line)
        if line.startswith(wanted):
            return
    stderr = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"writer ended before {wanted!r}: {stderr[-2000:]}")


def drain(process: subprocess.Popen[str], output: WriterOutput) -> str:
    """Collect the complete lines a (killed) writer printed; return its stderr."""
    assert process.stdout is not None and process.stderr is not None
    process.wait(timeout=60)
    out, err = process.stdout.read(), process.stderr.read()
    lines = out.split("\n")
    # A line without its newline was being written when the process died: not reported.
    for line in lines[:-1]:
        output.take(line)
    return err


@pytest.fixture
def closed_practice(prepared_practice: Path, tmp_path: Path) -> Path:
    """A fresh copy of the prepared practice (physician and admin), not opened."""
    return copy_practice(prepared_practice, tmp_path / "db")


@pytest.fixture
def demo_practice_files(prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed copy of the prepared practice holding 200 demo patients."""
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.security.database import PracticeDatabase

    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("demo"))
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        populate_demo_patients(session, 200, entered_by=PHYSICIAN)
    db.close()
    return path


def iter_lines(text: str) -> Iterator[str]:
    return (line for line in text.splitlines() if line.strip())
