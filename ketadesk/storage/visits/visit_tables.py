"""The records that travel to a visit pack and back, in the order parents come before children,
with the columns that point at other travelling records (translated through unique ids, since
a record has one id in the practice and another in the pack)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Table

from ketadesk.models.base import Base, UTCDateTime
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
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.signing import ContentSignature
from ketadesk.storage.security.content_signatures import (
    INTERACTION_REVIEW,
    PROTOCOL_VERSION,
    SAFETY_ALERT_ACK,
)

# Never compared: they differ between copies without the record having changed.
_NOT_CONTENT = frozenset({"id", "version", "updated_at", "created_at"})


@dataclass(frozen=True)
class TravellingTable:
    """One table whose rows travel; ``links`` maps a column to the table it points at."""

    model: type[Base]
    links: dict[str, str] = field(default_factory=dict)
    # Rows are chosen by the patient (``patient_id``) or through this link's parent.
    via: str = "patient_id"
    label: str = ""

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
)

# Physicians' content signatures are bound to the database they were made in: the office's
# stay at the office (a pack shows its signed records without them); one made on the laptop
# is checked there and signed again at return by the same physician (``visit_return``).
SIGNATURES = TravellingTable(ContentSignature, via="subject_id", label="physician signature")

BY_NAME: dict[str, TravellingTable] = {spec.name: spec for spec in (*TRAVELLING, SIGNATURES)}

SIGNED_SUBJECTS: dict[str, str] = {
    PROTOCOL_VERSION: "protocol_versions",
    INTERACTION_REVIEW: "interaction_reviews",
    SAFETY_ALERT_ACK: "questionnaire_responses",  # signed over the form and its answer
}


def link_target(spec: TravellingTable, column: str, row: dict[str, Any]) -> str | None:
    """The table ``column`` of ``row`` points at (None: not a link)."""
    if spec.model is ContentSignature and column == "subject_id":
        return SIGNED_SUBJECTS.get(str(row["subject_kind"]))
    return spec.links.get(column)


def content_columns(spec: TravellingTable) -> list[str]:
    return [c.name for c in spec.table.c if c.name not in _NOT_CONTENT]


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
