"""The audit chain on a practice server is computed and serialised by the database.

Two real connections append events at the same time, without the app's write lock, one through
the app's ``record_event`` (which signs what it computed, so it asks the database for the next
number first) and one with bare INSERTs that leave the numbering and hashing to the database:
the chain verifies with ``verify-audit``'s own code, with no fork and no gap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.audit_chain import event_hash
from ketadesk.core.permissions import Actor, Role
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.server.server_engine import ServerAddress, create_server_engine
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD
from tests.server_practice import psql_connection

EVENTS_EACH = 120


@pytest.fixture
def server_copy(practice_server, server_template) -> Iterator[ServerAddress]:
    template, dropper = server_template
    address = copy_of(practice_server, template)
    try:
        yield address
    finally:
        dropper.drop_later(address)


def _verdict(cluster, address: ServerAddress):
    engine = create_server_engine(address, SERVER_PHYSICIAN, PASSWORD, cluster.ca_certificate)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.row_hash).order_by(
                    AuditEvent.seq
                )
            ).all()
            return verify_audit(session), rows
    finally:
        engine.dispose()


AWKWARD_DETAILS = (
    "plain",
    'quote " backslash \\ slash /',
    "new\nline\ttab\rreturn\x01\x1f\x7f",
    "Zoë Ångström — naïve ✓ 名前 \U0001f600",
    "",
)


def test_the_database_hashes_an_event_exactly_as_verify_audit_does(
    practice_server, server_copy
):
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        for index, detail in enumerate(AWKWARD_DETAILS):
            admin.execute(
                "INSERT INTO audit_events (user_name, role, patient_id, action, detail) "
                "VALUES (%s, 'admin', %s, 'test_event', %s)",
                (SERVER_ADMIN, None if index % 2 else 10_000 + index, detail),
            )
        rows = admin.execute(
            "SELECT seq, occurred_at, user_name, role, patient_id, action, detail, prev_hash, "
            "row_hash FROM audit_events WHERE action = 'test_event' ORDER BY seq"
        ).fetchall()
    assert [row[6] for row in rows] == list(AWKWARD_DETAILS)
    for seq, at, user, role, patient, action, detail, prev, stored in rows:
        assert stored == event_hash(
            prev, seq, at.replace(tzinfo=UTC), user, role, patient, action, detail
        )
    verdict, _ = _verdict(practice_server, server_copy)
    assert verdict.is_intact, verdict.describe()


@pytest.mark.parametrize(
    "change",
    ["seq", "prev_hash", "row_hash"],
)
def test_an_event_that_does_not_follow_the_chain_is_refused(practice_server, server_copy, change):
    with psql_connection(practice_server, server_copy, SERVER_ADMIN, PASSWORD) as admin:
        seq, prev, now = admin.execute(
            "SELECT next_seq, prev_hash, now_utc FROM ketadesk_audit_next()"
        ).fetchone()
        at = now.replace(tzinfo=UTC)
        good = event_hash(prev, seq, at, SERVER_ADMIN, "admin", None, "test_event", "")
        values = {"seq": seq, "prev_hash": prev, "row_hash": good}
        values[change] = {"seq": seq + 1, "prev_hash": "f" * 64, "row_hash": "e" * 64}[change]
        if change == "seq":  # a fork would reuse a number, a gap skip one: both refused
            values["row_hash"] = event_hash(
                prev, seq + 1, at, SERVER_ADMIN, "admin", None, "test_event", ""
            )
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="audit event"):
            admin.execute(
                "INSERT INTO audit_events (seq, occurred_at, user_name, role, action, detail, "
                "prev_hash, row_hash) VALUES (%s, %s, %s, 'admin', 'test_event', '', %s, %s)",
                (values["seq"], now, SERVER_ADMIN, values["prev_hash"], values["row_hash"]),
            )
        assert admin.execute("SELECT max(seq) FROM audit_events").fetchone()[0] == seq - 1


def test_two_workstations_appending_at_once_never_fork_the_chain(practice_server, server_copy):
    cluster, address = practice_server, server_copy
    before = _verdict(cluster, address)[0].event_count
    start = threading.Barrier(2, timeout=30)
    failures: list[BaseException] = []

    def through_the_app() -> None:
        # The app's own path, in a plain session: no write lock taken by the client.
        engine = create_server_engine(address, SERVER_PHYSICIAN, PASSWORD, cluster.ca_certificate)
        actor = Actor(1, SERVER_PHYSICIAN, "Dr. Rowan Quill", Role.PHYSICIAN, True)
        try:
            start.wait()
            for index in range(EVENTS_EACH):
                with Session(engine) as session, session.begin():
                    record_event(session, actor, "test_event", detail=f"app {index}")
        except BaseException as error:
            failures.append(error)
        finally:
            engine.dispose()

    def bare_inserts() -> None:
        # Another client entirely (psql, a script): the database numbers and hashes.
        try:
            with psql_connection(cluster, address, SERVER_ADMIN, PASSWORD) as admin:
                start.wait()
                for index in range(EVENTS_EACH):
                    admin.execute(
                        "INSERT INTO audit_events (user_name, role, action, detail) "
                        "VALUES (%s, 'admin', 'test_event', %s)",
                        (SERVER_ADMIN, f"raw {index}"),
                    )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=through_the_app), threading.Thread(target=bare_inserts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    verdict, rows = _verdict(cluster, address)
    assert verdict.is_intact, verdict.describe()
    assert verdict.event_count == before + 2 * EVENTS_EACH
    seqs = [row[0] for row in rows]
    assert seqs == list(range(1, len(rows) + 1))  # no gap, no number twice
    assert len({row[1] for row in rows}) == len(rows)  # no two events follow the same one
    engine = create_server_engine(address, SERVER_PHYSICIAN, PASSWORD, cluster.ca_certificate)
    try:
        with Session(engine) as session:
            details = set(
                session.execute(
                    select(AuditEvent.detail).where(AuditEvent.action == "test_event")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert details == {f"app {i}" for i in range(EVENTS_EACH)} | {
        f"raw {i}" for i in range(EVENTS_EACH)
    }

def test_an_event_is_stored_with_the_time_the_app_hashed(practice_server, server_copy):
    engine = create_server_engine(
        server_copy, SERVER_PHYSICIAN, PASSWORD, practice_server.ca_certificate
    )
    actor = Actor(1, SERVER_PHYSICIAN, "Dr. Rowan Quill", Role.PHYSICIAN, True)
    try:
        with Session(engine) as session, session.begin():
            row = record_event(session, actor, "test_event")
            hashed_at, row_id = row.occurred_at, row.id
            stored = session.execute(
                select(AuditEvent.occurred_at, AuditEvent.id).where(AuditEvent.seq == row.seq)
            ).one()
    finally:
        engine.dispose()
    assert stored == (hashed_at, row_id)  # the id too, though the database drew it
    assert abs((stored[0] - datetime.now(UTC)).total_seconds()) < 60
