"""A practice on the PostgreSQL server: created, logged in to as a physician and as an admin
through the storage API, services running on it, and the database itself refusing what an
admin's role may not write, even from a raw connection with their own password (as psql)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest
from sqlalchemy import select, text, update

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.storage.patients.patients import create_patient
from ketadesk.storage.security.audit_log import verify_audit
from ketadesk.storage.server.certificates import new_practice_ca
from ketadesk.storage.server.practice_grants import ALL_CLASSIFIED_TABLES
from ketadesk.storage.server.server_practice import ServerPractice
from tests.server_practice import drop_database, new_database, owner_connection, psql_connection
from tests.unit.signed_protocol_patients import patient_with_signed_protocol

PHYSICIAN, ADMIN = "drquill", "frontdesk"
PHYSICIAN_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "staple gun lighthouse"


@pytest.fixture(scope="module")
def server_practice(practice_server):
    """One practice for the module: its physician (who signed a protocol) and an admin."""
    address = new_database(practice_server)
    ca = practice_server.ca_certificate
    try:
        ServerPractice.create(
            address,
            ca,
            owner_password=practice_server.owner_password(),
            user_name=PHYSICIAN,
            full_name="Dr Ada Quill",
            password=PHYSICIAN_PASSWORD,
        )
        physician = ServerPractice.log_in(address, ca, PHYSICIAN, PHYSICIAN_PASSWORD)
        physician.add_user(ADMIN, "Frank Desk", Role.ADMIN, ADMIN_PASSWORD)
        with physician.session() as session:
            patient_with_signed_protocol(session, physician.actor, date(2026, 3, 2))
        physician.close()
        yield practice_server, address
    finally:
        drop_database(practice_server, address)


def _log_in(server_practice, user: str, password: str) -> ServerPractice:
    cluster, address = server_practice
    return ServerPractice.log_in(address, cluster.ca_certificate, user, password)


def test_the_physician_and_the_admin_log_in_with_their_own_passwords(server_practice):
    physician = _log_in(server_practice, PHYSICIAN, PHYSICIAN_PASSWORD)
    admin = _log_in(server_practice, ADMIN, ADMIN_PASSWORD)
    try:
        assert (physician.actor.role, physician.actor.can_manage_users) == (Role.PHYSICIAN, True)
        assert (admin.actor.role, admin.actor.can_manage_users) == (Role.ADMIN, False)
        assert admin.actor.full_name == "Frank Desk"
        with admin.session() as session:
            events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
            actions = [(e.user_name, e.action) for e in events]
            assert verify_audit(session).is_intact
            signed = [(e.action, e.signed_by) for e in events if e.signature]
        assert actions[:6] == [
            (PHYSICIAN, "database_created"),
            (PHYSICIAN, "user_added"),
            (PHYSICIAN, "recovery_key_set"),
            (PHYSICIAN, "signing_key_granted"),  # made at the first log-in, kept on the server
            (PHYSICIAN, "login"),
            (PHYSICIAN, "user_added"),
        ]
        # Signed from the first log-in on, each by its own user (server init writes as the
        # server's owner, before anyone holds a key).
        assert len(signed) == len(events) - 3
        assert signed[:2] == [("signing_key_granted", PHYSICIAN), ("login", PHYSICIAN)]
        assert signed[-1] == ("login", ADMIN)
        assert actions[-3:] == [
            (PHYSICIAN, "login"),
            (ADMIN, "signing_key_granted"),  # the admin's first log-in
            (ADMIN, "login"),
        ]
    finally:
        physician.close()
        admin.close()


def test_each_user_is_a_login_role_in_the_group_of_their_role(server_practice):
    cluster, address = server_practice
    with owner_connection(cluster, address.database) as owner:
        rows = owner.execute(
            "SELECT r.rolname, g.rolname FROM pg_auth_members m "
            "JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "
            "WHERE r.rolname IN (%s, %s) ORDER BY 1, 2",
            (PHYSICIAN, ADMIN),
        ).fetchall()
        hashes = owner.execute(
            "SELECT rolname, left(rolpassword, 14), rolcanlogin, rolsuper, rolcreaterole "
            "FROM pg_authid WHERE rolname IN (%s, %s) ORDER BY 1",
            (PHYSICIAN, ADMIN),
        ).fetchall()
    assert rows == [
        (PHYSICIAN, "ketadesk_physician"),
        (PHYSICIAN, "ketadesk_user_manager"),
        (ADMIN, "ketadesk_admin"),
    ]
    assert hashes == [
        (PHYSICIAN, "SCRAM-SHA-256$", True, False, False),
        (ADMIN, "SCRAM-SHA-256$", True, False, False),
    ]


@pytest.mark.parametrize(
    ("user", "password"),
    [(ADMIN, "wrong password here"), (PHYSICIAN, ADMIN_PASSWORD), ("nobody", PHYSICIAN_PASSWORD)],
)
def test_a_wrong_password_or_unknown_user_is_refused_in_words(server_practice, user, password):
    with pytest.raises(UserFacingError, match=r"^Wrong user name or password\.$"):
        _log_in(server_practice, user, password)


def test_a_server_the_practice_ca_did_not_certify_is_refused_in_words(server_practice, tmp_path):
    _cluster, address = server_practice
    stranger = tmp_path / "other-ca.crt"
    stranger.write_bytes(new_practice_ca("Another practice").certificate_pem)
    with pytest.raises(UserFacingError, match="could not be verified with the practice"):
        ServerPractice.log_in(address, stranger, PHYSICIAN, PHYSICIAN_PASSWORD)
    with pytest.raises(UserFacingError, match=r"practice certificate .* is missing"):
        ServerPractice.log_in(address, tmp_path / "none.crt", PHYSICIAN, PHYSICIAN_PASSWORD)


def test_an_admin_records_a_patient_through_the_services_on_the_server(server_practice):
    admin = _log_in(server_practice, ADMIN, ADMIN_PASSWORD)
    try:
        draft = PatientDemographics(
            first_name="Mina",
            last_name="Okafor",
            dob=date(1979, 6, 1),
            sex="female",
            state="NJ",
            county="Bergen",
        )
        with admin.session() as session:
            record = create_patient(session, admin.actor, draft, today=datetime.now(UTC).date())
        assert record.id > 0
        with admin.session() as session:
            assert (
                session.execute(select(AuditEvent.action).order_by(AuditEvent.seq.desc()))
                .scalars()
                .first()
                == "patient_created"
            )
    finally:
        admin.close()


def test_only_a_user_manager_adds_users(server_practice):
    admin = _log_in(server_practice, ADMIN, ADMIN_PASSWORD)
    physician = _log_in(server_practice, PHYSICIAN, PHYSICIAN_PASSWORD)
    try:
        with pytest.raises(UserFacingError, match="Only users who manage users may add users"):
            admin.add_user("sneaky", "Sneaky Pete", Role.PHYSICIAN, "sneaky pete lighthouse 9")
        with pytest.raises(UserFacingError, match="kept for the database server itself"):
            physician.add_user("pg_monitor2", "Mon Itor", Role.ADMIN, "monitor lighthouse 99")
    finally:
        admin.close()
        physician.close()


def _groups_of(server_practice, user: str) -> list[str]:
    cluster, address = server_practice
    with owner_connection(cluster, address.database) as owner:
        rows = owner.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s) ORDER BY 1",
            (user,),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_manager_re_roles_and_removes_a_user_on_the_server(server_practice):
    physician = _log_in(server_practice, PHYSICIAN, PHYSICIAN_PASSWORD)
    try:
        physician.add_user("temp.desk", "Tem Porary", Role.ADMIN, "temporary desk lighthouse")
        physician.set_role("temp.desk", Role.PHYSICIAN, manage_users=True)
        assert _groups_of(server_practice, "temp.desk") == [
            "ketadesk_physician",
            "ketadesk_user_manager",
        ]
        promoted = _log_in(server_practice, "temp.desk", "temporary desk lighthouse")
        assert (promoted.actor.role, promoted.actor.can_manage_users) == (Role.PHYSICIAN, True)
        promoted.close()
        physician.set_role("temp.desk", Role.ADMIN, manage_users=False)
        assert _groups_of(server_practice, "temp.desk") == ["ketadesk_admin"]

        physician.remove_user("temp.desk")
        assert _groups_of(server_practice, "temp.desk") == []
        with pytest.raises(UserFacingError, match=r"^Wrong user name or password\.$"):
            _log_in(server_practice, "temp.desk", "temporary desk lighthouse")
        with physician.session() as session:
            details = [
                (e.action, e.detail)
                for e in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
                if "temp.desk" in e.detail
            ]
        assert details == [
            ("user_added", "user temp.desk role admin"),
            ("role_changed", "user temp.desk: admin -> physician +manage_users"),
            (
                "signing_key_granted",
                "user temp.desk: new signing key stored on the practice server",
            ),
            ("role_changed", "user temp.desk: physician +manage_users -> admin"),
            ("user_removed", "user temp.desk"),
        ]

        # The server keeps one active manager and refuses a manager removing themselves.
        with pytest.raises(UserFacingError, match="At least one active user must keep the right"):
            physician.set_role(PHYSICIAN, Role.PHYSICIAN, manage_users=False)
        with pytest.raises(UserFacingError, match="You cannot remove yourself"):
            physician.remove_user(PHYSICIAN)
        with pytest.raises(UserFacingError, match="There is no user called nobody"):
            physician.set_role("nobody", Role.ADMIN, manage_users=False)
        assert _groups_of(server_practice, PHYSICIAN) == [
            "ketadesk_physician",
            "ketadesk_user_manager",
        ]
    finally:
        physician.close()


AUDIT_WRITES = [
    "UPDATE audit_events SET detail = 'changed'",
    "DELETE FROM audit_events WHERE seq > 1",
    "TRUNCATE audit_events",
]
# Every other write an admin (or a physician) may not make, enumerated from the grants, is
# tried in tests/reliability/test_server_psql_attacks.py.


@pytest.mark.parametrize("statement", AUDIT_WRITES)
def test_nobody_changes_or_removes_an_audit_event_not_even_the_owner(server_practice, statement):
    cluster, address = server_practice
    with psql_connection(*server_practice, PHYSICIAN, PHYSICIAN_PASSWORD) as physician:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            physician.execute(statement)
    with owner_connection(cluster, address.database) as owner:
        before = owner.execute("SELECT count(*), max(seq) FROM audit_events").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute(statement)
        assert owner.execute("SELECT count(*), max(seq) FROM audit_events").fetchone() == before


def test_the_physician_signed_through_the_services_and_the_admin_cannot_undo_it(server_practice):
    admin = _log_in(server_practice, ADMIN, ADMIN_PASSWORD)
    try:
        with (
            pytest.raises(UserFacingError, match="refused this change: your role may not"),
            admin.session() as session,
        ):
            version = session.execute(select(ProtocolVersion)).scalars().one()
            assert (version.status, version.signed_by) == ("signed", PHYSICIAN)
            version.status = "draft"
            session.flush()
    finally:
        admin.close()
    with psql_connection(*server_practice, ADMIN, ADMIN_PASSWORD) as raw:
        assert raw.execute("SELECT status FROM protocol_versions").fetchone() == ("signed",)


def test_every_table_has_a_grant_rule():
    from ketadesk.models import Base

    assert set(Base.metadata.tables) | {"alembic_version"} == set(ALL_CLASSIFIED_TABLES)
    assert len(ALL_CLASSIFIED_TABLES) == len(set(ALL_CLASSIFIED_TABLES))


def test_a_read_outside_a_transaction_reads_and_may_not_write(server_practice):
    """``read_session(snapshot=False)`` (a search keystroke's: no BEGIN, no ROLLBACK) runs
    SELECTs; anything else is refused before it reaches the server, where it would commit."""
    physician = _log_in(server_practice, PHYSICIAN, PHYSICIAN_PASSWORD)
    try:
        with physician.read_session() as session:
            names = session.execute(select(Patient.last_name).order_by(Patient.id)).all()
        with physician.read_session(snapshot=False) as session:
            assert session.execute(select(Patient.last_name).order_by(Patient.id)).all() == names
        for write in (
            update(Patient).values(last_name="Changed"),
            text("WITH gone AS (DELETE FROM patients RETURNING id) SELECT count(*) FROM gone"),
            select(Patient.id).with_for_update(),
        ):
            with (
                pytest.raises(RuntimeError, match="only reads"),
                physician.read_session(snapshot=False) as session,
            ):
                session.execute(write)
        with physician.read_session() as session:
            assert session.execute(select(Patient.last_name).order_by(Patient.id)).all() == names
    finally:
        physician.close()


def test_a_connection_back_from_a_read_outside_a_transaction_writes_in_one_again(
    server_practice,
):
    """The pool hands the same connection to the next save: it is transactional again, so a
    save that fails half-way leaves nothing."""
    physician = _log_in(server_practice, PHYSICIAN, PHYSICIAN_PASSWORD)
    backend = text("SELECT pg_backend_pid()")
    try:
        physician.engine.dispose()  # the pool starts empty: one connection from here on
        with physician.read_session(snapshot=False) as session:
            reader = session.execute(backend).scalar_one()
            names = session.execute(select(Patient.last_name).order_by(Patient.id)).all()
        with pytest.raises(ZeroDivisionError), physician.session() as session:
            assert session.execute(backend).scalar_one() == reader
            session.execute(update(Patient).values(last_name="Half Saved"))
            session.flush()
            _ = 1 / 0
        with physician.read_session() as session:
            assert session.execute(select(Patient.last_name).order_by(Patient.id)).all() == names
    finally:
        physician.close()
