"""Patients' charts out of the database as FHIR R4 bundles, one JSON file per patient.

Charts are read in batches with one query per table (never one query per patient), mapped by
``core.fhir_export_mapping`` and written as private files. Each export is audited as one
event carrying only counts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_export_mapping import (
    ConditionLine,
    ExportContext,
    MedicationLine,
    PatientSnapshot,
    PrescriptionLine,
    QuestionnaireLine,
    SignedPlanLine,
    VitalsLine,
    bundle_json,
    patient_bundle,
)
from ketadesk.core.output_paths import check_output_path
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.private_files import make_private_folder, write_private_bytes
from ketadesk.core.protocol_serialization import protocol_from_dict
from ketadesk.models.compliance import Prescription, PrescriptionFill
from ketadesk.models.outcomes import QuestionnaireResponse
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.signing import ContentSignature
from ketadesk.storage.interchange.fhir_bundle_files import sync_folder, write_all
from ketadesk.storage.patients.patient_records import demographics_of
from ketadesk.storage.plans.plan_document_builder import practice_database_id
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import PRESCRIPTION

BATCH = 500
PARALLEL_FROM = 200  # fewer patients are exported sooner than worker processes start
Progress = Callable[[int, int], bool | None]
"""Called as progress(done, total); returning False stops the export (files so far stay)."""


@dataclass(frozen=True)
class FhirExportSummary:
    """What an export wrote: counts only (patients, resources, files); ``stopped`` when the
    progress callback stopped it early (every file listed is complete)."""

    patients: int
    resources: int
    files: tuple[Path, ...]
    stopped: bool = False


def export_context(session: Session, now: datetime | None = None) -> ExportContext:
    """The practice's id (it names the MRN system) and the export time."""
    return ExportContext(practice_database_id(session), now or datetime.now(UTC))


def patient_id_for_mrn(session: Session, mrn: str) -> int:
    """The patient with this MRN; a clear error when there is none."""
    found = session.execute(
        select(Patient.id).where(Patient.mrn == mrn.strip().upper())
    ).scalar_one_or_none()
    if found is None:
        raise UserFacingError(f"There is no patient with MRN {mrn.strip()} in this practice.")
    return found


def all_patient_ids(session: Session) -> list[int]:
    return list(session.execute(select(Patient.id).order_by(Patient.id)).scalars())


def _plans(session: Session, ids: Sequence[int]) -> dict[int, list[SignedPlanLine]]:
    rows = session.execute(
        select(ProtocolVersion, PatientProtocol.patient_id, PatientProtocol.status)
        .join(PatientProtocol)
        .where(PatientProtocol.patient_id.in_(ids), ProtocolVersion.status == "signed")
        .order_by(PatientProtocol.patient_id, ProtocolVersion.signed_at, ProtocolVersion.number)
    ).all()
    newest: dict[int, int] = {}
    for version, _patient_id, protocol_status in rows:
        if protocol_status == "active":
            newest[version.protocol_id] = version.id  # rows come oldest first
    found: dict[int, list[SignedPlanLine]] = defaultdict(list)
    for version, patient_id, _status in rows:
        assert version.signed_by is not None and version.signed_at is not None
        found[patient_id].append(
            SignedPlanLine(
                version_id=version.id,
                number=version.number,
                protocol=protocol_from_dict(json.loads(version.protocol_json)),
                start_date=version.start_date,
                weight_kg=version.weight_kg,
                signed_by=version.signed_by,
                signed_by_full_name=version.signed_by_full_name or "",
                signed_at=version.signed_at,
                is_current=newest.get(version.protocol_id) == version.id,
            )
        )
    return found


def _prescriptions(session: Session, ids: Sequence[int]) -> dict[int, list[PrescriptionLine]]:
    """Issued prescriptions (voided ones too) that carry their physician's signature over
    the content as stored; one without it is not a prescription to send anywhere."""
    fills = (
        select(PrescriptionFill.prescription_id, func.count().label("fills"))
        .group_by(PrescriptionFill.prescription_id)
        .subquery()
    )
    rows = session.execute(
        select(Prescription, func.coalesce(fills.c.fills, 0))
        .join(ContentSignature, (ContentSignature.subject_kind == PRESCRIPTION)
              & (ContentSignature.subject_id == Prescription.id)
              & (ContentSignature.content_hash == Prescription.content_hash))
        .outerjoin(fills, fills.c.prescription_id == Prescription.id)
        .where(Prescription.patient_id.in_(ids))
        .order_by(Prescription.patient_id, Prescription.issued_at, Prescription.id)
    ).all()
    found: dict[int, list[PrescriptionLine]] = defaultdict(list)
    seen: set[int] = set()
    for row, fill_count in rows:
        if row.id in seen:  # a prescription signed twice is still one prescription
            continue
        seen.add(row.id)
        found[row.patient_id].append(PrescriptionLine(
            row_id=row.id, protocol_version_id=row.protocol_version_id, product=row.product,
            strength_mg_per_unit=row.strength_mg_per_unit, unit_name=row.unit_name,
            quantity=row.quantity, directions=row.directions, refills=row.refills,
            issued_at=row.issued_at, prescriber=row.prescriber,
            prescriber_full_name=row.prescriber_full_name, status=row.status,
            fills=int(fill_count),
        ))
    return found


def patient_snapshots(session: Session, ids: Sequence[int]) -> list[PatientSnapshot]:
    """The charts of these patients as plain snapshots, in the order of ``ids``."""
    ids = list(ids)
    # Plain column rows, not ORM objects: a chart's lines are only read here, and building
    # tracked objects cost more than the query itself (about 13 lines a patient).
    meds: dict[int, list[MedicationLine]] = defaultdict(list)
    for pid, row_id, text, dose, frequency, start, is_active, recorded_at in session.execute(
        select(PatientMedication.patient_id, PatientMedication.id, PatientMedication.entered_text,
               PatientMedication.dose_text, PatientMedication.frequency_text,
               PatientMedication.start_date, PatientMedication.is_active,
               PatientMedication.created_at)
        .where(PatientMedication.patient_id.in_(ids)).order_by(PatientMedication.id)
    ):
        meds[pid].append(MedicationLine(row_id, text, dose or "", frequency or "", start,
                                        is_active, recorded_at))
    conditions: dict[int, list[ConditionLine]] = defaultdict(list)
    for pid, row_id, text, icd10, is_active, recorded_at in session.execute(
        select(PatientCondition.patient_id, PatientCondition.id, PatientCondition.entered_text,
               PatientCondition.icd10, PatientCondition.is_active, PatientCondition.created_at)
        .where(PatientCondition.patient_id.in_(ids)).order_by(PatientCondition.id)
    ):
        conditions[pid].append(ConditionLine(row_id, text, icd10, is_active, recorded_at))
    vitals: dict[int, list[VitalsLine]] = defaultdict(list)
    for pid, row_id, measured_at, systolic, diastolic, heart_rate, weight in session.execute(
        select(VitalSign.patient_id, VitalSign.id, VitalSign.measured_at, VitalSign.systolic,
               VitalSign.diastolic, VitalSign.heart_rate, VitalSign.weight_kg)
        .where(VitalSign.patient_id.in_(ids)).order_by(VitalSign.measured_at, VitalSign.id)
    ):
        vitals[pid].append(
            VitalsLine(row_id, measured_at, systolic, diastolic, heart_rate, weight)
        )
    forms: dict[int, list[QuestionnaireLine]] = defaultdict(list)
    for pid, form_id, instrument, taken_on, answers_json, total in session.execute(
        select(QuestionnaireResponse.patient_id, QuestionnaireResponse.id,
               QuestionnaireResponse.instrument, QuestionnaireResponse.taken_on,
               QuestionnaireResponse.answers_json, QuestionnaireResponse.total)
        .where(QuestionnaireResponse.patient_id.in_(ids))
        .order_by(QuestionnaireResponse.taken_on, QuestionnaireResponse.id)
    ):
        answers = tuple(json.loads(answers_json))
        forms[pid].append(QuestionnaireLine(form_id, instrument, taken_on, answers, total))
    plans = _plans(session, ids)
    prescriptions = _prescriptions(session, ids)
    patients = {
        p.id: p for p in session.execute(select(Patient).where(Patient.id.in_(ids))).scalars()
    }
    return [
        PatientSnapshot(
            patient_id=pid,
            mrn=patients[pid].mrn,
            external_id=patients[pid].external_id,
            demographics=demographics_of(patients[pid]),
            medications=tuple(meds[pid]),
            conditions=tuple(conditions[pid]),
            vitals=tuple(vitals[pid]),
            questionnaires=tuple(forms[pid]),
            plans=tuple(plans[pid]),
            prescriptions=tuple(prescriptions[pid]),
        )
        for pid in ids
        if pid in patients
    ]


def export_patient_bundles(
    session: Session,
    actor: Actor,
    ids: Sequence[int],
    folder: Path,
    *,
    progress: Progress | None = None,
    audit: bool = True,
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
) -> FhirExportSummary:
    """Write one bundle file per patient into ``folder`` (MRN.fhir.json); audited with counts.

    ``workers`` > 1 builds the bundles on that many processes when there are at least
    ``parallel_from`` patients (fewer are done sooner than the processes start).
    ``progress`` returning False stops after the bundles under way (every file written is
    complete, none is left half-written); the summary then says ``stopped`` and the audit
    event counts what was written.
    """
    require(actor, Permission.VIEW_ROSTER, "export patient records")
    make_private_folder(folder)
    context = export_context(session)
    total = len(ids)
    batches = (
        patient_snapshots(session, ids[start : start + BATCH]) for start in range(0, total, BATCH)
    )
    written = write_all(batches, context, folder, total=total,
                        workers=workers if total >= parallel_from else 1, progress=progress)
    files, resources, stopped = list(written.files), written.resources, written.stopped
    sync_folder(folder)
    if audit:
        record_event(
            session,
            actor,
            audit_actions.FHIR_EXPORTED,
            patient_id=ids[0] if len(ids) == 1 else None,
            detail=f"{len(files)} of {total} patients, {resources} resources",
        )
    return FhirExportSummary(len(files), resources, tuple(files), stopped)


def export_patient_file(
    session: Session, actor: Actor, patient_id: int, target: Path, *,
    protected_databases: Sequence[Path] = (),
) -> FhirExportSummary:
    """Write one patient's bundle to ``target`` (replaced if it exists); audited with counts."""
    require(actor, Permission.VIEW_ROSTER, "export patient records")
    target = check_output_path(target, protected_databases=protected_databases, overwrite=True,
                               what="FHIR export", make_folder=True)
    [snapshot] = patient_snapshots(session, [patient_id])
    bundle = patient_bundle(snapshot, export_context(session))
    write_private_bytes(target, bundle_json(bundle))
    count = len(bundle.entry or ())
    record_event(session, actor, audit_actions.FHIR_EXPORTED, patient_id=patient_id,
                 detail=f"1 of 1 patients, {count} resources")
    return FhirExportSummary(1, count, (target,))
