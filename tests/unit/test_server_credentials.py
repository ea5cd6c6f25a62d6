"""Users' NPI, DEA number and licence states on a practice server: recorded through the
server's own function under the file practice's rule (one's own, or anyone's for a user who
manages users), never without the audit event in the same transaction, even from ``psql``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.users import get_user
from ketadesk.storage.server.server_credentials import set_credentials_on_server
from ketadesk.storage.server.server_engine import ServerAddress
from ketadesk.storage.server.server_practice import ServerPractice
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD

SET = "SELECT ketadesk_set_user_credentials(%s, %s, %s, %s)"


@pytest.fixture
def server_copy(practice_server, server_template) -> Iterator[ServerAddress]:
    template, dropper = server_template
    address = copy_of(practice_server, template)
    try:
        yield address
    finally:
        dropper.drop_later(address)


def _log_in(cluster, address: ServerAddress, user: str) -> ServerPractice:
    return ServerPractice.log_in(address, cluster.ca_certificate, user, PASSWORD)


def _raw(cluster, address: ServerAddress, user: str) -> psycopg.Connection:
    """As ``psql`` would connect, but in explicit transactions (the audit event and the call
    must share one): ``tests.server_practice.psql_connection`` autocommits."""
    return psycopg.connect(
        host=address.host, port=address.port, dbname=address.database, user=user,
        password=PASSWORD, sslmode="verify-full", sslrootcert=str(cluster.ca_certificate),
    )


def _credentials(practice: ServerPractice, user: str) -> tuple[object, ...]:
    info = get_user(practice, user)
    return info.npi, info.dea_number, info.licence_states


def test_a_manager_records_anyones_a_user_their_own_and_nobody_else_s(
    practice_server, server_copy
):
    manager = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        set_credentials_on_server(manager, SERVER_PHYSICIAN, npi="1234567893",
                                  dea_number="aq1234563", licence_states=("FL", "NJ"))
        set_credentials_on_server(manager, SERVER_ADMIN, npi=None, dea_number=None,
                                  licence_states=("FL",))
        with pytest.raises(UserFacingError, match="10 digits"):
            set_credentials_on_server(manager, SERVER_ADMIN, npi="1234567890",
                                      dea_number=None, licence_states=())
        assert _credentials(manager, SERVER_PHYSICIAN) == ("1234567893", "AQ1234563",
                                                           ("FL", "NJ"))
    finally:
        manager.close()
    admin = _log_in(practice_server, server_copy, SERVER_ADMIN)
    try:
        with pytest.raises(UserFacingError, match="Only users who manage users"):
            set_credentials_on_server(admin, SERVER_PHYSICIAN, npi=None, dea_number=None,
                                      licence_states=())
        set_credentials_on_server(admin, SERVER_ADMIN, npi=None, dea_number=None,
                                  licence_states=("NJ",))  # their own, as on a file
        assert _credentials(admin, SERVER_ADMIN) == (None, None, ("NJ",))
        assert _credentials(admin, SERVER_PHYSICIAN)[0] == "1234567893"
        verdict = admin.verify_audit_trail()
        assert verdict.is_intact, verdict.describe()
        with admin.read_session() as s:
            events = s.execute(
                select(AuditEvent.user_name, AuditEvent.detail)
                .where(AuditEvent.action == audit_actions.USER_UPDATED).order_by(AuditEvent.seq)
            ).all()
    finally:
        admin.close()
    assert [tuple(e) for e in events] == [
        (SERVER_PHYSICIAN, f"user {SERVER_PHYSICIAN} credentials"),
        (SERVER_PHYSICIAN, f"user {SERVER_ADMIN} credentials"),
        (SERVER_ADMIN, f"user {SERVER_ADMIN} credentials"),
    ]


def test_psql_callers_meet_the_same_rule_and_need_the_audit_event(
    practice_server, server_copy
):
    event = (
        "INSERT INTO audit_events (user_name, role, action, detail) "
        "VALUES (session_user, 'admin', %s, %s)"
    )
    with _raw(practice_server, server_copy, SERVER_ADMIN) as admin:
        # Another user's, even with an event of its own in the same transaction: refused.
        admin.execute(event, (audit_actions.USER_UPDATED, f"user {SERVER_PHYSICIAN} credentials"))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute(SET, (SERVER_PHYSICIAN, "1234567893", None, ""))
        admin.rollback()
        # Their own without the event: refused; with it, in one transaction: recorded.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit event"):
            admin.execute(SET, (SERVER_ADMIN, None, None, "FL"))
        admin.rollback()
        admin.execute(event, (audit_actions.USER_UPDATED, f"user {SERVER_ADMIN} credentials"))
        admin.execute(SET, (SERVER_ADMIN, None, None, "FL"))
        admin.commit()
    with _raw(practice_server, server_copy, SERVER_PHYSICIAN) as manager:
        for bad in (("12345", None, ""), (None, "A11234563", ""), (None, None, "FL,NY")):
            manager.execute(event, (audit_actions.USER_UPDATED,
                                    f"user {SERVER_ADMIN} credentials"))
            with pytest.raises(psycopg.errors.RaiseException):
                manager.execute(SET, (SERVER_ADMIN, *bad))
            manager.rollback()
        stored = manager.execute(
            "SELECT user_name, npi, dea_number, licence_states FROM users ORDER BY user_name"
        ).fetchall()
    assert stored == [(SERVER_PHYSICIAN, None, None, ""), (SERVER_ADMIN, None, None, "FL")]


def test_licences_and_registrations_follow_the_file_rule_row_by_row(
    practice_server, server_copy
):
    """A physician keeps their own; a user manager (an admin among them) anyone's; a
    physician at ``psql`` cannot write another's, whatever the statement."""
    from datetime import date

    from ketadesk.core.permissions import Role
    from ketadesk.core.prescription_checks import CredentialKind
    from ketadesk.models.compliance import PrescriberCredential
    from ketadesk.storage.compliance.credentials import save_credential
    from tests.server_practice import owner_connection, psql_connection

    # Users of this test's own (login roles and memberships belong to the whole cluster).
    other, keeper = (f"{n}{uuid.uuid4().hex[:6]}.pg" for n in ("ash", "keeper"))
    expires = date(2030, 1, 31)
    licence = {"kind": CredentialKind.STATE_LICENCE, "state": "FL", "expires_on": expires}
    manager = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        manager.add_user(other, "Dr. Ash Vale", Role.PHYSICIAN, "ash vale lantern")
        with manager.session() as s:
            save_credential(s, manager.actor, user_name=SERVER_PHYSICIAN, number="ME1", **licence)
        manager.add_user(keeper, "Kim Keeper", Role.ADMIN, "kim keeper lantern",
                         manage_users=True)
        physician = ServerPractice.log_in(
            server_copy, practice_server.ca_certificate, other, "ash vale lantern"
        )
        try:
            with physician.session() as s:
                save_credential(s, physician.actor, user_name=other, number="ME2", **licence)
            with pytest.raises(UserFacingError), physician.session() as s:
                save_credential(s, physician.actor, user_name=SERVER_PHYSICIAN, number="X",
                                **licence)
        finally:
            physician.close()
        with psql_connection(practice_server, server_copy, other, "ash vale lantern") as raw:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute(
                    "INSERT INTO prescriber_credentials (user_name, kind, state, number, "
                    "expires_on, recorded_by, created_at, updated_at) VALUES (%s, "
                    "'state_licence', 'NJ', 'X', '2031-01-01', %s, now(), now())",
                    (SERVER_PHYSICIAN, other),
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # another's name, own row
                raw.execute("UPDATE prescriber_credentials SET recorded_by = %s "
                            "WHERE user_name = session_user", ("x",))
            for statement in (
                "UPDATE prescriber_credentials SET expires_on = '2040-01-01' "
                "WHERE user_name = %s",
                "DELETE FROM prescriber_credentials WHERE user_name = %s",
                "UPDATE prescriber_credentials SET user_name = %s, recorded_by = session_user",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    raw.execute(statement, (SERVER_PHYSICIAN,))
        admin = ServerPractice.log_in(
            server_copy, practice_server.ca_certificate, keeper, "kim keeper lantern"
        )
        try:  # an admin who manages users: keeps any physician's, in their own name
            with admin.session() as s:
                save_credential(s, admin.actor, user_name=other, number="ME3", **licence)
            with pytest.raises(UserFacingError, match="physicians only"), admin.session() as s:
                save_credential(s, admin.actor, user_name=keeper, number="ME4",
                                **licence)
        finally:
            admin.close()
        with manager.read_session() as s:
            rows = s.execute(
                select(PrescriberCredential.user_name, PrescriberCredential.number,
                       PrescriberCredential.expires_on, PrescriberCredential.recorded_by)
                .order_by(PrescriberCredential.number)
            ).all()
    finally:
        manager.close()
        with owner_connection(practice_server) as owner:
            for name in (other, keeper):
                owner.execute(f'DROP ROLE IF EXISTS "{name}"')
    assert [tuple(r) for r in rows] == [
        (SERVER_PHYSICIAN, "ME1", expires, SERVER_PHYSICIAN),
        (other, "ME2", expires, other),
        (other, "ME3", expires, keeper),
    ]
