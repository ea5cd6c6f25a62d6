"""The recovery key gives a user manager who forgot their password a new one: real encrypted
practices in temp folders, real key files, real signatures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.models.audit import AuditEvent
from ketadesk.models.signing import UserGrant
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import check_key_opens
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.recovery import recover_with_key, recovery_report
from ketadesk.storage.security.signing_keys import RECOVERY_SIGNER
from ketadesk.storage.security.users import add_user, remove_user, reset_password
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice

SECOND = "drsecond"  # a second physician who manages users
THIRD = "drthird"  # added by the second manager: their grant is signed by drsecond's key
GONE = "drgone"  # removed
NEW_PASSWORD = "violet lantern orchard"


@dataclass(frozen=True)
class Prepared:
    path: Path
    recovery_key: str


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    path = tmp_path_factory.mktemp("recovery") / "practice.db"
    db, physician, recovery_key = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Rowan Quill", password=PASSWORD
    )
    for name, role, manages in (
        (ADMIN, Role.ADMIN, False),
        (SECOND, Role.PHYSICIAN, True),
        (GONE, Role.PHYSICIAN, False),
    ):
        add_user(db, physician, user_name=name, full_name=f"Dr. {name.title()}", role=role,
                 password=PASSWORD, can_manage_users=manages)
    remove_user(db, physician, GONE)
    db.close()
    second_db, second = PracticeDatabase.unlock(path, SECOND, PASSWORD)
    add_user(second_db, second.actor, user_name=THIRD, full_name="Dr. Third",
             role=Role.PHYSICIAN, password=PASSWORD)
    second_db.close()
    return Prepared(path, recovery_key)


@pytest.fixture
def copy(prepared: Prepared, tmp_path: Path) -> Path:
    return copy_practice(prepared.path, tmp_path / "db")


def _file_hashes(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.iterdir())
        if p.is_file()
    }


def _verify(path: Path, user: str, password: str) -> list[str]:
    """verify-audit's checks as the user: the verdict must be intact; returns its lines."""
    db, outcome = PracticeDatabase.unlock(path, user, password)
    try:
        assert outcome.audit.is_intact, outcome.audit.describe()
        verdict = db.verify_audit_trail()
        assert verdict.is_intact, verdict.describe()
        signatures = db.audit_signatures()
        assert signatures.is_valid, signatures.describe()
        assert all(c.is_valid for c in db.content_signatures())
        with db.session() as session:
            report = recovery_report(session)
    finally:
        db.close()
    return [*signatures.describe(), *report.describe()]


def test_a_wrong_recovery_key_is_refused_and_changes_no_file(copy):
    before = _file_hashes(copy)
    with pytest.raises(UserFacingError, match="recovery key does not open"):
        recover_with_key(copy, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH", PHYSICIAN,
                         NEW_PASSWORD)
    assert _file_hashes(copy) == before
    assert "recovery key: never used (it has signed nothing)" in _verify(copy, PHYSICIAN, PASSWORD)


def test_the_first_physician_recovers_and_everything_still_verifies(copy, prepared):
    typed = prepared.recovery_key.lower().replace("-", "")  # no dashes, lower case
    outcome = recover_with_key(copy, typed, PHYSICIAN, NEW_PASSWORD)
    assert outcome.is_first_physician
    assert outcome.database_key_rotated
    assert ADMIN in outcome.resigned_grants and SECOND in outcome.resigned_grants
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    lines = _verify(copy, PHYSICIAN, NEW_PASSWORD)
    assert f"signed by {RECOVERY_SIGNER}: 1 events" in lines
    assert any(
        line.startswith("recovery key used: event")
        and f"new password and signing key for {PHYSICIAN} (the first physician)" in line
        for line in lines
    )
    assert f"signed with the recovery key: 1 events, user grants: {PHYSICIAN}, key slots: 0" in (
        lines
    )
    # Every other user still logs in (their grants were signed by the lost key, then again).
    for name in (ADMIN, SECOND, THIRD):
        PracticeDatabase.unlock(copy, name, PASSWORD)[0].close()
    # The recovered first physician manages users with their new key.
    db, again = PracticeDatabase.unlock(copy, PHYSICIAN, NEW_PASSWORD)
    try:
        assert again.actor.can_manage_users
        add_user(db, again.actor, user_name="drlater", full_name="Dr. Later",
                 role=Role.PHYSICIAN, password=PASSWORD)
        with pytest.raises(UserFacingError, match="first physician"):
            reset_password(db, db_actor(db, SECOND), PHYSICIAN, "another long passphrase")
    finally:
        db.close()
    PracticeDatabase.unlock(copy, "drlater", PASSWORD)[0].close()
    assert _verify(copy, SECOND, PASSWORD)


def db_actor(db: PracticeDatabase, name: str):  # type: ignore[no-untyped-def]
    from ketadesk.core.permissions import Actor
    from ketadesk.storage.security.users import get_user

    info = get_user(db, name)
    return Actor(info.user_id, name, info.full_name, info.role, True)


def test_a_second_manager_recovers_and_the_grants_they_signed_still_hold(copy, prepared):
    outcome = recover_with_key(copy, prepared.recovery_key, SECOND, NEW_PASSWORD)
    assert not outcome.is_first_physician
    assert outcome.resigned_grants == (THIRD,)
    PracticeDatabase.unlock(copy, THIRD, PASSWORD)[0].close()
    lines = _verify(copy, SECOND, NEW_PASSWORD)
    assert f"signed with the recovery key: 1 events, user grants: {SECOND}, key slots: 0" in (
        lines
    )
    assert _verify(copy, PHYSICIAN, PASSWORD)


@pytest.mark.parametrize(
    ("user", "message"),
    [(ADMIN, "does not manage users"), (THIRD, "does not manage users"),
     (GONE, "no active user"), ("nobody", "no active user")],
)
def test_an_admin_a_non_manager_or_a_removed_user_is_refused_and_nothing_changes(
    copy, prepared, user, message
):
    before = _file_hashes(copy)
    with pytest.raises(UserFacingError, match=message):
        recover_with_key(copy, prepared.recovery_key, user, NEW_PASSWORD)
    assert _file_hashes(copy) == before


def test_a_weak_new_password_is_refused_before_anything_changes(copy, prepared):
    before = _file_hashes(copy)
    with pytest.raises(UserFacingError):
        recover_with_key(copy, prepared.recovery_key, PHYSICIAN, "password")
    assert _file_hashes(copy) == before


def test_an_old_key_file_with_the_forgotten_password_opens_nothing_current(copy, prepared):
    key_file = KeySlotFile.path_for(copy)
    old_key_file = key_file.read_bytes()
    old_key = KeySlotFile.load(copy).open_user_slot(PHYSICIAN, PASSWORD)[1].database_key
    recover_with_key(copy, prepared.recovery_key, PHYSICIAN, NEW_PASSWORD)
    with pytest.raises(UserFacingError):
        check_key_opens(copy, old_key)
    key_file.write_bytes(old_key_file)  # someone kept a copy of the old key file
    with pytest.raises(UserFacingError):
        PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)


def test_the_recovery_key_still_works_after_a_recovery(copy, prepared):
    recover_with_key(copy, prepared.recovery_key, SECOND, NEW_PASSWORD)
    recover_with_key(copy, prepared.recovery_key, PHYSICIAN, NEW_PASSWORD)
    lines = _verify(copy, PHYSICIAN, NEW_PASSWORD)
    assert sum(line.startswith("recovery key used:") for line in lines) == 2
    assert f"signed by {RECOVERY_SIGNER}: 2 events" in lines


def test_a_practice_made_before_recovery_signing_is_refused_in_words(copy, prepared):
    db, _outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    with db.session() as session:  # what a practice created by an earlier version lacks
        session.execute(delete(UserGrant).where(UserGrant.user_name == RECOVERY_SIGNER))
    db.close()
    before = _file_hashes(copy)
    with pytest.raises(UserFacingError, match="before the recovery key could give"):
        recover_with_key(copy, prepared.recovery_key, PHYSICIAN, NEW_PASSWORD)
    assert _file_hashes(copy) == before
    PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)[0].close()  # still works as before


def test_an_event_signed_with_the_recovery_key_for_anything_else_is_named(copy, prepared):
    from ketadesk.storage.security.audit_log import record_event
    from ketadesk.storage.security.audit_signatures import SIGNER_KEY
    from ketadesk.storage.security.keyslots import recovery_signing_key
    from ketadesk.storage.security.signing_keys import RECOVERY_ROLE, Signer

    slots = KeySlotFile.load(copy)
    key = slots.unwrap_with_recovery_key(prepared.recovery_key)
    db = PracticeDatabase.open_with_key(copy, key, slots)
    with db.session() as session:
        session.info[SIGNER_KEY] = Signer(RECOVERY_SIGNER,
                                          recovery_signing_key(prepared.recovery_key))
        row = record_event(session, (RECOVERY_SIGNER, RECOVERY_ROLE), audit_actions.EXPORT)
        seq = row.seq
        assert row.signed_by == RECOVERY_SIGNER
    db.close()
    db, _outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    try:
        report = db.audit_signatures()
        assert (seq, "the recovery key signed it, but it signs only its own use") in (
            report.problems
        )
        with db.session() as session:
            events = session.execute(
                select(AuditEvent.action).where(AuditEvent.signed_by == RECOVERY_SIGNER)
            ).scalars().all()
        assert events == [audit_actions.EXPORT]
    finally:
        db.close()


def test_a_reset_of_a_second_manager_keeps_the_users_they_added_able_to_log_in(copy):
    """The same loss without the recovery key: the first physician resets drsecond, whose key
    had signed drthird's grant; it is signed again with drsecond's new key."""
    db, outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    try:
        reset_password(db, outcome.actor, SECOND, NEW_PASSWORD)
    finally:
        db.close()
    PracticeDatabase.unlock(copy, THIRD, PASSWORD)[0].close()
    assert _verify(copy, SECOND, NEW_PASSWORD)


def test_after_a_recovery_the_new_password_need_not_wait_out_the_wrong_ones(copy, prepared):
    from ketadesk.storage.security import attempts

    for _ in range(9):  # the forgotten password, tried and tried
        attempts.record_failure(copy, PHYSICIAN)
    assert attempts.seconds_to_wait(copy, PHYSICIAN) > 0
    recover_with_key(copy, prepared.recovery_key, PHYSICIAN, NEW_PASSWORD)
    assert attempts.seconds_to_wait(copy, PHYSICIAN) == 0
    db, _outcome = PracticeDatabase.unlock(copy, PHYSICIAN, NEW_PASSWORD)
    try:
        with db.session() as session:
            failed = session.execute(
                select(AuditEvent.user_name).where(
                    AuditEvent.action == audit_actions.LOGIN_FAILED
                )
            ).scalars().all()
    finally:
        db.close()
    assert failed == [PHYSICIAN] * 9  # still carried into the audit trail
