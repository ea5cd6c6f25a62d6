"""Move a practice kept in one encrypted file onto a practice server (``server import-practice``).

The file is unlocked by a user who manages users; its audit chain must be intact. Then, in ONE
transaction on an empty server database, as the schema's owner: the migrations make the tables,
every row of every table is copied as it is (ids, timestamps, signatures and the audit events
with their hashes), the sequences continue after the highest ids, the server's grants and
triggers are applied, and each user becomes a login role of the same name in the group of
their role (and of user managers). Triggers are off while rows are copied
(``session_replication_role = replica``): the rows were written under the file practice's own
rules, and signed records arrive already signed. A failure anywhere leaves the server database
empty and creates no role.

Passwords: a server checks each user's password itself (SCRAM), and a file keeps no password
the server could use, so the import asks for one: the importing user's server password is the
one they unlocked the file with; every other active user gets an initial password typed at the
import and handed to them, which they change after their first log-in. Removed users become
roles that cannot log in, so their names stay theirs in the audit trail.

The audit chain: the copied events keep their hashes, so the server's chain is the file's
chain; the next event written on the server (the importing user's log-in, at the end of the
import) takes the last copied event's hash as its previous hash, and the chain is walked again.
Key slots, the recovery key and "remember me" stay with the file (a server has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Integer, delete, func, inspect, select, text
from sqlalchemy.orm import Session

from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.base import Base
from ketadesk.models.practice import PracticeMeta
from ketadesk.models.users import User
from ketadesk.storage.security.audit_log import latest_event, verify_audit
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.grants import PRACTICE_KEY_META
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.server.practice_roles import USER_MANAGER_GROUP
from ketadesk.storage.server.server_backup import (
    prepare_empty_database,
    refuse_unless_empty,
)
from ketadesk.storage.server.server_engine import ServerAddress
from ketadesk.storage.server.server_practice import ServerPractice, check_server_user_name
from ketadesk.storage.server.server_upgrade import apply_server_objects, owner_engine

# Tables of a file practice that a server does not keep, and why.
FILE_ONLY_TABLES = {
    "alembic_version": "the server's own migrations record its revision",
}
_BATCH = 2000


@dataclass(frozen=True)
class FileUser:
    user_name: str
    role: str
    is_active: bool
    can_manage_users: bool


@dataclass(frozen=True)
class PracticeImported:
    counts: dict[str, int]  # rows per table, the same in the file and on the server
    users: tuple[FileUser, ...]
    verdict_before: ChainVerdict
    verdict_after: ChainVerdict
    # The server's own (a file's recovery key cannot carry over): shown once.
    recovery_key: str = field(default="", repr=False)


def file_users(database: PracticeDatabase) -> tuple[FileUser, ...]:
    """Every user of the file, in user-name order (the order initial passwords are asked)."""
    with database.read_session() as session:
        rows = session.execute(select(User).order_by(User.user_name)).scalars().all()
        return tuple(
            FileUser(u.user_name, u.role, u.is_active, u.can_manage_users) for u in rows
        )


def _row_counts(connection: Any, tables: list[str]) -> dict[str, int]:
    return {
        name: int(
            connection.execute(select(func.count()).select_from(Base.metadata.tables[name]))
            .scalar_one()
        )
        for name in tables
    }


def _tables_to_copy(file_engine: Engine) -> list[str]:
    """Every table of the file in foreign-key order; a table neither copied nor named in
    ``FILE_ONLY_TABLES`` is refused, so no row is left behind unnoticed."""
    in_file = set(inspect(file_engine).get_table_names())
    known = set(Base.metadata.tables)
    unknown = sorted(
        t for t in in_file - known - set(FILE_ONLY_TABLES)
        if not t.startswith("sqlite_") and not _is_search_index(t)
    )
    if unknown:
        raise UserFacingError(
            "The practice file holds tables this KetaDesk cannot move to a server ("
            + ", ".join(unknown[:10])
            + "); nothing was changed."
        )
    return [t.name for t in Base.metadata.sorted_tables if t.name in in_file]


def _is_search_index(table: str) -> bool:
    # The file's FTS5 search index and its shadow tables: never copied; the server's own
    # search indexes (full-text, trigram, MRN endings) are made over its patients.
    return table.startswith("patient_") and "_fts" in table


def _scram_verifier(engine: Engine, user_name: str, password: str) -> str:
    raw = engine.raw_connection()
    try:
        pgconn = raw.driver_connection.pgconn  # type: ignore[union-attr]
        made = pgconn.encrypt_password(password.encode(), user_name.encode(), b"scram-sha-256")
        return bytes(made).decode()
    finally:
        raw.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _refuse_taken_roles(engine: Engine, users: tuple[FileUser, ...]) -> None:
    with engine.connect() as connection:
        taken = sorted(
            str(row[0])
            for row in connection.execute(
                text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                {"names": [u.user_name for u in users]},
            )
        )
    if taken:
        raise UserFacingError(
            "The server already has database roles named " + ", ".join(taken) + "; a "
            "practice's users become roles of their own names, so move this practice to a "
            "server without them. Nothing was changed."
        )


def _copy_rows(file_engine: Engine, connection: Any, tables: list[str]) -> None:
    with file_engine.connect() as source:
        for name in tables:
            table = Base.metadata.tables[name]
            result = source.execution_options(stream_results=True).execute(select(table))
            while batch := result.fetchmany(_BATCH):
                connection.execute(table.insert(), [dict(row._mapping) for row in batch])


def _continue_sequences(connection: Any, tables: list[str]) -> None:
    """Each id sequence continues after the highest id copied."""
    for name in tables:
        for column in Base.metadata.tables[name].primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": column.name}
            ).scalar_one()
            if sequence is not None:
                connection.execute(
                    text(
                        f"SELECT setval(:s, COALESCE((SELECT max({_quoted(column.name)}) "
                        f"FROM {_quoted(name)}), 0) + 1, false)"
                    ),
                    {"s": sequence},
                )


def _create_roles(
    connection: Any, engine: Engine, users: tuple[FileUser, ...], passwords: Mapping[str, str]
) -> None:
    for user in users:
        name = _quoted(user.user_name)
        groups = [f"ketadesk_{user.role}"]
        if user.can_manage_users:
            groups.append(USER_MANAGER_GROUP)
        if not user.is_active:
            connection.exec_driver_sql(f"CREATE ROLE {name} NOLOGIN")
            continue
        verifier = _scram_verifier(engine, user.user_name, passwords[user.user_name])
        connection.exec_driver_sql(
            f"CREATE ROLE {name} LOGIN PASSWORD '{verifier}' IN ROLE "
            + ", ".join(_quoted(g) for g in groups)
        )


def check_import_passwords(
    users: tuple[FileUser, ...], passwords: Mapping[str, str]
) -> None:
    """Each active user has a password the server may accept (checked before any change)."""
    for user in users:
        if user.is_active:
            check_new_password(
                passwords[user.user_name], user.user_name, what=f"password for {user.user_name}"
            )


def import_practice(
    database: PracticeDatabase,
    actor: Actor,
    address: ServerAddress,
    ca_certificate: Path,
    *,
    owner: str,
    owner_password: str,
    passwords: Mapping[str, str],
) -> PracticeImported:
    """Move the unlocked file practice ``database`` into the empty server database at
    ``address`` (see the module); ``passwords`` holds every active user's server password."""
    require(actor, Permission.MANAGE_USERS, "move the practice to a server")
    verdict_before = database.verify_audit_trail()
    if not verdict_before.is_intact:
        raise UserFacingError(
            "The practice file's audit trail is broken, so it cannot be moved as it is: "
            f"{verdict_before.describe()} Nothing was changed."
        )
    users = file_users(database)
    for user in users:
        check_server_user_name(user.user_name)
    check_import_passwords(users, passwords)
    tables = _tables_to_copy(database.engine)
    with database.engine.connect() as source:
        counts = _row_counts(source, tables)
    with database.read_session() as session:
        last_in_file = latest_event(session)

    prepare_empty_database(address, ca_certificate, owner, owner_password)
    engine = owner_engine(address, ca_certificate, owner, owner_password)
    try:
        refuse_unless_empty(engine, address, "a practice moved from a file")
        _refuse_taken_roles(engine, users)
        with engine.begin() as connection:
            upgrade_to_head_in(connection)
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            _copy_rows(database.engine, connection, tables)
            connection.exec_driver_sql("SET LOCAL session_replication_role = origin")
            _continue_sequences(connection, tables)
            apply_server_objects(connection)
            _create_roles(connection, engine, users, passwords)
            on_server = _row_counts(connection, tables)
            if on_server != counts:
                differing = sorted(t for t in tables if on_server.get(t) != counts.get(t))
                raise UserFacingError(
                    "The rows on the server did not match the file's ("
                    + ", ".join(differing[:10])
                    + "); nothing was changed."
                )
            # A file keeps the practice's own signing key in practice_meta, behind the file's
            # encryption; every staff role reads that table on a server, so any of them could
            # sign as "system" with it. A server practice has no such key (each user's own is
            # wrapped by their password): the copy drops it; its public key stays granted, so
            # the events it signed in the file still verify.
            connection.execute(
                delete(PracticeMeta).where(PracticeMeta.key == PRACTICE_KEY_META)
            )
        with Session(engine) as session:
            copied = verify_audit(session)
            last_on_server = latest_event(session)
        if not copied.is_intact or last_on_server != last_in_file:
            raise UserFacingError(
                "The audit trail on the server does not match the file's after the move; "
                f"{copied.describe()} Ask whoever runs the server to drop the database "
                f"{address.database} and try again."
            )
    finally:
        engine.dispose()
    practice = ServerPractice.log_in(
        address, ca_certificate, actor.user_name, passwords[actor.user_name]
    )
    try:
        recovery_key = practice.replace_recovery_key()
        verdict_after = practice.verify_audit_trail()
    finally:
        practice.close()
    return PracticeImported(counts, users, verdict_before, verdict_after, recovery_key)


def upgrade_to_head_in(connection: Any) -> None:
    """The migrations inside the import's own transaction (so a failure leaves no tables)."""
    from alembic import command

    from ketadesk.storage.security.migrate import alembic_config

    command.upgrade(alembic_config(connection), "head")

