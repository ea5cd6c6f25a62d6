"""The recovery key of a practice server, on the real test server: made at creation, it gives
a user who manages users a new password (and nothing else), the event it signs verifies, a
forged one is named, and a user manager can replace it (the old one stops working)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.keyslots import WRONG_CREDENTIALS
from ketadesk.storage.security.signing_keys import RECOVERY_SIGNER
from ketadesk.storage.server.recovery_role import recovery_role_name
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.storage.server.server_recovery import (
    WRONG_RECOVERY_KEY,
    normalised_recovery_key,
    recover_user_manager,
)
from tests.server_practice import drop_database, new_database, psql_connection

MANAGER, ADMIN, GONE = "drrecover", "deskrecover", "leftrecover"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a fresh start at last"


@pytest.fixture
def practice(practice_server):
    """A new practice: its first physician (who manages users), an admin who does not, a
    removed physician; yields the cluster, the address and the printed recovery key."""
    address = new_database(practice_server)
    ca = practice_server.ca_certificate
    try:
        made = ServerPractice.create(
            address, ca, owner_password=practice_server.owner_password(), user_name=MANAGER,
            full_name="Dr Rea Cover", password=PASSWORD,
        )
        manager = ServerPractice.log_in(address, ca, MANAGER, PASSWORD)
        try:
            manager.add_user(ADMIN, "Desk Recover", Role.ADMIN, PASSWORD)
            manager.add_user(GONE, "Dr Left", Role.PHYSICIAN, PASSWORD, manage_users=True)
            manager.remove_user(GONE)
        finally:
            manager.close()
        yield practice_server, address, made.recovery_key
    finally:
        drop_database(practice_server, address)


def _recover(practice, user: str, key: str | None = None, password: str = NEW_PASSWORD) -> None:
    cluster, address, recovery_key = practice
    recover_user_manager(
        address, cluster.ca_certificate, key or recovery_key, user, password
    )


def test_the_key_is_shown_in_the_files_layout_and_accepted_in_any_case_without_dashes(practice):
    key = practice[2]
    groups = key.split("-")
    # upper-case letters and digits (a group may be all digits: "8725".isupper() is False)
    assert len(groups) == 8 and all(len(g) == 4 and g.isalnum() and g == g.upper() for g in groups)
    assert normalised_recovery_key(key.lower().replace("-", " ")) == key.replace("-", "")


def test_the_key_gives_the_manager_a_new_password_a_new_signing_key_and_a_clean_audit(practice):
    cluster, address, key = practice
    _recover(practice, MANAGER, key.lower())
    with pytest.raises(UserFacingError, match=WRONG_CREDENTIALS):
        ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, PASSWORD)
    manager = ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, NEW_PASSWORD)
    try:
        verdict = manager.verify_audit_trail()
        assert verdict.is_intact, verdict.describe()
        report = manager.audit_signatures()
        assert report.signed_by[RECOVERY_SIGNER] == 1
        assert report.problems == ()
        with manager.read_session() as session:
            events = session.execute(
                select(AuditEvent.user_name, AuditEvent.action, AuditEvent.detail)
                .where(AuditEvent.action.in_(
                    [audit_actions.RECOVERY_KEY_USED, audit_actions.SIGNING_KEY_GRANTED]
                ))
                .order_by(AuditEvent.seq)
            ).all()
        # The first log-in's key, the recovery, then the new key made at the next log-in.
        assert [(u, a) for u, a, _ in events][-2:] == [
            (RECOVERY_SIGNER, audit_actions.RECOVERY_KEY_USED),
            (MANAGER, audit_actions.SIGNING_KEY_GRANTED),
        ]
        assert events[-2][2] == f"user {MANAGER}: password set with the recovery key"
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("user", "why"),
    [
        (ADMIN, f"There is no active user called {ADMIN} who manages users"),
        (GONE, f"There is no active user called {GONE} who manages users"),
        ("nobodyhere", "There is no active user called nobodyhere who manages users"),
    ],
)
def test_only_an_active_user_who_manages_users_is_reset(practice, user, why):
    with pytest.raises(UserFacingError, match=why) as refused:
        _recover(practice, user)
    assert refused.value.message.endswith("Nothing was changed.")
    cluster, address, _ = practice
    if user == ADMIN:  # their own password still works
        ServerPractice.log_in(address, cluster.ca_certificate, ADMIN, PASSWORD).close()


def test_a_wrong_or_malformed_key_is_refused_in_words(practice):
    wrong = "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ-2345-6789"
    with pytest.raises(UserFacingError) as refused:
        _recover(practice, MANAGER, wrong)
    assert refused.value.message == WRONG_RECOVERY_KEY
    with pytest.raises(UserFacingError, match="That is not a recovery key"):
        _recover(practice, MANAGER, "ABCD-EFGH")
    with pytest.raises(UserFacingError, match="password"):
        _recover(practice, MANAGER, password="short")
    cluster, address, _ = practice
    ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, PASSWORD).close()


def test_a_manager_replaces_the_key_and_the_old_one_stops_working(practice):
    cluster, address, old_key = practice
    admin = ServerPractice.log_in(address, cluster.ca_certificate, ADMIN, PASSWORD)
    try:
        with pytest.raises(UserFacingError):
            admin.replace_recovery_key()
    finally:
        admin.close()
    manager = ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, PASSWORD)
    try:
        new_key = manager.replace_recovery_key()
    finally:
        manager.close()
    assert new_key != old_key
    with pytest.raises(UserFacingError) as refused:
        _recover(practice, MANAGER, old_key)
    assert refused.value.message == WRONG_RECOVERY_KEY
    _recover(practice, MANAGER, new_key)
    manager = ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, NEW_PASSWORD)
    try:
        verdict = manager.verify_audit_trail()
        assert verdict.is_intact, verdict.describe()
        with manager.read_session() as session:
            set_events = session.execute(
                select(AuditEvent.user_name, AuditEvent.detail)
                .where(AuditEvent.action == audit_actions.RECOVERY_KEY_SET)
                .order_by(AuditEvent.seq)
            ).all()
        assert set_events == [
            (MANAGER, "recovery key made"),
            (MANAGER, "new recovery key; the earlier one no longer works"),
        ]
    finally:
        manager.close()


def test_a_recovery_event_forged_by_an_insider_is_named_by_verify_audit(practice):
    cluster, address, _ = practice
    with psql_connection(cluster, address, ADMIN, PASSWORD) as raw:
        raw.execute(
            "INSERT INTO audit_events (user_name, role, action, detail, signed_by, signature) "
            "VALUES (%s, 'recovery', %s, 'user drrecover: password set with the recovery key',"
            " %s, %s)",
            (RECOVERY_SIGNER, audit_actions.RECOVERY_KEY_USED, RECOVERY_SIGNER, "A" * 86 + "=="),
        )
    manager = ServerPractice.log_in(address, cluster.ca_certificate, MANAGER, PASSWORD)
    try:
        verdict = manager.verify_audit_trail()
    finally:
        manager.close()
    assert not verdict.is_intact
    assert f"signature does not verify against {RECOVERY_SIGNER}'s granted key" in (
        verdict.describe()
    )


def test_the_recovery_role_is_this_databases_own(practice):
    cluster, address, key = practice
    role = recovery_role_name(address.database)
    assert role == f"ketadesk_recovery_{address.database}"
    assert recovery_role_name("x" * 60).startswith("ketadesk_recovery_")
    assert len(recovery_role_name("x" * 60)) <= 63
    with psql_connection(cluster, address, role, normalised_recovery_key(key)) as raw:
        assert raw.execute("SELECT session_user").fetchone() == (role,)
