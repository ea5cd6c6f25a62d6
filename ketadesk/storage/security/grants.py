"""Signed role grants and the signed allow-list of key slots, checked at every log-in.

A user's role, permissions and public key count only when their grant is signed by a user whose
own grant is valid and manages users; the first physician's grant is self-signed and pinned
inside every key slot (``SlotSecrets.trust_root``). A key slot opens the database only when its
id, owner and kind are on the allow-list, signed by its owner or by a user who manages users.
Editing the users table, adding a slot to the key file or writing a grant by hand gains nothing.

The recovery key is a second root: at ``init`` the first physician signs a grant for the key
derived from it (``RECOVERY_SIGNER``), and that grant counts when the pinned root key signed it,
even after the first physician's own key was replaced by a recovery. The recovery key may sign
only a new key for an active user who manages users (and the event saying so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ketadesk.models.practice import PracticeMeta
from ketadesk.models.signing import SlotGrant, UserGrant
from ketadesk.storage.security.keyslots import KeySlot
from ketadesk.storage.security.signing_keys import (
    RECOVERY_ROLE,
    RECOVERY_SIGNER,
    SYSTEM_SIGNER,
    Signer,
    grant_message,
    new_private_key,
    signature_is_valid,
    slot_grant_message,
)

PRACTICE_KEY_META = "practice_signing_key"


@dataclass(frozen=True)
class GrantInfo:
    """A grant whose signature chain leads to the pinned first physician."""

    user_name: str
    role: str
    can_manage_users: bool
    is_active: bool
    public_key: str | None
    granted_by: str
    retired_public_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantCheck:
    valid: dict[str, GrantInfo]
    # user names whose grant is unsigned, forged or signed by a non-manager
    refused: tuple[str, ...]
    has_grants: bool
    # The pinned root key signed a grant here: the first physician's own, or the recovery
    # key's (which then vouches for the first physician's recovered key).
    is_rooted: bool = False

    def verifying_keys(self) -> dict[str, tuple[str, ...]]:
        """Every key each validly granted signer has signed with (current first)."""
        return {
            name: ((g.public_key,) if g.public_key else ()) + g.retired_public_keys
            for name, g in self.valid.items()
        }


def _slot_message(database_id: str, row: SlotGrant) -> bytes:
    """What a slot grant's signature covers, from its row (signing and checking alike)."""
    return slot_grant_message(
        database_id,
        slot_id=row.slot_id,
        owner=row.owner,
        kind=row.kind,
        generation=row.generation,
        signed_by=row.signed_by,
    )


def _message(database_id: str, row: UserGrant) -> bytes:
    return grant_message(
        database_id,
        user_name=row.user_name,
        role=row.role,
        can_manage_users=row.can_manage_users,
        is_active=row.is_active,
        public_key=row.public_key,
        retired_public_keys=row.retired_public_keys or "",
        granted_by=row.granted_by,
    )


def write_grant(
    session: Session,
    database_id: str,
    signer: Signer,
    *,
    user_name: str,
    role: str,
    can_manage_users: bool,
    is_active: bool = True,
    public_key: str | None,
) -> None:
    """Write (or replace) the user's grant, signed by ``signer``."""
    row = session.get(UserGrant, user_name)
    if row is None:
        row = UserGrant(user_name=user_name)
        session.add(row)
    row.role, row.can_manage_users, row.is_active = role, can_manage_users, is_active
    retired = (row.retired_public_keys or "").split()
    if row.public_key and public_key != row.public_key and row.public_key not in retired:
        retired.append(row.public_key)
    row.retired_public_keys = " ".join(retired)
    row.public_key, row.proposed_public_key = public_key, None
    row.granted_by, row.granted_at = signer.user_name, datetime.now(UTC)
    row.signature = signer.sign(_message(database_id, row))
    session.flush()


def propose_public_key(session: Session, user_name: str, public_key: str) -> None:
    """A user who logged in before holding a signing key proposes one; a manager signs it at
    their next log-in (``sign_proposed_keys``)."""
    row = session.get(UserGrant, user_name)
    if row is not None and row.public_key is None:
        row.proposed_public_key = public_key
        session.flush()


def sign_proposed_keys(
    session: Session, database_id: str, signer: Signer, check: GrantCheck
) -> list[str]:
    """Grant every proposed key of a user with a valid pending grant; returns their names."""
    granted = []
    for row in session.execute(
        select(UserGrant).where(UserGrant.proposed_public_key.is_not(None))
    ).scalars():
        info = check.valid.get(row.user_name)
        if info is None or info.public_key is not None or row.proposed_public_key is None:
            continue
        write_grant(
            session,
            database_id,
            signer,
            user_name=row.user_name,
            role=info.role,
            can_manage_users=info.can_manage_users,
            is_active=info.is_active,
            public_key=row.proposed_public_key,
        )
        granted.append(row.user_name)
    return granted


def check_grants(session: Session, database_id: str, trust_root: str | None) -> GrantCheck:
    """Which grants are valid: the pinned root's self-signed grant, then every grant signed by
    a user whose valid grant manages users (repeated until nothing more is added)."""
    rows = {r.user_name: r for r in session.execute(select(UserGrant)).scalars()}
    valid: dict[str, GrantInfo] = {}

    def info(row: UserGrant) -> GrantInfo:
        return GrantInfo(row.user_name, row.role, row.can_manage_users, row.is_active,
                         row.public_key, row.granted_by,
                         tuple((row.retired_public_keys or "").split()))

    if trust_root is not None:
        for row in rows.values():
            if (
                row.public_key == trust_root
                and row.granted_by == row.user_name
                and row.can_manage_users
                and signature_is_valid(trust_root, _message(database_id, row), row.signature)
            ):
                valid[row.user_name] = info(row)
                break
        recovery = rows.get(RECOVERY_SIGNER)
        if (
            recovery is not None
            and recovery.role == RECOVERY_ROLE
            and signature_is_valid(trust_root, _message(database_id, recovery), recovery.signature)
        ):
            valid[RECOVERY_SIGNER] = info(recovery)
    is_rooted = bool(valid)
    added = True
    while added:
        added = False
        for name, row in rows.items():
            if name in valid:
                continue
            signer = valid.get(row.granted_by)
            if signer is None or not signer.can_manage_users or signer.role == SYSTEM_SIGNER:
                continue
            if signer.role == RECOVERY_ROLE and not (row.can_manage_users and row.is_active):
                continue  # the recovery key gives a new key only to an active user manager
            if signature_is_valid(signer.public_key, _message(database_id, row), row.signature):
                valid[name] = info(row)
                added = True
    refused = tuple(sorted(set(rows) - set(valid)))
    return GrantCheck(valid, refused, bool(rows), is_rooted)


def is_first_physician(grant: UserGrant | GrantInfo | None, trust_root: str | None) -> bool:
    """Whether ``grant`` is the first physician's: it holds the pinned root key, or held it
    before a recovery gave them a new one."""
    if grant is None or trust_root is None:
        return False
    retired = grant.retired_public_keys or ""
    if isinstance(retired, str):
        retired = tuple(retired.split())
    return grant.public_key == trust_root or trust_root in retired


def grant_recovery_key(
    session: Session, database_id: str, root: Signer, recovery_public_key: str
) -> None:
    """The first physician (holding the root key) vouches for the recovery key's signing key."""
    write_grant(
        session,
        database_id,
        root,
        user_name=RECOVERY_SIGNER,
        role=RECOVERY_ROLE,
        can_manage_users=True,
        public_key=recovery_public_key,
    )


def resign_with_new_key(session: Session, database_id: str, signer: Signer) -> list[str]:
    """Sign again, with ``signer``'s new key, every user grant and key-slot grant they signed
    with the key they lost (content unchanged); returns the user names whose grant was
    re-signed. A grant's signature is checked against its signer's current key only; the
    recovery key's grant keeps the root key's signature, which is what it is checked by."""
    resigned = []
    for row in session.execute(
        select(UserGrant).where(
            UserGrant.granted_by == signer.user_name,
            UserGrant.user_name.not_in((signer.user_name, RECOVERY_SIGNER)),  # root-signed
        )
    ).scalars():
        row.signature = signer.sign(_message(database_id, row))
        resigned.append(row.user_name)
    for slot_row in session.execute(
        select(SlotGrant).where(SlotGrant.signed_by == signer.user_name)
    ).scalars():
        slot_row.signature = signer.sign(_slot_message(database_id, slot_row))
    session.flush()
    return sorted(resigned)


def write_slot_grant(
    session: Session, database_id: str, signer: Signer, slot: KeySlot, generation: int = 1
) -> None:
    row = session.get(SlotGrant, slot.slot_id)
    if row is None:
        row = SlotGrant(slot_id=slot.slot_id)
        session.add(row)
    row.owner, row.kind, row.generation, row.signed_by = (
        slot.user_name,
        slot.kind,
        generation,
        signer.user_name,
    )
    row.signature = signer.sign(_slot_message(database_id, row))
    session.flush()


def forget_slot_grants(session: Session, slot_ids: list[str]) -> None:
    if slot_ids:
        session.execute(delete(SlotGrant).where(SlotGrant.slot_id.in_(slot_ids)))


def slot_problem(
    session: Session, database_id: str, slot: KeySlot, check: GrantCheck
) -> str | None:
    """None when ``slot`` is on the signed allow-list; otherwise why it is refused."""
    row = session.get(SlotGrant, slot.slot_id)
    refused = (
        f"The {slot.kind} key slot used to log in as {slot.user_name or 'recovery'} is not on "
        "the practice's signed list of key slots (it was added to the key file outside "
        "KetaDesk). Log-in refused; nothing was changed."
    )
    if row is None or row.owner != slot.user_name or row.kind != slot.kind:
        return refused
    signer = check.valid.get(row.signed_by)
    if signer is None or not (signer.can_manage_users or row.signed_by == slot.user_name):
        return refused
    if signer.role == RECOVERY_ROLE:
        return refused  # the recovery key never puts a slot on the list
    message = _slot_message(database_id, row)
    return None if signature_is_valid(signer.public_key, message, row.signature) else refused


def practice_signer(session: Session) -> Signer | None:
    """The practice-held key the software signs failed log-ins and system events with."""
    import base64

    row = session.get(PracticeMeta, PRACTICE_KEY_META)
    if row is None:
        return None
    return Signer(SYSTEM_SIGNER, base64.b64decode(row.value))


def create_practice_key(session: Session, database_id: str, manager: Signer) -> Signer:
    """A new practice key, granted (role "system") by ``manager``."""
    import base64

    private = new_private_key()
    row = session.get(PracticeMeta, PRACTICE_KEY_META)
    if row is None:
        session.add(PracticeMeta(key=PRACTICE_KEY_META, value=base64.b64encode(private).decode()))
    else:
        row.value = base64.b64encode(private).decode()
    signer = Signer(SYSTEM_SIGNER, private)
    write_grant(
        session,
        database_id,
        manager,
        user_name=SYSTEM_SIGNER,
        role=SYSTEM_SIGNER,
        can_manage_users=False,
        public_key=signer.public_key,
    )
    return signer
