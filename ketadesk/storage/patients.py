"""The patient chart service: create, read and change one patient's record.

Every function takes the caller's Session (one per user action) and the logged-in Actor,
checks the Actor's permission, writes an audit event (never names or clinical text in its
detail) and returns frozen dataclasses; callers never hold live ORM rows.

Units: height in cm, weight in kg, blood pressure in mmHg, heart rate in beats per minute.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.demographics import (
    FIELD_LABELS,
    PatientDemographics,
    blocking_problems,
    normalise_demographics,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import (
    blood_pressure_problems,
    heart_rate_problem,
    height_problem,
    weight_problem,
)
from ketadesk.core.mrn import MRN_PREFIX, format_mrn, is_valid_mrn, mrn_sequence_number
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.search_text import fold_for_search
from ketadesk.models.patients import (
    MEDICATION_SOURCES,
    PATIENT_STATUSES,
    Patient,
    PatientAllergy,
    PatientCondition,
    PatientMedication,
    PatientStatusChange,
    VitalSign,
)
from ketadesk.storage.audit_log import record_event

MAX_ENTRY_CHARS = 300
MAX_SHORT_CHARS = 100
MAX_REASON_CHARS = 1000
# A clock a few minutes fast on another workstation must not block recording vitals.
FUTURE_TOLERANCE = timedelta(minutes=10)

STATUS_LABELS = {
    "screening": "Screening",
    "active": "Active",
    "paused": "Paused",
    "discharged": "Discharged",
}
SOURCE_LABELS = {"patient_reported": "Patient-reported", "verified": "Verified"}


class DemographicsInvalidError(UserFacingError):
    """The demographics have problems; ``problems`` says which field and why."""

    def __init__(self, problems: Sequence[object]) -> None:
        from ketadesk.core.demographics import FieldProblem

        self.problems: tuple[FieldProblem, ...] = tuple(
            p for p in problems if isinstance(p, FieldProblem)
        )
        first = self.problems[0].message if self.problems else "The patient details have problems."
        more = len(self.problems) - 1
        suffix = f" ({more} more problem{'s' if more != 1 else ''} to fix.)" if more > 0 else ""
        super().__init__(first + suffix)


class PossibleDuplicateError(UserFacingError):
    """A patient with the same name and date of birth exists; ``mrns`` lists them."""

    def __init__(self, mrns: Sequence[str]) -> None:
        self.mrns = tuple(mrns)
        super().__init__(
            "A patient with the same name and date of birth already exists ("
            + ", ".join(self.mrns)
            + "). Open that chart, or confirm that this is a different person."
        )


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


def _demographics_of(p: Patient) -> PatientDemographics:
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
        sitter_name=p.sitter_name or "",
        sitter_phone=p.sitter_phone or "",
    )


def _apply_demographics(p: Patient, d: PatientDemographics) -> None:
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
    p.sitter_name = d.sitter_name or None
    p.sitter_phone = d.sitter_phone or None


def _medication(m: PatientMedication) -> MedicationEntry:
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
    )


def _vitals(v: VitalSign) -> VitalsEntry:
    return VitalsEntry(
        v.id, v.measured_at, v.systolic, v.diastolic, v.heart_rate, v.weight_kg, v.entered_by
    )


def _record(p: Patient) -> PatientRecord:
    return PatientRecord(
        id=p.id,
        mrn=p.mrn,
        demographics=_demographics_of(p),
        status=p.status,
        pregnant=p.pregnant,
        height_cm=p.height_cm,
        last_visit_on=p.last_visit_on,
        created_at=p.created_at,
        updated_at=p.updated_at,
        medications=tuple(_medication(m) for m in p.medications),
        conditions=tuple(
            ConditionEntry(c.id, c.entered_text, c.icd10, c.is_active, c.entered_by)
            for c in p.conditions
        ),
        allergies=tuple(AllergyEntry(a.id, a.substance, a.reaction or "") for a in p.allergies),
        vitals=tuple(_vitals(v) for v in p.vitals),
        status_changes=tuple(
            StatusChangeEntry(s.from_status, s.to_status, s.reason, s.changed_by, s.changed_at)
            for s in p.status_changes
        ),
    )


def _load(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is not in this practice database (deleted?).")
    return patient


# --------------------------------------------------------------------------- text checks


def _typed_text(text: str, *, what: str, limit: int = MAX_ENTRY_CHARS) -> str:
    """Return ``text`` unchanged if acceptable: not blank, not too long, no control chars."""
    if not text.strip():
        raise UserFacingError(f"Type the {what}.")
    if len(text) > limit:
        raise UserFacingError(f"The {what} is longer than {limit} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in text):
        raise UserFacingError(f"The {what} contains a line break or invisible character.")
    return text


def _optional_text(text: str | None, *, what: str, limit: int = MAX_SHORT_CHARS) -> str | None:
    if text is None or not text.strip():
        return None
    return _typed_text(text, what=what, limit=limit)


# --------------------------------------------------------------------------- MRN, duplicates


def next_mrn(session: Session) -> str:
    """Return the next unused MRN (one past the highest valid KetaDesk MRN stored)."""
    highest = session.execute(
        select(func.max(Patient.mrn)).where(Patient.mrn.like(f"{MRN_PREFIX}%"))
    ).scalar_one_or_none()
    number = mrn_sequence_number(highest) + 1 if highest and is_valid_mrn(highest) else 1
    while session.execute(select(Patient.id).where(Patient.mrn == format_mrn(number))).first():
        number += 1  # only if someone stored a non-canonical MRN sorting above the valid ones
    return format_mrn(number)


def find_possible_duplicates(
    session: Session,
    first_name: str,
    last_name: str,
    dob: date,
    *,
    exclude_patient_id: int | None = None,
) -> list[PatientBrief]:
    """Return stored patients with the same folded first and last name and date of birth."""
    query = select(Patient).where(
        Patient.dob == dob,
        Patient.first_name_folded == fold_for_search(first_name),
        Patient.last_name_folded == fold_for_search(last_name),
    )
    if exclude_patient_id is not None:
        query = query.where(Patient.id != exclude_patient_id)
    return [
        PatientBrief(p.id, p.mrn, p.first_name, p.last_name, p.dob, p.status)
        for p in session.execute(query.order_by(Patient.id)).scalars()
    ]


def existing_duplicate_keys(session: Session) -> dict[tuple[str, str, date], str]:
    """Return {(folded first, folded last, dob): mrn} for every stored patient."""
    rows = session.execute(
        select(Patient.first_name_folded, Patient.last_name_folded, Patient.dob, Patient.mrn)
    )
    return {(first, last, dob): mrn for first, last, dob, mrn in rows}


# --------------------------------------------------------------------------- demographics


def _checked(draft: PatientDemographics, today: date, confirmed_minor: bool) -> PatientDemographics:
    problems = validate_demographics(draft, today, confirmed_minor=confirmed_minor)
    if problems:
        # "confirm" problems (under 18) block too until the caller passes confirmed_minor.
        raise DemographicsInvalidError(blocking_problems(problems) or problems)
    return normalise_demographics(draft)


def _check_height(height_cm: float | None) -> None:
    if height_cm is not None:
        problem = height_problem(height_cm)
        if problem:
            raise UserFacingError(problem)


def create_patient(
    session: Session,
    actor: Actor,
    draft: PatientDemographics,
    *,
    today: date,
    confirmed_minor: bool = False,
    allow_duplicate: bool = False,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    mrn: str | None = None,
    now: datetime | None = None,
) -> PatientRecord:
    """Validate, normalise and store a new patient (status "screening"); return the chart.

    ``today`` is the local date used for the age check. ``height_cm`` (cm) is stored on the
    patient; ``weight_kg`` (kg) becomes the first vitals entry. A new MRN is generated unless
    a valid, unused one is given. Raises DemographicsInvalidError (with every field problem),
    PossibleDuplicateError (same name and date of birth) unless ``allow_duplicate``.
    """
    require(actor, Permission.EDIT_DEMOGRAPHICS, "add patients")
    clean = _checked(draft, today, confirmed_minor)
    _check_height(height_cm)
    if weight_kg is not None and (problem := weight_problem(weight_kg)):
        raise UserFacingError(problem)
    assert clean.dob is not None
    if not allow_duplicate:
        same = find_possible_duplicates(session, clean.first_name, clean.last_name, clean.dob)
        if same:
            raise PossibleDuplicateError([p.mrn for p in same])
    if mrn is not None:
        if not is_valid_mrn(mrn):
            raise UserFacingError("That MRN is not a valid KetaDesk MRN.")
        if session.execute(select(Patient.id).where(Patient.mrn == mrn)).first():
            raise UserFacingError(f"MRN {mrn} already belongs to another patient.")
    patient = Patient(mrn=mrn or next_mrn(session), status="screening", pregnant=False)
    _apply_demographics(patient, clean)
    patient.height_cm = height_cm
    session.add(patient)
    session.flush()
    if weight_kg is not None:
        session.add(
            VitalSign(
                patient_id=patient.id,
                measured_at=now or datetime.now(UTC),
                weight_kg=weight_kg,
                entered_by=actor.user_name,
            )
        )
    record_event(session, actor, audit_actions.PATIENT_CREATED, patient_id=patient.id)
    session.flush()
    session.refresh(patient)
    return _record(patient)


def get_patient_record(session: Session, actor: Actor, patient_id: int) -> PatientRecord:
    """Return the whole chart and record that ``actor`` viewed it."""
    require(actor, Permission.VIEW_ROSTER, "open patient charts")
    patient = _load(session, patient_id)
    record_event(session, actor, audit_actions.PATIENT_VIEWED, patient_id=patient_id)
    return _record(patient)


def changed_demographic_fields(old: PatientDemographics, new: PatientDemographics) -> list[str]:
    """Return the names of the fields that differ (for the audit detail: names, not values)."""
    return [
        f.name for f in fields(PatientDemographics) if getattr(old, f.name) != getattr(new, f.name)
    ]


def update_demographics(
    session: Session,
    actor: Actor,
    patient_id: int,
    draft: PatientDemographics,
    *,
    today: date,
    confirmed_minor: bool = False,
    allow_duplicate: bool = False,
    height_cm: float | None = None,
) -> PatientRecord:
    """Validate and store changed demographics and height (cm; None clears it).

    Raises DemographicsInvalidError or PossibleDuplicateError as ``create_patient`` does.
    The audit detail lists the changed field names, never their values.
    """
    require(actor, Permission.EDIT_DEMOGRAPHICS, "change patient details")
    patient = _load(session, patient_id)
    clean = _checked(draft, today, confirmed_minor)
    _check_height(height_cm)
    assert clean.dob is not None
    old = _demographics_of(patient)
    if not allow_duplicate and (
        (clean.first_name, clean.last_name, clean.dob) != (old.first_name, old.last_name, old.dob)
    ):
        same = find_possible_duplicates(
            session, clean.first_name, clean.last_name, clean.dob, exclude_patient_id=patient_id
        )
        if same:
            raise PossibleDuplicateError([p.mrn for p in same])
    changed = changed_demographic_fields(old, clean)
    if (patient.height_cm is None) != (height_cm is None) or (
        patient.height_cm is not None
        and height_cm is not None
        and abs(patient.height_cm - height_cm) > 0.05
    ):
        changed.append("height_cm")
    if changed:
        _apply_demographics(patient, clean)
        patient.height_cm = height_cm
        record_event(
            session,
            actor,
            audit_actions.PATIENT_UPDATED,
            patient_id=patient_id,
            detail="demographics: " + ", ".join(changed),
        )
        session.flush()
    return _record(patient)


def change_status(
    session: Session,
    actor: Actor,
    patient_id: int,
    new_status: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> PatientRecord:
    """Move a patient to ``new_status`` (screening/active/paused/discharged), with a reason."""
    require(actor, Permission.EDIT_CLINICAL, "change a patient's treatment status")
    if new_status not in PATIENT_STATUSES:
        raise UserFacingError("The status must be screening, active, paused or discharged.")
    reason = _typed_text(reason, what="reason for the status change", limit=MAX_REASON_CHARS)
    patient = _load(session, patient_id)
    if patient.status == new_status:
        raise UserFacingError(f"The patient is already {STATUS_LABELS[new_status].lower()}.")
    session.add(
        PatientStatusChange(
            patient_id=patient_id,
            from_status=patient.status,
            to_status=new_status,
            reason=reason.strip(),
            changed_by=actor.user_name,
            changed_at=now or datetime.now(UTC),
        )
    )
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=f"status: {patient.status} -> {new_status}",
    )
    patient.status = new_status
    session.flush()
    session.refresh(patient)
    return _record(patient)


# --------------------------------------------------------------------------- medications


def add_medication(
    session: Session,
    actor: Actor,
    patient_id: int,
    entered_text: str,
    *,
    dose_text: str | None = None,
    frequency_text: str | None = None,
    start_date: date | None = None,
    source: str = "patient_reported",
    now: datetime | None = None,
) -> MedicationEntry:
    """Record a current medication exactly as typed ("Ativan 1 mg at bedtime").

    Admins may record "patient_reported" lines; only physicians record "verified" ones.
    """
    if source not in MEDICATION_SOURCES:
        raise UserFacingError("The source must be patient-reported or verified.")
    if source == "verified":
        require(actor, Permission.VERIFY_MEDICATION, "record verified medications")
    else:
        require(actor, Permission.RECORD_REPORTED_MEDICATION, "record medications")
    _load(session, patient_id)
    medication = PatientMedication(
        patient_id=patient_id,
        entered_text=_typed_text(entered_text, what="medication"),
        dose_text=_optional_text(dose_text, what="dose"),
        frequency_text=_optional_text(frequency_text, what="frequency"),
        start_date=start_date,
        source=source,
        is_active=True,
        entered_by=actor.user_name,
    )
    if source == "verified":
        medication.verified_by = actor.user_name
        medication.verified_at = now or datetime.now(UTC)
    session.add(medication)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=f"medication {medication.id} added ({source})",
    )
    return _medication(medication)


def _load_medication(session: Session, medication_id: int) -> PatientMedication:
    medication = session.get(PatientMedication, medication_id)
    if medication is None:
        raise UserFacingError("That medication entry no longer exists.")
    return medication


def stop_medication(session: Session, actor: Actor, medication_id: int) -> MedicationEntry:
    """Mark a medication as no longer taken (kept in the history, not deleted).

    Admins may stop patient-reported lines; verified lines need a physician.
    """
    medication = _load_medication(session, medication_id)
    if medication.source == "verified":
        require(actor, Permission.VERIFY_MEDICATION, "stop a verified medication")
    else:
        require(actor, Permission.RECORD_REPORTED_MEDICATION, "stop medications")
    if not medication.is_active:
        raise UserFacingError("That medication is already stopped.")
    medication.is_active = False
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=medication.patient_id,
        detail=f"medication {medication.id} stopped",
    )
    session.flush()
    return _medication(medication)


def verify_medication(
    session: Session, actor: Actor, medication_id: int, *, now: datetime | None = None
) -> MedicationEntry:
    """Mark a patient-reported medication as verified by this physician."""
    require(actor, Permission.VERIFY_MEDICATION, "mark medications verified")
    medication = _load_medication(session, medication_id)
    if medication.source == "verified":
        raise UserFacingError("That medication is already verified.")
    medication.source = "verified"
    medication.verified_by = actor.user_name
    medication.verified_at = now or datetime.now(UTC)
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=medication.patient_id,
        detail=f"medication {medication.id} verified",
    )
    session.flush()
    return _medication(medication)


# --------------------------------------------------------------------------- conditions, allergies


def add_condition(
    session: Session, actor: Actor, patient_id: int, entered_text: str, icd10: str | None = None
) -> ConditionEntry:
    """Record a condition as typed ("treatment-resistant depression")."""
    require(actor, Permission.EDIT_CLINICAL, "record conditions")
    _load(session, patient_id)
    condition = PatientCondition(
        patient_id=patient_id,
        entered_text=_typed_text(entered_text, what="condition"),
        icd10=_optional_text(icd10, what="ICD-10 code", limit=16),
        is_active=True,
        entered_by=actor.user_name,
    )
    session.add(condition)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=f"condition {condition.id} added",
    )
    return ConditionEntry(
        condition.id, condition.entered_text, condition.icd10, True, actor.user_name
    )


def resolve_condition(session: Session, actor: Actor, condition_id: int) -> None:
    """Mark a condition as no longer current (kept in the history)."""
    require(actor, Permission.EDIT_CLINICAL, "change conditions")
    condition = session.get(PatientCondition, condition_id)
    if condition is None:
        raise UserFacingError("That condition entry no longer exists.")
    condition.is_active = False
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=condition.patient_id,
        detail=f"condition {condition.id} resolved",
    )


def condition_suggestions(session: Session, *, limit: int = 200) -> list[str]:
    """Return the condition texts most often recorded in this practice (for a completer)."""
    rows = session.execute(
        select(PatientCondition.entered_text)
        .group_by(PatientCondition.entered_text)
        .order_by(func.count().desc(), PatientCondition.entered_text)
        .limit(limit)
    )
    return [text for (text,) in rows]


def add_allergy(
    session: Session, actor: Actor, patient_id: int, substance: str, reaction: str = ""
) -> AllergyEntry:
    """Record an allergy (substance as typed, optional reaction)."""
    require(actor, Permission.EDIT_CLINICAL, "record allergies")
    _load(session, patient_id)
    allergy = PatientAllergy(
        patient_id=patient_id,
        substance=_typed_text(substance, what="allergy", limit=200),
        reaction=_optional_text(reaction, what="reaction", limit=MAX_ENTRY_CHARS),
    )
    session.add(allergy)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=f"allergy {allergy.id} added",
    )
    return AllergyEntry(allergy.id, allergy.substance, allergy.reaction or "")


def remove_allergy(session: Session, actor: Actor, allergy_id: int) -> None:
    """Delete an allergy entered by mistake."""
    require(actor, Permission.EDIT_CLINICAL, "change allergies")
    allergy = session.get(PatientAllergy, allergy_id)
    if allergy is None:
        raise UserFacingError("That allergy entry no longer exists.")
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=allergy.patient_id,
        detail=f"allergy {allergy.id} removed",
    )
    session.delete(allergy)


# --------------------------------------------------------------------------- vitals


def add_vitals(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    measured_at: datetime,
    systolic: int | None = None,
    diastolic: int | None = None,
    heart_rate: int | None = None,
    weight_kg: float | None = None,
    now: datetime | None = None,
) -> VitalsEntry:
    """Record vitals: blood pressure (mmHg, both or neither), heart rate (beats/min), kg.

    ``measured_at`` must be timezone-aware and not in the future.
    """
    require(actor, Permission.EDIT_CLINICAL, "record vitals")
    if measured_at.tzinfo is None:
        raise ValueError("measured_at must be timezone-aware")
    if measured_at > (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        raise UserFacingError("The time the vitals were measured cannot be in the future.")
    if (systolic is None) != (diastolic is None):
        raise UserFacingError("Enter both blood pressure numbers, or neither.")
    if systolic is not None and diastolic is not None:
        problems = blood_pressure_problems(systolic, diastolic)
        if problems:
            raise UserFacingError(problems[0].message)
    if heart_rate is not None and (problem := heart_rate_problem(heart_rate)):
        raise UserFacingError(problem)
    if weight_kg is not None and (problem := weight_problem(weight_kg)):
        raise UserFacingError(problem)
    if systolic is None and heart_rate is None and weight_kg is None:
        raise UserFacingError("Enter at least one measurement.")
    _load(session, patient_id)
    vitals = VitalSign(
        patient_id=patient_id,
        measured_at=measured_at,
        systolic=systolic,
        diastolic=diastolic,
        heart_rate=heart_rate,
        weight_kg=weight_kg,
        entered_by=actor.user_name,
    )
    session.add(vitals)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=f"vitals {vitals.id} added",
    )
    return _vitals(vitals)


def field_label(name: str) -> str:
    """The form label for a demographics field name ("dob" -> "Date of birth")."""
    return FIELD_LABELS.get(name, name)
