"""Frozen views of one patient's chart, and the conversions between them and the ORM rows.

Callers never hold live ORM rows: the chart service returns these dataclasses.
Units: height in cm, weight in kg, blood pressure in mmHg, heart rate in beats per minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.errors import UserFacingError
from ketadesk.core.search_text import fold_for_search
from ketadesk.models.patients import Patient, PatientMedication, VitalSign

# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class MedicationEntry:
    """A medication line exactly as typed, with optional structure and where it came from."""

    id: int
    entered_text: str
    dose_text: str
    frequency_text: str
    start_date: date | None
    source: str
    verified_by: str | None
    verified_at: datetime | None
    is_active: bool
    entered_by: str
    entered_at: datetime
    stopped_by: str | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    stop_note: str = ""
    #: The row's version (one more at each save): a change names the version it was shown.
    version: int = 1

    @property
    def is_verified(self) -> bool:
        return self.source == "verified"


@dataclass(frozen=True)
class ConditionEntry:
    id: int
    entered_text: str
    icd10: str | None
    is_active: bool
    entered_by: str
    concept_id: str | None = None
    version: int = 1


@dataclass(frozen=True)
class AllergyEntry:
    id: int
    substance: str
    reaction: str


@dataclass(frozen=True)
class VitalsEntry:
    """One set of vitals: mmHg, beats per minute, kg. Any of them may be missing."""

    id: int
    measured_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None
    entered_by: str


@dataclass(frozen=True)
class StatusChangeEntry:
    from_status: str
    to_status: str
    reason: str
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class PatientBrief:
    """Enough to name a patient in a list (e.g. possible duplicates)."""

    id: int
    mrn: str
    first_name: str
    last_name: str
    dob: date
    status: str


@dataclass(frozen=True)
class PatientRecord:
    """The whole chart of one patient, as stored. ``height_cm`` in cm."""

    id: int
    mrn: str
    demographics: PatientDemographics
    status: str
    pregnant: bool
    height_cm: float | None
    last_visit_on: date | None
    created_at: datetime
    updated_at: datetime
    medications: tuple[MedicationEntry, ...]
    conditions: tuple[ConditionEntry, ...]
    allergies: tuple[AllergyEntry, ...]
    vitals: tuple[VitalsEntry, ...]
    status_changes: tuple[StatusChangeEntry, ...]
    # The stored version (one more at each save) and who saved last: a save that names an
    # older version meets someone else's change (storage/patients/chart_versions).
    version: int = 1
    updated_by: str | None = None

    @property
    def active_medications(self) -> tuple[MedicationEntry, ...]:
        return tuple(m for m in self.medications if m.is_active)

    @property
    def latest_weight_kg(self) -> float | None:
        """The most recent recorded weight in kg, or None."""
        for vitals in reversed(self.vitals):
            if vitals.weight_kg is not None:
                return vitals.weight_kg
        return None

    @property
    def display_name(self) -> str:
        d = self.demographics
        return f"{d.last_name}, {d.first_name}"


# --------------------------------------------------------------------------- conversions


def demographics_of(p: Patient) -> PatientDemographics:
    return PatientDemographics(
        first_name=p.first_name,
        middle_name=p.middle_name or "",
        last_name=p.last_name,
        dob=p.dob,
        sex=p.sex,
        state=p.state,
        county=p.county or "",
        phone=p.phone or "",
        email=p.email or "",
        address_line1=p.address_line1 or "",
        address_line2=p.address_line2 or "",
        city=p.city or "",
        zip=p.zip_code or "",
        emergency_contact_name=p.emergency_contact_name or "",
        emergency_contact_phone=p.emergency_contact_phone or "",
        emergency_contact_relationship=p.emergency_contact_relationship or "",
        sitter_name=p.sitter_name or "",
        sitter_phone=p.sitter_phone or "",
    )


def apply_demographics(p: Patient, d: PatientDemographics) -> None:
    p.first_name = d.first_name
    p.middle_name = d.middle_name or None
    p.last_name = d.last_name
    p.first_name_folded = fold_for_search(d.first_name)
    p.last_name_folded = fold_for_search(d.last_name)
    assert d.dob is not None
    p.dob = d.dob
    p.sex = d.sex
    p.state = d.state
    p.county = d.county or None
    p.phone = d.phone or None
    p.phone_digits = "".join(ch for ch in d.phone if ch.isdigit())
    p.email = d.email or None
    p.address_line1 = d.address_line1 or None
    p.address_line2 = d.address_line2 or None
    p.city = d.city or None
    p.zip_code = d.zip or None
    p.emergency_contact_name = d.emergency_contact_name or None
    p.emergency_contact_phone = d.emergency_contact_phone or None
    p.emergency_contact_relationship = d.emergency_contact_relationship or None
    p.sitter_name = d.sitter_name or None
    p.sitter_phone = d.sitter_phone or None


def medication_entry(m: PatientMedication) -> MedicationEntry:
    return MedicationEntry(
        id=m.id,
        entered_text=m.entered_text,
        dose_text=m.dose_text or "",
        frequency_text=m.frequency_text or "",
        start_date=m.start_date,
        source=m.source,
        verified_by=m.verified_by,
        verified_at=m.verified_at,
        is_active=m.is_active,
        entered_by=m.entered_by,
        entered_at=m.created_at,
        stopped_by=m.stopped_by,
        stopped_at=m.stopped_at,
        stop_reason=m.stop_reason,
        stop_note=m.stop_note or "",
        version=m.version,
    )


def vitals_entry(v: VitalSign) -> VitalsEntry:
    return VitalsEntry(
        v.id, v.measured_at, v.systolic, v.diastolic, v.heart_rate, v.weight_kg, v.entered_by
    )


def patient_record(p: Patient) -> PatientRecord:
    return PatientRecord(
        id=p.id,
        mrn=p.mrn,
        demographics=demographics_of(p),
        status=p.status,
        pregnant=p.pregnant,
        height_cm=p.height_cm,
        last_visit_on=p.last_visit_on,
        created_at=p.created_at,
        updated_at=p.updated_at,
        medications=tuple(medication_entry(m) for m in p.medications),
        conditions=tuple(
            ConditionEntry(
                c.id, c.entered_text, c.icd10, c.is_active, c.entered_by, c.concept_id, c.version
            )
            for c in p.conditions
        ),
        allergies=tuple(AllergyEntry(a.id, a.substance, a.reaction or "") for a in p.allergies),
        vitals=tuple(vitals_entry(v) for v in p.vitals),
        status_changes=tuple(
            StatusChangeEntry(s.from_status, s.to_status, s.reason, s.changed_by, s.changed_at)
            for s in p.status_changes
        ),
        version=p.version,
        updated_by=p.updated_by,
    )


def load_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is not in this practice database (deleted?).")
    return patient
