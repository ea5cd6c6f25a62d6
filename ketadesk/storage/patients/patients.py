"""The patient chart service: create, read and change one patient's record.

Every function takes the caller's Session (one per user action) and the logged-in Actor,
checks the Actor's permission, writes an audit event (never names or clinical text in its
detail) and returns frozen dataclasses; callers never hold live ORM rows.

Units: height in cm, weight in kg, blood pressure in mmHg, heart rate in beats per minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketadesk.core import audit_actions
from ketadesk.core.condition_reading import ConditionMention, read_condition_line
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
    PATIENT_STATUSES,
    STATUS_LABELS,
    Patient,
    PatientAllergy,
    PatientCondition,
    PatientStatusChange,
    VitalSign,
)
from ketadesk.storage.patients.chart_versions import chart_changed, refuse_if_changed
from ketadesk.storage.patients.entry_versions import (
    condition_changed,
    refuse_if_condition_changed,
)
from ketadesk.storage.patients.patient_chart_edits import (
    MAX_ENTRY_CHARS,
    MAX_REASON_CHARS,
    audit_chart_update,
    optional_text,
    typed_text,
)
from ketadesk.storage.patients.patient_records import (
    AllergyEntry,
    ConditionEntry,
    PatientBrief,
    PatientRecord,
    VitalsEntry,
    apply_demographics,
    demographics_of,
    load_patient,
    patient_record,
    vitals_entry,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.record_authors import last_saver

# A clock a few minutes fast on another workstation must not block recording vitals.
FUTURE_TOLERANCE = timedelta(minutes=10)

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


def _refuse_duplicates(
    session: Session, clean: PatientDemographics, *, exclude_patient_id: int | None = None
) -> None:
    """Raise PossibleDuplicateError when another stored patient has this name and birth date."""
    assert clean.dob is not None
    same = find_possible_duplicates(
        session, clean.first_name, clean.last_name, clean.dob, exclude_patient_id=exclude_patient_id
    )
    if same:
        raise PossibleDuplicateError([p.mrn for p in same])


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
        _refuse_duplicates(session, clean)
    if mrn is not None:
        if not is_valid_mrn(mrn):
            raise UserFacingError("That MRN is not a valid KetaDesk MRN.")
        if session.execute(select(Patient.id).where(Patient.mrn == mrn)).first():
            raise UserFacingError(f"MRN {mrn} already belongs to another patient.")
    patient = Patient(
        mrn=mrn or next_mrn(session), status="screening", pregnant=False,
        updated_by=actor.user_name,
    )
    apply_demographics(patient, clean)
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
    return patient_record(patient)


def get_patient_record(session: Session, actor: Actor, patient_id: int) -> PatientRecord:
    """Return the whole chart and record that ``actor`` viewed it."""
    record = patient_record_unaudited(session, actor, patient_id)
    record_event(session, actor, audit_actions.PATIENT_VIEWED, patient_id=patient_id)
    return record


def patient_record_unaudited(session: Session, actor: Actor, patient_id: int) -> PatientRecord:
    """Return the whole chart without recording the view: the caller records
    ``PATIENT_VIEWED`` itself (the desktop does it without waiting for the page check)."""
    require(actor, Permission.VIEW_ROSTER, "open patient charts")
    return patient_record(load_patient(session, patient_id))


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
    expected_version: int | None = None,
) -> PatientRecord:
    """Validate and store changed demographics and height (cm; None clears it).

    Raises DemographicsInvalidError or PossibleDuplicateError as ``create_patient`` does.
    ``expected_version`` is the version the form showed: if someone saved the chart since,
    ChartChangedError (storage/patients/chart_versions) refuses the save, and rolls the
    session back when the other save wins the race between reading and writing.
    The audit detail lists the changed field names, never their values.
    """
    require(actor, Permission.EDIT_DEMOGRAPHICS, "change patient details")
    patient = load_patient(session, patient_id)
    refuse_if_changed(session, patient, expected_version)
    clean = _checked(draft, today, confirmed_minor)
    _check_height(height_cm)
    assert clean.dob is not None
    old = demographics_of(patient)
    if not allow_duplicate and (
        (clean.first_name, clean.last_name, clean.dob) != (old.first_name, old.last_name, old.dob)
    ):
        _refuse_duplicates(session, clean, exclude_patient_id=patient_id)
    changed = changed_demographic_fields(old, clean)
    if (patient.height_cm is None) != (height_cm is None) or (
        patient.height_cm is not None
        and height_cm is not None
        and abs(patient.height_cm - height_cm) > 0.05
    ):
        changed.append("height_cm")
    if changed:
        apply_demographics(patient, clean)
        patient.height_cm = height_cm
        patient.updated_by = actor.user_name
        try:  # the audit event's query may flush the row first
            audit_chart_update(session, actor, patient_id, "demographics: " + ", ".join(changed))
            session.flush()
        except StaleDataError:
            session.rollback()
            raise chart_changed(session, patient_id) from None
    return patient_record(patient)


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
    reason = typed_text(reason, what="reason for the status change", limit=MAX_REASON_CHARS)
    patient = load_patient(session, patient_id)
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
    audit_chart_update(session, actor, patient_id, f"status: {patient.status} -> {new_status}")
    patient.status = new_status
    patient.updated_by = actor.user_name
    session.flush()
    session.refresh(patient)
    return patient_record(patient)


# --------------------------------------------------------------------------- conditions, allergies


def add_condition(
    session: Session,
    actor: Actor,
    patient_id: int,
    entered_text: str,
    icd10: str | None = None,
    concept_id: str | None = None,
) -> ConditionEntry:
    """Record a condition as typed ("treatment-resistant depression").

    ``icd10`` and ``concept_id`` come from an entry picked in the problem list. Without them,
    an ICD-10-CM code typed in the line ("I10 since 2015") is stored as the code, with the
    concept it maps to. A line that only denies conditions or names a relative's ("denies
    SI", "FHx bipolar disorder") is stored without a code: it is not the patient's problem.
    """
    require(actor, Permission.EDIT_CLINICAL, "record conditions")
    load_patient(session, patient_id)
    text = typed_text(entered_text, what="condition")
    code = optional_text(icd10, what="ICD-10 code", limit=16)
    mentions = read_condition_line(text).mentions
    if code is None:
        code, concept_id = _typed_code(mentions)
    if mentions and not any(m.is_about_patient for m in mentions):
        code, concept_id = None, None
    condition = PatientCondition(
        patient_id=patient_id,
        entered_text=text,
        icd10=code,
        concept_id=optional_text(concept_id, what="condition concept", limit=64),
        is_active=True,
        entered_by=actor.user_name,
    )
    session.add(condition)
    session.flush()
    audit_chart_update(session, actor, patient_id, f"condition {condition.id} added")
    return ConditionEntry(
        condition.id, condition.entered_text, condition.icd10, True, actor.user_name,
        condition.concept_id, condition.version,
    )


def _typed_code(mentions: Sequence[ConditionMention]) -> tuple[str | None, str | None]:
    """The first ICD-10-CM code typed in a condition line and its concept, or (None, None)."""
    for mention in mentions:
        if mention.matched_by == "icd10" and mention.code:
            return mention.code.upper()[:16], mention.concept_id
    return None, None


def resolve_condition(
    session: Session, actor: Actor, condition_id: int, *, expected_version: int | None = None
) -> None:
    """Mark a condition as no longer current (kept in the history). ``expected_version`` is
    the version the chart showed: a line changed since is refused with EntryChangedError
    (storage/patients/entry_versions)."""
    require(actor, Permission.EDIT_CLINICAL, "change conditions")
    condition = session.get(PatientCondition, condition_id)
    if condition is None:
        raise UserFacingError("That condition entry no longer exists.")
    refuse_if_condition_changed(session, condition, expected_version)
    condition.is_active = False
    audit_chart_update(session, actor, condition.patient_id, f"condition {condition.id} resolved")
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        stored = session.get(PatientCondition, condition_id)
        if stored is None:
            raise UserFacingError("That condition entry no longer exists.") from None
        raise condition_changed(session, stored) from None


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
    load_patient(session, patient_id)
    allergy = PatientAllergy(
        patient_id=patient_id,
        substance=typed_text(substance, what="allergy", limit=200),
        reaction=optional_text(reaction, what="reaction", limit=MAX_ENTRY_CHARS),
    )
    session.add(allergy)
    session.flush()
    audit_chart_update(session, actor, patient_id, f"allergy {allergy.id} added")
    return AllergyEntry(allergy.id, allergy.substance, allergy.reaction or "")


def remove_allergy(
    session: Session, actor: Actor, allergy_id: int, *, patient_id: int | None = None
) -> None:
    """Delete an allergy entered by mistake. An allergy is never edited, only added or
    removed: one removed elsewhere meanwhile is refused naming who removed it (from the audit
    trail of ``patient_id``, when given)."""
    require(actor, Permission.EDIT_CLINICAL, "change allergies")
    allergy = session.get(PatientAllergy, allergy_id)
    if allergy is None:
        who = None if patient_id is None else last_saver(
            session, patient_id, (audit_actions.PATIENT_UPDATED,),
            f"allergy {allergy_id} removed",
        )
        raise UserFacingError(
            f"{who} removed this allergy meanwhile; nothing else was changed."
            if who else "That allergy entry no longer exists."
        )
    audit_chart_update(session, actor, allergy.patient_id, f"allergy {allergy.id} removed")
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
    load_patient(session, patient_id)
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
    audit_chart_update(session, actor, patient_id, f"vitals {vitals.id} added")
    return vitals_entry(vitals)


def list_vitals(session: Session, patient_id: int) -> tuple[VitalsEntry, ...]:
    """Every set of vitals of a patient, oldest first (mmHg, beats per minute, kg)."""
    rows = session.execute(
        select(VitalSign)
        .where(VitalSign.patient_id == patient_id)
        .order_by(VitalSign.measured_at, VitalSign.id)
    ).scalars()
    return tuple(vitals_entry(v) for v in rows)


def field_label(name: str) -> str:
    """The form label for a demographics field name ("dob" -> "Date of birth")."""
    return FIELD_LABELS.get(name, name)
