"""The same tests on a practice file and on a practice server.

``practice_on`` (tests/conftest.py) is parametrised over ``BACK_ENDS``: a fresh copy of the
prepared encrypted file, or a fresh database on the test cluster copied from one template
practice (``CREATE DATABASE … TEMPLATE``: no migrations per test). Login roles belong to the
whole cluster, so the template's users have names of their own (``SERVER_PHYSICIAN``,
``SERVER_ADMIN``) that no other server test creates or drops.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ketadesk.core.permissions import Role
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.server.dev_cluster import HOST, DevCluster
from ketadesk.storage.server.practice_roles import OWNER_ROLE, STAFF_GROUP
from ketadesk.storage.server.server_engine import ServerAddress
from ketadesk.storage.server.server_practice import ServerPractice
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.server_practice import drop_database, new_database, owner_connection

BACK_ENDS = ("file", "server")
SERVER_PHYSICIAN = "drquill.pg"
SERVER_ADMIN = "frontdesk.pg"


def make_template(cluster: Any, password: str) -> ServerAddress:
    """One practice (a physician who manages users, an admin) to copy for each test."""
    assert isinstance(cluster, DevCluster)
    address = new_database(cluster)
    ServerPractice.create(
        address,
        cluster.ca_certificate,
        owner_password=cluster.owner_password(),
        user_name=SERVER_PHYSICIAN,
        full_name="Dr. Rowan Quill",
        password=password,
    )
    physician = ServerPractice.log_in(address, cluster.ca_certificate, SERVER_PHYSICIAN, password)
    try:
        physician.add_user(SERVER_ADMIN, "Sam Frontdesk", Role.ADMIN, password)
    finally:
        physician.close()
    return address


def drop_template(cluster: Any, template: ServerAddress) -> None:
    drop_database(cluster, template)  # and its users' roles


def copy_of(cluster: Any, template: ServerAddress) -> ServerAddress:
    """A new database holding the template practice (the roles are the cluster's, shared)."""
    name = f"c_{uuid.uuid4().hex[:12]}"
    with owner_connection(cluster) as admin:
        admin.execute(
            f'CREATE DATABASE "{name}" TEMPLATE "{template.database}" OWNER {OWNER_ROLE}'
        )
        admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        admin.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {STAFF_GROUP}')
    return ServerAddress(HOST, template.port, name)


def drop_copy(cluster: Any, address: ServerAddress) -> None:
    """Drop the copy only: its users' roles belong to the template."""
    with owner_connection(cluster) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{address.database}" WITH (FORCE)')


class CopyDropper:
    """Drops used copies on a thread of its own: DROP DATABASE waits for a checkpoint (about
    2 s under load), which the next test need not wait for. ``finish`` waits for the last."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._queue: queue.Queue[ServerAddress | None] = queue.Queue()
        self._failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="drop-test-copies", daemon=True)
        self._thread.start()

    def drop_later(self, address: ServerAddress) -> None:
        self._queue.put(address)

    def _run(self) -> None:
        while (address := self._queue.get()) is not None:
            try:
                drop_copy(self._cluster, address)
            except BaseException as error:  # reported by finish(), on the test thread
                self._failures.append(error)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=120)
        if self._failures:
            raise self._failures[0]


def edit_outside_ketadesk(practice: Any, *statements: str) -> None:
    """Run SQL on a ``practice_on`` practice's stored data past the app and its guards, as
    someone holding the file's key (a raw SQLCipher connection) or the server's owner password
    (triggers off for the session) could: to move a record back in time, or to tamper."""
    if practice.back_end == "file":
        connection = raw_connection(practice.path, practice.db.database_key())
        try:
            for statement in statements:
                connection.execute(statement)
            connection.commit()
        finally:
            connection.close()
        return
    with owner_connection(practice.cluster, practice.database) as owner, owner.transaction():
        owner.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            owner.execute(statement)


@contextmanager
def holding_the_write_lock(practice: Any) -> Iterator[None]:
    """Another connection holds the practice's write lock (an open write transaction on a
    file; the practice's advisory lock on a server) until the block ends."""
    if practice.back_end == "file":
        connection = raw_connection(practice.path, practice.db.database_key())
        connection.isolation_level = None
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    from ketadesk.storage.server.server_practice import _WRITE_LOCK_ID

    with owner_connection(practice.cluster, practice.database) as owner, owner.transaction():
        owner.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK_ID,))
        yield


def run_on(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, practice: Any, *args: str, stdin: str = ""
) -> CliRun:
    """One command in process on a ``practice_on`` practice (``--db``, and ``--ca`` on a
    server), ``PHYSICIAN`` and ``ADMIN`` among ``args`` named as this back end names them."""
    from tests.conftest import ADMIN, PHYSICIAN

    named = [practice.name_of(a) if a in (PHYSICIAN, ADMIN) else a for a in args]
    return run_in_process(monkeypatch, capsys, None, *practice.db_option, *named, stdin=stdin)


def server_url(address: ServerAddress) -> str:
    return address.url


def ca_of(cluster: Any) -> Path:
    assert isinstance(cluster, DevCluster)
    return cluster.ca_certificate
