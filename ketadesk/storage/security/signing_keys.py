"""Ed25519 signing keys and the exact bytes each kind of signature covers.

Each message is canonical JSON naming what is signed and the database it belongs to, so a
signature cannot be moved to another kind of record, another row or another practice.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNING_KEY_BYTES = 32
SYSTEM_SIGNER = "system"  # the practice-held key: failed log-ins and events before any log-in
# The key derived from the recovery key (never a user name: it has a space). Its grant is signed
# by the first physician at ``init``; it may sign only a new key for a user who manages users
# and the ``recovery_key_used`` event that says so.
RECOVERY_SIGNER = "recovery key"
RECOVERY_ROLE = "recovery"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def new_private_key() -> bytes:
    """32 random bytes: a raw Ed25519 private key."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def public_key_of(private_raw: bytes) -> str:
    """The base64 raw public key of a raw private key."""
    public = Ed25519PrivateKey.from_private_bytes(private_raw).public_key()
    return _b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass(frozen=True, repr=False)
class Signer:
    """Who signs (a user name or ``SYSTEM_SIGNER``) and their private key (never printed)."""

    user_name: str
    private_raw: bytes

    @property
    def public_key(self) -> str:
        return public_key_of(self.private_raw)

    def sign(self, message: bytes) -> str:
        return _b64(Ed25519PrivateKey.from_private_bytes(self.private_raw).sign(message))

    def __repr__(self) -> str:
        return f"Signer({self.user_name!r})"


def signature_is_valid(public_key: str | None, message: bytes, signature: str | None) -> bool:
    """True when ``signature`` (base64) by ``public_key`` (base64 raw) covers ``message``."""
    if not public_key or not signature:
        return False
    try:
        _public_key(public_key).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def _public_key(public_key: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))


def _canonical(kind: str, database_id: str, **fields: object) -> bytes:
    return json.dumps(
        {"kind": kind, "database_id": database_id, **fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")


def grant_message(
    database_id: str,
    *,
    user_name: str,
    role: str,
    can_manage_users: bool,
    is_active: bool,
    public_key: str | None,
    retired_public_keys: str,
    granted_by: str,
) -> bytes:
    return _canonical(
        "user_grant",
        database_id,
        user_name=user_name,
        role=role,
        can_manage_users=bool(can_manage_users),
        is_active=bool(is_active),
        public_key=public_key,
        retired_public_keys=retired_public_keys,
        granted_by=granted_by,
    )


def slot_grant_message(
    database_id: str, *, slot_id: str, owner: str, kind: str, generation: int, signed_by: str
) -> bytes:
    return _canonical(
        "slot_grant",
        database_id,
        slot_id=slot_id,
        owner=owner,
        slot_kind=kind,
        generation=int(generation),
        signed_by=signed_by,
    )


def audit_event_message(database_id: str, *, seq: int, row_hash: str, signed_by: str) -> bytes:
    return _canonical("audit_event", database_id, seq=int(seq), row_hash=row_hash,
                      signed_by=signed_by)


def content_message(
    database_id: str, *, subject_kind: str, subject_id: int, content_hash: str, signed_by: str
) -> bytes:
    return _canonical(
        "content",
        database_id,
        subject_kind=subject_kind,
        subject_id=int(subject_id),
        content_hash=content_hash,
        signed_by=signed_by,
    )
