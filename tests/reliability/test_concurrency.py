"""Two processes on one database: no corruption; a second writer waits, or is told "busy".

SQLite allows one writer at a time (KetaDesk takes the write lock at BEGIN IMMEDIATE and waits
up to ``BUSY_TIMEOUT_MS``); a practice server has one write lock too (an advisory lock, waited
for as long). A blocked writer must either wait and succeed, or give the plain "busy" message,
never an error dump. The busy tests run on both back ends; the two writer processes and the
short-lock wait check the file's pages and SQLite's locking, so they stay on a file (a
server's writers killed mid-save: test_server_workstation_killed).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.models.patients import Patient
from ketadesk.storage.security.audit_log import verify_audit
from ketadesk.storage.security.database import DatabaseBusyError, PracticeDatabase
from ketadesk.storage.security.engine import BUSY_TIMEOUT_MS, cipher_damaged_pages, raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.both_back_ends import holding_the_write_lock
from tests.conftest import PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import ROOT
from tests.reliability.conftest import (
    WriterOutput,
    child_env,
    drain,
    start_writer,
    wait_for_line,
)

pytestmark = pytest.mark.slow


def _check_clean(path: Path, key: bytes, committed: set[int]) -> None:
    assert cipher_damaged_pages(path, key) == []
    connection = raw_connection(path, key)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        connection.close()
    db = PracticeDatabase.open_with_key(path, key, KeySlotFile.load(path))
    try:
        with db.session() as session:
            present = set(session.scalars(select(Patient.id)))
            assert verify_audit(session).is_intact
    finally:
        db.close()
    assert committed <= present


def test_two_writer_processes_at_once(closed_practice: Path) -> None:
    first = start_writer(closed_practice, tag="one", batch_size=10)
    second = start_writer(closed_practice, tag="two", batch_size=10)
    outputs = [WriterOutput(), WriterOutput()]
    try:
        for process, output in zip((first, second), outputs, strict=True):
            wait_for_line(process, output, "READY")
        for process, output in zip((first, second), outputs, strict=True):
            wait_for_line(process, output, "P ")  # both have committed while the other writes
        time.sleep(1.5)
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGKILL)
    for process, output in zip((first, second), outputs, strict=True):
        stderr = drain(process, output)
        assert "Traceback" not in stderr, stderr
        assert not output.other, output.other
        assert output.patient_ids, "each process must have written"
    key = KeySlotFile.load(closed_practice).unwrap_for_user(PHYSICIAN, PASSWORD)
    _check_clean(closed_practice, key, {i for o in outputs for i in o.patient_ids})


def _hold_write_lock(path: Path, key: bytes):  # type: ignore[no-untyped-def]
    connection = raw_connection(path, key)
    connection.isolation_level = None
    connection.execute("BEGIN IMMEDIATE")
    return connection


def test_a_second_writer_waits_for_a_short_lock(closed_practice: Path) -> None:
    """A writer in full flow is held up by another process's write lock, then carries on."""
    key = KeySlotFile.load(closed_practice).unwrap_for_user(PHYSICIAN, PASSWORD)
    writer = start_writer(closed_practice, tag="wait", batch_size=5)
    output = WriterOutput()
    try:
        wait_for_line(writer, output, "P ")
        holder = _hold_write_lock(closed_practice, key)  # waits for the writer's transaction
        (highest_before,) = holder.execute("SELECT max(id) FROM patients").fetchone()
        time.sleep(min(2.0, BUSY_TIMEOUT_MS / 4000))  # the writer, in a tight loop, is blocked
        holder.execute("COMMIT")
        holder.close()
        while not output.patient_ids or output.patient_ids[-1] <= highest_before:
            wait_for_line(writer, output, "P ")
    finally:
        writer.send_signal(signal.SIGKILL)
        stderr = drain(writer, output)
    assert output.busy == 0 and "Traceback" not in stderr
    _check_clean(closed_practice, key, set(output.patient_ids))


def _check_clean_on(practice: Any) -> None:
    """Nothing half-written: the file's pages and constraints, and on both the audit chain."""
    if practice.back_end == "file":
        _check_clean(practice.path, practice.db.database_key(), set())
        return
    with practice.db.read_session() as session:
        assert verify_audit(session).is_intact


def test_a_blocked_writer_gets_the_busy_message(practice_on: Any) -> None:
    with holding_the_write_lock(practice_on):
        started = time.perf_counter()
        with pytest.raises(DatabaseBusyError) as caught:
            with practice_on.db.session() as session:
                session.add(
                    Patient(mrn="KD-00000026", first_name="Blocked", last_name="Writer",
                            dob=date(1990, 1, 1), state="FL")
                )
        assert time.perf_counter() - started >= BUSY_TIMEOUT_MS / 1000 * 0.9  # it waited
    assert "is busy" in caught.value.message and "Nothing was saved" in caught.value.message
    assert caught.value.exit_code == 5
    with practice_on.db.session() as session:  # free again: the next save goes through
        assert session.scalar(select(Patient.id).where(Patient.mrn == "KD-00000026")) is None
    _check_clean_on(practice_on)


def test_cli_blocked_by_another_writer_prints_one_busy_line(practice_on: Any) -> None:
    with holding_the_write_lock(practice_on):
        result = subprocess.run(
            [sys.executable, "-m", "ketadesk", *practice_on.db_option, "verify-audit",
             "--as", practice_on.physician.user_name, "--password-stdin"],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, cwd=ROOT,
            env=child_env(),
        )
    assert result.returncode == DatabaseBusyError.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ketadesk: The practice ")
    assert "is busy" in result.stderr
    assert result.stderr.count("\n") == 1
    _check_clean_on(practice_on)
