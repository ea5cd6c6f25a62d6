"""The encrypted backup file of a practice server: a ``pg_dump`` stream sealed in chunks.

PostgreSQL writes its dump to a pipe; each chunk of it is sealed with AES-256-GCM before a byte
is written, so the dump never lies on a disk in the clear. The key comes from a passphrase
chosen at backup time, stretched with argon2id (a server practice has no recovery key, and a
backup must open on a new server, where no user's key exists):

    MAGIC                      b"KETADESK-SERVER-BACKUP\\n"
    header length (4 bytes)    big-endian
    header (JSON, UTF-8)       format, argon2id settings and salt, a key check, when and by
                               whom it was made, the practice's database id; no patient data
    chunks, each:              final flag (1 byte: 0 more follow, 1 last), ciphertext length
                               (4 bytes), AES-256-GCM ciphertext and tag

Every chunk's nonce is its sequence number (the key is new for every file, from a fresh salt),
and its associated data is the SHA-256 of magic and header, the sequence number and the final
flag: a chunk moved, dropped, changed or flagged last, and a file cut short or extended, all
fail to open. The key check (an HMAC of a fixed label under a second derived key) tells a wrong
passphrase from an altered file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.keyslots import KdfParams

MAGIC = b"KETADESK-SERVER-BACKUP\n"
FORMAT = 1
CHUNK_SIZE = 1024 * 1024
MAX_HEADER = 64 * 1024
_TAG = 16
_KEY_CHECK_LABEL = b"ketadesk server backup key check"
# Today's argon2id settings for a backup (the same as a user's key slot).
BACKUP_KDF = KdfParams()
# Settings a backup file may ask for (checked before any work: a file is read before anyone
# is known, and memory or passes above these would hang the computer).
_MAX_TIME_COST, _MAX_MEMORY_KIB, _MAX_PARALLELISM = 12, 1024 * 1024, 16

ALTERED = (
    "The backup file has been altered or damaged after it was written (a part of it does not "
    "match its seal), so it cannot be trusted. Nothing was changed; use another backup."
)
TRUNCATED = (
    "The backup file is incomplete: it ends before its last part (it may have been cut short "
    "while copying). Nothing was changed; use another copy of the backup."
)
WRONG_PASSPHRASE = (
    "That passphrase does not open this backup. Nothing was changed; check the passphrase "
    "written down when the backup was made."
)


@dataclass(frozen=True)
class BackupHeader:
    """What a backup says about itself, readable without the passphrase (no patient data)."""

    made_at: str
    made_by: str
    database_id: str
    server_version: str
    kdf: KdfParams
    salt: bytes
    key_check: bytes
    chunk_size: int

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "made_at": self.made_at,
                "made_by": self.made_by,
                "database_id": self.database_id,
                "server_version": self.server_version,
                "kdf": {
                    "name": self.kdf.name,
                    "time_cost": self.kdf.time_cost,
                    "memory_kib": self.kdf.memory_kib,
                    "parallelism": self.kdf.parallelism,
                },
                "salt": base64.b64encode(self.salt).decode(),
                "key_check": base64.b64encode(self.key_check).decode(),
                "chunk_size": self.chunk_size,
            },
            sort_keys=True,
        ).encode()


def _keys(passphrase: str, kdf: KdfParams, salt: bytes) -> tuple[bytes, bytes]:
    """(encryption key, key-check key), each 256 bits, from one argon2id run."""
    stretched = kdf.derive(passphrase.encode(), salt)
    encryption = hashlib.sha256(b"encrypt" + stretched).digest()
    check = hashlib.sha256(b"check" + stretched).digest()
    return encryption, check


def _key_check(check_key: bytes) -> bytes:
    return hmac.new(check_key, _KEY_CHECK_LABEL, hashlib.sha256).digest()


def _associated(header_digest: bytes, seq: int, is_final: bool) -> bytes:
    return header_digest + struct.pack(">QB", seq, int(is_final))


def _nonce(seq: int) -> bytes:
    return struct.pack(">IQ", 0, seq)


def write_encrypted(
    source: Callable[[int], bytes],
    out: BinaryIO,
    passphrase: str,
    *,
    made_at: str,
    made_by: str,
    database_id: str,
    server_version: str,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Read ``source(n)`` until it returns b"" and write it sealed to ``out``; return the
    number of plaintext bytes. Only ciphertext reaches ``out``."""
    salt = secrets.token_bytes(16)
    encryption_key, check_key = _keys(passphrase, BACKUP_KDF, salt)
    header = BackupHeader(
        made_at=made_at,
        made_by=made_by,
        database_id=database_id,
        server_version=server_version,
        kdf=BACKUP_KDF,
        salt=salt,
        key_check=_key_check(check_key),
        chunk_size=chunk_size,
    ).to_bytes()
    out.write(MAGIC + struct.pack(">I", len(header)) + header)
    digest = hashlib.sha256(MAGIC + header).digest()
    cipher = AESGCM(encryption_key)
    total, seq = 0, 0
    current = _read_full(source, chunk_size)
    while True:
        following = _read_full(source, chunk_size) if current else b""
        is_final = not following
        sealed = cipher.encrypt(_nonce(seq), current, _associated(digest, seq, is_final))
        out.write(struct.pack(">BI", int(is_final), len(sealed)) + sealed)
        total += len(current)
        if is_final:
            return total
        current, seq = following, seq + 1


def _read_full(source: Callable[[int], bytes], size: int) -> bytes:
    """Up to ``size`` bytes: a pipe may give fewer per read before its end."""
    parts: list[bytes] = []
    wanted = size
    while wanted:
        part = source(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def _exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise UserFacingError(TRUNCATED)
    return data


def _not_a_backup() -> UserFacingError:
    return UserFacingError(
        "That file is not a KetaDesk practice server backup (or its first lines were "
        "damaged). Nothing was changed."
    )


def read_header(stream: BinaryIO) -> tuple[BackupHeader, bytes]:
    """The header and the digest every chunk is bound to; the stream is left at chunk 0."""
    if stream.read(len(MAGIC)) != MAGIC:
        raise _not_a_backup()
    (length,) = struct.unpack(">I", _exactly(stream, 4))
    if length > MAX_HEADER:
        raise _not_a_backup()
    raw = _exactly(stream, length)
    try:
        fields = json.loads(raw)
        kdf_fields = fields["kdf"]
        kdf = KdfParams(
            time_cost=kdf_fields["time_cost"],
            memory_kib=kdf_fields["memory_kib"],
            parallelism=kdf_fields["parallelism"],
            name=kdf_fields["name"],
        )
        header = BackupHeader(
            made_at=str(fields["made_at"]),
            made_by=str(fields["made_by"]),
            database_id=str(fields["database_id"]),
            server_version=str(fields["server_version"]),
            kdf=kdf,
            salt=base64.b64decode(fields["salt"]),
            key_check=base64.b64decode(fields["key_check"]),
            chunk_size=int(fields["chunk_size"]),
        )
        is_known = fields["format"] == FORMAT
    except (ValueError, KeyError, TypeError):
        raise _not_a_backup() from None
    if not is_known:
        raise UserFacingError(
            "This backup was written by a newer KetaDesk; restore it with that version. "
            "Nothing was changed."
        )
    _check_kdf(kdf, header.chunk_size)
    return header, hashlib.sha256(MAGIC + raw).digest()


def _check_kdf(kdf: KdfParams, chunk_size: int) -> None:
    numbers = (kdf.time_cost, kdf.memory_kib, kdf.parallelism, chunk_size)
    if (
        kdf.name != "argon2id"
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers)
        or kdf.time_cost > _MAX_TIME_COST
        or kdf.memory_kib > _MAX_MEMORY_KIB
        or kdf.parallelism > _MAX_PARALLELISM
        or chunk_size > 16 * CHUNK_SIZE
    ):
        raise UserFacingError(
            "The backup asks for key-stretching settings KetaDesk does not use; someone may "
            "have edited it. Nothing was changed."
        )


def decrypted_chunks(stream: BinaryIO, passphrase: str) -> Iterator[bytes]:
    """The plaintext of a backup, chunk by chunk, each checked before it is given out; a wrong
    passphrase, an altered or a truncated file raise in words (see the module's docstring)."""
    header, digest = read_header(stream)
    encryption_key, check_key = _keys(passphrase, header.kdf, header.salt)
    if not hmac.compare_digest(_key_check(check_key), header.key_check):
        raise UserFacingError(WRONG_PASSPHRASE)
    cipher = AESGCM(encryption_key)
    seq = 0
    while True:
        frame = stream.read(5)
        if len(frame) != 5:
            raise UserFacingError(TRUNCATED)
        flag, length = struct.unpack(">BI", frame)
        if flag not in (0, 1) or length > header.chunk_size + _TAG:
            raise UserFacingError(ALTERED)
        sealed = _exactly(stream, length)
        try:
            plain = cipher.decrypt(_nonce(seq), sealed, _associated(digest, seq, bool(flag)))
        except InvalidTag:
            raise UserFacingError(ALTERED) from None
        yield plain
        if flag == 1:
            if stream.read(1):
                raise UserFacingError(ALTERED)  # something was added after the last part
            return
        seq += 1


def check_backup(stream: BinaryIO, passphrase: str) -> tuple[BackupHeader, int]:
    """Open every chunk (discarding the plaintext): the header and the dump's size in bytes,
    or the reason the backup cannot be restored."""
    total = 0
    for chunk in decrypted_chunks(stream, passphrase):
        total += len(chunk)
    stream.seek(0)
    header, _ = read_header(stream)
    stream.seek(0)
    return header, total
