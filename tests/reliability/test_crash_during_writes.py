"""A writer killed with SIGKILL at random moments never loses a commit nor half-applies one.

A fork-server child (``_writer.py serve``) opens the real encrypted database in a fresh child
process for every trial and, through the patient services, saves charts (a new patient with
vitals per transaction) and 25-row roster CSV imports (one transaction each) in a loop,
printing each id after its commit. The test kills it at a random moment, then checks the
database. Trials: ``KETADESK_CRASH_TRIALS`` (default 50). Plus a few trials of the full path:
a fresh interpreter unlocking with the password.

File only: SQLite's journal under SIGKILL (a server's killed workstation:
test_server_workstation_killed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.security.audit_log import verify_audit
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import cipher_damaged_pages, raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN
from tests.reliability.conftest import (
    ROOT,
    WRITER,
    WriterOutput,
    child_env,
    drain,
    record_figure,
    start_writer,
    wait_for_line,
)

TRIALS = int(os.environ.get("KETADESK_CRASH_TRIALS", "50"))
BATCH = 25
FULL_PATH_TRIALS = 3

pytestmark = pytest.mark.slow


def check_after_crash(path: Path, key: bytes, reported: WriterOutput) -> dict[str, int]:
    """Open the database and check every promise; return a few counts for the figures."""
    slots = KeySlotFile.load(path)
    db = PracticeDatabase.open_with_key(path, key, slots)  # runs cipher_integrity_check too
    try:
        connection = raw_connection(path, key)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            connection.close()
        assert cipher_damaged_pages(path, key) == []
        with db.session() as session:
            present = set(session.scalars(select(Patient.id)).all())
            missing = set(reported.patient_ids) - present
            assert not missing, f"committed patients lost: {sorted(missing)[:10]}"
            with_vitals = set(session.scalars(select(VitalSign.patient_id)).all())
            assert set(reported.patient_ids) <= with_vitals
            sizes = dict(
                session.execute(
                    select(Patient.address_line2, func.count())
                    .where(Patient.address_line2.like("Batch %"))
                    .group_by(Patient.address_line2)
                ).all()
            )
            sizes = {str(tag).split()[1]: n for tag, n in sizes.items()}
            half_applied = {tag: n for tag, n in sizes.items() if n != BATCH}
            assert not half_applied, f"imports half-applied: {half_applied}"
            lost_batches = set(reported.batches) - set(sizes)
            assert not lost_batches, f"committed imports lost: {sorted(lost_batches)}"
            single_without_vitals = session.scalar(
                select(func.count())
                .select_from(Patient)
                .where(
                    Patient.address_line2 == "Single",
                    Patient.id.not_in(select(VitalSign.patient_id)),
                )
            )
            assert single_without_vitals == 0, "a patient was saved without its vitals"
            verdict = verify_audit(session)
            assert verdict.is_intact, verdict.describe()
            return {"patients": len(present), "events": verdict.event_count}
    finally:
        db.close()


def test_sigkill_at_random_moments_loses_nothing(closed_practice: Path) -> None:
    rng = random.Random(int(os.environ.get("KETADESK_CRASH_SEED", "9")))
    key = KeySlotFile.load(closed_practice).unwrap_for_user(PHYSICIAN, PASSWORD)
    server = subprocess.Popen(
        [sys.executable, str(WRITER), "serve", str(closed_practice), PHYSICIAN, "t", str(BATCH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=ROOT,
        env=child_env(),
    )
    assert server.stdin is not None and server.stdout is not None
    started = time.perf_counter()
    totals = {"committed_patients": 0, "committed_imports": 0, "killed_before_ready": 0}
    try:
        server.stdin.write(PASSWORD + "\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "SERVING"
        for _trial in range(TRIALS):
            server.stdin.write("go\n")
            server.stdin.flush()
            reported = WriterOutput()
            pid = None
            early = rng.random() < 0.1  # now and then, kill while the child is still opening
            while pid is None or not (reported.ready or early):
                line = server.stdout.readline().rstrip("\n")
                assert line, "the writer server ended unexpectedly"
                if line.startswith("PID "):
                    pid = int(line.split()[1])
                else:
                    reported.take(line)
                assert not reported.other, reported.other
            time.sleep(rng.uniform(0, 0.05) if early else rng.uniform(0.05, 0.7))
            os.kill(pid, signal.SIGKILL)
            for raw in server.stdout:
                line = raw.rstrip("\n")
                if line.startswith("DONE "):
                    assert os.WIFSIGNALED(int(line.split()[1])), line
                    break
                reported.take(line)
            assert not reported.other, reported.other
            totals["killed_before_ready"] += not reported.ready
            totals["committed_patients"] += len(reported.patient_ids)
            totals["committed_imports"] += len(reported.batches)
            check_after_crash(closed_practice, key, reported)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    # The trials must have exercised real writes, not only kills during start-up.
    assert totals["committed_patients"] + totals["committed_imports"] >= TRIALS // 2
    # ... and the database still opens with the same password.
    db, outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    db.close()
    assert outcome.audit.is_intact
    record_figure(
        "crash_trials",
        trials=TRIALS,
        seconds=round(time.perf_counter() - started, 1),
        failures=0,
        **totals,
    )


def test_sigkill_of_a_freshly_unlocked_interpreter(closed_practice: Path) -> None:
    """The full path: a new interpreter unlocks with the password, writes, and is killed."""
    rng = random.Random(17)
    key = KeySlotFile.load(closed_practice).unwrap_for_user(PHYSICIAN, PASSWORD)
    for trial in range(FULL_PATH_TRIALS):
        writer = start_writer(closed_practice, tag=f"full{trial}", batch_size=BATCH)
        reported = WriterOutput()
        wait_for_line(writer, reported, "READY")
        time.sleep(rng.uniform(0.05, 0.4))
        writer.send_signal(signal.SIGKILL)
        stderr = drain(writer, reported)
        assert writer.returncode == -signal.SIGKILL, stderr
        assert "Traceback" not in stderr
        check_after_crash(closed_practice, key, reported)
