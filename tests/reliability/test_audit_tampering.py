"""Edits, deletions and reorderings made directly in the decrypted database are named.

The test holds the database key, as an attacker with a stolen, unlocked copy would, drops the
append-only triggers and changes rows at random positions. ``verify_audit`` and the
``verify-audit`` command must name the first bad event every time (the command exits 1).
Trials: ``KETADESK_TAMPER_TRIALS`` in-process (default 120) plus a few through the CLI.

Known limit of any hash chain without an outside anchor: deleting the newest events leaves a
shorter chain that is still valid, so deletions here are never of the newest event.

File only: it drops the file's SQLite triggers through the raw SQLCipher connection (a
server's tampering attempts: test_server_psql_attacks, test_server_audit_chain).
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import pytest

from ketadesk.core import audit_actions
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.e2e.cli_runner import run_ketadesk
from tests.reliability.conftest import record_figure

TRIALS = int(os.environ.get("KETADESK_TAMPER_TRIALS", "120"))
CLI_TRIALS = 5
EXTRA_EVENTS = 40

# column -> SQL expression that changes it
EDITS = {
    "detail": "detail || ' (edited)'",
    "user_name": "'mallory'",
    "role": "'admin'",
    "action": "'patient_deleted'",
    "patient_id": "coalesce(patient_id, 0) + 7",
    "occurred_at": "'2020-01-01 00:00:00.000000'",
    "prev_hash": "'" + "f" * 64 + "'",
    "row_hash": "'" + "e" * 64 + "'",
}


@pytest.fixture(scope="module")
def audited_practice(
    prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, bytes, int]:
    """A closed practice with a few dozen audit events; returns (path, key, event count)."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("audited"))
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        for number in range(EXTRA_EVENTS):
            record_event(session, outcome.actor, audit_actions.PATIENT_VIEWED,
                         patient_id=number % 9 + 1, detail="chart opened")
    with db.session() as session:
        count = verify_audit(session).event_count
    key = db.database_key()
    db.close()
    return path, key, count


Tamper = tuple[list[str], int, str]  # statements, expected first bad seq, description


def _plan(rng: random.Random, count: int) -> Tamper:
    """One random tampering of events 1..count and the event the check must name."""
    kind = rng.choice(("edit", "delete", "swap", "move_to_end"))
    if kind == "edit":
        seq = rng.randint(1, count)
        column = rng.choice(sorted(EDITS))
        return [f"UPDATE audit_events SET {column} = {EDITS[column]} WHERE seq = {seq}"], seq, (
            f"edit {column} of {seq}"
        )
    if kind == "delete":
        seq = rng.randint(1, count - 1)
        return [f"DELETE FROM audit_events WHERE seq = {seq}"], seq + 1, f"delete {seq}"
    if kind == "swap":
        first, second = sorted(rng.sample(range(1, count + 1), 2))
        # Storage ids equal seq numbers until someone tampers (checked by a test below).
        return [
            f"UPDATE audit_events SET id = -1 WHERE seq = {first}",
            f"UPDATE audit_events SET id = {first} WHERE seq = {second}",
            f"UPDATE audit_events SET id = {second} WHERE seq = {first}",
        ], second, f"swap {first} and {second}"
    seq = rng.randint(1, count - 1)
    return [
        f"UPDATE audit_events SET id = (SELECT max(id) + 1 FROM audit_events) WHERE seq = {seq}"
    ], seq + 1, f"move {seq} to the end"


def _tampered_copy(source: Path, folder: Path, key: bytes, statements: list[str]) -> Path:
    folder.mkdir(parents=True)
    path = folder / source.name
    shutil.copy2(source, path)
    shutil.copy2(KeySlotFile.path_for(source), KeySlotFile.path_for(path))
    connection = raw_connection(path, key)
    connection.execute("DROP TRIGGER audit_events_no_update")
    connection.execute("DROP TRIGGER audit_events_no_delete")
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def _ids_match_seqs(path: Path, key: bytes) -> bool:
    connection = raw_connection(path, key)
    try:
        rows = connection.execute("SELECT id, seq FROM audit_events").fetchall()
    finally:
        connection.close()
    return all(row_id == seq for row_id, seq in rows)


def test_ids_follow_seq_in_an_untampered_chain(audited_practice) -> None:
    path, key, count = audited_practice
    assert count >= EXTRA_EVENTS
    assert _ids_match_seqs(path, key)


def test_first_bad_event_is_named_at_random_positions(audited_practice, tmp_path) -> None:
    path, key, count = audited_practice
    slots = KeySlotFile.load(path)
    rng = random.Random(int(os.environ.get("KETADESK_TAMPER_SEED", "4242")))
    kinds: dict[str, int] = {}
    for trial in range(TRIALS):
        statements, expected, description = _plan(rng, count)
        copy = _tampered_copy(path, tmp_path / f"t{trial}", key, statements)
        db = PracticeDatabase.open_with_key(copy, key, slots)
        try:
            with db.session() as session:
                verdict = verify_audit(session)
            streamed = db.verify_audit_trail()  # the background walk: plain rows in batches
        finally:
            db.close()
        assert not verdict.is_intact, description
        assert verdict.first_bad_seq == expected, (description, verdict.describe())
        assert streamed.describe() == verdict.describe(), description
        assert f"event {expected}:" in verdict.describe()
        kind = description.split()[0]
        kinds[kind] = kinds.get(kind, 0) + 1
        shutil.rmtree(copy.parent)
    record_figure("audit_tampering", trials=TRIALS, named_first_bad=TRIALS, **kinds)


@pytest.mark.slow
def test_verify_audit_command_names_the_first_bad_event(audited_practice, tmp_path) -> None:
    path, key, count = audited_practice
    rng = random.Random(99)
    for trial in range(CLI_TRIALS):
        statements, expected, description = _plan(rng, count)
        copy = _tampered_copy(path, tmp_path / f"cli{trial}", key, statements)
        result = run_ketadesk("--db", str(copy), "verify-audit", "--as", PHYSICIAN,
                              "--password-stdin", stdin=PASSWORD + "\n")
        assert result.returncode == 1, (description, result.stderr)
        assert "Traceback" not in result.stderr
        named = {int(n) for n in re.findall(r"broken at event (\d+)", result.stderr)}
        assert named == {expected}, (description, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("audit chain broken at event")


def test_the_untampered_copy_verifies(audited_practice, tmp_path) -> None:
    """Control: the same copy-and-open path with no change reports an intact chain."""
    path, key, count = audited_practice
    copy = _tampered_copy(path, tmp_path / "control", key, [])
    db = PracticeDatabase.open_with_key(copy, key, KeySlotFile.load(copy))
    try:
        with db.session() as session:
            verdict = verify_audit(session)
    finally:
        db.close()
    assert verdict.is_intact and verdict.event_count == count

