"""The practice database on a server: its group roles, extensions and TLS connections.

Each KetaDesk user will be a PostgreSQL login role of the same name, member of the group role
of their KetaDesk role (as GNUmed does); the groups exist from the moment the server is made.
Every connection verifies the server against the practice CA (``sslmode=verify-full``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ketadesk.core.errors import UserFacingError

OWNER_ROLE = "ketadesk_owner"
"""The cluster's superuser: owns the schema and runs the migrations; no KetaDesk user."""

STAFF_GROUP = "ketadesk_staff"
PHYSICIAN_GROUP = "ketadesk_physician"
ADMIN_GROUP = "ketadesk_admin"
USER_MANAGER_GROUP = "ketadesk_user_manager"
# The recovery keys' login roles (one per practice database) are its only members; it may call
# one function and read nothing (``recovery_role``). A group, so that a backup's grants name no
# login role a new server lacks.
RECOVERY_GROUP = "ketadesk_recovery"
GROUP_ROLES = (STAFF_GROUP, PHYSICIAN_GROUP, ADMIN_GROUP, USER_MANAGER_GROUP, RECOVERY_GROUP)
EXTENSIONS = ("pg_trgm", "unaccent")


def connect(
    *,
    host: str,
    port: int,
    database: str,
    user: str,
    password: str,
    ca_certificate: Path,
    autocommit: bool = False,
) -> Any:
    """A psycopg connection over TLS that verifies the server against the practice CA."""
    import psycopg

    try:
        return psycopg.connect(
            host=host,
            port=port,
            dbname=database,
            user=user,
            password=password,
            sslmode="verify-full",
            sslrootcert=str(ca_certificate),
            connect_timeout=10,
            autocommit=autocommit,
        )
    except psycopg.OperationalError as error:
        raise UserFacingError(connection_problem(str(error), user, host, port)) from error


def connection_problem(detail: str, user: str, host: str, port: int) -> str:
    """Words for a refused connection (the server's own text names no password)."""
    if "password authentication failed" in detail:
        return (
            f"The practice server refused the password for {user[:64]}. Check the user name "
            "and password and try again."
        )
    if "certificate revoked" in detail:
        return (
            f"The practice server at {host}:{port} refused this workstation: its certificate "
            "has been revoked. Ask whoever runs the server to enrol this workstation again."
        )
    if "requires a valid client certificate" in detail:
        return (
            f"The practice server at {host}:{port} accepts only enrolled workstations, and "
            "this one gave no workstation certificate. Ask whoever runs the server to enrol "
            "it ('server enrol-workstation') and give that certificate when logging in."
        )
    if "alert unknown ca" in detail or "alert bad certificate" in detail:
        return (
            f"The practice server at {host}:{port} refused this workstation's certificate: "
            "the practice did not issue it. Ask whoever runs the server to enrol this "
            "workstation."
        )
    if "certificate verify failed" in detail or "server certificate" in detail:
        return (
            f"The practice server at {host}:{port} could not be verified with the practice "
            "certificate; it may not be the practice's server. Nothing was sent to it."
        )
    if "Connection refused" in detail or "timeout expired" in detail:
        return (
            f"The practice server at {host}:{port} does not answer. Check that it is running "
            "and that this workstation can reach it."
        )
    return f"Could not connect to the practice server at {host}:{port}: {detail.strip()[:300]}"


def prepare_practice_database(
    *, host: str, port: int, database: str, owner_password: str, ca_certificate: Path
) -> None:
    """Create the database, the group roles and the extensions (idempotent)."""
    from psycopg import sql

    with connect(
        host=host,
        port=port,
        database="postgres",
        user=OWNER_ROLE,
        password=owner_password,
        ca_certificate=ca_certificate,
        autocommit=True,
    ) as admin:
        existing = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
        for group in GROUP_ROLES:
            if group not in existing:
                admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        for group in (PHYSICIAN_GROUP, ADMIN_GROUP):
            admin.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(STAFF_GROUP), sql.Identifier(group))
            )
        has_database = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not has_database:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                )
            )
        admin.execute(
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
        )
        admin.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(STAFF_GROUP)
            )
        )
    with connect(
        host=host,
        port=port,
        database=database,
        user=OWNER_ROLE,
        password=owner_password,
        ca_certificate=ca_certificate,
        autocommit=True,
    ) as practice:
        for extension in EXTENSIONS:
            practice.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
            )
        practice.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        practice.execute(
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(STAFF_GROUP))
        )
