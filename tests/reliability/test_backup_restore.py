"""Backups: consistent while another process writes, bound to their practice, encrypted.

File only: these are the file's own backups (a server's: tests/e2e/test_server_backup.py).
"""

from __future__ import annotations

import signal
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ketadesk.core.audit_actions import PATIENT_CREATED
from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.patients.patients import create_patient
from ketadesk.storage.security.audit_log import verify_audit
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import cipher_damaged_pages, is_plain_sqlite, raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.reliability.conftest import (
    WriterOutput,
    changed_files,
    drain,
    folder_hashes,
    start_writer,
    wait_for_line,
)

BATCH = 25


def _patient_ids_and_batches(path: Path, key: bytes) -> tuple[list[int], dict[str, int]]:
    db = PracticeDatabase.open_with_key(path, key, KeySlotFile.load(path))
    try:
        with db.session() as session:
            ids = list(session.scalars(select(Patient.id).order_by(Patient.id)))
            batches = dict(
                session.execute(
                    select(Patient.address_line2, func.count())
                    .where(Patient.address_line2.like("Batch %"))
                    .group_by(Patient.address_line2)
                ).all()
            )
            orphans = session.scalar(
                select(func.count())
                .select_from(VitalSign)
                .where(VitalSign.patient_id.not_in(select(Patient.id)))
            )
            assert orphans == 0
            # Every "patient created" event has its patient, and every chart its two vitals.
            created = set(
                session.scalars(
                    select(AuditEvent.patient_id).where(AuditEvent.action == PATIENT_CREATED)
                )
            )
            assert created <= set(ids)
            without_both_vitals = session.scalar(
                select(func.count())
                .select_from(Patient)
                .where(
                    Patient.address_line2 == "Single",
                    select(func.count())
                    .select_from(VitalSign)
                    .where(VitalSign.patient_id == Patient.id)
                    .scalar_subquery()
                    != 2,
                )
            )
            assert without_both_vitals == 0
            assert verify_audit(session).is_intact
    finally:
        db.close()
    return ids, {str(k): v for k, v in batches.items()}


@pytest.mark.slow
def test_backup_taken_while_another_process_writes_is_consistent(
    closed_practice: Path, tmp_path: Path
) -> None:
    writer = start_writer(closed_practice, tag="bk", batch_size=BATCH)
    reported = WriterOutput()
    backups: list[tuple[Path, set[int]]] = []
    try:
        wait_for_line(writer, reported, "READY")
        db, _outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
        try:
            for number in range(6):
                wait_for_line(writer, reported, "P ")
                seen_before = set(reported.patient_ids)
                backup = db.backup_to(tmp_path / "backups" / f"during-{number}.db")
                backups.append((backup, seen_before))
            key = db.database_key()
        finally:
            db.close()
        time.sleep(0.3)
    finally:
        writer.send_signal(signal.SIGKILL)
        stderr = drain(writer, reported)
    assert "Traceback" not in stderr
    final_ids, _final_batches = _patient_ids_and_batches(closed_practice, key)
    assert set(reported.patient_ids) <= set(final_ids)
    for backup, seen_before in backups:
        assert not is_plain_sqlite(backup)
        assert cipher_damaged_pages(backup, key) == []
        connection = raw_connection(backup, key)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            connection.close()
        ids, batches = _patient_ids_and_batches(backup, key)
        assert seen_before <= set(ids), "a write reported before the backup is missing"
        # A prefix of the committed writes: nothing later without everything earlier.
        assert ids == [i for i in final_ids if i <= max(ids)]
        assert all(size == BATCH for size in batches.values()), batches
    # The backup opens with the same password on its own.
    restored, outcome = PracticeDatabase.unlock(backups[-1][0], PHYSICIAN, PASSWORD)
    restored.close()
    assert outcome.audit.is_intact


@pytest.fixture(scope="module")
def other_practice_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("other-practice")
    db, _actor, _recovery = PracticeDatabase.create(
        folder / "other.db", user_name=PHYSICIAN, full_name="Dr. Other Practice", password=PASSWORD
    )
    backup = db.backup_to(folder / "other-backup.db")
    db.close()
    return backup


@pytest.mark.slow
def test_restore_refuses_a_backup_of_another_practice(
    closed_practice: Path, other_practice_backup: Path
) -> None:
    folder = closed_practice.parent
    before = folder_hashes(folder)
    refused = run_ketadesk("--db", str(closed_practice), "restore", str(other_practice_backup),
                           "--as", PHYSICIAN, "--password-stdin", stdin=PASSWORD + "\n")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("ketadesk: That backup was made from a different practice")
    assert refused.stderr.count("\n") == 1
    assert changed_files(before, folder_hashes(folder)) == set()

    allowed = run_ketadesk("--db", str(closed_practice), "restore", str(other_practice_backup),
                           "--as", PHYSICIAN, "--password-stdin", "--other-practice", "--yes",
                           stdin=PASSWORD + "\n")
    assert allowed.returncode == 0, allowed.stderr
    other_id = KeySlotFile.load(other_practice_backup).database_id
    assert KeySlotFile.load(closed_practice).database_id == other_id
    kept = [p for p in folder.iterdir() if "-before-restore-" in p.name and p.suffix == ".db"]
    assert len(kept) == 1, "the replaced database must be kept"
    # The kept copy is the replaced practice as it was when the restoring manager logged in to
    # it (their log-in is audited there): it still opens and holds the same practice.
    assert KeySlotFile.load(kept[0]).database_id != other_id
    kept_db, _outcome = PracticeDatabase.unlock(kept[0], PHYSICIAN, PASSWORD)
    try:
        assert kept_db.verify_audit_trail().is_intact
    finally:
        kept_db.close()


def test_backups_are_encrypted(closed_practice: Path, tmp_path: Path) -> None:
    db, outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    try:
        with db.session() as session:
            create_patient(
                session,
                outcome.actor,
                PatientDemographics(
                    first_name="Xanthippe",
                    last_name="Quorvandel",
                    dob=date(1971, 3, 9),
                    sex="female",
                    state="FL",
                    county="Alachua",
                    email="xanthippe.quorvandel@example.org",
                ),
                today=date(2026, 11, 25),
            )
        backup = db.backup_to(tmp_path / "backups" / "copy.db")
        key_hex = db.database_key().hex()
    finally:
        db.close()
    data = backup.read_bytes()
    assert not data.startswith(b"SQLite format 3\x00")
    for needle in ("Xanthippe", "Quorvandel", "xanthippe.quorvandel"):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert needle.encode(encoding) not in data
    keys_text = KeySlotFile.path_for(backup).read_text()
    assert key_hex not in keys_text and PASSWORD not in keys_text
    connection = sqlite3.connect(backup)
    with pytest.raises(sqlite3.DatabaseError):
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    connection.close()
    # ... while the backup itself holds the patient.
    copy, _outcome = PracticeDatabase.unlock(backup, PHYSICIAN, PASSWORD)
    try:
        with copy.session() as session:
            assert session.scalar(
                select(func.count()).select_from(Patient).where(Patient.last_name == "Quorvandel")
            ) == 1
    finally:
        copy.close()
