"""Protocol versions as stored on the chart, read back as frozen views.

A protocol is a sequence of versions (drafts, then signed versions that never change). The
readers here return them newest first, or the signed version currently in force. Weights in kg.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_serialization import (
    protocol_from_dict,
)
from ketadesk.core.protocols import (
    Protocol,
    WeightReading,
    latest_weight,
)
from ketadesk.models.patients import VitalSign
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion

# --------------------------------------------------------------------------- dataclasses


def _local(moment: datetime) -> str:
    """``moment`` (aware) as MM/DD/YYYY HH:MM in this computer's time zone."""
    return moment.astimezone().strftime("%m/%d/%Y %H:%M")


@dataclass(frozen=True)
class ProtocolVersionInfo:
    """One version of a patient's protocol, as stored.

    ``weight`` is the chart weight (kg, with its date) the version was saved or signed with;
    mg/kg values shown for this version are computed from it.
    """

    version_id: int
    protocol_id: int
    patient_id: int
    number: int
    status: str  # "draft" | "signed"
    protocol: Protocol
    content_hash: str
    template_name: str
    start_date: date
    weight: WeightReading | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    signed_by: str | None
    signed_by_full_name: str | None
    signed_at: datetime | None
    interaction_review_id: int | None
    acknowledged_warnings: tuple[str, ...]
    #: The row's version (one more at each save): a form names it when saving over it.
    row_version: int = 1

    @property
    def is_signed(self) -> bool:
        return self.status == "signed"

    @property
    def label(self) -> str:
        """Short words for lists: "Version 2 — signed 11/25/2026 14:05 by Dr. A" / "Version 3 —
        draft (saved ...)", in this computer's local time (times are stored in UTC)."""
        if self.is_signed and self.signed_at is not None:
            who = self.signed_by_full_name or self.signed_by or "?"
            return f"Version {self.number} — signed {_local(self.signed_at)} by {who}"
        return f"Version {self.number} — draft (saved {_local(self.updated_at)})"


@dataclass(frozen=True)
class PatientProtocolInfo:
    """One course of treatment with all its versions (oldest first)."""

    protocol_id: int
    patient_id: int
    status: str  # "active" | "discontinued"
    created_by: str
    created_at: datetime
    discontinued_reason: str | None
    discontinued_by: str | None
    discontinued_at: datetime | None
    versions: tuple[ProtocolVersionInfo, ...]

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def latest(self) -> ProtocolVersionInfo | None:
        return self.versions[-1] if self.versions else None

    @property
    def latest_signed(self) -> ProtocolVersionInfo | None:
        signed = [v for v in self.versions if v.is_signed]
        return signed[-1] if signed else None

    @property
    def draft(self) -> ProtocolVersionInfo | None:
        drafts = [v for v in self.versions if not v.is_signed]
        return drafts[-1] if drafts else None


# --------------------------------------------------------------------------- reading


def version_info(row: ProtocolVersion, patient_id: int) -> ProtocolVersionInfo:
    weight = (
        WeightReading(kg=row.weight_kg, measured_on=row.weight_measured_on)
        if row.weight_kg is not None and row.weight_measured_on is not None
        else None
    )
    acknowledged = json.loads(row.acknowledged_warnings_json or "[]")
    return ProtocolVersionInfo(
        version_id=row.id,
        protocol_id=row.protocol_id,
        patient_id=patient_id,
        number=row.number,
        status=row.status,
        protocol=protocol_from_dict(json.loads(row.protocol_json)),
        content_hash=row.content_hash,
        template_name=row.template_name,
        start_date=row.start_date,
        weight=weight,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        signed_by=row.signed_by,
        signed_by_full_name=row.signed_by_full_name,
        signed_at=row.signed_at,
        interaction_review_id=row.interaction_review_id,
        acknowledged_warnings=tuple(str(code) for code in acknowledged),
        row_version=row.version,
    )


def protocol_info(row: PatientProtocol) -> PatientProtocolInfo:
    return PatientProtocolInfo(
        protocol_id=row.id,
        patient_id=row.patient_id,
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        discontinued_reason=row.discontinued_reason,
        discontinued_by=row.discontinued_by,
        discontinued_at=row.discontinued_at,
        versions=tuple(version_info(v, row.patient_id) for v in row.versions),
    )


def chart_weight(session: Session, patient_id: int) -> WeightReading | None:
    """Return the patient's most recent recorded weight (kg) and the (UTC) date it was taken."""
    rows = session.execute(
        select(VitalSign.weight_kg, VitalSign.measured_at)
        .where(VitalSign.patient_id == patient_id, VitalSign.weight_kg.is_not(None))
        .order_by(VitalSign.measured_at.desc())
        .limit(5)
    ).all()
    return latest_weight(
        WeightReading(kg=float(kg or 0), measured_on=at.date()) for kg, at in reversed(rows)
    )


def patient_protocols(session: Session, patient_id: int) -> tuple[PatientProtocolInfo, ...]:
    """Return every protocol of the patient, newest first, each with its versions."""
    rows = session.execute(
        select(PatientProtocol)
        .where(PatientProtocol.patient_id == patient_id)
        .order_by(PatientProtocol.id.desc())
    ).scalars()
    return tuple(protocol_info(row) for row in rows)


def active_protocol_row(session: Session, patient_id: int) -> PatientProtocol | None:
    return session.execute(
        select(PatientProtocol)
        .where(PatientProtocol.patient_id == patient_id, PatientProtocol.status == "active")
        .order_by(PatientProtocol.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def current_protocol(session: Session, patient_id: int) -> PatientProtocolInfo | None:
    """Return the patient's active protocol (with all versions), or ``None``."""
    row = active_protocol_row(session, patient_id)
    return protocol_info(row) if row is not None else None


def get_version(session: Session, version_id: int) -> ProtocolVersionInfo:
    row = session.get(ProtocolVersion, version_id)
    if row is None:
        raise UserFacingError("This protocol version no longer exists.")
    return version_info(row, row.protocol.patient_id)


def active_signed_protocol(session: Session, patient_id: int) -> ProtocolVersionInfo | None:
    """Return the newest signed version of the patient's active protocol, or ``None`` when the
    patient has no active protocol or it has never been signed. A draft made after signing
    does not replace it: the signed version stays in force until a newer one is signed."""
    row = session.execute(
        select(ProtocolVersion)
        .join(PatientProtocol)
        .where(
            PatientProtocol.patient_id == patient_id,
            PatientProtocol.status == "active",
            ProtocolVersion.status == "signed",
        )
        .order_by(ProtocolVersion.signed_at.desc(), ProtocolVersion.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    return version_info(row, patient_id) if row is not None else None


def active_signed_protocols(
    session: Session, patient_ids: Sequence[int] | None = None
) -> dict[int, ProtocolVersionInfo]:
    """Return patient id -> newest signed version of the active protocol, for many patients at
    once (``None`` = every patient). Patients without one are left out."""
    query = (
        select(ProtocolVersion, PatientProtocol.patient_id)
        .join(PatientProtocol)
        .where(PatientProtocol.status == "active", ProtocolVersion.status == "signed")
        .order_by(ProtocolVersion.signed_at, ProtocolVersion.number)
    )
    if patient_ids is not None:
        query = query.where(PatientProtocol.patient_id.in_(list(patient_ids)))
    found: dict[int, ProtocolVersionInfo] = {}
    for row, patient_id in session.execute(query).all():
        found[patient_id] = version_info(row, patient_id)  # later rows are newer
    return found
