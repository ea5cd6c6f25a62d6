"""The way back when a user manager's password is forgotten: the practice's recovery key.

``recover_with_key`` gives an active user who manages users (the first physician included) a
new password. Their signing key was kept only under the forgotten password, so they get a new
key pair, granted by the recovery key's own signing key (derived from the recovery key; the
first physician vouched for it at ``init``). Their old public key is kept (retired), so what
they signed before still verifies; the user grants and key slots they had signed are signed
again with their new key, by them. The recovery key signs exactly two things: that grant and
the ``recovery_key_used`` event naming the user; ``verify-audit`` shows both, and refuses any
other event or slot it signed. The database is then re-encrypted under a new key, as after a
password reset, so a copy of the old key file with the forgotten password opens nothing
current. The recovery key itself keeps working (its envelope is sealed again at the rotation).

A wrong recovery key changes no file. A practice created before recovery signing (no grant for
the recovery key) is refused in words: its recovery key still opens the database, but cannot
vouch for a new signing key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.models.signing import SlotGrant, UserGrant
from ketadesk.models.users import User
from ketadesk.storage.security import attempts
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.audit_signatures import SIGNER_KEY
from ketadesk.storage.security.database import (
    PracticeDatabase,
    actor_from_user,
    key_that_opens,
)
from ketadesk.storage.security.database_location import check_database_location
from ketadesk.storage.security.grants import (
    check_grants,
    forget_slot_grants,
    is_first_physician,
    resign_with_new_key,
    write_grant,
    write_slot_grant,
)
from ketadesk.storage.security.keyslots import KeySlotFile, SlotSecrets, recovery_signing_key
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.security.signing_keys import (
    RECOVERY_ROLE,
    RECOVERY_SIGNER,
    Signer,
    new_private_key,
)


@dataclass(frozen=True)
class RecoveryOutcome:
    """What a recovery did, for the person who ran it."""

    user_name: str
    is_first_physician: bool
    resigned_grants: tuple[str, ...]  # users whose grant the recovered user had signed
    database_key_rotated: bool


def recover_with_key(
    path: Path, recovery_key: str, user_name: str, new_password: str
) -> RecoveryOutcome:
    """Give ``user_name`` (an active user who manages users) ``new_password``, proving the
    right to with the practice's recovery key. Raises in plain words, changing nothing, when
    the key is wrong, the user may not be recovered, or the password is too weak."""
    path = Path(path)
    if not path.exists():
        raise UserFacingError(
            f"There is no practice database at {path}; check the --db path. Nothing was changed."
        )
    check_database_location(path)
    user_name = user_name.strip().lower()
    slots = KeySlotFile.load(path)
    opened = slots.open_with_recovery_key(recovery_key)  # a wrong key raises: nothing touched
    root = opened.trust_root
    if root is None:
        raise UserFacingError(
            "This practice database was created before signing keys, so its recovery key "
            "cannot vouch for a new password. Nothing was changed."
        )
    check_new_password(new_password, user_name)
    database = PracticeDatabase.open_with_key(path, key_that_opens(path, opened), slots)
    try:
        return _recover(database, slots, root, recovery_key, user_name, new_password)
    finally:
        database.close()


def _recover(
    database: PracticeDatabase,
    slots: KeySlotFile,
    root: str,
    recovery_key: str,
    user_name: str,
    new_password: str,
) -> RecoveryOutcome:
    recovery = Signer(RECOVERY_SIGNER, recovery_signing_key(recovery_key))
    signing_key = new_private_key()
    recovered = Signer(user_name, signing_key)
    key = database.database_key()
    with database.session() as session:
        check_new_password(new_password, user_name, session=session)
        check = check_grants(session, database.database_id, root)
        if not check.is_rooted:
            raise UserFacingError(
                "The practice's signed user grants were replaced (the first physician's grant "
                "pinned in the recovery key's slot is missing or forged). Nothing was changed; "
                "restore the newest good backup."
            )
        vouched = check.valid.get(RECOVERY_SIGNER)
        if vouched is None or vouched.public_key != recovery.public_key:
            raise UserFacingError(
                "This practice was created by an earlier KetaDesk, before the recovery key "
                "could give a new password: the key opens the database but cannot vouch for a "
                "new signing key. Nothing was changed. A user who manages users can reset "
                "other users' passwords (Users, Reset password); if no one who manages users "
                "remembers their password, this version cannot give one a new password."
            )
        user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
        grant = check.valid.get(user_name)
        if user is None or not user.is_active or grant is None or not grant.is_active:
            raise UserFacingError(
                f"There is no active user called {user_name[:64]} in this practice. Nothing "
                "was changed."
            )
        if not grant.can_manage_users:
            raise UserFacingError(
                f"{user_name} does not manage users. The recovery key gives a new password "
                "only to a user who manages users; ask one of them to reset it (Users, Reset "
                "password). Nothing was changed."
            )
        first = is_first_physician(grant, root)
        # 1. Signed by the recovery key: the user's new key, and the event that says so.
        session.info[SIGNER_KEY] = recovery
        write_grant(
            session,
            database.database_id,
            recovery,
            user_name=user_name,
            role=grant.role,
            can_manage_users=True,
            public_key=recovered.public_key,
        )
        record_event(
            session,
            (RECOVERY_SIGNER, RECOVERY_ROLE),
            audit_actions.RECOVERY_KEY_USED,
            detail=f"new password and signing key for {user_name}"
            + (" (the first physician)" if first else ""),
        )
        # 2. Signed by the user's new key: what they had signed with the lost one.
        session.info[SIGNER_KEY] = recovered
        resigned = resign_with_new_key(session, database.database_id, recovered)
        old_slot_ids = [s.slot_id for s in slots.slots if s.user_name == user_name]
        slots.remove_user_slots(user_name)  # the password slot and any "remember me" slots
        new_slot = slots.add_user_slot(SlotSecrets(key, signing_key, root), user_name, new_password)
        write_slot_grant(session, database.database_id, recovered, new_slot)
        slots.envelopes = [e for e in slots.envelopes if e.owner != user_name]
        slots.seal_for(key, user_name, signing_key)
        user.password_changed_at = datetime.now(UTC)
        actor = actor_from_user(user)
        record_event(
            session,
            actor,
            audit_actions.PASSWORD_RESET,
            detail=f"user {user_name} with the recovery key"
            + (f"; grants of {', '.join(resigned)} signed again" if resigned else ""),
        )
    # As with a reset: the key file is written only once the events are committed.
    slots.save(database.path)
    with database.session() as session:
        forget_slot_grants(session, old_slot_ids)
    database.adopt_signer(recovered, root)
    # A copy of the old key file (the forgotten password's slot) must open nothing current.
    rotated = database.rotate_database_key(actor, f"recovery key used for {user_name}")
    # The wrong passwords tried before are no reason to make them wait with the new one.
    attempts.forget_backoff(database.path, user_name)
    return RecoveryOutcome(user_name, first, tuple(resigned), rotated)


@dataclass(frozen=True)
class RecoveryUse:
    """One use of the recovery key, as the audit trail and the grants show it."""

    seq: int
    occurred_at: datetime
    detail: str


@dataclass(frozen=True)
class RecoveryReport:
    """Every use of the recovery key and everything it signed (for ``verify-audit``)."""

    uses: tuple[RecoveryUse, ...]
    events_signed: int
    grants_signed: tuple[str, ...]  # users whose current grant the recovery key signed
    slots_signed: int

    def describe(self) -> list[str]:
        if not (self.uses or self.events_signed or self.grants_signed or self.slots_signed):
            return ["recovery key: never used (it has signed nothing)"]
        lines = [
            f"recovery key used: event {use.seq} at {use.occurred_at:%Y-%m-%d %H:%M} UTC: "
            f"{use.detail}"
            for use in self.uses
        ]
        grants = ", ".join(self.grants_signed) or "none"
        lines.append(
            f"signed with the recovery key: {self.events_signed} events, user grants: "
            f"{grants}, key slots: {self.slots_signed}"
        )
        return lines


def recovery_report(session: Session) -> RecoveryReport:
    """What the recovery key has done in this practice: its uses and all it signed."""
    uses = tuple(
        RecoveryUse(row.seq, row.occurred_at, row.detail)
        for row in session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == audit_actions.RECOVERY_KEY_USED)
            .order_by(AuditEvent.seq)
        ).scalars()
    )
    events = len(
        session.execute(
            select(AuditEvent.seq).where(AuditEvent.signed_by == RECOVERY_SIGNER)
        ).all()
    )
    grants = tuple(
        session.execute(
            select(UserGrant.user_name)
            .where(UserGrant.granted_by == RECOVERY_SIGNER)
            .order_by(UserGrant.user_name)
        ).scalars()
    )
    slot_count = len(
        session.execute(
            select(SlotGrant.slot_id).where(SlotGrant.signed_by == RECOVERY_SIGNER)
        ).all()
    )
    return RecoveryReport(uses, events, grants, slot_count)
