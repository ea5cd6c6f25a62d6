"""Per-user signing keys on a practice server: each user's key is kept there wrapped by their
password, readable by that user's role only; events and physicians' content signatures are
signed at the workstation and checked by ``verify-audit`` as on a practice file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from sqlalchemy import select

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.models.audit import AuditEvent
from ketadesk.models.server_keys import ServerSigningKey
from ketadesk.storage.server.server_engine import ServerAddress
from ketadesk.storage.server.server_practice import ServerPractice
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD
from tests.server_practice import owner_connection, psql_connection
from tests.unit.signed_protocol_patients import patient_with_signed_protocol


@pytest.fixture
def server_copy(practice_server, server_template) -> Iterator[ServerAddress]:
    template, dropper = server_template
    address = copy_of(practice_server, template)
    try:
        yield address
    finally:
        dropper.drop_later(address)


def _log_in(cluster, address: ServerAddress, user: str, password: str = PASSWORD):
    return ServerPractice.log_in(address, cluster.ca_certificate, user, password)


def test_events_and_a_signed_protocol_are_signed_and_verify(practice_server, server_copy):
    physician = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        with physician.session() as session:
            patient_with_signed_protocol(session, physician.actor, date(2026, 3, 2))
        verdict = physician.verify_audit_trail()
        report = physician.audit_signatures()
        contents = physician.content_signatures()
    finally:
        physician.close()
    assert verdict.is_intact, verdict.describe()
    assert report.is_valid, report.describe()
    assert report.signed_by[SERVER_PHYSICIAN] >= 5
    # server init (practice, physician, recovery key), written before anyone's key
    assert report.unsigned_before_signing == 3
    kinds = {(c.subject_kind, c.signed_by, c.is_valid) for c in contents}
    assert ("protocol_version", SERVER_PHYSICIAN, True) in kinds
    assert ("interaction_review", SERVER_PHYSICIAN, True) in kinds


def test_each_role_reads_only_its_own_wrapped_key_and_every_public_key(
    practice_server, server_copy
):
    _log_in(practice_server, server_copy, SERVER_ADMIN).close()  # the admin's key is made
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        own = admin.execute("SELECT user_name, wrapped_key FROM server_signing_keys").fetchall()
        public = admin.execute("SELECT user_name FROM server_public_keys").fetchall()
    assert [row[0] for row in own] == [SERVER_ADMIN]
    # The recovery key's public half too, listed at server init.
    assert {row[0] for row in public} == {SERVER_PHYSICIAN, SERVER_ADMIN, "recovery key"}
    with psql_connection(practice_server, server_copy, SERVER_PHYSICIAN, PASSWORD) as physician:
        own = physician.execute("SELECT user_name FROM server_signing_keys").fetchall()
    assert own == [(SERVER_PHYSICIAN,)]


FORBIDDEN_KEY_WRITES = [
    "UPDATE server_signing_keys SET wrapped_key = 'x'",
    "DELETE FROM server_signing_keys",
    "INSERT INTO server_signing_keys VALUES ('drquill.pg', 'k', 'w', 's', '{}', now())",
    "INSERT INTO server_public_keys (user_name, public_key, registered_at) "
    "VALUES ('drquill.pg', 'forged', now())",
    "UPDATE server_public_keys SET user_name = 'frontdesk.pg'",
    "DELETE FROM server_public_keys",
]


@pytest.mark.parametrize("statement", FORBIDDEN_KEY_WRITES)
def test_an_admin_with_psql_cannot_touch_anyones_keys(practice_server, server_copy, statement):
    with (
        psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        admin.execute(statement)


def test_nobody_changes_or_removes_a_public_key_not_even_the_owner(practice_server, server_copy):
    with owner_connection(practice_server, server_copy.database) as owner:
        for statement in ("UPDATE server_public_keys SET public_key = 'x'",
                          "DELETE FROM server_public_keys", "TRUNCATE server_public_keys"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                owner.execute(statement)


def test_a_key_is_stored_only_in_the_callers_own_name(practice_server, server_copy):
    physician = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        physician_key = physician.signer().public_key
    finally:
        physician.close()
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        # Claiming the physician's public key as the admin's own is refused...
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="another user"):
            admin.execute(
                "SELECT ketadesk_store_signing_key(%s, 'w', 's', '{}')", (physician_key,)
            )
        # ...and whatever the admin stores is theirs, never the physician's.
        admin.execute("SELECT ketadesk_store_signing_key('bm90IGEga2V5', 'w', 's', '{}')")
        owners = admin.execute(
            "SELECT user_name FROM server_public_keys WHERE public_key = 'bm90IGEga2V5'"
        ).fetchall()
    assert owners == [(SERVER_ADMIN,)]


def test_forged_events_in_a_physicians_name_are_named_by_verify_audit(
    practice_server, server_copy
):
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        # The chain is the database's, so it stays intact; only the signature can tell.
        admin.execute(
            "INSERT INTO audit_events (user_name, role, action, detail, signed_by, signature) "
            "VALUES (%s, 'physician', 'protocol_signed', '', %s, %s)",
            (SERVER_PHYSICIAN, SERVER_PHYSICIAN, "A" * 88),
        )
        admin.execute(
            "INSERT INTO audit_events (user_name, role, action, detail) "
            "VALUES (%s, 'physician', 'protocol_signed', '')",
            (SERVER_PHYSICIAN,),
        )
    physician = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        verdict = physician.verify_audit_trail()
        problems = dict(physician.audit_signatures().problems)
    finally:
        physician.close()
    assert not verdict.is_intact
    assert "does not verify against drquill.pg's granted key" in verdict.problem
    assert list(problems.values()) == [
        "its signature does not verify against drquill.pg's granted key (the event or an "
        "earlier one was rewritten)",
        "it is not signed (written outside KetaDesk)",
    ]


def test_the_same_key_opens_at_each_log_in_and_a_reset_password_gets_a_new_one(
    practice_server, server_copy
):
    name = f"wren{uuid.uuid4().hex[:6]}.pg"
    manager = _log_in(practice_server, server_copy, SERVER_PHYSICIAN)
    try:
        manager.add_user(name, "Dr. Ada Wren", Role.PHYSICIAN, "wren feather lantern")
        first = _log_in(practice_server, server_copy, name, "wren feather lantern")
        first_key = first.signer().public_key
        first.close()
        again = _log_in(practice_server, server_copy, name, "wren feather lantern")
        assert again.signer().public_key == first_key  # unwrapped, not made again
        with again.session() as session:
            stored = session.execute(select(ServerSigningKey)).scalars().all()
        again.close()
        assert [row.user_name for row in stored] == [name]
        assert first_key not in stored[0].wrapped_key
        # A manager's reset cannot wrap the key again (only its user can open it): the server
        # drops it, the next log-in makes a new one, and the old one still checks old events.
        with pytest.raises(UserFacingError, match="own password with your current one"):
            manager.reset_password(SERVER_PHYSICIAN, "owl sparrow kestrel")
        manager.reset_password(name, "owl sparrow kestrel")
        with owner_connection(practice_server, server_copy.database) as owner:
            assert owner.execute(
                "SELECT count(*) FROM server_signing_keys WHERE user_name = %s", (name,)
            ).fetchone() == (0,)
        with pytest.raises(UserFacingError, match=r"^Wrong user name or password\.$"):
            _log_in(practice_server, server_copy, name, "wren feather lantern")
        after = _log_in(practice_server, server_copy, name, "owl sparrow kestrel")
        try:
            assert after.signer().public_key != first_key
            verdict = after.verify_audit_trail()
            report = after.audit_signatures()
            with after.session() as session:
                granted = session.execute(
                    select(AuditEvent.user_name).where(AuditEvent.action == "signing_key_granted")
                ).scalars().all()
        finally:
            after.close()
        assert verdict.is_intact, verdict.describe()
        assert report.signed_by[name] == 5  # key, log-in, log-in, new key, log-in
        assert granted.count(name) == 2
        with manager.read_session() as session:
            reset = session.execute(
                select(AuditEvent.user_name, AuditEvent.signed_by).where(
                    AuditEvent.action == "password_reset", AuditEvent.detail == f"user {name}"
                )
            ).all()
        assert reset == [(SERVER_PHYSICIAN, SERVER_PHYSICIAN)]
    finally:
        manager.close()
        with owner_connection(practice_server) as admin:  # roles belong to the whole cluster
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_only_the_user_or_a_manager_sets_a_password(practice_server, server_copy):
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        verifier = admin.pgconn.encrypt_password(
            b"owl sparrow kestrel", SERVER_PHYSICIAN.encode(), b"scram-sha-256"
        ).decode()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="manages users"):
            admin.execute(
                "SELECT ketadesk_set_password(%s, %s)", (SERVER_PHYSICIAN, verifier)
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute(f"ALTER ROLE \"{SERVER_PHYSICIAN}\" PASSWORD '{verifier}'")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="SCRAM"):
            admin.execute(
                "SELECT ketadesk_set_password(%s, 'owl sparrow kestrel')", (SERVER_ADMIN,)
            )
    # The physician's password is unchanged.
    _log_in(practice_server, server_copy, SERVER_PHYSICIAN).close()
