"""Login roles for a practice restored onto a server that lacks its users' roles.

Roles belong to a PostgreSQL server, not to a database, so a backup carries the ``users``
rows and not the roles. On a brand-new server (after a disaster) ``restore`` makes them: the
restorer (who must manage users in the backup) gets a login role with the password they gave,
every other active user a login role with no password at all (no password can be guessed: a
user who manages users sets one, as a reset), each in the groups of their role; removed
users get roles that cannot log in, as ``server import-practice`` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.server.practice_roles import USER_MANAGER_GROUP


@dataclass(frozen=True)
class RestoredUser:
    user_name: str
    role: str
    can_manage_users: bool
    is_active: bool


@dataclass(frozen=True)
class RolesMade:
    """Who got a login role in the restore: the restorer, and those awaiting a password."""

    restorer: str | None
    awaiting_password: tuple[str, ...]
    cannot_log_in: tuple[str, ...]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def login_role_exists(engine: Engine, user_name: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": user_name}
            ).first()
        )


def restored_users(session: Session) -> list[RestoredUser]:
    rows = session.execute(
        text(
            "SELECT user_name, role, can_manage_users, is_active FROM users "
            "ORDER BY user_name"
        )
    ).all()
    return [RestoredUser(str(r[0]), str(r[1]), bool(r[2]), bool(r[3])) for r in rows]


def restorer_problem(users: list[RestoredUser], user_name: str) -> str | None:
    """Why ``user_name`` may not restore this backup on a server without their role, or None."""
    found = next((u for u in users if u.user_name == user_name), None)
    if found is None or not found.is_active:
        return f"{user_name[:64]} is not an active user of the practice in the backup"
    if not found.can_manage_users:
        return f"{user_name[:64]} does not manage users in the practice in the backup"
    return None


def create_missing_roles(
    engine: Engine, users: list[RestoredUser], restorer: str, verifier: str | None
) -> RolesMade:
    """Make a role for every user of the backup who has none on this server, in one
    transaction; ``verifier`` (a SCRAM verifier) is the restorer's password when their role
    is made here."""
    with engine.begin() as connection:
        existing = {
            str(row[0]) for row in connection.execute(text("SELECT rolname FROM pg_roles"))
        }
        restorer_made: str | None = None
        awaiting: list[str] = []
        cannot: list[str] = []
        for user in users:
            if user.user_name in existing:
                continue
            name = _quoted(user.user_name)
            if not user.is_active:
                connection.exec_driver_sql(f"CREATE ROLE {name} NOLOGIN")
                cannot.append(user.user_name)
                continue
            groups = [f"ketadesk_{user.role}"]
            if user.can_manage_users:
                groups.append(USER_MANAGER_GROUP)
            password = ""
            if user.user_name == restorer and verifier is not None:
                password = f" PASSWORD '{verifier}'"
                restorer_made = user.user_name
            else:
                awaiting.append(user.user_name)
            connection.exec_driver_sql(
                f"CREATE ROLE {name} LOGIN{password} IN ROLE "
                + ", ".join(_quoted(g) for g in groups)
            )
    return RolesMade(restorer_made, tuple(awaiting), tuple(cannot))


def empty_again(engine: Engine) -> None:
    """Take the restored practice out again (a restore that may not stand leaves the
    database as empty as it found it; ``prepare_empty_database`` puts back the extensions
    and grants of an empty practice database)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public AUTHORIZATION pg_database_owner")


def refused_restorer(problem: str, where: Path) -> UserFacingError:
    return UserFacingError(
        f"{problem}, and only a user who manages users may restore it onto a server where "
        f"their login role does not exist yet; nothing was restored from {where.name}. Name "
        "such a user with --as."
    )
