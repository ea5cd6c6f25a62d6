"""Return a visit pack to the practice: verify it, merge its records, append its audit.

The whole return is one transaction of the practice database: a crash or a kill part-way
leaves the practice as it was; a finished return leaves it fully updated. Records merge by
unique id (``core/visit_merge`` has the rule): new ones are added, edits apply when the
practice still holds the version the pack started from, and a record changed on both sides
waits in the conflict queue. The pack's own hash-chained audit is verified first (a pack
that fails is refused and left where it is) and then appended to the practice's trail as
the laptop's block. A pack whose lease was revoked is held for a physician instead.

On a practice server the return is one transaction of the server's, under the returning
user's own grants: a record the server's guards refuse to this user (a laptop prescription or
void returned by an admin, whose physician must sign) waits in the conflict queue for a
physician instead of failing the return, and the laptop's events are appended in the
returning user's name (each naming who did it on the laptop), signed with their key, so the
server's chain and signatures verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Executable, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

    from ketadesk.storage.visits.visit_practice import VisitPractice

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.core.visit_merge import (
    CONFLICT_WORDS,
    ConflictReason,
    MergeAction,
    Side,
    Synced,
    merge_decision,
)
from ketadesk.models.audit import AuditEvent
from ketadesk.models.visits import (
    VisitConflict,
    VisitLease,
    VisitPackBase,
    VisitSyncedRecord,
)
from ketadesk.storage.roster.roster_status import refresh_roster_status
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.audit_signatures import DATABASE_ID_KEY, SIGNER_KEY
from ketadesk.storage.security.content_signatures import current_content_hash
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.signing_keys import Signer, content_message
from ketadesk.storage.security.visit_pack_identity import VisitPackIdentity, refuse_in_visit_pack
from ketadesk.storage.visits.visit_audit_ids import pack_patient_words, practice_detail
from ketadesk.storage.visits.visit_leases import lease_row
from ketadesk.storage.visits.visit_practice import is_practice_server, is_server_refusal
from ketadesk.storage.visits.visit_tables import (
    BY_NAME,
    READ_ONLY,
    READ_ONLY_REFUSAL,
    READ_ONLY_WORDS,
    SIGNATURES,
    SIGNED_SUBJECTS,
    TRAVELLING,
    TravellingTable,
    content_columns,
    content_key,
    link_target,
    read_only_fingerprint,
    store_recomputed,
    to_plain,
)

PACK_HOLD_TABLE = "visit_pack"
_IN_CHUNK = 500


@dataclass(frozen=True)
class ReturnItem:
    """One record that did not simply merge: what it is, and why it waits."""

    table: str
    label: str
    record_uid: str
    patient_id: int | None
    reason: str

    @property
    def words(self) -> str:
        if self.reason == READ_ONLY_REFUSAL:
            return f"{self.label}: {READ_ONLY_WORDS}"
        return f"{self.label}: {CONFLICT_WORDS.get(self.reason, self.reason)}"


@dataclass(frozen=True)
class ReturnReport:
    pack_id: str
    dry_run: bool
    held_for_review: bool
    added: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    conflicts: tuple[ReturnItem, ...] = ()
    # Changes the laptop made to what it holds read-only: not brought back (the reason each).
    refused: tuple[ReturnItem, ...] = ()
    audit_events_appended: int = 0
    returned_after_lease: bool = False
    # Who revoked the lease and when (a held return, or one a physician released).
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    released_revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pack_id": self.pack_id,
            "dry_run": self.dry_run,
            "held_for_review": self.held_for_review,
            "applied": {
                "added": self.added,
                "edited": self.applied,
                "removed": self.deleted,
            },
            "unchanged": self.unchanged,
            "in_conflict": [
                {
                    "table": c.table,
                    "record": c.record_uid,
                    "patient_id": c.patient_id,
                    "reason": c.reason,
                    "words": c.words,
                }
                for c in self.conflicts
            ],
            "refused": [
                {"table": r.table, "record": r.record_uid, "reason": r.reason, "words": r.words}
                for r in self.refused
            ],
            "audit_events_appended": self.audit_events_appended,
            "returned_after_lease": self.returned_after_lease,
            "revoked_by": self.revoked_by,
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "released_revoked": self.released_revoked,
        }


@dataclass
class _PackContents:
    identity: VisitPackIdentity
    rows: dict[str, list[dict[str, Any]]]
    bases: dict[str, tuple[str, int]]  # unique id -> (table, version at check-out)
    audit: list[AuditEvent]
    # The physicians' signatures made on the laptop, each with whether it verified there.
    signatures: list[tuple[dict[str, Any], bool]]
    # The practice's records the pack held read-only, as the pack holds them now.
    reference: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def open_pack_for_return(pack_path: Path, user_name: str, password: str) -> PracticeDatabase:
    """Open a pack with its user's password without logging in to it (a return writes nothing
    into the pack, so returning it twice reads the same pack twice)."""
    pack_path = Path(pack_path)
    if not pack_path.exists() or not KeySlotFile.path_for(pack_path).exists():
        raise UserFacingError(
            f"There is no visit pack at {pack_path} (the pack is the .db file with its "
            ".keys.json beside it)."
        )
    slots = KeySlotFile.load(pack_path)
    try:
        _slot, opened = slots.open_user_slot(user_name, password)
    except UserFacingError:
        raise UserFacingError(
            f"The visit pack did not open for {user_name[:64]} with that password (it opens "
            "with the password of the user who checked it out, or of the physician chosen to "
            "open it too, as it was then). Nothing was changed."
        ) from None
    pack = PracticeDatabase.open_with_key(pack_path, opened.database_key, slots)
    if pack.visit_pack is None:
        pack.close()
        raise UserFacingError(f"{pack_path} is a practice database, not a visit pack.")
    return pack


def _read_pack(pack: PracticeDatabase) -> _PackContents:
    assert pack.visit_pack is not None
    rows: dict[str, list[dict[str, Any]]] = {}
    verified = {
        (c.subject_kind, c.subject_id, c.signed_by): c.is_valid for c in pack.content_signatures()
    }
    with pack.read_session() as session:
        signatures = [
            (dict(r), verified.get((r["subject_kind"], r["subject_id"], r["signed_by"]), False))
            for r in session.execute(
                select(SIGNATURES.table).order_by(SIGNATURES.table.c.id)
            ).mappings()
        ]
        for spec in TRAVELLING:
            rows[spec.name] = [
                dict(r)
                for r in session.execute(select(spec.table).order_by(spec.table.c.id)).mappings()
            ]
        reference = {
            spec.name: [
                dict(r)
                for r in session.execute(select(spec.table).order_by(spec.table.c.id)).mappings()
            ]
            for spec in READ_ONLY
        }
        bases = {
            uid: (table, version)
            for uid, table, version in session.execute(
                select(VisitPackBase.record_uid, VisitPackBase.table_name, VisitPackBase.version)
            )
        }
        audit = list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
        session.expunge_all()
    return _PackContents(pack.visit_pack, rows, bases, audit, signatures, reference)


def refuse_tampered_pack(
    practice: VisitPractice, actor: Actor, pack: PracticeDatabase, *, record: bool
) -> None:
    """Raise (after auditing the refusal in the practice) when the pack's own audit trail
    does not verify: its chain, anchor and every signature."""
    verdict = pack.verify_audit_trail()
    if verdict.is_intact:
        return
    assert pack.visit_pack is not None
    if record:
        with practice.session() as session:
            record_event(
                session,
                actor,
                audit_actions.VISIT_PACK_REFUSED,
                detail=f"visit pack {pack.visit_pack.pack_id}: audit check failed at event "
                f"{verdict.first_bad_seq}",
            )
    raise UserFacingError(
        f"The visit pack was refused: its own audit trail does not verify "
        f"({verdict.describe()}). Nothing was changed in the practice; the pack was left at "
        f"{pack.path} for inspection."
    )


def return_visit_pack(
    practice: VisitPractice,
    actor: Actor,
    pack_path: Path,
    pack_password: str,
    *,
    dry_run: bool = False,
    release_revoked: bool = False,
    now: datetime | None = None,
) -> ReturnReport:
    """Open the pack with its user's password, verify it and merge it into the practice."""
    refuse_in_visit_pack(practice.visit_pack, "Returning a visit pack")
    pack = open_pack_for_return(pack_path, actor.user_name, pack_password)
    try:
        return merge_visit_pack(
            practice, actor, pack, dry_run=dry_run, release_revoked=release_revoked, now=now
        )
    finally:
        pack.close()


def merge_visit_pack(
    practice: VisitPractice,
    actor: Actor,
    pack: PracticeDatabase,
    *,
    dry_run: bool = False,
    release_revoked: bool = False,
    now: datetime | None = None,
) -> ReturnReport:
    """Verify an open pack and merge it into the practice (see the module docstring)."""
    refuse_in_visit_pack(practice.visit_pack, "Returning a visit pack")
    now = now or datetime.now(UTC)
    identity = pack.visit_pack
    if identity is None:
        raise UserFacingError(f"{pack.path} is a practice database, not a visit pack.")
    if identity.practice_database_id != practice.database_id:
        raise UserFacingError(
            "This visit pack was checked out of another practice database; it cannot be "
            "returned here. Nothing was changed."
        )
    refuse_tampered_pack(practice, actor, pack, record=not dry_run)
    contents = _read_pack(pack)
    if release_revoked and actor.role != Role.PHYSICIAN:
        raise UserFacingError("Only a physician can release a revoked visit pack's return.")
    with practice.session() as session:
        lease = lease_row(session, identity.pack_id)
        if lease is None:
            raise UserFacingError(
                "This practice has no lease for that visit pack (was it checked out of a "
                "restored copy?). Nothing was changed."
            )
        was_revoked = lease.status == "revoked"
        if was_revoked and not release_revoked:
            report = _hold_revoked(session, actor, lease, contents, dry_run)
        else:
            merger = _Merger(session, identity.pack_id, contents, now)
            merger.merge_all()
            merger.carry_signatures(actor)
            merger.refuse_read_only_changes()
            appended = _append_audit_block(
                session, actor, lease, contents, merger,
                in_returning_users_name=is_practice_server(practice),
            )
            released = was_revoked and release_revoked
            _close_lease(session, actor, lease, now, merger, released)
            report = replace(
                merger.report(dry_run, appended, returned_after_lease=now > lease.expires_at),
                revoked_by=lease.revoked_by if was_revoked else None,
                revoked_at=lease.revoked_at if was_revoked else None,
                released_revoked=released,
            )
        if dry_run:
            session.rollback()
    return report


def _hold_revoked(
    session: Session,
    actor: Actor,
    lease: VisitLease,
    contents: _PackContents,
    dry_run: bool,
) -> ReturnReport:
    existing = session.execute(
        select(VisitConflict).where(
            VisitConflict.pack_id == lease.pack_id, VisitConflict.table_name == PACK_HOLD_TABLE
        )
    ).scalar_one_or_none()
    counts = {name: len(rows) for name, rows in contents.rows.items() if rows}
    if existing is None:
        session.add(
            VisitConflict(
                pack_id=lease.pack_id,
                table_name=PACK_HOLD_TABLE,
                record_uid=lease.pack_id,
                patient_id=None,
                reason=ConflictReason.REVOKED.value,
                office_json="{}",
                visit_json=json.dumps({"records": counts}, sort_keys=True),
                status="open",
            )
        )
    else:
        existing.status = "open"
    record_event(
        session, actor, audit_actions.VISIT_PACK_HELD, detail=f"visit pack {lease.pack_id}"
    )
    item = ReturnItem(
        PACK_HOLD_TABLE, "the whole visit pack", lease.pack_id, None, ConflictReason.REVOKED
    )
    return ReturnReport(
        lease.pack_id, dry_run, True, conflicts=(item,), revoked_by=lease.revoked_by,
        revoked_at=lease.revoked_at,
    )


def _close_lease(
    session: Session,
    actor: Actor,
    lease: VisitLease,
    now: datetime,
    merger: _Merger,
    release_revoked: bool,
) -> None:
    lease.status = "returned"
    lease.returned_by = actor.user_name
    lease.returned_at = now
    if release_revoked:
        session.execute(
            update(VisitConflict)
            .where(
                VisitConflict.pack_id == lease.pack_id,
                VisitConflict.table_name == PACK_HOLD_TABLE,
                VisitConflict.status == "open",
            )
            .values(
                status="resolved", resolution="visit", resolved_by=actor.user_name,
                resolved_at=now,
            )
        )
    refresh_roster_status(session, merger.touched_patients)
    record_event(
        session,
        actor,
        audit_actions.VISIT_PACK_RETURNED,
        detail=f"visit pack {lease.pack_id}: {sum(merger.added.values())} added, "
        f"{sum(merger.applied.values())} edited, {sum(merger.deleted.values())} removed, "
        f"{len(merger.conflicts)} in conflict, {len(merger.refused)} refused"
        + (" (revoked pack released by a physician)" if release_revoked else ""),
    )


def _append_audit_block(
    session: Session, actor: Actor, lease: VisitLease, contents: _PackContents,
    merger: _Merger, *, in_returning_users_name: bool = False,
) -> int:
    """The pack's events not yet in the practice's trail (the pack's chain was verified as it
    is, before this), appended as the laptop's block: each keeps its time, user and action;
    its patient and the records its detail names are the practice's (``visit_audit_ids``).

    Another user's event is the practice key's on a file; a server has no practice key, so
    there (``in_returning_users_name``) the returning user signs it, naming who did it."""
    events = [e for e in contents.audit if e.seq > lease.audit_seq_returned]
    if not events:
        return 0
    pack_tag = f"visit pack {lease.pack_id}"
    record_event(
        session,
        actor,
        audit_actions.VISIT_AUDIT_BLOCK,
        detail=f"{pack_tag}: events {events[0].seq}-{events[-1].seq} begin "
        f"(hash {events[-1].row_hash[:16]})",
    )
    for event in events:
        patient_id = (
            None if event.patient_id is None
            else merger.office_id_for_pack_id("patients", event.patient_id)
        )
        detail = practice_detail(event.detail, merger.office_id_for_pack_id)
        if event.patient_id is not None and patient_id is None:
            detail += pack_patient_words(event.patient_id)
        who: Actor | tuple[str, str]
        note = ""
        if event.user_name == actor.user_name:
            who = actor
        elif in_returning_users_name:
            who, note = actor, f" by {event.user_name}"
        elif event.role in ("system", "unknown"):
            who = (event.user_name, event.role)
        else:
            who, note = ("system", "system"), f" by {event.user_name}"
        record_event(
            session,
            who,
            event.action,
            patient_id=patient_id,
            detail=f"laptop #{event.seq}{note}: {detail}",
            at=event.occurred_at,
        )
    record_event(
        session,
        actor,
        audit_actions.VISIT_AUDIT_BLOCK,
        detail=f"{pack_tag}: {len(events)} events end",
    )
    lease.audit_seq_returned = events[-1].seq
    return len(events)


class _Merger:
    """Merges one pack's rows into the practice inside the caller's transaction."""

    def __init__(
        self, session: Session, pack_id: str, contents: _PackContents, now: datetime
    ) -> None:
        self.session = session
        self.pack_id = pack_id
        self.contents = contents
        self.now = now
        # Pack id -> unique id (or a read-only table's key), per table (the pack's own ids).
        self.pack_uids: dict[str, dict[int, str]] = {
            name: {r["id"]: r[BY_NAME[name].key] for r in rows}
            for name, rows in (*contents.rows.items(), *contents.reference.items())
            if BY_NAME[name].key
        }
        # Unique id -> practice id and practice id -> unique id, filled as needed.
        self.office_ids: dict[str, dict[str, int]] = {name: {} for name in BY_NAME}
        self.office_uids: dict[str, dict[int, str]] = {name: {} for name in BY_NAME}
        self.refused: list[ReturnItem] = []
        self.added: dict[str, int] = {}
        self.applied: dict[str, int] = {}
        self.deleted: dict[str, int] = {}
        self.unchanged = 0
        self.conflicts: list[ReturnItem] = []
        self.touched_patients: set[int] = set()
        self.waiting: set[str] = set()  # unique ids of records in the queue
        # Records the practice now holds exactly as the laptop does.
        self.merged: set[str] = set()
        # This pack's records waiting in the queue before this return (one query).
        self.open_waiting: set[str] = set(
            session.execute(
                select(VisitConflict.record_uid).where(
                    VisitConflict.pack_id == pack_id, VisitConflict.status == "open"
                )
            ).scalars()
        )
        # Sync points to write at the end, in bulk (None: forget it, the record is gone).
        self.synced_writes: dict[str, tuple[int, int] | None] = {}
        # Practice ids of carried records this return removed (the laptop removed them).
        self.removed_ids: dict[str, set[int]] = {spec.name: set() for spec in TRAVELLING}

    def office_id_for_pack_id(self, table_name: str, pack_id: int) -> int | None:
        """The practice's id of the record the pack knows as ``pack_id`` (None: it has none).

        A record still in the pack is found through its unique id. One the laptop removed is
        no longer there: if it was carried out, its id was the practice's own (a pack keeps
        the ids it was given), which this return removed or the practice still holds."""
        if table_name not in self.removed_ids:
            return None  # a table that does not travel: the id is the pack's alone
        uid = self.pack_uids.get(table_name, {}).get(pack_id)
        if uid is not None:
            return self.office_ids[table_name].get(uid) or self._office_id_of_uid(
                table_name, uid
            )
        if pack_id in self.removed_ids[table_name]:
            return pack_id
        office_uid = self._office_uid(table_name, pack_id)
        if office_uid is not None and office_uid in self.contents.bases:
            return pack_id
        return None

    # --- reading the practice side -----------------------------------------------------
    def _office_rows(self, spec: TravellingTable, uids: list[str]) -> dict[str, dict[str, Any]]:
        table = spec.table
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(uids), _IN_CHUNK):
            chunk = uids[start : start + _IN_CHUNK]
            for row in self.session.execute(
                select(table).where(table.c.uid.in_(chunk))
            ).mappings():
                found[row["uid"]] = dict(row)
                self.office_ids[spec.name][row["uid"]] = row["id"]
                self.office_uids[spec.name][row["id"]] = row["uid"]
        return found

    def _office_uid(self, table_name: str, office_id: int) -> str | None:
        known = self.office_uids[table_name].get(office_id)
        if known is None:
            spec = BY_NAME[table_name]
            known = self.session.execute(
                select(spec.table.c[spec.key]).where(spec.table.c.id == office_id)
            ).scalar_one_or_none()
            if known is not None:
                self.office_uids[table_name][office_id] = known
                self.office_ids[table_name][known] = office_id
        return known

    def _synced(self, uids: list[str]) -> dict[str, Synced]:
        synced = {
            uid: Synced(base[1], base[1])
            for uid in uids
            if (base := self.contents.bases.get(uid)) is not None
        }
        for start in range(0, len(uids), _IN_CHUNK):
            chunk = uids[start : start + _IN_CHUNK]
            for row in self.session.execute(
                select(VisitSyncedRecord).where(
                    VisitSyncedRecord.pack_id == self.pack_id,
                    VisitSyncedRecord.record_uid.in_(chunk),
                )
            ).scalars():
                synced[row.record_uid] = Synced(row.visit_version, row.office_version)
        return synced

    # --- content in comparable form ----------------------------------------------------
    def _visit_content(self, spec: TravellingTable, row: dict[str, Any]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for column in content_columns(spec):
            value = row[column]
            target = link_target(spec, column, row)
            if target is not None and value is not None:
                value = self.pack_uids.get(target, {}).get(value, f"pack:{value}")
            content[column] = value
        return content

    def _office_content(self, spec: TravellingTable, row: dict[str, Any]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for column in content_columns(spec):
            value = row[column]
            target = link_target(spec, column, row)
            if target is not None and value is not None:
                value = self._office_uid(target, value) or f"office:{value}"
            content[column] = value
        return content

    def _office_values(
        self, spec: TravellingTable, content: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The visit's content with links as practice ids (None: a linked record is not in
        the practice, e.g. it waits in the queue)."""
        values: dict[str, Any] = {}
        for column, value in content.items():
            target = link_target(spec, column, content)
            if target is not None and value is not None:
                office_id = self.office_ids[target].get(value)
                if office_id is None:
                    office_id = self._office_id_of_uid(target, value)
                if office_id is None:
                    return None
                value = office_id
            values[column] = value
        return values

    def _office_id_of_uid(self, table_name: str, uid: str) -> int | None:
        spec = BY_NAME[table_name]
        found = self.session.execute(
            select(spec.table.c.id).where(spec.table.c[spec.key] == uid).order_by(
                spec.table.c.id
            )
        ).scalar()
        if found is not None:
            self.office_ids[table_name][uid] = found
            self.office_uids[table_name][found] = uid
        return found

    # --- the merge ---------------------------------------------------------------------
    def merge_all(self) -> None:
        for spec in TRAVELLING:
            self._merge_table(spec)
        self._write_synced()

    def _write_synced(self) -> None:
        uids = list(self.synced_writes)
        for start in range(0, len(uids), _IN_CHUNK):
            self.session.execute(
                delete(VisitSyncedRecord).where(
                    VisitSyncedRecord.pack_id == self.pack_id,
                    VisitSyncedRecord.record_uid.in_(uids[start : start + _IN_CHUNK]),
                )
            )
        rows = [
            {"pack_id": self.pack_id, "record_uid": uid, "visit_version": point[0],
             "office_version": point[1]}
            for uid, point in self.synced_writes.items()
            if point is not None
        ]
        if rows:
            self.session.execute(insert(VisitSyncedRecord), rows)
        self.synced_writes.clear()

    def _merge_table(self, spec: TravellingTable) -> None:
        visit_rows = {r["uid"]: r for r in self.contents.rows.get(spec.name, [])}
        base_uids = [
            uid for uid in self._base_uids_of(spec) if uid not in visit_rows
        ]
        uids = list(visit_rows) + base_uids
        office_rows = self._office_rows(spec, uids)
        synced = self._synced(uids)
        editable = spec.is_editable
        for uid in uids:
            visit_row = visit_rows.get(uid)
            office_row = office_rows.get(uid)
            visit_content = None if visit_row is None else self._visit_content(spec, visit_row)
            office_content = (
                None if office_row is None else self._office_content(spec, office_row)
            )
            visit_side = (
                None
                if visit_row is None or visit_content is None
                else Side(visit_row["version"] if editable else 0, content_key(visit_content))
            )
            office_side = (
                None
                if office_row is None or office_content is None
                else Side(office_row["version"] if editable else 0, content_key(office_content))
            )
            decision = merge_decision(synced.get(uid), office_side, visit_side)
            if decision.action is MergeAction.NOTHING:
                self.unchanged += visit_row is not None
                if visit_side is not None and office_side is not None and (
                    visit_side.content == office_side.content
                ):
                    self.merged.add(uid)
                    agreed = Synced(visit_side.version, office_side.version)
                    if synced.get(uid) != agreed:
                        self._remember_synced(uid, agreed.visit_version, agreed.office_version)
                    self._close_waiting(uid)
                continue
            patient_id = self._patient_of(spec, office_row, visit_content)
            if decision.action is MergeAction.CONFLICT:
                assert decision.reason is not None
                if self._office_was_kept(uid, visit_side):
                    self.unchanged += visit_row is not None
                    continue
                self._queue(spec, uid, decision.reason, patient_id, office_row, office_content,
                            visit_side, visit_content, synced.get(uid))
                continue
            if decision.action is MergeAction.DELETE:
                assert office_row is not None
                removal = delete(spec.table).where(spec.table.c.id == office_row["id"])
                if self._refused_by_server(removal):
                    self._queue(spec, uid, ConflictReason.SERVER_REFUSED, patient_id, office_row,
                                office_content, None, None, synced.get(uid))
                    continue
                self.removed_ids[spec.name].add(int(office_row["id"]))
                self.synced_writes[uid] = None
                self._count(self.deleted, spec, patient_id)
                continue
            assert visit_content is not None and visit_side is not None
            values = self._office_values(spec, visit_content)
            if values is None:
                self._queue(spec, uid, ConflictReason.PARENT_WAITING, patient_id, office_row,
                            office_content, visit_side, visit_content, synced.get(uid))
                continue
            if decision.action is MergeAction.ADD:
                self._add(spec, uid, values, visit_side, visit_content, patient_id)
            else:
                assert office_row is not None and office_side is not None
                if not self._apply(spec, uid, office_row, values, visit_side, patient_id):
                    self._queue(spec, uid, ConflictReason.SERVER_REFUSED, patient_id, office_row,
                                office_content, visit_side, visit_content, synced.get(uid))
                    continue
                self._close_waiting(uid)

    def carry_signatures(self, actor: Actor) -> None:
        """Each signature the physician made on the laptop (and that verified there) is
        signed again over the record as the practice now holds it, with the physician's own
        key: the returning user is the one who signed, having opened both databases."""
        signer = self.session.info.get(SIGNER_KEY)
        database_id = self.session.info.get(DATABASE_ID_KEY)
        spec = SIGNATURES
        table = spec.table
        for row, is_valid in self.contents.signatures:
            exists = self.session.execute(
                select(table.c.id).where(table.c.uid == row["uid"])
            ).first()
            if exists is not None:
                self.unchanged += 1
                self._close_waiting(row["uid"])
                continue
            target = SIGNED_SUBJECTS.get(str(row["subject_kind"]))
            subject_uid = (
                None if target is None else self.pack_uids.get(target, {}).get(row["subject_id"])
            )
            office_id = (
                None if target is None or subject_uid is None
                else self._office_id_of_uid(target, subject_uid)
            )
            content = self._visit_content(spec, row)
            side = Side(0, content_key(content))
            if office_id is None or subject_uid not in self.merged:
                # What was signed on the laptop is not what the practice holds (it waits in
                # the queue): the signature is not carried over anything else.
                self._queue(spec, row["uid"], ConflictReason.PARENT_WAITING, None, None, None,
                            side, content, None)
                continue
            if not is_valid or row["signed_by"] != actor.user_name or not isinstance(
                signer, Signer
            ) or signer.user_name != actor.user_name or not isinstance(database_id, str):
                self._queue(spec, row["uid"], ConflictReason.SIGNATURE_NOT_CARRIED, None, None,
                            None, side, content, None)
                continue
            assert target is not None
            content_hash = current_content_hash(self.session, str(row["subject_kind"]), office_id)
            if content_hash is None:
                continue
            message = content_message(
                database_id, subject_kind=str(row["subject_kind"]), subject_id=office_id,
                content_hash=content_hash, signed_by=signer.user_name,
            )
            self.session.execute(
                insert(table).values(
                    uid=row["uid"], subject_kind=row["subject_kind"], subject_id=office_id,
                    content_hash=content_hash, signed_by=signer.user_name,
                    signed_at=row["signed_at"], signature=signer.sign(message),
                )
            )
            # Queued at an earlier return (by someone else, or before its record came back):
            # carried now, so it no longer waits.
            self._close_waiting(row["uid"])
            self._count(self.added, spec, None)

    def _base_uids_of(self, spec: TravellingTable) -> list[str]:
        """Records the pack carried out of this table (removed on the laptop or not)."""
        return [uid for uid, (table, _v) in self.contents.bases.items() if table == spec.name]

    def _patient_of(
        self,
        spec: TravellingTable,
        office_row: dict[str, Any] | None,
        visit_content: dict[str, Any] | None,
    ) -> int | None:
        """The practice's patient a record belongs to (through its parent for a child)."""
        if spec.name == "patients":
            return None if office_row is None else int(office_row["id"])
        if office_row is not None and "patient_id" in office_row:
            return int(office_row["patient_id"])
        if visit_content is not None and "patient_id" in visit_content:
            uid = visit_content["patient_id"]
            return self.office_ids["patients"].get(uid) or self._office_id_of_uid("patients", uid)
        parent = spec.links.get(spec.via)
        if parent is None:
            return None
        parent_id: int | None = None
        if office_row is not None:
            parent_id = office_row[spec.via]
        elif visit_content is not None and visit_content.get(spec.via) is not None:
            parent_id = self._office_id_of_uid(parent, visit_content[spec.via])
        return None if parent_id is None else self._patient_of_office_row(parent, parent_id)

    def _patient_of_office_row(self, table_name: str, office_id: int) -> int | None:
        """The patient of a practice row, up through its parents (a printed plan belongs to
        a protocol version, which belongs to a protocol, which belongs to the patient)."""
        spec = BY_NAME[table_name]
        table = spec.table
        column = "patient_id" if "patient_id" in table.c else spec.via
        found = self.session.execute(
            select(table.c[column]).where(table.c.id == office_id)
        ).scalar_one_or_none()
        if found is None or column == "patient_id":
            return None if found is None else int(found)
        return self._patient_of_office_row(spec.links[column], int(found))

    def _count(self, bucket: dict[str, int], spec: TravellingTable, patient_id: int | None) -> None:
        bucket[spec.name] = bucket.get(spec.name, 0) + 1
        if patient_id is not None:
            self.touched_patients.add(patient_id)

    def _add(
        self,
        spec: TravellingTable,
        uid: str,
        values: dict[str, Any],
        visit_side: Side,
        visit_content: dict[str, Any],
        patient_id: int | None,
    ) -> None:
        if spec.is_editable:
            values = {**values, "version": visit_side.version}
        if spec.same_when and self._same_office_record(spec, uid, values):
            self.unchanged += 1
            return
        values = {**values, **dict.fromkeys(spec.recomputed, "")}
        try:
            with self.session.begin_nested():
                result = cast(
                    "CursorResult[Any]",
                    self.session.execute(insert(spec.table).values(**values)),
                )
                key = result.inserted_primary_key
                assert key is not None
                new_id = int(key[0])
                store_recomputed(self.session, spec, new_id)
        except IntegrityError:
            if self._office_was_kept(uid, visit_side):
                # A physician already kept the office's record over this one.
                self.unchanged += 1
                return
            reason = (
                ConflictReason.BOTH_SIGNED
                if spec.name == "protocol_versions"
                else ConflictReason.CLASHES
            )
            self._queue(spec, uid, reason, patient_id, None, None, visit_side, visit_content,
                        None)
            return
        except DBAPIError as error:
            if not is_server_refusal(error):
                raise
            self._queue(spec, uid, ConflictReason.SERVER_REFUSED, patient_id, None, None,
                        visit_side, visit_content, None)
            return
        self.office_ids[spec.name][uid] = new_id
        self.office_uids[spec.name][new_id] = uid
        if spec.name == "patients":
            patient_id = new_id
        self._remember_synced(uid, visit_side.version, visit_side.version)
        self.merged.add(uid)
        self._close_waiting(uid)
        self._count(self.added, spec, patient_id)

    def _same_office_record(
        self, spec: TravellingTable, uid: str, values: dict[str, Any]
    ) -> bool:
        """The practice already holds this new record under its own unique id (the same
        signed plan printed on both sides): nothing to add, and nothing to ask."""
        table = spec.table
        found = self.session.execute(
            select(table.c.id).where(*(table.c[c] == values[c] for c in spec.same_when))
        ).scalar()
        if found is None:
            return False
        self.office_ids[spec.name][uid] = int(found)
        self.merged.add(uid)
        self._close_waiting(uid)
        return True

    def _apply(
        self,
        spec: TravellingTable,
        uid: str,
        office_row: dict[str, Any],
        values: dict[str, Any],
        visit_side: Side,
        patient_id: int | None,
    ) -> bool:
        """Apply the laptop's edit (False: the server refused it to this user; nothing done)."""
        new_version = int(office_row["version"]) + 1
        changes = {k: v for k, v in values.items() if k != "uid"}
        changes["version"] = new_version
        if "updated_at" in spec.table.c:
            changes["updated_at"] = self.now
        if self._refused_by_server(
            update(spec.table).where(spec.table.c.id == office_row["id"]).values(**changes)
        ):
            return False
        self._remember_synced(uid, visit_side.version, new_version)
        self.merged.add(uid)
        self._count(self.applied, spec, patient_id)
        return True

    def _refused_by_server(self, statement: Executable) -> bool:
        """Run one write in a savepoint; True (and nothing written) when a practice server's
        grants or signed-row guards refuse it to the returning user."""
        try:
            with self.session.begin_nested():
                self.session.execute(statement)
        except DBAPIError as error:
            if not is_server_refusal(error):
                raise
            return True
        return False

    def _office_was_kept(self, uid: str, visit_side: Side | None) -> bool:
        """A physician already kept the office's copy over this very version of the
        laptop's: it is not asked again (a newer laptop edit is)."""
        decided = self.session.execute(
            select(VisitConflict).where(
                VisitConflict.pack_id == self.pack_id,
                VisitConflict.record_uid == uid,
                VisitConflict.status == "resolved",
                VisitConflict.resolution == "office",
            )
        ).scalar_one_or_none()
        if decided is None:
            return False
        kept_over = json.loads(decided.visit_json or "{}")
        return (
            visit_side is not None
            and kept_over.get("version") == visit_side.version
            and kept_over.get("content") == visit_side.content
        ) or (visit_side is None and kept_over.get("values") is None)

    def _remember_synced(self, uid: str, visit_version: int, office_version: int) -> None:
        self.synced_writes[uid] = (visit_version, office_version)

    def _close_waiting(self, uid: str) -> None:
        """A conflict that a later return finds settled (the same on both sides, or its
        parent now in the practice) is closed as merged."""
        if uid not in self.open_waiting:
            return
        self.open_waiting.discard(uid)
        self.session.execute(
            update(VisitConflict)
            .where(
                VisitConflict.pack_id == self.pack_id,
                VisitConflict.record_uid == uid,
                VisitConflict.status == "open",
            )
            .values(status="resolved", resolution="merged", resolved_at=self.now)
        )

    def _queue(
        self,
        spec: TravellingTable,
        uid: str,
        reason: ConflictReason,
        patient_id: int | None,
        office_row: dict[str, Any] | None,
        office_content: dict[str, Any] | None,
        visit_side: Side | None,
        visit_content: dict[str, Any] | None,
        synced: Synced | None,
    ) -> None:
        self.waiting.add(uid)
        office_json = json.dumps(
            {
                "version": None if office_row is None else office_row.get("version", 0),
                "values": None if office_content is None else _plain(office_content),
            },
            sort_keys=True,
        )
        visit_json = json.dumps(
            {
                "version": None if visit_side is None else visit_side.version,
                "values": None if visit_content is None else _plain(visit_content),
                "content": None if visit_side is None else visit_side.content,
            },
            sort_keys=True,
        )
        existing = self.session.execute(
            select(VisitConflict).where(
                VisitConflict.pack_id == self.pack_id, VisitConflict.record_uid == uid
            )
        ).scalar_one_or_none()
        already_queued = (
            existing is not None
            and existing.status == "open"
            and existing.visit_json == visit_json
            and existing.office_json == office_json
        )
        if existing is None:
            existing = VisitConflict(pack_id=self.pack_id, record_uid=uid)
            self.session.add(existing)
        if not already_queued:
            existing.table_name = spec.name
            existing.patient_id = patient_id
            existing.reason = reason.value
            existing.base_version = None if synced is None else synced.office_version
            existing.office_version = (
                None if office_row is None else int(office_row.get("version", 0))
            )
            existing.office_json = office_json
            existing.visit_json = visit_json
            existing.status = "open"
            existing.resolution = None
            existing.resolved_by = None
            existing.resolved_at = None
            existing.created_at = self.now
        self.session.flush()
        if patient_id is not None:
            self.touched_patients.add(patient_id)
        self.conflicts.append(ReturnItem(spec.name, spec.label, uid, patient_id, reason.value))

    def refuse_read_only_changes(self) -> None:
        """What the laptop added, changed or removed in the practice's own records it held
        read-only is not brought back; each is named in the report."""
        for spec in READ_ONLY:
            # Fingerprint -> row id, as checked out.
            started = {
                uid: row_id
                for uid, (table, row_id) in self.contents.bases.items()
                if table == spec.name
            }
            rows = self.contents.reference[spec.name]
            changed = [
                fingerprint
                for r in rows
                if (fingerprint := read_only_fingerprint(spec, r)) not in started
            ]
            kept_ids = {r["id"] for r in rows}
            changed += [uid for uid, row_id in started.items() if row_id not in kept_ids]
            self.refused += [
                ReturnItem(spec.name, spec.label, fingerprint, None, READ_ONLY_REFUSAL)
                for fingerprint in changed
            ]

    def report(
        self, dry_run: bool, appended: int, *, returned_after_lease: bool
    ) -> ReturnReport:
        return ReturnReport(
            self.pack_id,
            dry_run,
            False,
            added=dict(self.added),
            applied=dict(self.applied),
            deleted=dict(self.deleted),
            unchanged=self.unchanged,
            conflicts=tuple(self.conflicts),
            refused=tuple(self.refused),
            audit_events_appended=appended,
            returned_after_lease=returned_after_lease,
        )


def _plain(content: dict[str, Any]) -> dict[str, Any]:
    return {k: to_plain(v) for k, v in content.items()}


def patients_touched(report: ReturnReport) -> Iterable[int]:
    return sorted({c.patient_id for c in report.conflicts if c.patient_id is not None})
