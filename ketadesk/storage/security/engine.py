"""SQLCipher engines: the only module that knows the practice database is SQLite.

The database key is a random 256-bit key handed to SQLCipher as a raw key, so SQLCipher's
own passphrase KDF is not paid on each connection. No engine exists at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlcipher3
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from ketadesk.core.errors import UserFacingError

BUSY_TIMEOUT_MS = 8000


def _key_pragma(key: bytes) -> str:
    return f"PRAGMA key = \"x'{key.hex()}'\""


def _quiet(connection: Any) -> Any:
    """SQLCipher would print its own log lines on stderr (e.g. a failed page HMAC); KetaDesk
    reports problems itself, in words."""
    connection.execute("PRAGMA cipher_log_level = NONE")
    return connection


def raw_connection(path: Path, key: bytes) -> Any:
    """A keyed DB-API connection with KetaDesk's pragmas applied."""
    connection = _quiet(
        sqlcipher3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    )
    connection.execute(_key_pragma(key))
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    # FULL: a transaction reported as committed survives a power cut, not only a crash.
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA temp_store = MEMORY")
    connection.execute("PRAGMA cache_size = -32000")  # 32 MB of decrypted pages per connection
    return connection


READ_ONLY_OPTION = "ketadesk_read_only"
"""Execution option of the engine behind ``PracticeDatabase.read_session``: a deferred
transaction, so a read never waits for or blocks another process's write lock."""


UNSTORABLE_TEXT = (
    "The text holds an invisible character that cannot be stored (a NUL, usually pasted from "
    "another program). Remove it (retype the words) and save again. Nothing was saved."
)
_WRITING = ("INSERT", "UPDATE")


def _holds_nul(parameters: Any) -> bool:
    if isinstance(parameters, str):
        return "\x00" in parameters
    if isinstance(parameters, dict):
        return any(_holds_nul(value) for value in parameters.values())
    if isinstance(parameters, list | tuple):
        return any(_holds_nul(value) for value in parameters)
    return False


def refuse_unstorable_text(
    _connection: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any
) -> None:
    """Before a write is sent: text holding a NUL is refused in words on both back ends
    (PostgreSQL cannot store it and would answer with a driver error; SQLite would keep it and
    hand it to every screen, PDF and export after)."""
    if statement.lstrip()[:6].upper().startswith(_WRITING) and _holds_nul(parameters):
        raise UserFacingError(UNSTORABLE_TEXT)


def create_keyed_engine(path: Path, key: bytes) -> Engine:
    """An engine whose every connection is keyed; ``engine.dispose()`` drops them all."""
    key_holder: list[bytes] = [key]

    def connect() -> Any:
        if not key_holder:
            raise RuntimeError("the database is locked")
        return raw_connection(path, key_holder[0])

    engine = create_engine(
        "sqlite://",
        module=sqlcipher3,
        creator=connect,
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=4,
    )
    engine.info_key_holder = key_holder  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", refuse_unstorable_text)

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Take the write lock at the start: the audit chain needs "read last, then append"
        # to be atomic across processes. Read-only sessions (``READ_ONLY_OPTION``) take none.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def forget_key(engine: Engine) -> None:
    """Drop pooled connections and the key the engine holds (used when the screen locks)."""
    holder: list[bytes] = getattr(engine, "info_key_holder", [])
    holder.clear()
    engine.dispose()


MIN_DATABASE_BYTES = 4096  # one page: anything shorter is empty or truncated


def check_key_opens(path: Path, key: bytes) -> None:
    """Raise when ``key`` does not open ``path`` or the file is not a SQLCipher database.

    A file shorter than one page is refused before SQLite sees it, so an empty or truncated
    file is never turned into a new database. Only reads are made.
    """
    if path.stat().st_size < MIN_DATABASE_BYTES:
        raise UserFacingError(
            "The practice database file is empty or cut short, so it cannot be opened. Nothing "
            "was changed; restore the newest good backup."
        )
    connection = _quiet(sqlcipher3.connect(str(path)))
    try:
        connection.execute(_key_pragma(key))
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "practice_meta" not in tables:
            raise UserFacingError(
                "This file is not a KetaDesk practice database (its tables are missing). "
                "Nothing was changed."
            )
    except sqlcipher3.DatabaseError as error:
        raise UserFacingError(
            "The practice database could not be opened with its key: the key file belongs to "
            "another database, or the database file is damaged or truncated. Nothing was "
            "changed; restore the newest good backup."
        ) from error
    finally:
        connection.close()


def cipher_damaged_pages(path: Path, key: bytes) -> list[str]:
    """Every page's HMAC is checked (SQLCipher ``cipher_integrity_check``); problems are returned.

    Runs read-only, so a damaged file is never written to.
    """
    uri = f"file:{path}?mode=ro"
    connection = _quiet(sqlcipher3.connect(uri, uri=True))
    try:
        connection.execute(_key_pragma(key))
        rows = connection.execute("PRAGMA cipher_integrity_check").fetchall()
        return [str(r[0]) for r in rows]
    except sqlcipher3.DatabaseError as error:
        return [str(error)]
    finally:
        connection.close()


def export_encrypted_copy(engine: Engine, key: bytes, destination: Path) -> None:
    """A consistent, encrypted copy of the live database (same key) at ``destination``."""
    if destination.exists() and destination.stat().st_size:  # an empty file: made 0600 for us
        destination.unlink()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            f"ATTACH DATABASE ? AS backup_copy KEY \"x'{key.hex()}'\"", (str(destination),)
        )
        cursor.execute("SELECT sqlcipher_export('backup_copy')")
        cursor.execute("DETACH DATABASE backup_copy")
    finally:
        raw.close()


def is_plain_sqlite(path: Path) -> bool:
    """True when the file starts with the plain SQLite header (i.e. it is NOT encrypted)."""
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"

