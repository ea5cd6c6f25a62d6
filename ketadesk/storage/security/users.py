"""User management: add, change passwords, roles, remove. Each change rewraps one key slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from ketadesk.core import audit_actions
from ketadesk.core.display_names import check_full_name
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, Role, require
from ketadesk.models.users import User
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import PracticeDatabase, check_user_name
from ketadesk.storage.security.password_rules import check_new_password

LICENCE_STATES = ("FL", "NJ")


@dataclass(frozen=True)
class UserInfo:
    user_id: int
    user_name: str
    full_name: str
    role: Role
    can_manage_users: bool
    is_active: bool
    npi: str | None
    dea_number: str | None
    licence_states: tuple[str, ...]


def _info(user: User) -> UserInfo:
    states = tuple(s for s in user.licence_states.split(",") if s)
    return UserInfo(
        user.id,
        user.user_name,
        user.full_name,
        Role(user.role),
        user.can_manage_users,
        user.is_active,
        user.npi,
        user.dea_number,
        states,
    )


def _check_credentials(npi: str | None, dea_number: str | None, states: tuple[str, ...]) -> None:
    if npi and not is_valid_npi(npi):
        raise UserFacingError("The NPI must be 10 digits with a valid check digit.")
    if dea_number and not (
        len(dea_number) == 9 and dea_number[:2].isalpha() and dea_number[2:].isdigit()
    ):
        raise UserFacingError("A DEA number is two letters followed by seven digits.")
    unknown = set(states) - set(LICENCE_STATES)
    if unknown:
        raise UserFacingError("Licence states are FL and NJ only for this practice.")


def is_valid_npi(npi: str) -> bool:
    """NPI: 10 digits, Luhn check over the digits prefixed with the 80840 health-industry code."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = [int(c) for c in "80840" + npi]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def list_users(db: PracticeDatabase) -> list[UserInfo]:
    with db.session() as session:
        return [_info(u) for u in session.execute(select(User).order_by(User.user_name)).scalars()]


def get_user(db: PracticeDatabase, user_name: str) -> UserInfo:
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
        if user is None:
            raise UserFacingError(f"There is no user called {user_name}.")
        return _info(user)


def add_user(
    db: PracticeDatabase,
    actor: Actor,
    *,
    user_name: str,
    full_name: str,
    role: Role,
    password: str,
    can_manage_users: bool = False,
    npi: str | None = None,
    dea_number: str | None = None,
    licence_states: tuple[str, ...] = (),
) -> UserInfo:
    require(actor, Permission.MANAGE_USERS, "add users")
    check_user_name(user_name)
    check_full_name(full_name)
    _check_credentials(npi, dea_number, licence_states)
    with db.session() as session:
        check_new_password(password, user_name, session=session)
    slots = db.key_slots()
    with db.session() as session:
        exists = session.execute(
            select(func.count()).select_from(User).where(User.user_name == user_name)
        ).scalar_one()
        if exists:
            raise UserFacingError(f"A user called {user_name} already exists.")
        user = User(
            user_name=user_name,
            full_name=full_name.strip(),
            role=str(role),
            can_manage_users=can_manage_users,
            npi=npi or None,
            dea_number=dea_number or None,
            licence_states=",".join(licence_states),
            password_changed_at=datetime.now(UTC),
        )
        session.add(user)
        session.flush()
        record_event(
            session,
            actor,
            audit_actions.USER_ADDED,
            detail=f"user {user_name} role {role}"
            + (", manages users" if can_manage_users else ""),
        )
        # The slot file is written last, inside the transaction: if it fails, no user row.
        slots.add_user_slot(db.database_key(), user_name, password)
        slots.save(db.path)
        return _info(user)


def change_own_password(
    db: PracticeDatabase, actor: Actor, old_password: str, new_password: str
) -> None:
    slots = db.key_slots()
    slots.unwrap_for_user(actor.user_name, old_password)  # raises "Wrong user name or password"
    _set_password(db, actor, actor.user_name, new_password, audit_actions.PASSWORD_CHANGED, slots)


def reset_password(db: PracticeDatabase, actor: Actor, user_name: str, new_password: str) -> None:
    require(actor, Permission.MANAGE_USERS, "reset other users' passwords")
    get_user(db, user_name)
    _set_password(db, actor, user_name, new_password, audit_actions.PASSWORD_RESET, db.key_slots())


def _set_password(
    db: PracticeDatabase,
    actor: Actor,
    user_name: str,
    new_password: str,
    action: str,
    slots: object,
) -> None:
    from ketadesk.storage.security.keyslots import KeySlotFile

    assert isinstance(slots, KeySlotFile)
    with db.session() as session:
        check_new_password(new_password, user_name, session=session, slots=slots)
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one()
        user.password_changed_at = datetime.now(UTC)
        record_event(session, actor, action, detail=f"user {user_name}")
    # Only once the audit event is committed is the slot rewrapped: a full disk can leave the
    # old password working with the event recorded, never a new password without its event.
    slots.add_user_slot(db.database_key(), user_name, new_password)  # rewraps this slot only
    slots.save(db.path)


def set_role(
    db: PracticeDatabase, actor: Actor, user_name: str, role: Role, can_manage_users: bool
) -> None:
    require(actor, Permission.MANAGE_USERS, "change roles")
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
        if user is None:
            raise UserFacingError(f"There is no user called {user_name}.")
        if user.can_manage_users and not can_manage_users:
            _ensure_another_manager(session, user_name)
        before = f"{user.role}{' +manage_users' if user.can_manage_users else ''}"
        user.role = str(role)
        user.can_manage_users = can_manage_users
        after = f"{role}{' +manage_users' if can_manage_users else ''}"
        record_event(
            session,
            actor,
            audit_actions.ROLE_CHANGED,
            detail=f"user {user_name}: {before} -> {after}",
        )


def remove_user(db: PracticeDatabase, actor: Actor, user_name: str) -> None:
    """Deactivate the user (their audit history stays) and delete their key slots."""
    require(actor, Permission.MANAGE_USERS, "remove users")
    if user_name == actor.user_name:
        raise UserFacingError("You cannot remove yourself.")
    slots = db.key_slots()
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
        if user is None:
            raise UserFacingError(f"There is no user called {user_name}.")
        if user.can_manage_users:
            _ensure_another_manager(session, user_name)
        user.is_active = False
        record_event(session, actor, audit_actions.USER_REMOVED, detail=f"user {user_name}")
        slots.remove_user_slots(user_name)
        slots.save(db.path)


def _ensure_another_manager(session: object, user_name: str) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    others = session.execute(
        select(func.count())
        .select_from(User)
        .where(
            User.can_manage_users.is_(True), User.is_active.is_(True), User.user_name != user_name
        )
    ).scalar_one()
    if not others:
        raise UserFacingError("At least one active user must keep the right to manage users.")


def set_credentials(
    db: PracticeDatabase,
    actor: Actor,
    user_name: str,
    *,
    npi: str | None,
    dea_number: str | None,
    licence_states: tuple[str, ...],
) -> None:
    if actor.user_name != user_name:
        require(actor, Permission.MANAGE_USERS, "change another user's credentials")
    _check_credentials(npi, dea_number, licence_states)
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one()
        user.npi, user.dea_number = npi or None, dea_number or None
        user.licence_states = ",".join(licence_states)
        record_event(
            session, actor, audit_actions.USER_UPDATED, detail=f"user {user_name} credentials"
        )
