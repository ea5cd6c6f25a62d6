"""Treatment plans from the database: export (single and batch), record, verify.

This is the public service for plans. The pieces: ``plan_document_builder`` maps the chart
onto a :class:`~ketadesk.reports.plan_document.PlanDocument`; ``plan_file_names`` and
``plan_export_batch`` choose who gets a plan under which file name; ``plan_document_json``
stores the document; ``plan_verification`` checks a printed plan. This module renders and
records the exports, and names the public API of all of them.

Only signed protocol versions become plans. A physician may also render a draft as a
watermarked preview, which is never recorded as a plan. Each exported plan of a signed version
is stored once by content hash (``SignedPlanContent``) with the document it was rendered from,
so :func:`verify_plan_file` can check a reprint even after the chart has changed. Every export,
preview and verification is written to the audit trail with ids, version numbers and hashes,
never names.

Rendering happens outside any database session: the batch is collected in one short session,
rendered on worker processes (``reports/plan_batch``), and recorded in a second session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.output_paths import check_output_path
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.private_files import write_private_bytes
from ketadesk.models.patients import Patient
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.reports.plan_batch import PlanJob, PlanJobResult, render_plan_files
from ketadesk.reports.plan_document import PlanDocument, plan_content_hash
from ketadesk.storage.plans.plan_document_builder import (
    CALENDAR_WEEKS_KEY,
    EVENT_PROTOCOL_REVIEW,
    NO_SIGNED_PROTOCOL,
    NO_WEIGHT,
    PLAN_TITLE,
    calendar_rows,
    draft_preview_for_patient,
    plan_for_patient,
    plan_for_version,
    plan_id_for,
    titration_steps,
)
from ketadesk.storage.plans.plan_document_json import plan_document_from_json, plan_document_to_json
from ketadesk.storage.plans.plan_export_batch import (
    ExportBatch,
    ExportOutcome,
    ExportSummary,
    PlannedExport,
    plan_export_batch,
)
from ketadesk.storage.plans.plan_file_names import (
    DEFAULT_FILE_PATTERN,
    FILE_PATTERN_FIELDS,
    check_file_pattern,
    plan_file_name,
)
from ketadesk.storage.plans.plan_review_gate import check_plan_review
from ketadesk.storage.plans.plan_verification import (
    VerifyResult,
    pdf_needs_password,
    verify_plan_file,
)
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocol,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.password_rules import check_new_password

if TYPE_CHECKING:
    from ketadesk.storage.security.open_practice import OpenPractice

__all__ = [
    "CALENDAR_WEEKS_KEY",
    "DEFAULT_FILE_PATTERN",
    "EVENT_PROTOCOL_REVIEW",
    "FILE_PATTERN_FIELDS",
    "NO_SIGNED_PROTOCOL",
    "NO_WEIGHT",
    "PLAN_TITLE",
    "ExportBatch",
    "ExportOutcome",
    "ExportSummary",
    "PlannedExport",
    "VerifyResult",
    "calendar_rows",
    "check_file_pattern",
    "draft_preview_for_patient",
    "export_draft_preview",
    "export_plan_to_file",
    "export_plans",
    "pdf_needs_password",
    "plan_document_from_json",
    "plan_document_to_json",
    "plan_export_batch",
    "plan_file_name",
    "plan_for_patient",
    "plan_for_version",
    "plan_id_for",
    "record_plan_exports",
    "remember_signed_plan",
    "titration_steps",
    "verify_plan_file",
]


def remember_signed_plan(
    session: Session, actor: Actor, version_id: int, doc: PlanDocument
) -> str:
    """Store a signed plan's document under its content hash (once); return the hash."""
    if doc.is_draft or not doc.is_signed:
        raise UserFacingError("Only signed plans are recorded; a draft preview is not a plan.")
    content_hash = plan_content_hash(doc)
    exists = session.execute(
        select(SignedPlanContent.id).where(SignedPlanContent.content_hash == content_hash)
    ).first()
    if exists is None:
        session.add(
            SignedPlanContent(
                protocol_version_id=version_id,
                content_hash=content_hash,
                document_json=plan_document_to_json(doc),
                calendar_weeks_shown=doc.calendar_weeks_shown,
                first_exported_by=actor.user_name,
            )
        )
        session.flush()
    return content_hash


def _audit_export(
    session: Session, actor: Actor, item: PlannedExport, result: PlanJobResult, encrypted: bool
) -> None:
    record_event(
        session,
        actor,
        audit_actions.PLAN_EXPORTED,
        patient_id=item.patient_id,
        detail=(
            f"plan {item.doc.plan_id} version {item.doc.version} "
            f"(protocol version id {item.version_id}); content {result.content_hash}; "
            f"file sha256 {result.file_sha256}; encrypted {'yes' if encrypted else 'no'}"
        ),
    )


def record_plan_exports(
    session: Session,
    actor: Actor,
    batch: ExportBatch,
    results: Sequence[PlanJobResult],
    *,
    encrypted: bool,
) -> ExportSummary:
    """Record the written plans (content stored, one audit event each) and summarise."""
    require(actor, Permission.EXPORT_PLANS, "export treatment plans")
    outcomes = list(batch.skipped)
    for item, result in zip(batch.planned, results, strict=True):
        if result.is_written:
            remember_signed_plan(session, actor, item.version_id, item.doc)
            _audit_export(session, actor, item, result, encrypted)
        outcomes.append(
            ExportOutcome(
                patient_id=item.patient_id,
                mrn=item.mrn,
                status=result.status.value,
                reason=result.message or "",
                path=result.path,
                version=item.doc.version,
                content_hash=result.content_hash,
                file_sha256=result.file_sha256,
            )
        )
    return ExportSummary(tuple(outcomes))


def check_pdf_password(
    database: OpenPractice, actor: Actor, password: str | None
) -> None:
    """A PDF password follows the same strength rule as a log-in password (None = no
    password, allowed)."""
    if password is None:
        return
    if not password:
        raise UserFacingError("The PDF password cannot be empty.")
    with database.session() as session:
        check_new_password(password, actor.user_name, session=session, what="PDF password")


def export_plans(
    database: OpenPractice,
    actor: Actor,
    patient_ids: Sequence[int] | None,
    folder: Path,
    *,
    pattern: str = DEFAULT_FILE_PATTERN,
    password: str | None = None,
    workers: int = 2,
    cancel: threading.Event | Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    allow_stale_review: bool = False,
) -> ExportSummary:
    """Export one plan per patient into ``folder`` (``None`` = every patient with an active
    signed protocol). Safe to call from a worker thread: the database is used in two short
    sessions and the PDFs are rendered on ``workers`` processes in between. ``password``
    (optional) encrypts every file with AES-256 and is never stored."""
    check_pdf_password(database, actor, password)
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFacingError("The folder for the plans does not exist.")
    with database.session() as session:
        batch = plan_export_batch(
            session, actor, patient_ids, pattern=pattern, allow_stale_review=allow_stale_review
        )
    jobs = [PlanJob(item.doc, folder / item.file_name, password) for item in batch.planned]
    results = render_plan_files(
        jobs, workers, cancel=cancel, progress=progress, overwrite=overwrite
    )
    with database.session() as session:
        summary = record_plan_exports(
            session, actor, batch, results, encrypted=password is not None
        )
        # The batch as a whole is one read of many patients: one event with the counts.
        record_event(
            session,
            actor,
            audit_actions.PLANS_EXPORTED,
            detail=f"{len(summary.written)} plans written, {len(summary.skipped)} skipped, "
            f"{len(summary.failed)} failed",
        )
    return summary


def export_plan_to_file(
    database: OpenPractice,
    actor: Actor,
    patient_id: int,
    path: Path,
    *,
    password: str | None = None,
    overwrite: bool = False,
    allow_stale_review: bool = False,
) -> ExportOutcome:
    """Export the patient's plan to ``path`` (one file, rendered in this process) and record it.

    Raises UserFacingError when the patient has no signed protocol, the version cannot be
    printed, the file exists (unless ``overwrite``) or cannot be written, or the interaction
    review is out of date or missing (naming the MRN) unless a physician passes
    ``allow_stale_review`` (then audited).
    """
    path = check_output_path(
        Path(path),
        protected_databases=[] if database.path is None else [database.path],
        overwrite=overwrite,
        what="plan",
    )
    check_pdf_password(database, actor, password)
    with database.session() as session:
        require(actor, Permission.EXPORT_PLANS, "export treatment plans")
        mrn = session.execute(select(Patient.mrn).where(Patient.id == patient_id)).scalar()
        if mrn is None:
            raise UserFacingError("This patient is no longer in the practice database.")
        version = active_signed_protocol(session, patient_id)
        if version is None:
            raise UserFacingError(NO_SIGNED_PROTOCOL)
        check_plan_review(
            session, actor, patient_id, mrn, allow_stale_review=allow_stale_review
        )
        doc = plan_for_version(session, version)
    item = PlannedExport(patient_id, mrn, version.version_id, doc, path.name)
    [result] = render_plan_files([PlanJob(doc, path, password)], 1, overwrite=overwrite)
    if not result.is_written:
        raise UserFacingError(result.message or "The plan could not be written.")
    with database.session() as session:
        summary = record_plan_exports(
            session, actor, ExportBatch((item,), ()), [result], encrypted=password is not None
        )
    return summary.outcomes[0]


def export_draft_preview(
    database: OpenPractice, actor: Actor, patient_id: int, path: Path
) -> Path:
    """Write a watermarked draft preview (physicians only) to ``path``; audited, never
    recorded as a plan and never verifiable."""
    from ketadesk.reports.plan_pdf import render_plan_pdf

    with database.session() as session:
        doc = draft_preview_for_patient(session, actor, patient_id)
    write_private_bytes(Path(path), render_plan_pdf(doc))  # 0600, temp name then rename
    with database.session() as session:
        record_event(
            session, actor, audit_actions.PLAN_DRAFT_PREVIEWED, patient_id=patient_id,
            detail=f"plan {doc.plan_id} draft version {doc.version}",
        )
    return Path(path)
