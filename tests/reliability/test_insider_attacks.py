"""Insiders who hold a valid password and the files: each attack from issue 16 that signing
keys, signed grants and the slot allow-list answer, performed the way an insider would (their
own slot unwrapped with the project's own API, then SQL and the key file edited by hand), and
refused or named.

What stays possible (no rekeying yet: a removed user's copy of the old key still decrypts; the
newest stretch of events written only by the insider can still be rewritten) is stated in the
README and in docs/reliability.md.

File only: the key-slot file and raw SQL on the decrypted file are the attacks (a server's
insiders at psql: test_server_psql_attacks).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import GENESIS_HASH, event_hash
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile, SlotSecrets
from ketadesk.storage.security.signing_keys import (
    Signer,
    audit_event_message,
    grant_message,
    new_private_key,
    public_key_of,
    slot_grant_message,
)
from ketadesk.storage.security.users import (
    add_user,
    change_own_password,
    list_users,
    remove_user,
)
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.reliability.conftest import record_figure

ADMIN_PASSWORD = "another long passphrase"


def _insider(path: Path, user_name: str, password: str) -> tuple[bytes, Signer, SlotSecrets]:
    """What an insider holds after unwrapping their own slot with the project's API."""
    _slot, held = KeySlotFile.load(path).open_user_slot(user_name, password)
    assert held.signing_key is not None
    return held.database_key, Signer(user_name, held.signing_key), held


def _sql(path: Path, key: bytes, *statements: str) -> None:
    connection = raw_connection(path, key)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _refused(path: Path, user_name: str, password: str) -> str:
    with pytest.raises(UserFacingError) as refused:
        PracticeDatabase.unlock(path, user_name, password)
    return str(refused.value)


def _log_in_and_out(path: Path, user_name: str, password: str, views: int = 0) -> None:
    db, outcome = PracticeDatabase.unlock(path, user_name, password)
    with db.session() as session:
        for number in range(views):
            record_event(session, outcome.actor, audit_actions.PATIENT_VIEWED,
                         patient_id=number + 1, detail="chart opened")
        if views:
            record_event(session, outcome.actor, audit_actions.PLAN_EXPORTED, patient_id=1,
                         detail="plan 1")
    db.close()


def _rewrite_chain(path: Path, key: bytes, signer: Signer, database_id: str,
                   *, delete_user: str, resign_as_insider: bool) -> int:
    """Drop the triggers, delete ``delete_user``'s views and exports, renumber and re-hash the
    chain, re-sign every event the insider can (their own and the practice key's, or all of
    them when ``resign_as_insider``), and move the anchor in the key file. Returns how many
    events were deleted."""
    connection = raw_connection(path, key)
    practice_key = connection.execute(
        "SELECT value FROM practice_meta WHERE key = 'practice_signing_key'"
    ).fetchone()[0]
    practice = Signer("system", base64.b64decode(practice_key))
    connection.execute("DROP TRIGGER audit_events_no_update")
    connection.execute("DROP TRIGGER audit_events_no_delete")
    deleted = connection.execute(
        "DELETE FROM audit_events WHERE user_name = ? AND action IN (?, ?)",
        (delete_user, audit_actions.PATIENT_VIEWED, audit_actions.PLAN_EXPORTED),
    ).rowcount
    rows = connection.execute(
        "SELECT id, occurred_at, user_name, role, patient_id, action, detail, signed_by, "
        "signature FROM audit_events ORDER BY seq"
    ).fetchall()
    from datetime import UTC, datetime

    prev = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row_id, occurred, user_name, role, patient_id, action, detail, signed_by, sig = row
        at = datetime.fromisoformat(occurred).replace(tzinfo=UTC)
        row_hash = event_hash(prev, seq, at, user_name, role, patient_id, action, detail)
        if resign_as_insider or signed_by == signer.user_name:
            signed_by, who = signer.user_name, signer
        elif signed_by == "system":
            who = practice
        else:
            who = None  # another user's key: the insider does not have it
        if who is not None:
            sig = who.sign(audit_event_message(database_id, seq=seq, row_hash=row_hash,
                                               signed_by=signed_by))
        connection.execute(
            "UPDATE audit_events SET seq = ?, prev_hash = ?, row_hash = ?, signed_by = ?, "
            "signature = ? WHERE id = ?",
            (-seq, prev, row_hash, signed_by, sig, row_id),
        )
        prev = row_hash
    connection.execute("UPDATE audit_events SET seq = -seq")
    connection.commit()
    connection.close()
    slots = KeySlotFile.load(path)
    from ketadesk.storage.security.keyslots import AuditAnchor

    slots.audit_anchor = AuditAnchor(len(rows), prev)
    slots.save(path)
    return deleted


@pytest.fixture
def busy_practice(closed_practice: Path) -> Path:
    """The admin views charts and exports a plan, the physician works, the admin returns."""
    _log_in_and_out(closed_practice, ADMIN, PASSWORD, views=4)
    _log_in_and_out(closed_practice, PHYSICIAN, PASSWORD, views=2)
    _refused(closed_practice, ADMIN, "a mistyped password")  # signed by the practice key
    _log_in_and_out(closed_practice, ADMIN, PASSWORD)
    return closed_practice


@pytest.mark.parametrize("resign_as_insider", [False, True], ids=["keep-signers", "resign-all"])
def test_audit_rewrite_by_a_physician_is_named(busy_practice, resign_as_insider) -> None:
    path = busy_practice
    key, signer, _held = _insider(path, PHYSICIAN, PASSWORD)
    database_id = KeySlotFile.load(path).database_id
    deleted = _rewrite_chain(path, key, signer, database_id, delete_user=ADMIN,
                             resign_as_insider=resign_as_insider)
    assert deleted == 5

    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        verdict = db.verify_audit_trail()
        report = db.audit_signatures()
    finally:
        db.close()
    # The hash chain and the anchor were recomputed consistently ...
    assert not outcome.audit.is_intact
    assert not verdict.is_intact
    # ... but the admin's later log-in carries a signature only the admin could re-make.
    problem = verdict.describe()
    if resign_as_insider:
        assert f"names {ADMIN} but was signed by {PHYSICIAN}" in problem
    else:
        assert f"does not verify against {ADMIN}'s granted key" in problem
    assert report.problems
    record_figure("insider_audit_rewrite", resign_as_insider=resign_as_insider,
                  deleted=deleted, named=len(report.problems))


def test_audit_rewrite_is_named_by_the_verify_audit_command(busy_practice) -> None:
    key, signer, _held = _insider(busy_practice, PHYSICIAN, PASSWORD)
    _rewrite_chain(busy_practice, key, signer, KeySlotFile.load(busy_practice).database_id,
                   delete_user=ADMIN, resign_as_insider=False)
    result = run_ketadesk("--db", str(busy_practice), "verify-audit", "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"signed by {PHYSICIAN}:" in result.stdout
    assert f"does not verify against {ADMIN}'s granted key" in result.stderr


def test_verify_audit_reports_who_signed_what(busy_practice) -> None:
    result = run_ketadesk("--db", str(busy_practice), "verify-audit", "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert f"signed by {ADMIN}: " in result.stdout
    assert f"signed by {PHYSICIAN}: " in result.stdout
    assert "signed by system: " in result.stdout
    assert "audit chain intact" in result.stdout


def _append_forged_slot(path: Path, key: bytes, held: SlotSecrets | bytes, owner: str,
                        password: str) -> str:
    """Wrap ``held`` for ``owner`` under the insider's password and add it beside the real
    slots (add_user_slot on a scratch file, so the owner's own slot stays and still works)."""
    real = KeySlotFile.load(path)
    scratch = KeySlotFile(database_id=real.database_id)
    forged = scratch.add_user_slot(held, owner, password)
    real.slots.append(forged)
    real.save(path)
    return forged.slot_id


def test_a_second_physician_slot_made_by_an_admin_is_refused(closed_practice) -> None:
    path = closed_practice
    key, admin_signer, admin_held = _insider(path, ADMIN, PASSWORD)
    database_id = KeySlotFile.load(path).database_id

    # 1. The bare database key, as in the reported attack.
    _append_forged_slot(path, key, key, PHYSICIAN, ADMIN_PASSWORD)
    assert "not on the practice's signed list of key slots" in _refused(
        path, PHYSICIAN, ADMIN_PASSWORD
    )
    # 2. A signing key of the admin's own making and the pinned trust root copied from theirs.
    forged_id = _append_forged_slot(
        path, key, SlotSecrets(key, new_private_key(), admin_held.trust_root), PHYSICIAN,
        ADMIN_PASSWORD,
    )
    assert "not on the practice's signed list of key slots" in _refused(
        path, PHYSICIAN, ADMIN_PASSWORD
    )
    # 3. ... and the slot put on the allow-list, signed with the admin's own key.
    message = slot_grant_message(database_id, slot_id=forged_id, owner=PHYSICIAN, kind="user",
                                 generation=1, signed_by=ADMIN)
    _sql(path, key, "INSERT INTO slot_grants (slot_id, owner, kind, generation, signed_by, "
         f"signature) VALUES ('{forged_id}', '{PHYSICIAN}', 'user', 1, '{ADMIN}', "
         f"'{admin_signer.sign(message)}')")
    assert "not on the practice's signed list of key slots" in _refused(
        path, PHYSICIAN, ADMIN_PASSWORD
    )
    # 4. ... or claimed to be signed by the physician (the admin cannot make that signature).
    forged_message = slot_grant_message(database_id, slot_id=forged_id, owner=PHYSICIAN,
                                        kind="user", generation=1, signed_by=PHYSICIAN)
    _sql(path, key, f"UPDATE slot_grants SET signed_by = '{PHYSICIAN}', signature = "
         f"'{admin_signer.sign(forged_message)}' WHERE slot_id = '{forged_id}'")
    assert "not on the practice's signed list of key slots" in _refused(
        path, PHYSICIAN, ADMIN_PASSWORD
    )
    # The real physician's password still works, and the audit says nothing was signed falsely.
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        assert outcome.actor.can_manage_users
        assert db.verify_audit_trail().is_intact
    finally:
        db.close()


def test_a_slot_holding_another_signing_key_is_refused_even_on_the_list(closed_practice):
    """A manager-signed allow-list entry does not make a slot with the wrong key usable."""
    path = closed_practice
    key, signer, held = _insider(path, PHYSICIAN, PASSWORD)
    database_id = KeySlotFile.load(path).database_id
    forged_id = _append_forged_slot(
        path, key, SlotSecrets(key, new_private_key(), held.trust_root), ADMIN, ADMIN_PASSWORD
    )
    message = slot_grant_message(database_id, slot_id=forged_id, owner=ADMIN, kind="user",
                                 generation=1, signed_by=PHYSICIAN)
    _sql(path, key, "INSERT INTO slot_grants (slot_id, owner, kind, generation, signed_by, "
         f"signature) VALUES ('{forged_id}', '{ADMIN}', 'user', 1, '{PHYSICIAN}', "
         f"'{signer.sign(message)}')")
    assert "does not hold the signing key granted to that user" in _refused(
        path, ADMIN, ADMIN_PASSWORD
    )


def test_update_users_as_an_admin_gains_nothing(closed_practice) -> None:
    path = closed_practice
    key, _signer, _held = _insider(path, ADMIN, PASSWORD)
    _sql(path, key, f"UPDATE users SET role = 'physician', can_manage_users = 1 "
         f"WHERE user_name = '{ADMIN}'")
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    try:
        assert outcome.actor.role == Role.ADMIN
        assert not outcome.actor.can_manage_users
        with pytest.raises(UserFacingError):
            add_user(db, outcome.actor, user_name="mallory", full_name="Mallory",
                     role=Role.PHYSICIAN, password=ADMIN_PASSWORD, can_manage_users=True)
    finally:
        db.close()
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        listed = {info.user_name: info for info in list_users(db)}
    finally:
        db.close()
    assert listed[ADMIN].role == Role.ADMIN and not listed[ADMIN].can_manage_users
    assert listed[ADMIN].is_row_unsigned
    assert not listed[PHYSICIAN].is_row_unsigned


@pytest.mark.parametrize("forgery", ["edit-grant", "self-signed", "no-signature"])
def test_a_forged_role_grant_is_refused_and_named(closed_practice, forgery) -> None:
    path = closed_practice
    key, admin_signer, _held = _insider(path, ADMIN, PASSWORD)
    database_id = KeySlotFile.load(path).database_id
    if forgery == "edit-grant":
        statement = ("UPDATE user_grants SET role = 'physician', can_manage_users = 1 "
                     f"WHERE user_name = '{ADMIN}'")
    elif forgery == "self-signed":
        message = grant_message(database_id, user_name=ADMIN, role="physician",
                                can_manage_users=True, is_active=True,
                                public_key=admin_signer.public_key, retired_public_keys="",
                                granted_by=ADMIN)
        statement = (f"UPDATE user_grants SET role = 'physician', can_manage_users = 1, "
                     f"granted_by = '{ADMIN}', signature = '{admin_signer.sign(message)}' "
                     f"WHERE user_name = '{ADMIN}'")
    else:
        statement = f"UPDATE user_grants SET signature = '' WHERE user_name = '{ADMIN}'"
    _sql(path, key, statement)
    problem = _refused(path, ADMIN, PASSWORD)
    assert f"The role grant of user {ADMIN} is not signed by a user who manages users" in problem
    # The physician is not affected.
    PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)[0].close()


def test_replacing_every_grant_with_an_insiders_own_root_is_refused(closed_practice) -> None:
    """The admin rewrites the whole grant table with a self-signed root of their own: every
    slot pins the real first physician's key, so nobody can log in through the fake grants."""
    path = closed_practice
    key, admin_signer, _held = _insider(path, ADMIN, PASSWORD)
    database_id = KeySlotFile.load(path).database_id
    message = grant_message(database_id, user_name=ADMIN, role="physician",
                            can_manage_users=True, is_active=True,
                            public_key=admin_signer.public_key, retired_public_keys="",
                            granted_by=ADMIN)
    _sql(path, key, f"DELETE FROM user_grants WHERE user_name != '{ADMIN}'",
         f"UPDATE user_grants SET role = 'physician', can_manage_users = 1, granted_by = "
         f"'{ADMIN}', signature = '{admin_signer.sign(message)}'",
         f"UPDATE practice_meta SET value = '{admin_signer.public_key}' WHERE key = 'trust_root'")
    assert "grants were replaced" in _refused(path, ADMIN, PASSWORD)
    assert "grants were replaced" in _refused(path, PHYSICIAN, PASSWORD)


def test_deleting_every_grant_is_refused(closed_practice) -> None:
    key, _signer, _held = _insider(closed_practice, ADMIN, PASSWORD)
    _sql(closed_practice, key, "DELETE FROM user_grants")
    assert "signed user grants were removed" in _refused(closed_practice, ADMIN, PASSWORD)
    assert "signed user grants were removed" in _refused(closed_practice, PHYSICIAN, PASSWORD)


def test_an_old_key_file_after_a_password_change_does_not_let_the_old_password_in(
    closed_practice, tmp_path
) -> None:
    path = closed_practice
    saved = tmp_path / "old.keys.json"
    shutil.copy2(KeySlotFile.path_for(path), saved)
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    change_own_password(db, outcome.actor, PASSWORD, ADMIN_PASSWORD)
    db.close()
    shutil.copy2(saved, KeySlotFile.path_for(path))
    assert "not on the practice's signed list of key slots" in _refused(path, ADMIN, PASSWORD)


def test_a_removed_user_cannot_return_with_their_old_key_file(closed_practice, tmp_path):
    path = closed_practice
    saved = tmp_path / "old.keys.json"
    shutil.copy2(KeySlotFile.path_for(path), saved)
    admins_old_key, _signer, _held = _insider(path, ADMIN, PASSWORD)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    remove_user(db, outcome.actor, ADMIN)
    db.close()
    current_keys = tmp_path / "current.keys.json"
    shutil.copy2(KeySlotFile.path_for(path), current_keys)
    # The database was re-encrypted: the key the admin kept decrypts nothing current.
    with pytest.raises(Exception, match="not a database"):
        _sql(path, admins_old_key, "SELECT count(*) FROM patients")
    shutil.copy2(saved, KeySlotFile.path_for(path))
    _refused(path, ADMIN, PASSWORD)
    shutil.copy2(current_keys, KeySlotFile.path_for(path))
    # Even with the users row switched back on by SQL: no slot, and the signed grant says removed.
    key, _signer, _held = _insider(path, PHYSICIAN, PASSWORD)
    _sql(path, key, f"UPDATE users SET is_active = 1 WHERE user_name = '{ADMIN}'")
    assert "Wrong user name or password" in _refused(path, ADMIN, PASSWORD)
    PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)[0].close()


def test_a_reset_password_rekeys_so_an_old_key_file_opens_nothing(closed_practice, tmp_path):
    from ketadesk.storage.security.users import reset_password

    path = closed_practice
    saved = tmp_path / "old.keys.json"
    shutil.copy2(KeySlotFile.path_for(path), saved)
    admins_old_key, _signer, _held = _insider(path, ADMIN, PASSWORD)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    reset_password(db, outcome.actor, ADMIN, ADMIN_PASSWORD)
    generation = KeySlotFile.load(path).generation
    db.close()
    assert generation == 2
    with pytest.raises(Exception, match="not a database"):
        _sql(path, admins_old_key, "SELECT count(*) FROM patients")
    current_keys = tmp_path / "current.keys.json"
    shutil.copy2(KeySlotFile.path_for(path), current_keys)
    shutil.copy2(saved, KeySlotFile.path_for(path))
    _refused(path, ADMIN, PASSWORD)
    shutil.copy2(current_keys, KeySlotFile.path_for(path))
    # The admin's new password opens the rotated database; their old events still verify.
    _log_in_and_out(path, ADMIN, ADMIN_PASSWORD, views=1)
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        assert db.verify_audit_trail().is_intact
    finally:
        db.close()


def test_the_recovery_key_opens_a_rotated_database_though_rotation_never_asked_for_it(
    tmp_path,
) -> None:
    path = tmp_path / "practice.db"
    db, physician, recovery_key = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Rowan Quill", password=PASSWORD
    )
    add_user(db, physician, user_name=ADMIN, full_name="Sam", role=Role.ADMIN,
             password=PASSWORD)
    remove_user(db, physician, ADMIN)
    db.close()
    slots = KeySlotFile.load(path)
    assert slots.generation == 2
    key = slots.unwrap_with_recovery_key(recovery_key)
    PracticeDatabase.open_with_key(path, key, slots).close()


def test_users_added_later_sign_their_own_events(closed_practice) -> None:
    db, outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    add_user(db, outcome.actor, user_name="drnew", full_name="Dr. New", role=Role.PHYSICIAN,
             password=ADMIN_PASSWORD)
    db.close()
    _log_in_and_out(closed_practice, "drnew", ADMIN_PASSWORD, views=1)
    db, _outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    try:
        report = db.audit_signatures()
        assert db.verify_audit_trail().is_intact
    finally:
        db.close()
    assert report.signed_by["drnew"] == 3  # login, view, plan export
    assert public_key_of(new_private_key())  # the helper the tests use works on its own


def test_key_file_content_holds_no_private_key_in_the_clear(closed_practice) -> None:
    _key, signer, _held = _insider(closed_practice, PHYSICIAN, PASSWORD)
    text = KeySlotFile.path_for(closed_practice).read_text()
    assert base64.b64encode(signer.private_raw).decode() not in text
    assert signer.private_raw.hex() not in text
    assert json.loads(text)["slots"]


def test_a_practice_from_before_signing_keys_enrols_at_log_in(closed_practice) -> None:
    """Slots holding only the database key and a schema without the signing tables, as a
    practice created before this change: the first manager to log in becomes the signed root
    and grants everyone; each other user's key is made at their next log-in and granted by
    the manager at theirs. Nothing is refused on the way and the trail verifies afterwards."""
    from alembic import command

    from ketadesk.storage.security.engine import create_keyed_engine
    from ketadesk.storage.security.migrate import alembic_config

    path = closed_practice
    old = KeySlotFile.load(path)
    key = old.unwrap_for_user(PHYSICIAN, PASSWORD)
    legacy = KeySlotFile(database_id=old.database_id, audit_anchor=old.audit_anchor)
    legacy.add_user_slot(key, PHYSICIAN, PASSWORD)
    legacy.add_user_slot(key, ADMIN, PASSWORD)
    legacy.add_recovery_slot(key)
    legacy.save(path)
    engine = create_keyed_engine(path, key)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "aa0a25ef2068")
    engine.dispose()
    _sql(path, key, "DELETE FROM practice_meta WHERE key IN ('trust_root', "
         "'practice_signing_key')")

    _log_in_and_out(path, ADMIN, PASSWORD, views=1)  # before enrolment: unsigned, allowed
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)  # enrols as the root
    assert db.signer() is not None and outcome.actor.can_manage_users
    db.close()
    _log_in_and_out(path, ADMIN, PASSWORD, views=1)  # makes and proposes the admin's key
    _log_in_and_out(path, PHYSICIAN, PASSWORD)  # grants it
    _log_in_and_out(path, ADMIN, PASSWORD)
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        verdict = db.verify_audit_trail()
        report = db.audit_signatures()
        with db.session() as session:
            from sqlalchemy import select

            from ketadesk.models.audit import AuditEvent

            actions = list(session.execute(select(AuditEvent.action)).scalars())
    finally:
        db.close()
    assert verdict.is_intact, verdict.describe()
    assert report.unsigned_before_signing > 0
    assert report.signed_by[ADMIN] >= 4
    assert audit_actions.SIGNING_KEYS_ENROLLED in actions
    assert audit_actions.SIGNING_KEY_GRANTED in actions
    # Every slot now pins the root and holds its owner's key.
    for user_name in (PHYSICIAN, ADMIN):
        _slot, held = KeySlotFile.load(path).open_user_slot(user_name, PASSWORD)
        assert held.signing_key is not None and held.trust_root is not None


def _restore(path: Path, backup: Path, user_name: str, *extra: str):
    return run_ketadesk("--db", str(path), "restore", str(backup), "--as", user_name,
                        "--password-stdin", *extra, stdin=PASSWORD + "\n")


def _backup(path: Path, out: Path) -> None:
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        db.backup_to(out)
    finally:
        db.close()


def test_a_removed_admin_cannot_return_by_restoring_an_old_backup(closed_practice, tmp_path):
    path = closed_practice
    old_backup = tmp_path / "backups" / "old.db"
    _backup(path, old_backup)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    remove_user(db, outcome.actor, ADMIN)
    db.close()
    result = _restore(path, old_backup, ADMIN, "--yes")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Wrong user name or password" in result.stderr
    _refused(path, ADMIN, PASSWORD)  # still removed: nothing was restored


def test_restore_needs_manage_users_in_the_current_database(closed_practice, tmp_path):
    backup = tmp_path / "backups" / "b.db"
    _backup(closed_practice, backup)
    result = _restore(closed_practice, backup, ADMIN, "--yes")
    assert result.returncode != 0
    assert "manage users" in result.stderr
    assert "Traceback" not in result.stderr


def test_restore_shows_what_will_be_lost_and_asks(closed_practice, tmp_path):
    from sqlalchemy import func, select

    from ketadesk.models.audit import AuditEvent
    from ketadesk.models.patients import Patient
    from ketadesk.storage.demo.demo_data import populate_demo_patients

    path = closed_practice
    backup = tmp_path / "backups" / "b.db"
    _backup(path, backup)
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        populate_demo_patients(session, 3, entered_by=PHYSICIAN)
    db.close()

    asked = _restore(path, backup, PHYSICIAN)
    assert asked.returncode != 0
    assert "3 patients" in asked.stdout
    assert "Nothing was restored. Add --yes" in asked.stderr
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Patient)).scalar_one() == 3
    db.close()

    done = _restore(path, backup, PHYSICIAN, "--yes")
    assert done.returncode == 0, done.stderr
    assert "3 patients" in done.stdout
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        with db.session() as session:
            assert session.execute(select(func.count()).select_from(Patient)).scalar_one() == 0
            actions = list(session.execute(select(AuditEvent.action)).scalars())
        assert audit_actions.BACKUP_RESTORED in actions
        assert db.verify_audit_trail().is_intact
    finally:
        db.close()


def _with_receipts(path: Path, folder: Path) -> None:
    from ketadesk.storage.practice.settings_store import set_setting

    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        set_setting(session, outcome.actor, "audit_receipt_folder", str(folder))
    db.close()


def _files(path: Path) -> list[Path]:
    return [p for p in (path, KeySlotFile.path_for(path), Path(f"{path}-wal"),
                        Path(f"{path}-shm")) if p.exists()]


def test_a_database_rolled_back_behind_the_audit_receipt_is_named(closed_practice, tmp_path):
    path = closed_practice
    receipts = tmp_path / "backup-drive"
    _with_receipts(path, receipts)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for file in _files(path):
        shutil.copy2(file, earlier / file.name)
    _log_in_and_out(path, ADMIN, PASSWORD, views=3)  # the receipt moves forward
    receipt = json.loads(next(receipts.glob("*.audit-receipt.json")).read_text())
    assert receipt["signed_by"] == ADMIN and receipt["signature"]

    # The insider copies the earlier database and key file back (no key needed).
    for file in _files(path):
        file.unlink()
    for file in earlier.iterdir():
        shutil.copy2(file, path.parent / file.name)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    db.close()
    assert not outcome.audit.is_intact
    assert "rolled back to an earlier copy" in outcome.audit.describe()
    result = run_ketadesk("--db", str(path), "verify-audit", "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert f"signed by {ADMIN} at" in result.stderr


def test_each_backup_carries_a_signed_checkpoint(closed_practice, tmp_path):
    from ketadesk.storage.security.audit_receipts import read_checkpoint
    from ketadesk.storage.security.database import checkpoint_path_for_backup
    from ketadesk.storage.security.grants import check_grants

    backup = tmp_path / "backups" / "b.db"
    db, _outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    try:
        db.backup_to(backup)
        checkpoint = read_checkpoint(checkpoint_path_for_backup(backup))
        assert checkpoint is not None and checkpoint.signed_by == PHYSICIAN
        with db.session() as session:
            grants = check_grants(session, db.database_id, db.trust_root)
        assert checkpoint.is_signed_by_granted_key(grants)
    finally:
        db.close()
    restored, _outcome = PracticeDatabase.unlock(backup, PHYSICIAN, PASSWORD)
    try:
        with restored.session() as session:
            from ketadesk.storage.security.audit_receipts import rollback_problem

            assert rollback_problem(session, checkpoint, "the backup") is None
    finally:
        restored.close()


# --- The recovery key: an insider with the key file but not the recovery key gains nothing ---


def _file_hashes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


def test_an_insider_without_the_recovery_key_cannot_recover_anyone(closed_practice) -> None:
    from ketadesk.storage.security.keyslots import new_recovery_key
    from ketadesk.storage.security.recovery import recover_with_key

    before = _file_hashes(closed_practice)
    for guess in (new_recovery_key(), new_recovery_key(), "A" * 32):
        for user in (PHYSICIAN, ADMIN):
            with pytest.raises(UserFacingError, match="recovery key does not open"):
                recover_with_key(closed_practice, guess, user, "violet lantern orchard")
    assert _file_hashes(closed_practice) == before
    _log_in_and_out(closed_practice, PHYSICIAN, PASSWORD)


def test_a_recovery_slot_of_the_insiders_own_making_vouches_for_nothing(closed_practice) -> None:
    """The insider holds the database key, so they can wrap it under a recovery key of their
    own and put that slot in the key file; the recovery grant, signed by the first
    physician's key, still names the real recovery key's signing key: refused, unchanged."""
    from ketadesk.storage.security.recovery import recover_with_key

    key, _signer, held = _insider(closed_practice, ADMIN, PASSWORD)
    slots = KeySlotFile.load(closed_practice)
    own_key = slots.add_recovery_slot(SlotSecrets(key, None, held.trust_root))
    slots.save(closed_practice)
    before = _file_hashes(closed_practice)
    with pytest.raises(UserFacingError, match="cannot vouch for a new signing key"):
        recover_with_key(closed_practice, own_key, PHYSICIAN, "violet lantern orchard")
    assert _file_hashes(closed_practice) == before


def test_a_forged_recovery_grant_gives_the_insider_nothing(closed_practice) -> None:
    """The insider replaces the recovery key's grant with one for a key of their own, then
    signs themselves the right to manage users with it: the recovery grant counts only when
    the first physician's pinned key signed it, so their own grant is refused at log-in and
    an event they sign as the recovery key is named by verify-audit."""
    key, _signer, _held = _insider(closed_practice, ADMIN, PASSWORD)
    database_id = KeySlotFile.load(closed_practice).database_id
    forged = Signer("recovery key", new_private_key())

    def grant(user: str, role: str, manages: bool, public: str, by: str) -> str:
        return forged.sign(grant_message(
            database_id, user_name=user, role=role, can_manage_users=manages, is_active=True,
            public_key=public, retired_public_keys="", granted_by=by,
        ))

    admin_public = _insider(closed_practice, ADMIN, PASSWORD)[1].public_key
    _sql(
        closed_practice, key,
        f"UPDATE user_grants SET public_key = '{forged.public_key}', signature = "
        f"'{grant('recovery key', 'recovery', True, forged.public_key, PHYSICIAN)}' "
        "WHERE user_name = 'recovery key'",
        f"UPDATE user_grants SET can_manage_users = 1, granted_by = 'recovery key', "
        f"signature = '{grant(ADMIN, 'admin', True, admin_public, 'recovery key')}' "
        f"WHERE user_name = '{ADMIN}'",
    )
    assert "not signed by a user who manages users" in _refused(
        closed_practice, ADMIN, PASSWORD
    )
    from ketadesk.storage.security.audit_signatures import SIGNER_KEY

    opened = PracticeDatabase.open_with_key(
        closed_practice, key, KeySlotFile.load(closed_practice)
    )
    with opened.session() as session:
        session.info[SIGNER_KEY] = forged
        seq = record_event(session, ("recovery key", "recovery"),
                           audit_actions.RECOVERY_KEY_USED, detail=f"user {ADMIN}").seq
    opened.close()
    db, outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    try:
        assert outcome.actor.can_manage_users
        users = {u.user_name: u for u in list_users(db)}
        assert not users[ADMIN].can_manage_users and users[ADMIN].is_row_unsigned
        problems = dict(db.audit_signatures().problems)
        assert "signed by recovery key, who holds no key granted" in problems[seq]
    finally:
        db.close()
