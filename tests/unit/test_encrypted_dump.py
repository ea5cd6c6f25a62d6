"""The sealed format of a practice server backup (``encrypted_dump``): what opens, and what
is refused in words (a wrong passphrase, chunks cut, moved, altered, added, a hostile header)."""

from __future__ import annotations

import io
import json
import struct

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.server.encrypted_dump import (
    ALTERED,
    MAGIC,
    TRUNCATED,
    WRONG_PASSPHRASE,
    check_backup,
    decrypted_chunks,
    write_encrypted,
)

PASSPHRASE = "a long backup passphrase 7"
DUMP = bytes(range(256)) * 40  # 10,240 bytes: five chunks of 2,048 (then an empty last one)


def sealed(dump: bytes = DUMP, chunk_size: int = 2048) -> bytes:
    source, out = io.BytesIO(dump), io.BytesIO()
    written = write_encrypted(
        source.read, out, PASSPHRASE, made_at="2026-12-03T15:00:00+00:00", made_by="drquill",
        database_id="abc", server_version="15.14", chunk_size=chunk_size,
    )
    assert written == len(dump)
    return out.getvalue()


def frames(data: bytes) -> tuple[bytes, list[bytes]]:
    """(magic + header, [each chunk's frame]) of a sealed file."""
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    position = len(MAGIC) + 4 + length
    head, chunks = data[:position], []
    while position < len(data):
        (size,) = struct.unpack(">I", data[position + 1 : position + 5])
        chunks.append(data[position : position + 5 + size])
        position += 5 + size
    return head, chunks


def opened(data: bytes, passphrase: str = PASSPHRASE) -> bytes:
    return b"".join(decrypted_chunks(io.BytesIO(data), passphrase))


def refusal(data: bytes, passphrase: str = PASSPHRASE) -> str:
    with pytest.raises(UserFacingError) as refused:
        check_backup(io.BytesIO(data), passphrase)
    return refused.value.message


def test_a_backup_opens_with_its_passphrase_and_holds_no_clear_text() -> None:
    data = sealed()
    assert opened(data) == DUMP
    _head, chunks = frames(data)
    assert len(chunks) == 5  # the last full chunk is flagged last: no empty chunk after it
    assert [c[0] for c in chunks] == [0, 0, 0, 0, 1]
    assert bytes(range(32, 96)) not in data
    header, size = check_backup(io.BytesIO(data), PASSPHRASE)
    assert (header.made_by, header.database_id, size) == ("drquill", "abc", len(DUMP))
    assert opened(sealed(b"")) == b""  # an empty stream still has its (empty) last chunk


def test_a_wrong_passphrase_is_named_as_such() -> None:
    assert refusal(sealed(), "another passphrase entirely") == WRONG_PASSPHRASE


def test_chunks_cut_moved_changed_or_added_are_refused() -> None:
    head, chunks = frames(sealed())
    assert refusal(head + b"".join(chunks[:3])) == TRUNCATED  # cut at a chunk boundary
    assert refusal(head + b"".join(chunks)[:-7]) == TRUNCATED  # cut inside the last chunk
    moved = [chunks[1], chunks[0], *chunks[2:]]
    assert refusal(head + b"".join(moved)) == ALTERED
    flagged_last = bytes([1]) + chunks[2][1:]
    assert refusal(head + b"".join([*chunks[:2], flagged_last])) == ALTERED
    changed = bytearray(chunks[3])
    changed[40] ^= 0x80
    assert refusal(head + b"".join([*chunks[:3], bytes(changed), chunks[4]])) == ALTERED
    assert refusal(head + b"".join(chunks) + b"x") == ALTERED
    other = frames(sealed())[1]  # the same dump sealed again: another salt, another key
    assert refusal(head + b"".join([*chunks[:4], other[4]])) == ALTERED


def test_a_changed_or_hostile_header_is_refused_before_any_work() -> None:
    head, chunks = frames(sealed())
    fields = json.loads(head[len(MAGIC) + 4 :])
    fields["made_by"] = "someone else"
    raw = json.dumps(fields, sort_keys=True).encode()
    relabelled = MAGIC + struct.pack(">I", len(raw)) + raw + b"".join(chunks)
    assert refusal(relabelled) == ALTERED  # every chunk is bound to the header it was made with
    fields["kdf"]["memory_kib"] = 64 * 1024 * 1024  # 64 GiB: would exhaust the computer
    raw = json.dumps(fields, sort_keys=True).encode()
    hostile = MAGIC + struct.pack(">I", len(raw)) + raw + b"".join(chunks)
    assert "key-stretching settings KetaDesk does not use" in refusal(hostile)
    assert "not a KetaDesk practice server backup" in refusal(b"PGDMP" + b"\0" * 64)
    assert "not a KetaDesk practice server backup" in refusal(MAGIC + b"\0\0\0\x05{oops")
