"""The records that travel to a visit pack and back, in the order parents come before children,
with the columns that point at other travelling records (translated through unique ids, since
a record has one id in the practice and another in the pack).

``PATIENT_TABLES`` says, for every table that holds a patient's records, whether it travels
both ways, goes to the laptop read-only, or stays at the office, and why
(``tests/unit/test_visit_tables.py`` fails when a new patient table has no decision).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Table, update
from sqlalchemy.orm import Session

from ketadesk.models.base import Base, UTCDateTime
from ketadesk.models.compliance import (
    ConsentRecord,
    ConsentTemplate,
    PdmpCheck,
    PrescriberCredential,
    Prescription,
    PrescriptionFill,
    TelemedicineRecord,
)
from ketadesk.models.interaction_reviews import InteractionReview, ReviewDecision
from ketadesk.models.outcomes import (
    CheckIn,
    CheckInSymptom,
    DoseBreachAlert,
    DoseLogRecord,
    QuestionnaireResponse,
    SafetyAlertAck,
)
from ketadesk.models.patients import (
    Patient,
    PatientAllergy,
    PatientCondition,
    PatientMedication,
    PatientStatusChange,
    VitalSign,
)
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.signing import ContentSignature
from ketadesk.storage.security.content_signatures import (
    INTERACTION_REVIEW,
    PRESCRIPTION,
    PROTOCOL_VERSION,
    SAFETY_ALERT_ACK,
    current_content_hash,
)

# Never compared: they differ between copies without the record having changed.
_NOT_CONTENT = frozenset({"id", "version", "updated_at", "created_at"})
_STAMPS = frozenset({"updated_at", "created_at"})


@dataclass(frozen=True)
class TravellingTable:
    """One table whose rows travel; ``links`` maps a column to the table it points at."""

    model: type[Base]
    links: dict[str, str] = field(default_factory=dict)
    # Rows are chosen by the patient (``patient_id``) or through this link's parent.
    via: str = "patient_id"
    label: str = ""
    # The column that names a row on both sides: ``uid``; a read-only table copied as it is
    # names its rows by a column the practice fills the same everywhere (a content hash).
    key: str = "uid"
    # Columns the practice computes again for a record added at return (a prescription's
    # hash covers its row id, which differs between the pack and the practice): never
    # compared, and left out of what is copied from the laptop.
    recomputed: tuple[str, ...] = ()
    # Columns that, equal on both sides, make a laptop's new row the office's own (the same
    # signed plan printed on the laptop and at the office is one plan).
    same_when: tuple[str, ...] = ()

    @property
    def table(self) -> Table:
        return self.model.__table__  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def is_editable(self) -> bool:
        return "version" in self.table.c


TRAVELLING: tuple[TravellingTable, ...] = (
    TravellingTable(Patient, via="id", label="patient demographics"),
    TravellingTable(PatientMedication, {"patient_id": "patients"}, label="medication"),
    TravellingTable(PatientCondition, {"patient_id": "patients"}, label="condition"),
    TravellingTable(PatientAllergy, {"patient_id": "patients"}, label="allergy"),
    TravellingTable(VitalSign, {"patient_id": "patients"}, label="vitals"),
    TravellingTable(PatientStatusChange, {"patient_id": "patients"}, label="status change"),
    TravellingTable(InteractionReview, {"patient_id": "patients"}, label="interaction review"),
    TravellingTable(
        ReviewDecision,
        {"review_id": "interaction_reviews", "carried_from_review_id": "interaction_reviews"},
        via="review_id",
        label="review decision",
    ),
    TravellingTable(PatientProtocol, {"patient_id": "patients"}, label="protocol"),
    TravellingTable(
        ProtocolVersion,
        {"protocol_id": "patient_protocols", "interaction_review_id": "interaction_reviews"},
        via="protocol_id",
        label="protocol version",
    ),
    TravellingTable(
        SignedPlanContent,
        {"protocol_version_id": "protocol_versions"},
        via="protocol_version_id",
        label="printed plan",
        same_when=("content_hash",),
    ),
    TravellingTable(
        CheckIn,
        {"patient_id": "patients", "protocol_version_id": "protocol_versions"},
        label="check-in",
    ),
    TravellingTable(
        CheckInSymptom, {"checkin_id": "checkins"}, via="checkin_id", label="check-in symptom"
    ),
    TravellingTable(QuestionnaireResponse, {"patient_id": "patients"}, label="questionnaire"),
    TravellingTable(
        SafetyAlertAck,
        {"response_id": "questionnaire_responses"},
        via="response_id",
        label="item-9 acknowledgement",
    ),
    TravellingTable(DoseLogRecord, {"patient_id": "patients"}, label="home dose"),
    TravellingTable(
        DoseBreachAlert,
        {"patient_id": "patients", "dose_log_id": "dose_log"},
        label="dose alert",
    ),
    TravellingTable(
        ConsentRecord,
        {"patient_id": "patients", "template_id": "consent_templates"},
        label="signed consent",
    ),
    TravellingTable(PdmpCheck, {"patient_id": "patients"}, label="PDMP look-up"),
    TravellingTable(TelemedicineRecord, {"patient_id": "patients"}, label="telemedicine record"),
    TravellingTable(
        Prescription,
        {"patient_id": "patients", "protocol_version_id": "protocol_versions"},
        label="prescription",
        recomputed=("content_hash",),
    ),
    TravellingTable(
        PrescriptionFill,
        {"prescription_id": "prescriptions"},
        via="prescription_id",
        label="prescription fill",
    ),
)

# The practice's own records a home visit needs, copied to the pack as they are and never
# brought back: what the laptop adds, changes or removes in them is refused at return, with
# the reason (consent texts and credentials are the practice's, added at the office).
READ_ONLY: tuple[TravellingTable, ...] = (
    TravellingTable(ConsentTemplate, via="", label="consent text", key="content_hash"),
    TravellingTable(PrescriberCredential, via="", label="prescriber credential", key=""),
)
READ_ONLY_REFUSAL = "read_only_at_office"
READ_ONLY_WORDS = (
    "changed on the visit laptop, but the practice keeps this at the office (add or change "
    "it there): not brought back"
)

# Physicians' content signatures are bound to the database they were made in: the office's
# stay at the office (a pack shows its signed records without them); one made on the laptop
# is checked there and signed again at return by the same physician (``visit_return``).
SIGNATURES = TravellingTable(ContentSignature, via="subject_id", label="physician signature")

BY_NAME: dict[str, TravellingTable] = {
    spec.name: spec for spec in (*TRAVELLING, SIGNATURES, *READ_ONLY)
}

SIGNED_SUBJECTS: dict[str, str] = {
    PROTOCOL_VERSION: "protocol_versions",
    INTERACTION_REVIEW: "interaction_reviews",
    SAFETY_ALERT_ACK: "questionnaire_responses",  # signed over the form and its answer
    PRESCRIPTION: "prescriptions",
}


class Journey(StrEnum):
    TRAVELS = "travels both ways"
    READ_ONLY = "goes to the laptop read-only"
    STAYS = "stays at the office"


@dataclass(frozen=True)
class TableDecision:
    journey: Journey
    reason: str


# Every table holding a patient's records (a ``patient_id``, or a link to such a table).
_CHART = "the chart a home visit reads, and changes when the patient's situation changed"
_RECORDED_AT_HOME = "recorded in the patient's home as often as at the office"
PATIENT_TABLES: dict[str, TableDecision] = {
    "patients": TableDecision(Journey.TRAVELS, _CHART),
    "patient_medications": TableDecision(Journey.TRAVELS, _CHART),
    "patient_conditions": TableDecision(Journey.TRAVELS, _CHART),
    "patient_allergies": TableDecision(Journey.TRAVELS, _CHART),
    "vital_signs": TableDecision(Journey.TRAVELS, _RECORDED_AT_HOME),
    "patient_status_changes": TableDecision(Journey.TRAVELS, _CHART),
    "interaction_reviews": TableDecision(
        Journey.TRAVELS,
        "a protocol and a prescription rest on a signed review; a chart changed at home "
        "needs a fresh one",
    ),
    "review_decisions": TableDecision(Journey.TRAVELS, "part of their interaction review"),
    "patient_protocols": TableDecision(
        Journey.TRAVELS, "what the visit follows, and may sign a new version of"
    ),
    "protocol_versions": TableDecision(
        Journey.TRAVELS, "what the visit follows, and may sign a new version of"
    ),
    "signed_plan_contents": TableDecision(
        Journey.TRAVELS,
        "a plan printed at the office is verified on the laptop, and one printed on the "
        "laptop is in the practice's record after return (its content and hash)",
    ),
    "checkins": TableDecision(Journey.TRAVELS, _RECORDED_AT_HOME),
    "checkin_symptoms": TableDecision(Journey.TRAVELS, "part of their check-in"),
    "questionnaire_responses": TableDecision(Journey.TRAVELS, _RECORDED_AT_HOME),
    "safety_alert_acks": TableDecision(
        Journey.TRAVELS, "an item-9 alert raised at home is acknowledged there"
    ),
    "dose_log": TableDecision(Journey.TRAVELS, _RECORDED_AT_HOME),
    "dose_breach_alerts": TableDecision(
        Journey.TRAVELS, "a dose over a limit at home is acknowledged there"
    ),
    "consent_records": TableDecision(
        Journey.TRAVELS,
        "a consent signed in the patient's home belongs in the practice's record; the "
        "laptop shows what was signed at the office",
    ),
    "pdmp_checks": TableDecision(
        Journey.TRAVELS,
        "a prescription issued at home needs the look-up, or the reason it could not be done",
    ),
    "telemedicine_records": TableDecision(
        Journey.TRAVELS, "what a remote prescription relies on, recorded where it is learnt"
    ),
    "prescriptions": TableDecision(
        Journey.TRAVELS,
        "issued or voided at home; the laptop shows what was issued at the office",
    ),
    "prescription_fills": TableDecision(
        Journey.TRAVELS, "a dispensing reported at home; refills count them"
    ),
    "content_signatures": TableDecision(
        Journey.STAYS,
        "a physician's signature is bound to the database it was made in: the office's stay "
        "there; one made on the laptop is signed again at return by the same physician",
    ),
    "audit_events": TableDecision(
        Journey.STAYS,
        "the practice's trail stays whole at the office; the pack keeps its own trail, "
        "appended at return as the laptop's block",
    ),
    "patient_roster_status": TableDecision(
        Journey.STAYS, "worked out from the chart; each side rebuilds its own"
    ),
    "visit_lease_patients": TableDecision(
        Journey.STAYS, "the practice's record of which patients are out on which pack"
    ),
    "visit_conflicts": TableDecision(
        Journey.STAYS, "the practice's queue of returned records waiting for a physician"
    ),
}

# The practice's tables a pack needs besides the patients' (decided the same way).
PRACTICE_TABLES: dict[str, TableDecision] = {
    "consent_templates": TableDecision(
        Journey.READ_ONLY, "a consent signed at home names the practice's consent text"
    ),
    "prescriber_credentials": TableDecision(
        Journey.READ_ONLY,
        "a prescription issued at home carries the physician's licence and DEA numbers",
    ),
}


def link_target(spec: TravellingTable, column: str, row: dict[str, Any]) -> str | None:
    """The table ``column`` of ``row`` points at (None: not a link)."""
    if spec.model is ContentSignature and column == "subject_id":
        return SIGNED_SUBJECTS.get(str(row["subject_kind"]))
    return spec.links.get(column)


def content_columns(spec: TravellingTable) -> list[str]:
    return [
        c.name for c in spec.table.c if c.name not in _NOT_CONTENT
        and c.name not in spec.recomputed
    ]


def read_only_fingerprint(spec: TravellingTable, row: dict[str, Any]) -> str:
    """A read-only row's content as 32 hex digits, recorded at check-out: a pack row whose
    fingerprint is not among them was added or changed on the laptop."""
    values = {c.name: row[c.name] for c in spec.table.c if c.name not in _STAMPS}
    return hashlib.sha256(content_key(values).encode("utf-8")).hexdigest()[:32]


def to_plain(value: Any) -> Any:
    """A column value as JSON can hold it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def from_plain(spec: TravellingTable, column: str, value: Any) -> Any:
    """A value from ``to_plain`` back as its column's type."""
    if value is None:
        return None
    kind = spec.table.c[column].type
    if isinstance(kind, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    return value


def content_key(values: dict[str, Any]) -> str:
    """A comparable form of a record's content (links already written as unique ids)."""
    return json.dumps({k: to_plain(v) for k, v in values.items()}, sort_keys=True)


def store_recomputed(session: Session, spec: TravellingTable, office_id: int) -> None:
    """Fill the columns the practice computes itself for a record it just took from a pack
    (a prescription's hash, which covers its practice id); a signature carried over the
    record signs this value."""
    if not spec.recomputed:
        return
    kind = next(k for k, table in SIGNED_SUBJECTS.items() if table == spec.name)
    content_hash = current_content_hash(session, kind, office_id)
    loaded = session.get(spec.model, office_id)
    if loaded is not None:
        session.expunge(loaded)
    session.execute(
        update(spec.table)
        .where(spec.table.c.id == office_id)
        .values(**dict.fromkeys(spec.recomputed, content_hash))
    )
