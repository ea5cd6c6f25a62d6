"""SQLAlchemy engines on a practice server: the only module that builds a PostgreSQL URL.

Every connection is TLS, verified against the practice CA (``sslmode=verify-full``); the
password is handed to libpq, never written into a URL string that could be logged.
"""

from __future__ import annotations

import re
import select
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.engine import refuse_unstorable_text

DEFAULT_PORT = 5432


@dataclass(frozen=True)
class ServerAddress:
    """Where a practice database is: ``postgresql://HOST[:PORT]/DBNAME`` (no user, no password)."""

    host: str
    port: int
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.host}:{self.port}/{self.database}"


def is_server_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def parse_server_url(text: str) -> ServerAddress:
    """Read ``postgresql://HOST[:PORT]/DBNAME``; a user or password in it is refused."""
    parts = urlsplit(text)
    problem = None
    if parts.scheme not in ("postgresql", "postgres"):
        problem = "it must start with postgresql://"
    elif parts.username or parts.password:
        problem = "it must not name a user or a password (give the user with --user or --as)"
    elif not parts.hostname:
        problem = "it names no server"
    elif not parts.path.strip("/") or "/" in parts.path.strip("/"):
        problem = "it must end with the database name, as in postgresql://server/ketadesk"
    elif parts.query or parts.fragment:
        problem = "it must not carry options after the database name"
    if problem is None:
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            problem = "its port is not a number between 1 and 65535"
    if problem is not None:
        raise UserFacingError(
            f"The practice server address {text[:200]!r} is not usable: {problem}."
        )
    return ServerAddress(str(parts.hostname), port, parts.path.strip("/"))


@dataclass(frozen=True)
class WorkstationCertificate:
    """This workstation's own certificate and key, where the practice requires them
    (``server enrol-workstation`` issues them)."""

    certificate: Path
    key: Path


def check_workstation_files(workstation: WorkstationCertificate) -> None:
    """Refuse in words a workstation certificate or key that is not there."""
    for what, path in (("certificate", workstation.certificate), ("key", workstation.key)):
        if not path.is_file():
            raise UserFacingError(
                f"This workstation's {what} {path} is missing; the practice issues it once "
                "per workstation ('server enrol-workstation')."
            )


def create_server_engine(
    address: ServerAddress,
    user: str,
    password: str,
    ca_certificate: Path,
    workstation: WorkstationCertificate | None = None,
) -> Engine:
    """An engine whose connections log in as ``user`` over verified TLS (presenting this
    workstation's certificate when one is given)."""
    tls = {"sslmode": "verify-full", "sslrootcert": str(ca_certificate)}
    if workstation is not None:
        tls |= {"sslcert": str(workstation.certificate), "sslkey": str(workstation.key)}
    url = URL.create(
        "postgresql+psycopg",
        username=user,
        host=address.host,
        port=address.port,
        database=address.database,
    )
    engine = create_engine(
        url,
        connect_args={
            "password": password,
            **tls,
            "connect_timeout": 10,
            "application_name": "KetaDesk",
            # psycopg would prepare a statement run 5 times on a connection: a round trip of
            # its own each time, all dropped at every ROLLBACK (each read session's, and
            # again with DEALLOCATE ALL), and PostgreSQL then plans a search with unknown
            # words generically. Each statement is planned for its own words instead.
            "prepare_threshold": None,
        },
        pool_size=4,
        max_overflow=4,
    )
    # No pool_pre_ping: its ``;`` was a round trip of its own before every session (a search
    # keystroke's). A connection the server dropped while it sat in the pool is found
    # without one, on its own socket (``_refuse_a_dropped_connection``).
    event.listen(engine, "checkout", _refuse_a_dropped_connection)
    event.listen(engine, "before_cursor_execute", _refuse_writes_outside_a_transaction)
    event.listen(engine, "before_cursor_execute", refuse_unstorable_text)
    return engine


# An execution option: this connection runs reads outside a transaction (autocommit), where
# the server would commit a write at once; only SELECTs may be sent on it.
READS_ONLY = "ketadesk_reads_only"
_READING = ("SELECT", "WITH")


def _refuse_writes_outside_a_transaction(
    connection: Any, _cursor: Any, statement: str, *_args: Any
) -> None:
    if connection.get_execution_options().get(READS_ONLY) and not (
        statement.lstrip()[:6].upper().startswith(_READING)
        and not _WRITES.search(statement)
    ):
        raise RuntimeError(f"only reads may run outside a transaction: {statement[:60]!r}")


# A data-modifying WITH (``WITH x AS (DELETE ...)``) and row locks.
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b|\bFOR (UPDATE|SHARE|NO KEY|KEY)\b")


def is_dropped(dbapi_connection: Any) -> bool:
    """True when the server has closed this idle connection: restarted or stopped (it says
    so and closes the socket), or ended it (``idle_session_timeout``, a terminated backend).

    Looks at the idle socket without waiting and without sending anything: nothing arrived
    is a live connection (the usual case costs one ``select``); what arrived is read (the
    server's last words, then the socket's end). A connection cut silently on the way (a
    cable, a NAT timeout) is not seen here: its first statement then fails and the action
    says the server does not answer, as it did when the pool pinged first."""
    from psycopg.pq import ConnStatus  # loaded with the engine's driver already

    pgconn = dbapi_connection.pgconn
    if dbapi_connection.closed or pgconn.status != ConnStatus.OK:
        return True
    try:
        for _ in range(4):  # a notice, the server's last words, the socket's end
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
            if not readable:
                break
            pgconn.consume_input()
            pgconn.is_busy()  # parses what arrived (an idle connection's notices)
    except Exception:  # psycopg's OperationalError: the socket is closed
        return True
    return bool(pgconn.status != ConnStatus.OK)


def _refuse_a_dropped_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # The pool then discards it and checks out another (a new one after a restart).
    if is_dropped(dbapi_connection):
        raise DisconnectionError("the practice server closed this connection")


def is_connection_lost(error: DBAPIError) -> bool:
    """True when ``error`` is the connection failing (the server stopped, restarted or cannot
    be reached), not the server refusing a statement."""
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is None:  # psycopg gives no SQLSTATE when there is no server to answer
        return isinstance(error, OperationalError)
    # 08: connection exceptions; 57P01-57P03: the server shutting down or not yet started
    return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


def lost_connection_message(address: ServerAddress, *, in_doubt: bool = False) -> str:
    """Words for a workstation that lost its server: what happened to the action."""
    where = f"The practice server at {address.host}:{address.port}"
    if in_doubt:
        return (
            f"{where} stopped answering while this was being saved, so KetaDesk cannot tell "
            "whether it was saved. What you typed is still here: when the server is back, "
            "check the record and save again if needed."
        )
    return (
        f"{where} does not answer, so nothing was saved or read. What you typed is still "
        "here: check that the server is running and try again; KetaDesk reconnects by itself."
    )
