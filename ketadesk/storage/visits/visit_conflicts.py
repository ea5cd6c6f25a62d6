"""The conflict queue of returned visit packs: list it, and let a physician resolve each record
(keep the office's copy, keep the visit's, or take chosen fields from the visit)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.core.visit_merge import CONFLICT_WORDS, ConflictReason
from ketadesk.models.base import new_record_uid
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.models.visits import VisitConflict, VisitSyncedRecord
from ketadesk.storage.roster.roster_status import refresh_roster_status
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.visits.visit_tables import (
    BY_NAME,
    TravellingTable,
    from_plain,
    link_target,
    store_recomputed,
)

RESOLUTIONS = ("office", "visit", "fields")
_PACK_HOLD_TABLE = "visit_pack"


@dataclass(frozen=True)
class ConflictInfo:
    """One entry of the queue, with both sides' fields (clinical content: shown to the
    physician, never written to the audit trail)."""

    id: int
    pack_id: str
    table: str
    label: str
    patient_id: int | None
    patient_mrn: str | None
    reason: str
    office: dict[str, Any] | None
    visit: dict[str, Any] | None
    differing_fields: tuple[str, ...]
    status: str
    resolution: str | None
    resolved_by: str | None
    created_at: datetime

    @property
    def reason_words(self) -> str:
        return CONFLICT_WORDS.get(self.reason, self.reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pack_id": self.pack_id,
            "record": self.label,
            "table": self.table,
            "patient_mrn": self.patient_mrn,
            "reason": self.reason,
            "reason_words": self.reason_words,
            "differing_fields": list(self.differing_fields),
            "office": self.office,
            "visit": self.visit,
            "status": self.status,
            "resolution": self.resolution,
            "resolved_by": self.resolved_by,
            "created_at": self.created_at.isoformat(),
        }


def _side(text: str) -> tuple[int | None, dict[str, Any] | None]:
    data = json.loads(text or "{}")
    return data.get("version"), data.get("values")


def _info(row: VisitConflict, mrn: str | None) -> ConflictInfo:
    _ov, office = _side(row.office_json)
    _vv, visit = _side(row.visit_json)
    if row.table_name == _PACK_HOLD_TABLE:
        visit = json.loads(row.visit_json or "{}").get("records")
    differing: tuple[str, ...] = ()
    if office is not None and visit is not None and row.table_name != _PACK_HOLD_TABLE:
        differing = tuple(k for k in visit if office.get(k) != visit.get(k))
    spec = BY_NAME.get(row.table_name)
    label = spec.label if spec is not None else "the whole visit pack"
    return ConflictInfo(
        id=row.id,
        pack_id=row.pack_id,
        table=row.table_name,
        label=label,
        patient_id=row.patient_id,
        patient_mrn=mrn,
        reason=row.reason,
        office=office,
        visit=visit,
        differing_fields=differing,
        status=row.status,
        resolution=row.resolution,
        resolved_by=row.resolved_by,
        created_at=row.created_at,
    )


def list_conflicts(session: Session, *, include_resolved: bool = False) -> tuple[ConflictInfo, ...]:
    """The queue, oldest first (open ones only unless ``include_resolved``)."""
    query = (
        select(VisitConflict, Patient.mrn)
        .outerjoin(Patient, Patient.id == VisitConflict.patient_id)
        .order_by(VisitConflict.created_at, VisitConflict.id)
    )
    if not include_resolved:
        query = query.where(VisitConflict.status == "open")
    return tuple(_info(row, mrn) for row, mrn in session.execute(query).all())


def open_conflict_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(VisitConflict).where(VisitConflict.status == "open")
        ).scalar_one()
    )


def _office_values(
    session: Session, spec: TravellingTable, content: dict[str, Any]
) -> dict[str, Any]:
    """Stored content (links as unique ids) as practice column values."""
    values: dict[str, Any] = {}
    for column, value in content.items():
        target = link_target(spec, column, content)
        if target is not None and value is not None:
            parent = BY_NAME[target]
            found = session.execute(
                select(parent.table.c.id)
                .where(parent.table.c[parent.key] == value)
                .order_by(parent.table.c.id)
            ).scalar()
            if found is None:
                raise UserFacingError(
                    f"This {spec.label} belongs to a record that is not in the practice yet "
                    "(it waits in the queue too): resolve that one first."
                )
            value = found
        values[column] = from_plain(spec, column, value)
    return values


def resolve_conflict(
    session: Session,
    actor: Actor,
    conflict_id: int,
    choice: str,
    fields: Sequence[str] = (),
    *,
    merged_text: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ConflictInfo:
    """Settle one conflict (physicians only; audited with the choice and field names).

    ``office``: the practice's copy stands. ``visit``: the laptop's copy replaces it (a
    record removed at the office comes back; a second signed protocol version is added with
    the next number, so neither signed version replaces the other). ``fields``: only the
    named fields are taken from the laptop's copy; ``merged_text`` gives, for some of those
    fields that hold text on both sides, the wording the physician merged from the two (its
    words stay in the record; the audit names only the fields).
    """
    if actor.role != Role.PHYSICIAN:
        raise UserFacingError("Only a physician can resolve what a visit pack brought back.")
    if choice not in RESOLUTIONS:
        raise UserFacingError("Choose how to resolve it: office, visit or fields.")
    now = now or datetime.now(UTC)
    row = session.get(VisitConflict, conflict_id)
    if row is None:
        raise UserFacingError(f"There is no conflict number {conflict_id}.")
    if row.status != "open":
        raise UserFacingError(f"Conflict {conflict_id} was already resolved by {row.resolved_by}.")
    if row.table_name == _PACK_HOLD_TABLE:
        if choice != "office":
            raise UserFacingError(
                "A revoked visit pack is released by returning it again with "
                "'visit return --release-revoked' (physicians only); or choose 'office' to "
                "set its changes aside."
            )
    else:
        _apply_resolution(session, row, choice, fields, merged_text or {}, now)
    row.status = "resolved"
    row.resolution = choice
    row.resolved_by = actor.user_name
    row.resolved_at = now
    detail = f"conflict {row.id} ({row.table_name}): kept {choice}"
    if choice == "fields":
        detail += " for " + ", ".join(fields)
        if merged_text:
            detail += " (merged wording: " + ", ".join(sorted(merged_text)) + ")"
    record_event(
        session, actor, audit_actions.VISIT_CONFLICT_RESOLVED, patient_id=row.patient_id,
        detail=detail,
    )
    if row.patient_id is not None:
        refresh_roster_status(session, [row.patient_id])
    session.flush()
    mrn = None
    if row.patient_id is not None:
        mrn = session.execute(
            select(Patient.mrn).where(Patient.id == row.patient_id)
        ).scalar_one_or_none()
    return _info(row, mrn)


def _apply_resolution(
    session: Session,
    row: VisitConflict,
    choice: str,
    fields: Sequence[str],
    merged_text: Mapping[str, str],
    now: datetime,
) -> None:
    spec = BY_NAME[row.table_name]
    table = spec.table
    office_version, office = _side(row.office_json)
    visit_version, visit = _side(row.visit_json)
    current = session.execute(
        select(table).where(table.c.uid == row.record_uid)
    ).mappings().one_or_none()
    current_version = None if current is None else current.get("version", 0)
    if current_version != office_version and row.reason != ConflictReason.BOTH_SIGNED:
        raise UserFacingError(
            "The office's copy changed again since this conflict was queued; return the pack "
            "again to see both sides as they are now. Nothing was changed."
        )
    signed_at_office = (
        current is not None
        and spec.model in (ProtocolVersion, InteractionReview)
        and current.get("status") == "signed"
    )
    if choice == "fields" and spec.recomputed:
        raise UserFacingError(
            f"A {spec.label} is signed as a whole when it is issued and cannot be merged field "
            "by field; keep the office's copy or the visit's."
        )
    if choice == "office":
        pass
    elif signed_at_office and visit is not None:
        # A signed record is never replaced (its signature covers it): the laptop's copy is
        # kept beside it as a record of its own (a protocol version under the next number).
        if choice == "fields":
            raise UserFacingError(
                f"The office's {spec.label} is signed and cannot be changed field by field; "
                "keep the office's copy or keep the visit's beside it."
            )
        values = _office_values(session, spec, visit)
        values["uid"] = new_record_uid()
        _insert(session, spec, values, row.reason)
    elif visit is None:
        # Removed on the laptop, changed at the office: keeping the visit removes it.
        if current is not None:
            session.execute(table.delete().where(table.c.id == current["id"]))
    elif choice == "fields":
        unknown = [f for f in fields if f not in visit]
        if not fields or unknown:
            raise UserFacingError(
                "Name the fields to take from the visit: " + ", ".join(sorted(visit)) + "."
            )
        if current is None:
            raise UserFacingError(
                "The office removed this record; keep the visit's copy or the office's."
            )
        _check_merged_text(merged_text, fields, visit, office)
        taken = {f: merged_text.get(f, visit[f]) for f in fields}
        values = _office_values(session, spec, taken)
        _update(session, spec, current, values, now)
    else:
        values = _office_values(session, spec, visit)
        if current is None or row.reason == ConflictReason.BOTH_SIGNED:
            _insert(session, spec, values, row.reason)
        else:
            _update(session, spec, current, values, now)
    after = session.execute(
        select(table).where(table.c.uid == row.record_uid)
    ).mappings().one_or_none()
    # Keeping the office's copy moves nothing forward: the laptop's version stays unmerged,
    # so a later edit on the laptop (made without seeing the office's) is asked about again.
    if choice != "office" and visit_version is not None and after is not None:
        synced = session.get(VisitSyncedRecord, (row.pack_id, row.record_uid))
        if synced is None:
            session.add(
                VisitSyncedRecord(
                    pack_id=row.pack_id, record_uid=row.record_uid,
                    visit_version=visit_version, office_version=after.get("version", 0),
                )
            )
        else:
            synced.visit_version = visit_version
            synced.office_version = after.get("version", 0)


def _check_merged_text(
    merged_text: Mapping[str, str],
    fields: Sequence[str],
    visit: dict[str, Any],
    office: dict[str, Any] | None,
) -> None:
    """Merged wording only for chosen fields that hold text on both sides."""
    for name, text in merged_text.items():
        if name not in fields:
            raise UserFacingError(f"Tick {name!r} to take its merged wording.")
        sides = (visit.get(name), None if office is None else office.get(name))
        if (
            not isinstance(text, str)
            or not all(isinstance(v, str | None) for v in sides)
            or not any(isinstance(v, str) for v in sides)
        ):
            raise UserFacingError(
                f"Only text can be merged by hand; {name!r} is not text. Take the office's "
                "value or the laptop's."
            )


def _update(
    session: Session,
    spec: TravellingTable,
    current: Any,
    values: dict[str, Any],
    now: datetime,
) -> None:
    changes = {k: v for k, v in values.items() if k != "uid"}
    if spec.is_editable:
        changes["version"] = int(current["version"]) + 1
    if "updated_at" in spec.table.c:
        changes["updated_at"] = now
    session.execute(update(spec.table).where(spec.table.c.id == current["id"]).values(**changes))


def _insert(session: Session, spec: TravellingTable, values: dict[str, Any], reason: str) -> None:
    if spec.model is ProtocolVersion:
        # Both sides signed a version with this number: the visit's becomes the next one.
        newest = session.execute(
            select(func.max(ProtocolVersion.number)).where(
                ProtocolVersion.protocol_id == values["protocol_id"]
            )
        ).scalar_one()
        values = {**values, "number": int(newest or 0) + 1}
    try:
        with session.begin_nested():
            added = session.execute(
                insert(spec.table).values(**values, **dict.fromkeys(spec.recomputed, ""))
            )
            key = cast("CursorResult[Any]", added).inserted_primary_key
            assert key is not None
            store_recomputed(session, spec, int(key[0]))
    except IntegrityError:
        raise UserFacingError(
            f"The visit's {spec.label} cannot sit beside the office's "
            f"({CONFLICT_WORDS.get(reason, reason)}); keep the office's copy and enter what is "
            "missing by hand."
        ) from None
