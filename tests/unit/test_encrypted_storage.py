"""Proofs about the encrypted practice database and its key slots.

File only: SQLCipher encryption and the key-slot file are the file's own.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import Patient
from ketadesk.storage.security import attempts
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import is_plain_sqlite
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN

SECRET_NAME = "Zyxwander Quillon"


def _files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.is_file()]


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _add_patient(db: PracticeDatabase, first: str, last: str) -> None:
    with db.session() as session:
        session.add(
            Patient(
                mrn="KD-00000018",
                first_name=first,
                last_name=last,
                first_name_folded=first.lower(),
                last_name_folded=last.lower(),
                dob=date(1980, 2, 1),
                state="FL",
                status="screening",
            )
        )


def test_patient_name_never_appears_in_any_file(practice, tmp_path):
    _add_patient(practice.db, "Zyxwander", "Quillon")
    backup = practice.db.backup_to(tmp_path / "backups" / "copy.db")
    needles = [SECRET_NAME, "Zyxwander", "Quillon"]
    encoded = [n.encode(enc) for n in needles for enc in ("utf-8", "utf-16-le", "utf-16-be")]
    files = [*_files(practice.path), backup]
    assert any(p.name.endswith("-wal") for p in files), "expected a write-ahead log to check"
    for file in files:
        data = file.read_bytes()
        for needle in encoded:
            assert needle not in data, f"{needle!r} found in {file.name}"
    # ... while the database itself does hold the name.
    with practice.db.session() as session:
        assert session.query(Patient).one().last_name == "Quillon"


def test_stdlib_sqlite_cannot_read_the_file(practice):
    assert not is_plain_sqlite(practice.path)
    connection = sqlite3.connect(practice.path)
    with pytest.raises(sqlite3.DatabaseError):
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    connection.close()


def test_wrong_password_changes_nothing_and_is_recorded(practice):
    practice.db.close()
    folder = practice.path.parent
    before = _hashes(folder)
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(practice.path, PHYSICIAN, "not the password")
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(practice.path, "nobody", PASSWORD)
    after = _hashes(folder)
    attempts_names = {p.name for p in attempts.attempts_files(practice.path)}
    assert {k: v for k, v in after.items() if k not in attempts_names} == {
        k: v for k, v in before.items() if k not in attempts_names
    }
    assert [a.user_name for a in attempts.failed_attempts(practice.path)] == [PHYSICIAN, "nobody"]

    db, outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    assert outcome.failed_attempts_since_last_login == 2
    from ketadesk.models.audit import AuditEvent

    with db.session() as session:
        failed = session.query(AuditEvent).filter_by(action="login_failed").all()
    assert sorted(e.user_name for e in failed) == sorted(["nobody", PHYSICIAN])
    assert attempts.failed_attempts(practice.path) == []  # carried into the trail, not kept
    db.close()


def test_backoff_after_five_consecutive_failures(practice):
    practice.db.close()
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for i in range(5):
        with pytest.raises(UserFacingError, match="Wrong user name"):
            PracticeDatabase.unlock(
                practice.path, PHYSICIAN, "nope", now=start + timedelta(seconds=i)
            )
    last = start + timedelta(seconds=4)
    with pytest.raises(UserFacingError, match="Wait 2 seconds"):
        PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD, now=last)
    with pytest.raises(UserFacingError, match="Wrong user name"):
        PracticeDatabase.unlock(practice.path, PHYSICIAN, "nope", now=last + timedelta(seconds=3))
    sixth = last + timedelta(seconds=3)
    waits = attempts.seconds_to_wait(practice.path, PHYSICIAN, sixth)
    assert waits == 4  # each further failure doubles the wait
    db, _ = PracticeDatabase.unlock(
        practice.path, PHYSICIAN, PASSWORD, now=sixth + timedelta(seconds=5)
    )
    db.close()


def test_changing_a_password_rewraps_only_that_slot(practice):
    from ketadesk.storage.security.users import change_own_password

    before = {s.slot_id: s for s in KeySlotFile.load(practice.path).slots}
    change_own_password(practice.db, practice.physician, PASSWORD, "a brand new passphrase")
    after = KeySlotFile.load(practice.path).slots
    changed = [s for s in after if s.slot_id not in before]
    assert [s.user_name for s in changed] == [PHYSICIAN]
    assert [s for s in after if s.slot_id in before] == [
        s for s in before.values() if s.user_name != PHYSICIAN or s.kind != "user"
    ]
    practice.db.close()
    with pytest.raises(UserFacingError):
        PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    db, _ = PracticeDatabase.unlock(practice.path, PHYSICIAN, "a brand new passphrase")
    db.close()


def test_key_slot_file_stores_no_secret_and_strong_parameters(practice):
    raw = KeySlotFile.path_for(practice.path).read_text()
    assert PASSWORD not in raw
    assert practice.db.database_key().hex() not in raw
    for slot in json.loads(raw)["slots"]:
        assert slot["kdf"]["name"] == "argon2id"
        assert slot["kdf"]["memory_kib"] >= 65536


def test_slot_bound_to_its_user_and_parameters(practice):
    slots = KeySlotFile.load(practice.path)
    admin_slot = next(slots.user_slots(ADMIN))
    # Relabel the admin's slot as the physician's: the unwrap must fail.
    from dataclasses import replace

    slots.slots = [
        replace(s, user_name=PHYSICIAN) if s is admin_slot else s
        for s in slots.slots
        if not (s.kind == "user" and s.user_name == PHYSICIAN)
    ]
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        slots.unwrap_for_user(PHYSICIAN, PASSWORD)
    weakened = replace(admin_slot, kdf=replace(admin_slot.kdf, time_cost=1))
    slots.slots = [weakened]
    with pytest.raises(UserFacingError):
        slots.unwrap_for_user(ADMIN, PASSWORD)


def test_removing_a_user_removes_their_slot(practice):
    from ketadesk.storage.security.users import remove_user

    remove_user(practice.db, practice.physician, ADMIN)
    assert list(KeySlotFile.load(practice.path).user_slots(ADMIN)) == []
    practice.db.close()
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(practice.path, ADMIN, PASSWORD)


def test_recovery_key_opens_the_database(tmp_path):
    path = tmp_path / "p.db"
    db, _actor, recovery_key = PracticeDatabase.create(
        path, user_name="solo", full_name="Dr. Solo Practitioner", password=PASSWORD
    )
    db.close()
    slots = KeySlotFile.load(path)
    key = slots.unwrap_with_recovery_key(recovery_key.lower().replace("-", " "))
    reopened = PracticeDatabase.open_with_key(path, key, slots)
    reopened.close()
    with pytest.raises(UserFacingError, match="recovery key does not open"):
        slots.unwrap_with_recovery_key("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH")


def test_a_locked_database_refuses_sessions(practice):
    practice.db.lock(practice.physician)
    assert practice.db.is_locked
    with pytest.raises(UserFacingError, match="locked"):
        with practice.db.session():
            pass
    actor = practice.db.unlock_again(ADMIN, PASSWORD)  # switch user
    assert actor.user_name == ADMIN
    with practice.db.session() as session:
        assert session.query(Patient).count() == 0


def test_create_refuses_weak_password_and_existing_database(practice, tmp_path):
    with pytest.raises(UserFacingError, match="at least 10 characters"):
        PracticeDatabase.create(
            tmp_path / "new.db", user_name="dr", full_name="Dr X", password="short"
        )
    assert not (tmp_path / "new.db").exists()
    with pytest.raises(UserFacingError, match="already exists"):
        PracticeDatabase.create(practice.path, user_name="dr2", full_name="Dr Y", password=PASSWORD)


def test_key_file_from_another_database_is_refused(practice, tmp_path):
    other = tmp_path / "other" / "o.db"
    db, _a, _r = PracticeDatabase.create(
        other, user_name=PHYSICIAN, full_name="Dr Other", password=PASSWORD
    )
    db.close()
    practice.db.close()
    KeySlotFile.path_for(practice.path).write_bytes(KeySlotFile.path_for(other).read_bytes())
    before = practice.path.read_bytes()
    with pytest.raises(UserFacingError, match=r"another database|different practice"):
        PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    assert practice.path.read_bytes() == before
