"""Per-user signing keys on a practice server: kept there wrapped by each user's password.

On a practice file each user's Ed25519 key lives in their key slot. A server has no key file:
the key is stored in ``server_signing_keys``, sealed with AES-256-GCM under a key derived from
the user's password with argon2id (the same settings as a key slot). Row-level security lets
each login role read only its own row, and ``ketadesk_store_signing_key`` writes only the
caller's own (migration 0017); the server never sees the private key or the password.

At log-in the client unwraps the key (or makes one, the first time, or when a manager reset the
password and the old one cannot be opened) and signs audit events and physicians' content
signatures with it, exactly as on a practice file. ``verify-audit`` checks them against every
public key each user has registered on the server (``server_public_keys``, append-only): who
could have signed is decided by the database's roles, which only the user's password opens.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.permissions import Actor
from ketadesk.models.server_keys import ServerPublicKey, ServerSigningKey
from ketadesk.models.users import User
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.audit_signatures import SIGNER_KEY
from ketadesk.storage.security.grants import GrantCheck, GrantInfo, check_grants
from ketadesk.storage.security.kdf_bounds import ALLOWED
from ketadesk.storage.security.keyslots import KdfParams
from ketadesk.storage.security.signing_keys import (
    RECOVERY_SIGNER,
    Signer,
    new_private_key,
    public_key_of,
)
from ketadesk.storage.server.recovery_role import RECOVERY_EVENT_ROLE

WRAP_FORMAT = "ketadesk-server-signing-key-1"
# Who vouches for a key on a server: the database role that stored it (no manager's signature).
GRANTED_BY_SERVER = "server"


def _associated_data(database_id: str, user_name: str, public_key: str, salt: str,
                     kdf_params: str) -> bytes:
    """What the sealed key is bound to: moving it to another user, practice or public key
    fails to open."""
    return json.dumps(
        {
            "format": WRAP_FORMAT,
            "database_id": database_id,
            "user_name": user_name,
            "public_key": public_key,
            "salt": salt,
            "kdf": kdf_params,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def _kdf_from(stored: str) -> KdfParams | None:
    """The stored argon2id settings, or None when unreadable or outside what KetaDesk allows
    (checked before any work, so absurd settings cannot hang a log-in)."""
    try:
        values = json.loads(stored)
        kdf = KdfParams(
            time_cost=int(values["time_cost"]),
            memory_kib=int(values["memory_kib"]),
            parallelism=int(values["parallelism"]),
        )
    except (ValueError, TypeError, KeyError):
        return None
    in_range = (
        ALLOWED.time_cost[0] <= kdf.time_cost <= ALLOWED.time_cost[1]
        and ALLOWED.memory_kib[0] <= kdf.memory_kib <= ALLOWED.memory_kib[1]
        and ALLOWED.parallelism[0] <= kdf.parallelism <= ALLOWED.parallelism[1]
    )
    return kdf if in_range else None


def _wrap(database_id: str, user_name: str, private_raw: bytes, password: str) -> dict[str, str]:
    kdf = KdfParams()
    salt = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    params = json.dumps(
        {k: v for k, v in asdict(kdf).items() if k != "name"}, sort_keys=True
    )
    public_key = public_key_of(private_raw)
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(kdf.derive(password.encode("utf-8"), base64.b64decode(salt))).encrypt(
        nonce, private_raw, _associated_data(database_id, user_name, public_key, salt, params)
    )
    return {
        "public_key": public_key,
        "wrapped_key": base64.b64encode(nonce + sealed).decode("ascii"),
        "kdf_salt": salt,
        "kdf_params": params,
    }


def _unwrap(database_id: str, row: ServerSigningKey, password: str) -> bytes | None:
    """The private key, or None when this password (or this row) does not open it."""
    kdf = _kdf_from(row.kdf_params)
    if kdf is None:
        return None
    try:
        blob = base64.b64decode(row.wrapped_key, validate=True)
        salt = base64.b64decode(row.kdf_salt, validate=True)
        private = AESGCM(kdf.derive(password.encode("utf-8"), salt)).decrypt(
            blob[:12],
            blob[12:],
            _associated_data(database_id, row.user_name, row.public_key, row.kdf_salt,
                             row.kdf_params),
        )
    except (InvalidTag, ValueError):
        return None
    if len(private) != 32 or public_key_of(private) != row.public_key:
        return None
    return private


def store_signing_key(
    session: Session, database_id: str, user_name: str, private_raw: bytes, password: str
) -> None:
    """Store the caller's own key wrapped by ``password`` (a new key, or the same one under a
    new password) through the server's function, in the caller's transaction."""
    session.execute(
        text(
            "SELECT ketadesk_store_signing_key(:public_key, :wrapped_key, :kdf_salt, "
            ":kdf_params)"
        ),
        _wrap(database_id, user_name, private_raw, password),
    )


def signer_at_log_in(session: Session, database_id: str, actor: Actor, password: str) -> Signer:
    """The logged-in user's signing key, unwrapped with their password; made and stored the
    first time (or when the stored one cannot be opened: a manager reset the password), with
    an audit event naming the new key's user."""
    row = session.get(ServerSigningKey, actor.user_name)  # the server shows only our own
    if row is not None:
        private = _unwrap(database_id, row, password)
        if private is not None:
            return Signer(actor.user_name, private)
    private = new_private_key()
    store_signing_key(session, database_id, actor.user_name, private, password)
    signer = Signer(actor.user_name, private)
    session.info[SIGNER_KEY] = signer  # the event below is signed with the new key
    record_event(
        session,
        actor,
        audit_actions.SIGNING_KEY_GRANTED,
        detail=f"user {actor.user_name}: new signing key stored on the practice server",
    )
    return signer


def server_grant_check(session: Session, database_id: str) -> GrantCheck:
    """Every user's public keys (newest first) as the grants ``verify-audit`` checks signatures
    against: those registered on the server, where the database's roles vouch for them, then
    those of a practice moved from a file (``server import-practice``), whose grants count
    only when signed back to the file's pinned first physician, as on the file."""
    from ketadesk.models.practice import PracticeMeta
    from ketadesk.storage.security.database import TRUST_ROOT_META

    root = session.get(PracticeMeta, TRUST_ROOT_META)
    from_file = check_grants(session, database_id, None if root is None else root.value)
    users = {u.user_name: u for u in session.execute(select(User)).scalars()}
    keys: dict[str, list[str]] = {}
    for row in session.execute(
        select(ServerPublicKey).order_by(ServerPublicKey.id.desc())
    ).scalars():
        keys.setdefault(row.user_name, []).append(row.public_key)
    valid = dict(from_file.valid)
    for name, held in keys.items():
        user = users.get(name)
        if name == RECOVERY_SIGNER:
            # The recovery keys' own (listed by ketadesk_set_recovery_key, which only the
            # owner and user managers may call); they sign the recovery_key_used events. A
            # practice moved from a file keeps the file's recovery key for its earlier events.
            earlier = from_file.verifying_keys().get(name, ())
            valid[name] = GrantInfo(
                name, RECOVERY_EVENT_ROLE, False, True, held[0], GRANTED_BY_SERVER,
                tuple(held[1:]) + tuple(k for k in earlier if k not in held),
            )
            continue
        if user is None:
            continue
        earlier = from_file.verifying_keys().get(name, ())
        valid[name] = GrantInfo(
            name,
            user.role,
            user.can_manage_users,
            user.is_active,
            held[0],
            GRANTED_BY_SERVER,
            tuple(held[1:]) + tuple(k for k in earlier if k not in held),
        )
    return GrantCheck(valid, from_file.refused, bool(keys) or from_file.has_grants)
