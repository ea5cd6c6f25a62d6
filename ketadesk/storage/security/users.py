"""User management: add, change passwords, roles, remove. Each change rewraps one key slot."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.dea_number import dea_number_problem
from ketadesk.core.display_names import check_full_name
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, Role, require
from ketadesk.models.signing import UserGrant
from ketadesk.models.users import User
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import PracticeDatabase, check_user_name
from ketadesk.storage.security.grants import (
    check_grants,
    forget_slot_grants,
    is_first_physician,
    resign_with_new_key,
    write_grant,
    write_slot_grant,
)
from ketadesk.storage.security.keyslots import KeySlot, KeySlotFile, SlotSecrets
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.security.signing_keys import Signer, new_private_key, public_key_of

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
    # The users table disagrees with the signed grant (or there is no valid grant): the row
    # was changed outside KetaDesk. Role and manage_users above are then the grant's.
    is_row_unsigned: bool = False


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


def check_credentials(npi: str | None, dea_number: str | None, states: tuple[str, ...]) -> None:
    if npi and not is_valid_npi(npi):
        raise UserFacingError("The NPI must be 10 digits with a valid check digit.")
    if dea_number:
        problem = dea_number_problem(dea_number)
        if problem:
            raise UserFacingError(problem)
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


def users_as_stored(session: Session) -> list[UserInfo]:
    """Every user as the users table has them, by user name (on a practice server the
    database's own roles are the grants, so this is the whole answer there)."""
    return [_info(u) for u in session.execute(select(User).order_by(User.user_name)).scalars()]


def list_users(db: PracticeDatabase) -> list[UserInfo]:
    """Every user, with role and manage_users as their signed grant says (once the practice
    signs grants); a row edited outside KetaDesk is flagged, never believed."""
    with db.session() as session:
        users = users_as_stored(session)
        if db.signer() is None or db.path is None:
            # Before signing keys; on a practice server the database's roles are the grants.
            return users
        check = check_grants(session, db.database_id, db.trust_root)
    result = []
    for info in users:
        grant = check.valid.get(info.user_name)
        if grant is None:
            result.append(replace(info, role=Role.ADMIN, can_manage_users=False,
                                  is_row_unsigned=True))
            continue
        differs = (str(info.role), info.can_manage_users, info.is_active) != (
            grant.role, grant.can_manage_users, grant.is_active
        )
        result.append(
            replace(
                info,
                role=Role(grant.role),
                can_manage_users=grant.can_manage_users,
                is_active=grant.is_active,
                is_row_unsigned=differs,
            )
        )
    return result


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
    check_credentials(npi, dea_number, licence_states)
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
        signer = db.signer()
        if signer is None:  # a database from before signing keys: the grant comes at enrolment
            slots.add_user_slot(db.database_key(), user_name, password)
        else:
            signing_key = new_private_key()
            slot = slots.add_user_slot(
                SlotSecrets(db.database_key(), signing_key, db.trust_root), user_name, password
            )
            write_grant(
                session,
                db.database_id,
                signer,
                user_name=user_name,
                role=str(role),
                can_manage_users=can_manage_users,
                public_key=public_key_of(signing_key),
            )
            write_slot_grant(session, db.database_id, signer, slot)
            slots.seal_for(db.database_key(), user_name, signing_key)
        # The slot file is written last, inside the transaction: if it fails, no user row.
        slots.save(db.path)
        return _info(user)


def change_own_password(
    db: PracticeDatabase, actor: Actor, old_password: str, new_password: str
) -> None:
    """Rewrap the user's own slot (same signing key) under the new password."""
    slots = db.key_slots()
    _slot, held = slots.open_user_slot(actor.user_name, old_password)  # wrong: raises
    _set_password(
        db, actor, actor.user_name, new_password, audit_actions.PASSWORD_CHANGED, slots, held
    )


def reset_password(db: PracticeDatabase, actor: Actor, user_name: str, new_password: str) -> None:
    """A manager cannot read the user's signing key: the user gets a new key pair, granted by
    the manager; the old public key is kept (retired) so their earlier events still verify,
    and what they had signed as a manager (grants, slots) is signed again with the new key."""
    require(actor, Permission.MANAGE_USERS, "reset other users' passwords")
    get_user(db, user_name)
    with db.session() as session:
        grant = session.get(UserGrant, user_name)
        if is_first_physician(grant, db.trust_root):
            raise UserFacingError(
                f"{user_name} is the first physician: their password is changed with their "
                "own old password (or the recovery key: 'python -m ketadesk recover'), never "
                "reset, because every other user's grant depends on their key."
            )
    _set_password(
        db, actor, user_name, new_password, audit_actions.PASSWORD_RESET, db.key_slots(), None
    )
    # An old copy of the key file (the old password's slot) must open nothing current.
    db.rotate_database_key(actor, f"password of {user_name} reset")


def _set_password(
    db: PracticeDatabase,
    actor: Actor,
    user_name: str,
    new_password: str,
    action: str,
    slots: KeySlotFile,
    held: SlotSecrets | None,
) -> None:
    with db.session() as session:
        check_new_password(new_password, user_name, session=session, slots=slots)
    signer = db.signer()
    new_slot: KeySlot | None = None
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one()
        user.password_changed_at = datetime.now(UTC)
        record_event(session, actor, action, detail=f"user {user_name}")
        old_ids = [s.slot_id for s in slots.user_slots(user_name)]
        if signer is None:  # before signing keys
            pass
        elif held is not None and held.signing_key is not None:
            new_slot = slots.add_user_slot(
                SlotSecrets(db.database_key(), held.signing_key, db.trust_root),
                user_name,
                new_password,
            )
            write_slot_grant(session, db.database_id, signer, new_slot)
        else:
            grant = session.get(UserGrant, user_name)
            signing_key = new_private_key()
            new_slot = slots.add_user_slot(
                SlotSecrets(db.database_key(), signing_key, db.trust_root),
                user_name,
                new_password,
            )
            write_grant(
                session,
                db.database_id,
                signer,
                user_name=user_name,
                role=grant.role if grant else user.role,
                can_manage_users=grant.can_manage_users if grant else user.can_manage_users,
                public_key=public_key_of(signing_key),
            )
            write_slot_grant(session, db.database_id, signer, new_slot)
            # A manager's grants and slots were signed with the key they lost: signed again
            # with their new one, or the users they added could no longer log in.
            resign_with_new_key(session, db.database_id, Signer(user_name, signing_key))
            slots.envelopes = [e for e in slots.envelopes if e.owner != user_name]
            slots.seal_for(db.database_key(), user_name, signing_key)
    # Only once the audit event (and the new slot's place on the allow-list) is committed is
    # the key file written: a full disk can leave the old password working with the event
    # recorded, never a new password without its event.
    if signer is None:
        slots.add_user_slot(db.database_key(), user_name, new_password)  # this slot only
    slots.save(db.path)
    if new_slot is not None:
        with db.session() as session:
            forget_slot_grants(session, old_ids)  # the old password's slot is off the list


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
        _grant_role(db, session, user_name, str(role), can_manage_users, user.is_active)
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
        _grant_role(db, session, user_name, user.role, user.can_manage_users, False)
        forget_slot_grants(
            session, [s.slot_id for s in slots.slots if s.user_name == user_name]
        )
        slots.remove_user_slots(user_name)
        slots.envelopes = [e for e in slots.envelopes if e.owner != user_name]
        slots.save(db.path)
    # The removed user may have kept the key: re-encrypt under one they never held.
    db.rotate_database_key(actor, f"user {user_name} removed")


def _grant_role(
    db: PracticeDatabase,
    session: Session,
    user_name: str,
    role: str,
    can_manage_users: bool,
    is_active: bool,
) -> None:
    """Re-sign the user's grant with the acting manager's key (their public key unchanged).

    The first physician's self-signed grant anchors every other; it is never re-signed, so
    that physician keeps manage_users and stays active. When a manager loses manage_users,
    the grants they signed are re-signed by the acting manager so those users keep working."""
    signer = db.signer()
    if signer is None:
        return  # before signing keys: the users table is all there is
    grant = session.get(UserGrant, user_name)
    if is_first_physician(grant, db.trust_root):
        if not (can_manage_users and is_active):
            raise UserFacingError(
                f"{user_name} is the first physician, whose signed grant anchors every other "
                "user's; they keep the right to manage users and cannot be removed."
            )
        if signer.public_key != db.trust_root:
            # Only the root key itself may sign this grant again (after a recovery it is the
            # recovery key's): anyone else's signature would leave no grant anchored.
            raise UserFacingError(
                f"{user_name} is the first physician: their signed grant anchors every other "
                "user's and is not signed again; nothing was changed."
            )
    write_grant(
        session,
        db.database_id,
        signer,
        user_name=user_name,
        role=role,
        can_manage_users=can_manage_users,
        is_active=is_active,
        public_key=None if grant is None else grant.public_key,
    )
    if not can_manage_users or not is_active:
        for signed in session.execute(
            select(UserGrant).where(UserGrant.granted_by == user_name)
        ).scalars().all():
            if signed.user_name == user_name:
                continue
            write_grant(
                session,
                db.database_id,
                signer,
                user_name=signed.user_name,
                role=signed.role,
                can_manage_users=signed.can_manage_users,
                is_active=signed.is_active,
                public_key=signed.public_key,
            )


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
    check_credentials(npi, dea_number, licence_states)
    with db.session() as session:
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one()
        user.npi, user.dea_number = npi or None, dea_number or None
        user.licence_states = ",".join(licence_states)
        record_event(
            session, actor, audit_actions.USER_UPDATED, detail=f"user {user_name} credentials"
        )
