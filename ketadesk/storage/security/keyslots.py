"""Per-user key slots: the random database key wrapped under each user's password.

The sidecar file ``<database>.keys.json`` holds one slot per user (plus a recovery slot and
optional "remembered on this computer" device slots). Each slot stores its argon2id parameters
and salt; the wrapped key is AES-256-GCM with the slot's identity and parameters bound as
associated data, so a slot cannot be moved to another user or database, nor its parameters
weakened, without the unwrap failing. No password or unwrapped key is ever written.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ketadesk.core.errors import UserFacingError
from ketadesk.core.private_files import write_private_bytes

KEYSLOT_FORMAT = 1
DATABASE_KEY_BYTES = 32
WRONG_CREDENTIALS = "Wrong user name or password."


@dataclass(frozen=True)
class KdfParams:
    """argon2id parameters: time cost (passes), memory (KiB), parallelism (lanes)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 2
    name: str = "argon2id"

    def derive(self, secret: bytes, salt: bytes) -> bytes:
        """A 256-bit wrapping key from ``secret`` (a password or recovery key)."""
        return hash_secret_raw(
            secret,
            salt,
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            hash_len=32,
            type=Type.ID,
        )


MIN_MEMORY_KIB = 65536


@dataclass(frozen=True)
class KeySlot:
    slot_id: str
    kind: str  # "user", "recovery" or "device"
    user_name: str
    kdf: KdfParams
    salt: str
    nonce: str
    wrapped_key: str

    def associated_data(self, database_id: str) -> bytes:
        bound = {
            "format": KEYSLOT_FORMAT,
            "database_id": database_id,
            "slot_id": self.slot_id,
            "kind": self.kind,
            "user_name": self.user_name,
            "kdf": asdict(self.kdf),
            "salt": self.salt,
        }
        return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _wrap(
    database_id: str, key: bytes, secret: bytes, *, kind: str, user_name: str, kdf: KdfParams
) -> KeySlot:
    if kdf.memory_kib < MIN_MEMORY_KIB and kdf.name == "argon2id":
        raise ValueError("argon2id memory below 64 MiB is refused")
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    slot = KeySlot(
        slot_id=uuid.uuid4().hex,
        kind=kind,
        user_name=user_name,
        kdf=kdf,
        salt=_b64(salt),
        nonce=_b64(nonce),
        wrapped_key="",
    )
    wrapping_key = _slot_key(slot, secret)
    sealed = AESGCM(wrapping_key).encrypt(nonce, key, slot.associated_data(database_id))
    return replace(slot, wrapped_key=_b64(sealed))


def _slot_key(slot: KeySlot, secret: bytes) -> bytes:
    if slot.kdf.name == "argon2id":
        return slot.kdf.derive(secret, _unb64(slot.salt))
    if slot.kdf.name == "raw":  # device slots: the secret is already 256 random bits
        return secret
    raise UserFacingError("The key file uses a method this version of KetaDesk does not know.")


def _unwrap(database_id: str, slot: KeySlot, secret: bytes) -> bytes | None:
    try:
        key = AESGCM(_slot_key(slot, secret)).decrypt(
            _unb64(slot.nonce), _unb64(slot.wrapped_key), slot.associated_data(database_id)
        )
    except (InvalidTag, ValueError):
        return None
    return key if len(key) == DATABASE_KEY_BYTES else None


@dataclass(frozen=True)
class AuditAnchor:
    """The newest audit event when KetaDesk last closed the database: its number and hash.

    Kept outside the database so that removing the newest events (which leaves a shorter
    chain that is still valid) is noticed.
    """

    seq: int
    row_hash: str


@dataclass
class KeySlotFile:
    """The sidecar file's content: which database it belongs to, its slots, the audit anchor."""

    database_id: str
    slots: list[KeySlot] = field(default_factory=list)
    audit_anchor: AuditAnchor | None = None

    # --- reading and writing -------------------------------------------------------------
    @staticmethod
    def path_for(db_path: Path) -> Path:
        return db_path.with_name(db_path.name + ".keys.json")

    @classmethod
    def load(cls, db_path: Path) -> KeySlotFile:
        path = cls.path_for(db_path)
        if not path.exists():
            raise UserFacingError(
                f"The key file {path.name} is missing from the folder of the practice database. "
                "Without it the database cannot be opened; restore it from a backup."
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != KEYSLOT_FORMAT:
                raise ValueError("format")
            slots = [
                KeySlot(
                    slot_id=str(s["slot_id"]),
                    kind=str(s["kind"]),
                    user_name=str(s["user_name"]),
                    kdf=KdfParams(**s["kdf"]),
                    salt=str(s["salt"]),
                    nonce=str(s["nonce"]),
                    wrapped_key=str(s["wrapped_key"]),
                )
                for s in raw["slots"]
            ]
            anchor = raw.get("audit_anchor")
            loaded = cls(
                database_id=str(raw["database_id"]),
                slots=slots,
                audit_anchor=None
                if anchor is None
                else AuditAnchor(int(anchor["seq"]), str(anchor["row_hash"])),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise UserFacingError(
                f"The key file {path.name} is damaged and cannot be read; restore it from a backup."
            ) from error
        from ketadesk.storage.security.kdf_bounds import check_key_file_kdfs

        check_key_file_kdfs(loaded)  # before any argon2 work: no hang on absurd settings
        return loaded

    def save(self, db_path: Path) -> None:
        """Write atomically: a temp file in the same folder, fsync, then rename over."""
        path = self.path_for(db_path)
        content: dict[str, Any] = {
            "format": KEYSLOT_FORMAT,
            "database_id": self.database_id,
            "slots": [asdict(s) for s in self.slots],
        }
        if self.audit_anchor is not None:
            content["audit_anchor"] = asdict(self.audit_anchor)
        # A unique 0600 temp name: two savers never share one, nobody else can read it.
        write_private_bytes(path, json.dumps(content, indent=1).encode("utf-8"))

    # --- slots ----------------------------------------------------------------------------
    def user_slots(self, user_name: str) -> Iterator[KeySlot]:
        return (s for s in self.slots if s.kind == "user" and s.user_name == user_name)

    def add_user_slot(
        self, key: bytes, user_name: str, password: str, kdf: KdfParams | None = None
    ) -> None:
        self.remove_user_slots(user_name)
        self.slots.append(
            _wrap(
                self.database_id,
                key,
                password.encode("utf-8"),
                kind="user",
                user_name=user_name,
                kdf=kdf or KdfParams(),
            )
        )

    def remove_user_slots(self, user_name: str) -> None:
        self.slots = [
            s for s in self.slots if not (s.kind in ("user", "device") and s.user_name == user_name)
        ]

    def add_recovery_slot(self, key: bytes) -> str:
        """Add (or replace) the recovery slot; return the recovery key to show once."""
        recovery_key = new_recovery_key()
        self.slots = [s for s in self.slots if s.kind != "recovery"]
        self.slots.append(
            _wrap(
                self.database_id,
                key,
                _recovery_secret(recovery_key),
                kind="recovery",
                user_name="",
                kdf=KdfParams(),
            )
        )
        return recovery_key

    def add_device_slot(self, key: bytes, user_name: str) -> bytes:
        """A slot opened by a random device secret kept in the OS keyring; returns the secret."""
        device_secret = secrets.token_bytes(32)
        self.slots = [
            s for s in self.slots if not (s.kind == "device" and s.user_name == user_name)
        ]
        self.slots.append(
            _wrap(
                self.database_id,
                key,
                device_secret,
                kind="device",
                user_name=user_name,
                kdf=KdfParams(name="raw", memory_kib=0, time_cost=0, parallelism=0),
            )
        )
        return device_secret

    def unwrap_for_user(self, user_name: str, password: str) -> bytes:
        for slot in self.user_slots(user_name):
            key = _unwrap(self.database_id, slot, password.encode("utf-8"))
            if key is not None:
                return key
        raise UserFacingError(WRONG_CREDENTIALS, exit_code=1)

    def unwrap_with_device_secret(self, user_name: str, device_secret: bytes) -> bytes | None:
        for slot in self.slots:
            if slot.kind == "device" and slot.user_name == user_name:
                key = _unwrap(self.database_id, slot, device_secret)
                if key is not None:
                    return key
        return None

    def unwrap_with_recovery_key(self, recovery_key: str) -> bytes:
        for slot in self.slots:
            if slot.kind == "recovery":
                key = _unwrap(self.database_id, slot, _recovery_secret(recovery_key))
                if key is not None:
                    return key
        raise UserFacingError("That recovery key does not open this practice database.")


def new_database_key() -> bytes:
    return secrets.token_bytes(DATABASE_KEY_BYTES)


_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_recovery_key() -> str:
    """A 160-bit recovery key in groups of four, easy to write down."""
    chars = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(32))
    return "-".join(chars[i : i + 4] for i in range(0, 32, 4))


def _recovery_secret(recovery_key: str) -> bytes:
    normalised = "".join(ch for ch in recovery_key.upper() if ch.isalnum())
    return normalised.encode("ascii", errors="replace")
