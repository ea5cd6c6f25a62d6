"""A workstation killed (SIGKILL) while it saves to the practice server.

A fork server (``_server_writer.py``) starts a child per trial that logs in to a copy of the
template practice as the physician (its own connections) and saves charts and roster imports
through the services, printing each id only after its commit. The test kills it at a random
moment, and in the ``hold`` trials exactly inside an open transaction that holds the practice's
write lock. After each kill the server has rolled back what was not committed: every reported
commit is there, no import is half-applied, no chart lost its vitals, the held chart is absent,
the write lock is free, the audit chain verifies, and the next workstation saves at once.
Trials: ``KETADESK_SERVER_CRASH_TRIALS`` (default 12) plus 2 held transactions.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select

from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.patients.patients import create_patient
from ketadesk.storage.server.server_practice import ServerPractice
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of, drop_copy
from tests.conftest import PASSWORD
from tests.reliability._writer import SINGLE
from tests.reliability.conftest import ROOT, WriterOutput, child_env, record_figure
from tests.server_practice import owner_connection

TRIALS = int(os.environ.get("KETADESK_SERVER_CRASH_TRIALS", "12"))
HELD_TRIALS = 2
BATCH = 25
SERVER_WRITER = ROOT / "tests" / "reliability" / "_server_writer.py"
LOCK_RELEASE_LIMIT_S = 15

pytestmark = pytest.mark.slow


@pytest.fixture
def server_copy(practice_server, server_template):
    address = copy_of(practice_server, server_template[0])
    try:
        yield practice_server, address
    finally:
        drop_copy(practice_server, address)


def _write_lock_holders(cluster, address) -> int:
    """Sessions on this practice holding or waiting for an advisory lock (the write lock)."""
    with owner_connection(cluster, address.database) as owner:
        return int(
            owner.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            ).fetchone()[0]
        )


def _wait_for_the_lock_to_be_free(cluster, address) -> float:
    started = time.perf_counter()
    while _write_lock_holders(cluster, address):
        assert time.perf_counter() - started < LOCK_RELEASE_LIMIT_S, (
            "the killed workstation's transaction still holds the practice's write lock"
        )
        time.sleep(0.05)
    return time.perf_counter() - started


def _check_after_kill(
    practice: ServerPractice, reported: WriterOutput, held: set[int]
) -> dict[str, int]:
    with practice.read_session() as session:
        present = set(session.scalars(select(Patient.id)).all())
        missing = set(reported.patient_ids) - present
        assert not missing, f"committed charts lost: {sorted(missing)[:10]}"
        assert not held & present, "a chart from a transaction that never committed is there"
        with_vitals = set(session.scalars(select(VitalSign.patient_id)).all())
        assert set(reported.patient_ids) <= with_vitals
        single_without_vitals = session.scalar(
            select(func.count())
            .select_from(Patient)
            .where(
                Patient.address_line2 == "Single",
                Patient.id.not_in(select(VitalSign.patient_id)),
            )
        )
        assert single_without_vitals == 0, "a chart was saved without its vitals"
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
        lost = set(reported.batches) - set(sizes)
        assert not lost, f"committed imports lost: {sorted(lost)}"
    verdict = practice.verify_audit_trail()
    assert verdict.is_intact, verdict.describe()
    return {"patients": len(present), "events": verdict.event_count}


def _next_workstation_saves(practice: ServerPractice) -> None:
    front_desk = replace(SINGLE, first_name="Next", address_line2="Front desk")
    with practice.session() as session:
        create_patient(
            session, practice.actor, front_desk, today=date(2026, 3, 15), allow_duplicate=True
        )


def test_a_workstation_killed_while_saving_leaves_the_server_whole(server_copy) -> None:
    cluster, address = server_copy
    rng = random.Random(int(os.environ.get("KETADESK_CRASH_SEED", "17")))
    ca = cluster.ca_certificate
    writer = subprocess.Popen(
        [sys.executable, str(SERVER_WRITER), str(address.port), address.database, str(ca),
         SERVER_PHYSICIAN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=ROOT,
        env=child_env(),
    )
    assert writer.stdin is not None and writer.stdout is not None
    other = ServerPractice.log_in(address, ca, SERVER_ADMIN, PASSWORD)  # the next workstation
    started = time.perf_counter()
    totals = {"committed_charts": 0, "committed_imports": 0, "held_rolled_back": 0}
    lock_free_after: list[float] = []
    held: set[int] = set()
    try:
        writer.stdin.write(PASSWORD + "\n")
        writer.stdin.flush()
        first = writer.stdout.readline().strip()
        assert first == "SERVING", first + (writer.stderr.read() if first == "" else "")
        kinds = ["go"] * TRIALS + ["hold"] * HELD_TRIALS
        rng.shuffle(kinds)
        for kind in kinds:
            writer.stdin.write(kind + "\n")
            writer.stdin.flush()
            reported = WriterOutput()
            pid = None
            wanted = "HOLDING" if kind == "hold" else "READY"
            while True:
                line = writer.stdout.readline().rstrip("\n")
                assert line, "the writer server ended unexpectedly"
                if line.startswith("PID "):
                    pid = int(line.split()[1])
                elif line.startswith("HOLDING "):
                    held.add(int(line.split()[1]))
                else:
                    reported.take(line)
                assert not reported.other, reported.other
                if pid is not None and line.startswith(wanted):
                    break
            if kind == "go":
                time.sleep(rng.uniform(0.05, 0.8))
            os.kill(pid, signal.SIGKILL)
            for raw in writer.stdout:
                line = raw.rstrip("\n")
                if line.startswith("DONE "):
                    assert os.WIFSIGNALED(int(line.split()[1])), line
                    break
                reported.take(line)
            assert not reported.other, reported.other
            lock_free_after.append(_wait_for_the_lock_to_be_free(cluster, address))
            _check_after_kill(other, reported, held)
            _next_workstation_saves(other)
            totals["committed_charts"] += len(reported.patient_ids)
            totals["committed_imports"] += len(reported.batches)
        totals["held_rolled_back"] = len(held)
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
        other.close()
    assert len(held) == HELD_TRIALS
    # The random trials must have exercised real commits, not only kills at log-in.
    assert totals["committed_charts"] + totals["committed_imports"] >= TRIALS // 2
    record_figure(
        "server_workstation_kills",
        trials=TRIALS + HELD_TRIALS,
        seconds=round(time.perf_counter() - started, 1),
        longest_lock_release_s=round(max(lock_free_after), 3),
        failures=0,
        **totals,
    )
