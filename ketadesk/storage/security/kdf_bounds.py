"""Allowed ranges for each key slot's key-stretching (argon2id) settings.

A key file is read before anyone is known, so its numbers are checked before any work is
done with them: settings above the range (which would hang or exhaust memory) or of the wrong
type are refused in words; settings below it still open (the file is authenticated by the
wrapped key itself) but the slot is rewrapped with today's settings at that user's next
successful log-in. ``raw`` (no stretching) is only for slots whose secret is already 256
random bits: device slots and, later, recovery slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.keyslots import MIN_MEMORY_KIB, KdfParams, KeySlot, KeySlotFile

RAW_ALLOWED_KINDS = frozenset({"device", "recovery"})


@dataclass(frozen=True)
class KdfRange:
    """Inclusive bounds: the low end is today's minimum, the high end what any practice
    laptop can do in a few seconds."""

    time_cost: tuple[int, int] = (3, 12)
    memory_kib: tuple[int, int] = (MIN_MEMORY_KIB, 1024 * 1024)  # 64 MiB .. 1 GiB
    parallelism: tuple[int, int] = (1, 16)


ALLOWED = KdfRange()
# Below these a slot is refused outright rather than rewrapped (never produced by KetaDesk).
_FLOOR = KdfRange(time_cost=(1, 12), memory_kib=(8, 1024 * 1024), parallelism=(1, 16))


def _who(slot: KeySlot) -> str:
    if slot.kind == "user":
        return f"the key slot of user {slot.user_name[:64]!r}"
    return f"a {slot.kind[:20]} key slot"


def _refused(slot: KeySlot, why: str) -> UserFacingError:
    return UserFacingError(
        f"The key file holds {_who(slot)} with {why}; KetaDesk did not try it. Someone may "
        "have edited the key file: restore it from a backup, or ask a user who manages users."
    )


def check_slot_kdf(slot: KeySlot) -> bool:
    """Raise a plain-words error when ``slot``'s settings are not allowed; return True when
    they are allowed but weaker than today's (the slot should be rewrapped)."""
    kdf = slot.kdf
    if kdf.name == "raw":
        if slot.kind not in RAW_ALLOWED_KINDS:
            raise _refused(slot, "no key stretching, which only device slots may use")
        return False
    if kdf.name != "argon2id":
        raise _refused(slot, "a key-stretching method this version does not know")
    weak = False
    for label, value, (low, high), (floor, _) in (
        ("time cost", kdf.time_cost, ALLOWED.time_cost, _FLOOR.time_cost),
        ("memory", kdf.memory_kib, ALLOWED.memory_kib, _FLOOR.memory_kib),
        ("parallelism", kdf.parallelism, ALLOWED.parallelism, _FLOOR.parallelism),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _refused(slot, f"a {label} that is not a whole number")
        if value > high:
            raise _refused(slot, f"a {label} above the allowed {high:,}")
        if value < floor:
            raise _refused(slot, f"a {label} below the allowed {floor:,}")
        weak = weak or value < low
    return weak


def check_key_file_kdfs(slots: KeySlotFile) -> None:
    """Check every slot of a key file as it is loaded (see ``check_slot_kdf``)."""
    for slot in slots.slots:
        check_slot_kdf(slot)


def rewrap_weak_user_slot(
    db_path: Path, slots: KeySlotFile, key: bytes, user_name: str, password: str
) -> bool:
    """After a successful log-in, rewrap ``user_name``'s slot with today's settings when it
    was made with weaker ones (their device slots are kept). Returns True when rewrapped."""
    if not any(check_slot_kdf(s) for s in slots.user_slots(user_name)):
        return False
    devices = [s for s in slots.slots if s.kind == "device" and s.user_name == user_name]
    slots.add_user_slot(key, user_name, password, KdfParams())
    slots.slots.extend(devices)
    slots.save(db_path)
    return True
