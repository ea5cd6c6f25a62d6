"""One code base, two back ends: the whole Alembic chain on SQLCipher and on PostgreSQL gives
the same tables, and on both the database itself refuses to change or remove an audit event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ketadesk.core.audit_chain import event_hash
from ketadesk.storage.security.engine import create_keyed_engine
from ketadesk.storage.security.keyslots import new_database_key
from ketadesk.storage.security.migrate import (
    PACKAGED_HEAD,
    current_revision,
    needs_upgrade,
    upgrade_to_head,
)
from tests.server_practice import owner_engine

BACK_ENDS = ("sqlcipher", "postgresql")


@pytest.fixture(params=BACK_ENDS)
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An engine on an empty database of each back end (the schema's owner on the server)."""
    if request.param == "sqlcipher":
        engine = create_keyed_engine(tmp_path / "practice.db", new_database_key())
    else:
        cluster = request.getfixturevalue("practice_server")
        engine = owner_engine(cluster, request.getfixturevalue("server_database"))
    try:
        yield engine
    finally:
        engine.dispose()


def _practice_tables(engine: Engine) -> set[str]:
    """The tables the models and migrations make (SQLite's FTS5 search tables are its own)."""
    names = set(inspect(engine).get_table_names())
    return {n for n in names if not (n.startswith("patient_") and "_fts" in n)}


@pytest.fixture(scope="module")
def sqlcipher_tables(tmp_path_factory) -> set[str]:
    engine = create_keyed_engine(tmp_path_factory.mktemp("chain") / "p.db", new_database_key())
    upgrade_to_head(engine)
    tables = _practice_tables(engine)
    engine.dispose()
    return tables


def test_the_whole_chain_makes_the_same_tables_on_both(empty_engine, sqlcipher_tables):
    from ketadesk.models import Base

    assert current_revision(empty_engine) is None
    upgrade_to_head(empty_engine)
    assert current_revision(empty_engine) == PACKAGED_HEAD
    assert not needs_upgrade(empty_engine)
    tables = _practice_tables(empty_engine)
    assert tables == sqlcipher_tables
    assert set(Base.metadata.tables) <= tables
    assert "audit_events" in tables and "protocol_versions" in tables


def _insert_event(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_events (seq, occurred_at, user_name, role, action, detail, "
                "prev_hash, row_hash) VALUES (1, :at, 'drquill', 'physician', 'login', '', "
                ":zero, :hash)"
            ),
            # The real hash: a practice server refuses an event that does not hash to what it
            # says (migration 0017).
            {
                "at": datetime(2026, 1, 2, 9, 0, tzinfo=UTC).replace(tzinfo=None),  # as stored
                "zero": "0" * 64,
                "hash": event_hash(
                    "0" * 64, 1, datetime(2026, 1, 2, 9, 0, tzinfo=UTC), "drquill",
                    "physician", None, "login", "",
                ),
            },
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'logout' WHERE seq = 1",
        "UPDATE audit_events SET detail = 'edited' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
    ],
)
def test_the_database_refuses_to_change_or_remove_an_audit_event(empty_engine, statement):
    upgrade_to_head(empty_engine)
    _insert_event(empty_engine)
    with pytest.raises(DBAPIError, match="append-only"), empty_engine.begin() as connection:
        connection.execute(text(statement))
    with empty_engine.connect() as connection:
        rows = connection.execute(text("SELECT action, detail FROM audit_events")).all()
    assert [tuple(r) for r in rows] == [("login", "")]


def test_the_visit_pack_uids_are_given_to_frozen_rows_on_a_guarded_server(
    practice_server, server_database
) -> None:
    """Migration 0016 gives a unique id to rows the server freezes (a printed plan, a recorded
    dispensing): it sets the guards aside for its own transaction only, and they hold again
    after it."""
    from alembic import command

    from ketadesk.storage.security.migrate import alembic_config
    from ketadesk.storage.server.signed_records import apply_signed_record_guards

    engine = owner_engine(practice_server, server_database)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "c3e4f5a60014")
        with engine.begin() as connection:
            # Rows as an older version wrote them (their parents are not needed here).
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(text(
                "INSERT INTO signed_plan_contents (id, protocol_version_id, content_hash, "
                "document_json, calendar_weeks_shown, first_exported_by, created_at, "
                "updated_at) VALUES (1, 1, 'h1', '{}', 4, 'drquill', now(), now())"
            ))
            connection.execute(text(
                "INSERT INTO prescription_fills (id, prescription_id, fill_number, filled_on, "
                "quantity, pharmacy, recorded_by, created_at, updated_at) "
                "VALUES (1, 1, 0, current_date, 30, '', 'drquill', now(), now())"
            ))
        with engine.begin() as connection:
            apply_signed_record_guards(connection)
        upgrade_to_head(engine)
        with engine.connect() as connection:
            for table in ("signed_plan_contents", "prescription_fills"):
                [uid] = connection.execute(text(f"SELECT uid FROM {table}")).scalars()
                assert isinstance(uid, str) and len(uid) == 32
        with pytest.raises(DBAPIError, match="kept as it was printed"), engine.begin() as c:
            c.execute(text("UPDATE signed_plan_contents SET document_json = '[]'"))
    finally:
        engine.dispose()
