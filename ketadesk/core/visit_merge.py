"""What a returned visit pack does to one record: the merge rule, apart from any database.

Each record that travels has a unique id and (if editable) a version that goes up at every
edit. The pack remembers the version each record had at check-out (the *base*). At return:

* a record the practice has never seen is **added** (so a second return finds it and adds
  nothing);
* a record with the same content on both sides needs **nothing**;
* a record changed only on the laptop (the practice still holds the base version) is
  **applied**;
* a record changed only at the office stays as the office has it (**nothing**);
* a record changed on both sides, or changed on one side and deleted on the other, goes to
  the **conflict** queue for a physician; nothing is decided silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MergeAction(StrEnum):
    NOTHING = "nothing"
    ADD = "add"
    APPLY = "apply"
    DELETE = "delete"
    CONFLICT = "conflict"


class ConflictReason(StrEnum):
    BOTH_CHANGED = "both_changed"
    DELETED_AT_OFFICE = "deleted_at_office"
    DELETED_ON_VISIT = "deleted_on_visit"
    CLASHES = "clashes"  # a new record that cannot sit beside one the office added
    BOTH_SIGNED = "both_signed"  # two new protocol versions with one number
    PARENT_WAITING = "parent_waiting"  # the record it belongs to waits in the queue
    REVOKED = "revoked"
    SIGNATURE_NOT_CARRIED = "signature_not_carried"
    # The practice server's grants or guards refused it to the user returning the pack.
    SERVER_REFUSED = "server_refused"


CONFLICT_WORDS: dict[str, str] = {
    ConflictReason.BOTH_CHANGED: "changed both at the office and on the visit laptop",
    ConflictReason.DELETED_AT_OFFICE: "changed on the visit laptop but removed at the office",
    ConflictReason.DELETED_ON_VISIT: "removed on the visit laptop but changed at the office",
    ConflictReason.CLASHES: "added on the visit laptop but the office added the same thing",
    ConflictReason.BOTH_SIGNED: "a new protocol version was signed both at the office and on "
    "the visit laptop",
    ConflictReason.PARENT_WAITING: "belongs to a record that waits for a physician",
    ConflictReason.REVOKED: "the visit pack's lease was revoked",
    ConflictReason.SIGNATURE_NOT_CARRIED: "signed on the visit laptop by another user or with a "
    "signature that does not verify there; a physician signs it again at the office",
    ConflictReason.SERVER_REFUSED: "refused by the practice server to the user who returned the "
    "pack: it accepts this only from a physician (a prescription or signature: from the "
    "physician named on it), who returns the same pack again or settles it here",
}


@dataclass(frozen=True)
class Side:
    """One copy of a record: its version and a comparable form of its content."""

    version: int
    content: str


@dataclass(frozen=True)
class Synced:
    """The last point both sides agreed on a record: at check-out (both at the version the
    pack started from), or after a return merged it (the laptop's version that was merged and
    the practice's version that resulted)."""

    visit_version: int
    office_version: int


@dataclass(frozen=True)
class MergeDecision:
    action: MergeAction
    reason: ConflictReason | None = None


def merge_decision(synced: Synced | None, office: Side | None, visit: Side | None) -> MergeDecision:
    """The rule above for one record. ``synced`` is None for a record made on the laptop and
    never merged; ``office`` / ``visit`` are None where the record does not exist."""
    if visit is None:
        if synced is None or office is None:
            return MergeDecision(MergeAction.NOTHING)
        if office.version == synced.office_version:
            return MergeDecision(MergeAction.DELETE)
        return MergeDecision(MergeAction.CONFLICT, ConflictReason.DELETED_ON_VISIT)
    if office is None:
        if synced is None:
            return MergeDecision(MergeAction.ADD)
        if visit.version == synced.visit_version:
            return MergeDecision(MergeAction.NOTHING)  # removed at the office, untouched here
        return MergeDecision(MergeAction.CONFLICT, ConflictReason.DELETED_AT_OFFICE)
    if office.content == visit.content:
        return MergeDecision(MergeAction.NOTHING)
    if synced is None:
        return MergeDecision(MergeAction.CONFLICT, ConflictReason.CLASHES)
    if visit.version == synced.visit_version:
        return MergeDecision(MergeAction.NOTHING)  # only the office changed it
    if office.version == synced.office_version:
        return MergeDecision(MergeAction.APPLY)
    return MergeDecision(MergeAction.CONFLICT, ConflictReason.BOTH_CHANGED)
