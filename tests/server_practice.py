"""Helpers for tests on the practice server (a real PostgreSQL dev cluster, see conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ketadesk.storage.server.dev_cluster import (
    HOST,
    DevCluster,
    remove_dev_cluster,
    start_dev_cluster,
)
from ketadesk.storage.server.practice_roles import OWNER_ROLE, connect, prepare_practice_database
from ketadesk.storage.server.server_engine import ServerAddress, create_server_engine


def owner_connection(cluster: Any, database: str = "postgres") -> Any:
    assert isinstance(cluster, DevCluster)
    return connect(
        host=HOST,
        port=cluster.port,
        database=database,
        user=OWNER_ROLE,
        password=cluster.owner_password(),
        ca_certificate=cluster.ca_certificate,
        autocommit=True,
    )


def new_database(cluster: Any) -> ServerAddress:
    assert isinstance(cluster, DevCluster)
    name = f"t_{uuid.uuid4().hex[:12]}"
    prepare_practice_database(
        host=HOST,
        port=cluster.port,
        database=name,
        owner_password=cluster.owner_password(),
        ca_certificate=cluster.ca_certificate,
    )
    return ServerAddress(HOST, cluster.port, name)


def drop_database(cluster: Any, address: Any) -> None:
    """Drop the database, the login roles of its users and its recovery role (roles belong to
    the whole cluster)."""
    from ketadesk.storage.server.recovery_role import recovery_role_name

    with owner_connection(cluster, address.database) as practice:
        has_users = practice.execute("SELECT to_regclass('public.users')").fetchone()[0]
        users = (
            [r[0] for r in practice.execute("SELECT user_name FROM users").fetchall()]
            if has_users
            else []
        )
    with owner_connection(cluster) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{address.database}" WITH (FORCE)')
        for user in [*users, recovery_role_name(address.database)]:
            admin.execute(f'DROP ROLE IF EXISTS "{user}"')


def psql_connection(cluster: Any, address: Any, user: str, password: str) -> Any:
    """A plain connection as ``user`` with their own password, as ``psql`` would open one
    (verified TLS, autocommit): what an insider can do without the app."""
    assert isinstance(cluster, DevCluster)
    return connect(
        host=HOST,
        port=address.port,
        database=address.database,
        user=user,
        password=password,
        ca_certificate=cluster.ca_certificate,
        autocommit=True,
    )


def owner_engine(cluster: Any, address: ServerAddress) -> Engine:
    assert isinstance(cluster, DevCluster)
    return create_server_engine(
        address, OWNER_ROLE, cluster.owner_password(), cluster.ca_certificate
    )


@contextmanager
def cluster_of_its_own(
    folder: Path, user_name: str, full_name: str, password: str
) -> Iterator[tuple[ServerAddress, Path]]:
    """A throwaway cluster in ``folder`` (for tests that restart it or change its access
    rules, which the shared one must never see) holding one practice whose first physician
    is ``user_name``; yields its address and CA certificate, and removes the cluster after."""
    from ketadesk.storage.server.server_practice import ServerPractice

    try:
        cluster = start_dev_cluster(folder)
        address = ServerAddress(HOST, cluster.port, cluster.database)
        ServerPractice.create(
            address,
            cluster.ca_certificate,
            owner_password=cluster.owner_password(),
            user_name=user_name,
            full_name=full_name,
            password=password,
        )
        yield address, cluster.ca_certificate
    finally:
        remove_dev_cluster(folder)
