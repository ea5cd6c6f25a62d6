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
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


@dataclass(frozen=True, repr=False)
class SlotSecrets:
    """What a slot holds: the database key and, since signing keys, the owner's Ed25519
    private key and the practice's trust root (the first physician's public key, base64)
    that every slot pins, so a replaced set of grants is noticed."""

    database_key: bytes
    signing_key: bytes | None = None
    trust_root: str | None = None
    # Keys of earlier generations the owner could open (a rotation interrupted by a crash
    # leaves the database under one of them). Never written into a slot.
    older_keys: tuple[bytes, ...] = ()

    def payload(self) -> bytes:
        if self.trust_root is None:
            return self.database_key
        root = _unb64(self.trust_root)
        return self.database_key + (self.signing_key or bytes(32)) + root

    @classmethod
    def from_payload(cls, payload: bytes) -> SlotSecrets | None:
        if len(payload) == DATABASE_KEY_BYTES:
            return cls(payload)
        if len(payload) != 3 * DATABASE_KEY_BYTES:
            return None
        signing = payload[32:64]
        return cls(payload[:32], None if signing == bytes(32) else signing, _b64(payload[64:]))

    def __repr__(self) -> str:
        return "SlotSecrets(...)"


def _wrap(
    database_id: str,
    key: bytes | SlotSecrets,
    secret: bytes,
    *,
    kind: str,
    user_name: str,
    kdf: KdfParams,
    slot_id: str | None = None,
) -> KeySlot:
    if kdf.memory_kib < MIN_MEMORY_KIB and kdf.name == "argon2id":
        raise ValueError("argon2id memory below 64 MiB is refused")
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    slot = KeySlot(
        slot_id=slot_id or uuid.uuid4().hex,
        kind=kind,
        user_name=user_name,
        kdf=kdf,
        salt=_b64(salt),
        nonce=_b64(nonce),
        wrapped_key="",
    )
    wrapping_key = _slot_key(slot, secret)
    payload = key.payload() if isinstance(key, SlotSecrets) else key
    sealed = AESGCM(wrapping_key).encrypt(nonce, payload, slot.associated_data(database_id))
    return replace(slot, wrapped_key=_b64(sealed))


def _slot_key(slot: KeySlot, secret: bytes) -> bytes:
    if slot.kdf.name == "argon2id":
        return slot.kdf.derive(secret, _unb64(slot.salt))
    if slot.kdf.name == "raw":  # device slots: the secret is already 256 random bits
        return secret
    raise UserFacingError("The key file uses a method this version of KetaDesk does not know.")


def _open_slot(database_id: str, slot: KeySlot, secret: bytes) -> SlotSecrets | None:
    try:
        payload = AESGCM(_slot_key(slot, secret)).decrypt(
            _unb64(slot.nonce), _unb64(slot.wrapped_key), slot.associated_data(database_id)
        )
    except (InvalidTag, ValueError):
        return None
    return SlotSecrets.from_payload(payload)


def _unwrap(database_id: str, slot: KeySlot, secret: bytes) -> bytes | None:
    opened = _open_slot(database_id, slot, secret)
    return None if opened is None else opened.database_key


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def _x25519_private(seed: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_hkdf(seed, b"ketadesk key envelope x25519"))


def _public_b64(private: X25519PrivateKey) -> str:
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def envelope_recipient(seed: bytes) -> str:
    """The X25519 public key (base64) that key envelopes for ``seed``'s owner are sealed to;
    ``seed`` is the owner's signing key (users) or the recovery secret."""
    return _public_b64(_x25519_private(seed))


@dataclass(frozen=True)
class KeyEnvelope:
    """The database key of one generation, sealed to one owner's X25519 public key (an
    ephemeral key exchange, HKDF, AES-256-GCM). Rotation needs only the public keys: no
    password and no recovery code."""

    owner: str  # a user name, or "" for the recovery key
    generation: int
    recipient: str
    ephemeral: str
    nonce: str
    sealed: str

    def associated_data(self, database_id: str) -> bytes:
        bound = {
            "format": KEYSLOT_FORMAT,
            "database_id": database_id,
            "owner": self.owner,
            "generation": self.generation,
            "recipient": self.recipient,
            "ephemeral": self.ephemeral,
        }
        return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def seal_envelope(
    database_id: str, key: bytes, *, owner: str, generation: int, recipient: str
) -> KeyEnvelope:
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(_unb64(recipient)))
    envelope = KeyEnvelope(
        owner, generation, recipient, _public_b64(ephemeral), _b64(secrets.token_bytes(12)), ""
    )
    wrapping = _hkdf(shared, b"ketadesk key envelope")
    sealed = AESGCM(wrapping).encrypt(
        _unb64(envelope.nonce), key, envelope.associated_data(database_id)
    )
    return replace(envelope, sealed=_b64(sealed))


def _open_envelope(database_id: str, envelope: KeyEnvelope, seed: bytes) -> bytes | None:
    private = _x25519_private(seed)
    if _public_b64(private) != envelope.recipient:
        return None
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(_unb64(envelope.ephemeral)))
        key = AESGCM(_hkdf(shared, b"ketadesk key envelope")).decrypt(
            _unb64(envelope.nonce), _unb64(envelope.sealed), envelope.associated_data(database_id)
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
    # The database key's generation (raised by every rotation) and its envelopes; while a
    # rotation is under way the previous generation's envelopes are kept too, so whichever
    # file a crash leaves behind still opens.
    generation: int = 1
    envelopes: list[KeyEnvelope] = field(default_factory=list)

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
            envelopes = [
                KeyEnvelope(
                    owner=str(e["owner"]),
                    generation=int(e["generation"]),
                    recipient=str(e["recipient"]),
                    ephemeral=str(e["ephemeral"]),
                    nonce=str(e["nonce"]),
                    sealed=str(e["sealed"]),
                )
                for e in raw.get("envelopes", [])
            ]
            loaded = cls(
                database_id=str(raw["database_id"]),
                slots=slots,
                audit_anchor=None
                if anchor is None
                else AuditAnchor(int(anchor["seq"]), str(anchor["row_hash"])),
                generation=int(raw.get("generation", 1)),
                envelopes=envelopes,
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
        if self.envelopes:
            content["generation"] = self.generation
            content["envelopes"] = [asdict(e) for e in self.envelopes]
        # A unique 0600 temp name: two savers never share one, nobody else can read it.
        write_private_bytes(path, json.dumps(content, indent=1).encode("utf-8"))
        _fsync_folder(path.parent)

    # --- key envelopes -------------------------------------------------------------------
    def seal_for(self, key: bytes, owner: str, seed_or_recipient: bytes | str) -> None:
        """Add (or replace) ``owner``'s envelope of the current generation."""
        recipient = (
            seed_or_recipient
            if isinstance(seed_or_recipient, str)
            else envelope_recipient(seed_or_recipient)
        )
        self.envelopes = [
            e for e in self.envelopes
            if not (e.owner == owner and e.generation == self.generation)
        ]
        self.envelopes.append(
            seal_envelope(
                self.database_id, key, owner=owner, generation=self.generation,
                recipient=recipient,
            )
        )

    def recipients(self) -> dict[str, str]:
        """Owner -> X25519 public key, from the current generation's envelopes."""
        return {e.owner: e.recipient for e in self.envelopes if e.generation == self.generation}

    def keys_for(self, owner: str, seed: bytes) -> list[bytes]:
        """Database keys ``owner`` can open, newest generation first."""
        found = []
        for envelope in sorted(self.envelopes, key=lambda e: -e.generation):
            if envelope.owner == owner:
                key = _open_envelope(self.database_id, envelope, seed)
                if key is not None and key not in found:
                    found.append(key)
        return found

    # --- slots ----------------------------------------------------------------------------
    def user_slots(self, user_name: str) -> Iterator[KeySlot]:
        return (s for s in self.slots if s.kind == "user" and s.user_name == user_name)

    def add_user_slot(
        self,
        key: bytes | SlotSecrets,
        user_name: str,
        password: str,
        kdf: KdfParams | None = None,
        *,
        slot_id: str | None = None,
    ) -> KeySlot:
        """Replace the user's password slot; returns the new slot (its id goes on the
        signed allow-list). ``slot_id`` keeps an allowed slot's id when only its content
        changes."""
        self.slots = [s for s in self.slots if not (s.kind == "user" and s.user_name == user_name)]
        slot = _wrap(
            self.database_id,
            key,
            password.encode("utf-8"),
            kind="user",
            user_name=user_name,
            kdf=kdf or KdfParams(),
            slot_id=slot_id,
        )
        self.slots.append(slot)
        return slot

    def open_user_slot(self, user_name: str, password: str) -> tuple[KeySlot, SlotSecrets]:
        """The slot the password opens and what it holds; a wrong password raises."""
        for slot in self.user_slots(user_name):
            opened = _open_slot(self.database_id, slot, password.encode("utf-8"))
            if opened is not None:
                return slot, self._with_envelope_keys(user_name, opened)
        raise UserFacingError(WRONG_CREDENTIALS, exit_code=1)

    def _with_envelope_keys(self, owner: str, opened: SlotSecrets) -> SlotSecrets:
        if opened.signing_key is None:
            return opened
        keys = self.keys_for(owner, opened.signing_key)
        if not keys:
            return opened
        older = [k for k in (*keys[1:], opened.database_key) if k != keys[0]]
        return replace(opened, database_key=keys[0], older_keys=tuple(older))

    def open_device_slot(
        self, user_name: str, device_secret: bytes
    ) -> tuple[KeySlot, SlotSecrets] | None:
        for slot in self.slots:
            if slot.kind == "device" and slot.user_name == user_name:
                opened = _open_slot(self.database_id, slot, device_secret)
                if opened is not None:
                    return slot, self._with_envelope_keys(user_name, opened)
        return None

    def remove_user_slots(self, user_name: str) -> None:
        self.slots = [
            s for s in self.slots if not (s.kind in ("user", "device") and s.user_name == user_name)
        ]

    def add_recovery_slot(self, key: bytes | SlotSecrets) -> str:
        """Add (or replace) the recovery slot; return the recovery key to show once. The
        database key is also sealed to the recovery key's public half, so a rotation never
        needs the recovery code."""
        recovery_key = new_recovery_key()
        database_key = key.database_key if isinstance(key, SlotSecrets) else key
        self.envelopes = [e for e in self.envelopes if e.owner != ""]
        self.seal_for(database_key, "", _recovery_secret(recovery_key))
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

    def add_device_slot(self, key: bytes | SlotSecrets, user_name: str) -> bytes:
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

    def open_with_recovery_key(self, recovery_key: str) -> SlotSecrets:
        """What the recovery key opens: the newest database key (from its envelopes; the
        recovery slot's own key may be older) and the trust root its slot pins. A wrong key
        raises and reads nothing else."""
        secret = _recovery_secret(recovery_key)
        from_envelopes = self.keys_for("", secret)
        for slot in self.slots:
            if slot.kind == "recovery":
                opened = _open_slot(self.database_id, slot, secret)
                if opened is None:
                    continue
                keys = [*from_envelopes, opened.database_key]
                newest = keys[0]
                older = tuple(dict.fromkeys(k for k in keys[1:] if k != newest))
                return replace(opened, database_key=newest, older_keys=older)
        raise UserFacingError(
            "That recovery key does not open this practice database. Check it against the "
            "one printed when the practice was created (letters and digits; dashes and case do "
            "not matter). Nothing was changed."
        )

    def unwrap_with_recovery_key(self, recovery_key: str) -> bytes:
        from_envelopes = self.keys_for("", _recovery_secret(recovery_key))
        if from_envelopes:
            return from_envelopes[0]
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


def recovery_signing_key(recovery_key: str) -> bytes:
    """The raw Ed25519 private key the recovery key signs a recovery with (derived, never
    stored: only someone who holds the recovery key can make it)."""
    return _hkdf(_recovery_secret(recovery_key), b"ketadesk recovery signing ed25519")


def _recovery_secret(recovery_key: str) -> bytes:
    normalised = "".join(ch for ch in recovery_key.upper() if ch.isalnum())
    return normalised.encode("ascii", errors="replace")


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX: fsync the folder)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
