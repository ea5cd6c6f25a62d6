"""Writing a checked FHIR reading (``core.fhir_reading.FhirReading``) into the database.

All or nothing, like the roster CSV import: everything is written inside the caller's one
transaction, and a file with any resource that could not be read imports nothing. Patients
are always created anew (another system's identifier is kept as the external record number);
a patient who looks like one already stored (same folded name and date of birth) is reported
and skipped unless ``import_duplicates`` says otherwise; nothing is ever merged. Medication
lines come in as patient-reported; every medication and condition line goes through the same
readers as a typed line, and the lines they cannot read are listed as "not checked".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.condition_reading import concept_for_icd10, read_condition_line
from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_import_mapping import ImportedCondition, ImportedPatient
from ketadesk.core.fhir_reading import FhirReading
from ketadesk.core.medication_names import read_medication_line
from ketadesk.core.mrn import format_mrn, mrn_sequence_number
from ketadesk.core.patient_csv import duplicate_key
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.questionnaires import load_instrument, score_questionnaire
from ketadesk.models.outcomes import QuestionnaireResponse
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign
from ketadesk.storage.patients.patient_import import ImportCancelledError
from ketadesk.storage.patients.patient_records import apply_demographics
from ketadesk.storage.patients.patients import existing_duplicate_keys, next_mrn
from ketadesk.storage.roster.roster_status import mark_patients_changed
from ketadesk.storage.security.audit_log import record_event

ProgressCallback = Callable[[int, int], bool | None]


@dataclass(frozen=True)
class FhirDuplicate:
    """A patient in the file who looks like one already stored, or like an earlier one in it."""

    where: str
    existing_mrn: str | None  # None: the earlier patient is in the same file


@dataclass(frozen=True)
class NotChecked:
    """A medication or condition line the readers could not read (shown as "not checked")."""

    mrn: str
    kind: str  # "medication" | "condition"
    entered_text: str


@dataclass(frozen=True)
class FhirImportResult:
    """Counts, duplicates, the lines not checked and the new MRNs."""

    patients: int
    medications: int
    conditions: int
    vitals: int
    questionnaires: int
    duplicates: tuple[FhirDuplicate, ...]
    not_checked: tuple[NotChecked, ...]
    new_mrns: tuple[str, ...]
    skipped_resources: int
    dry_run: bool = False
    prescriptions_not_imported: int = 0  # KetaDesk prescriptions in the file, never imported


def _condition_codes(condition: ImportedCondition) -> tuple[str | None, str | None]:
    """(ICD-10-CM code, concept) as add_condition keeps them for a typed line."""
    mentions = read_condition_line(condition.entered_text).mentions
    code, concept = condition.icd10, None
    if code is not None:
        concept = concept_for_icd10(code)
    else:
        for mention in mentions:
            if mention.matched_by == "icd10" and mention.code:
                code, concept = mention.code.upper()[:16], mention.concept_id
                break
    if mentions and not any(m.is_about_patient for m in mentions):
        return None, None
    return code, concept


def _is_condition_unread(text: str) -> bool:
    reading = read_condition_line(text)
    return not reading.mentions or bool(reading.unread)


def import_fhir_reading(
    session: Session,
    actor: Actor,
    reading: FhirReading,
    *,
    import_duplicates: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> FhirImportResult:
    """Add the reading's patients with their records inside the caller's transaction.

    Raises UserFacingError when any resource could not be read (nothing is imported) or when
    ``progress`` returns False (cancelled). With ``dry_run`` nothing is written, but the
    result says what would happen.
    """
    require(actor, Permission.EDIT_CLINICAL, "import patient records")
    if reading.has_problems:
        count = len(reading.problems)
        raise UserFacingError(
            f"{count} resource{'s' if count != 1 else ''} in the file could not be read, so "
            "nothing was imported. Each is listed with the reason."
        )
    now = now or datetime.now(UTC)
    known = existing_duplicate_keys(session)
    seen: set[tuple[str, str, object]] = set()
    duplicates: list[FhirDuplicate] = []
    chosen: list[ImportedPatient] = []
    for patient in reading.patients:
        d = patient.demographics
        assert d.dob is not None
        key = duplicate_key(d.first_name, d.last_name, d.dob)
        if key in known or key in seen:
            duplicates.append(FhirDuplicate(patient.where, known.get(key)))
            if not import_duplicates:
                continue
        seen.add(key)
        chosen.append(patient)

    number = mrn_sequence_number(next_mrn(session))
    counts = {"medications": 0, "conditions": 0, "vitals": 0, "questionnaires": 0}
    not_checked: list[NotChecked] = []
    mrns: list[str] = []
    for done, imported in enumerate(chosen, start=1):
        mrn = format_mrn(number)
        number += 1
        mrns.append(mrn)
        for med in imported.medications:
            if not read_medication_line(med.entered_text).is_recognized:
                not_checked.append(NotChecked(mrn, "medication", med.entered_text))
        for condition in imported.conditions:
            if _is_condition_unread(condition.entered_text):
                not_checked.append(NotChecked(mrn, "condition", condition.entered_text))
        counts["medications"] += len(imported.medications)
        counts["conditions"] += len(imported.conditions)
        counts["vitals"] += len(imported.vitals)
        counts["questionnaires"] += len(imported.questionnaires)
        if not dry_run:
            _write_patient(session, actor, imported, mrn, now)
        if progress is not None and progress(done, len(chosen)) is False:
            raise ImportCancelledError()
    if not dry_run:
        record_event(
            session,
            actor,
            audit_actions.FHIR_IMPORTED,
            detail=(
                f"{len(mrns)} patients, {counts['medications']} medications, "
                f"{counts['conditions']} conditions, {counts['vitals']} vitals, "
                f"{counts['questionnaires']} questionnaires imported from FHIR; "
                f"{len(duplicates)} possible duplicates "
                f"{'imported' if import_duplicates else 'skipped'}; "
                f"{len(reading.skipped)} resources skipped"
            ),
        )
    return FhirImportResult(
        patients=len(mrns),
        duplicates=tuple(duplicates),
        not_checked=tuple(not_checked),
        new_mrns=tuple(mrns),
        skipped_resources=len(reading.skipped),
        dry_run=dry_run,
        prescriptions_not_imported=reading.prescriptions_not_imported,
        **counts,
    )


def _write_patient(
    session: Session, actor: Actor, imported: ImportedPatient, mrn: str, now: datetime
) -> None:
    patient = Patient(
        mrn=mrn, status="screening", pregnant=False,
        external_id=imported.external_id[:64] if imported.external_id else None,
        created_at=now, updated_at=now,
    )
    apply_demographics(patient, imported.demographics)
    session.add(patient)
    session.flush()
    for med in imported.medications:
        session.add(PatientMedication(
            patient_id=patient.id, entered_text=med.entered_text,
            dose_text=med.dose_text or None, frequency_text=med.frequency_text or None,
            start_date=med.start_date, source="patient_reported", is_active=med.is_active,
            entered_by=actor.user_name,
            stopped_by=None if med.is_active else actor.user_name,
            stopped_at=None if med.is_active else now,
            stop_reason=None if med.is_active else "other",
            stop_note=None if med.is_active else "Stopped in the record imported from FHIR",
        ))
    for condition in imported.conditions:
        code, concept = _condition_codes(condition)
        session.add(PatientCondition(
            patient_id=patient.id, entered_text=condition.entered_text, icd10=code,
            concept_id=concept, is_active=condition.is_active, entered_by=actor.user_name,
        ))
    for vitals in sorted(imported.vitals.values(), key=lambda v: v.measured_at):
        session.add(VitalSign(
            patient_id=patient.id, measured_at=vitals.measured_at, systolic=vitals.systolic,
            diastolic=vitals.diastolic, heart_rate=vitals.heart_rate,
            weight_kg=vitals.weight_kg, entered_by=actor.user_name,
        ))
    for form in imported.questionnaires:
        score = score_questionnaire(load_instrument(form.instrument_id), form.answers)
        session.add(QuestionnaireResponse(
            patient_id=patient.id, instrument=score.instrument_id, taken_on=form.taken_on,
            answers_json=json.dumps(list(score.answers)), complete=score.is_complete,
            total=score.total, band=score.band, safety_alert=score.safety_alert,
            entered_by=actor.user_name,
        ))
    session.flush()
    mark_patients_changed(session, [patient.id])
