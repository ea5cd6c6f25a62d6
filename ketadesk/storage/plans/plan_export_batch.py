"""Collecting a batch of plans to export: which patients get a plan, under which file name,
and who is skipped and why; plus the outcome of each and the summary of the batch.

The batch is collected in one short session (patients and reviews read in bulk); rendering
happens elsewhere (``reports/plan_batch``), outside any session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.patients import Patient
from ketadesk.reports.plan_batch import JobStatus
from ketadesk.reports.plan_document import PlanDocument
from ketadesk.storage.plans.plan_document_builder import (
    NO_SIGNED_PROTOCOL,
    NO_WEIGHT,
    PlanBatchContext,
    plan_for_version,
)
from ketadesk.storage.plans.plan_file_names import (
    DEFAULT_FILE_PATTERN,
    check_file_pattern,
    plan_file_name,
    unique_file_name,
)
from ketadesk.storage.plans.plan_review_gate import (
    ONLY_PHYSICIANS_TEXT,
    STALE_REVIEW_SKIP,
    plan_review_problems,
    record_stale_review_export,
)
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocols,
)

_SQL_CHUNK = 900


@dataclass(frozen=True)
class PlannedExport:
    """One plan ready to render: the patient, the version it comes from and its file name."""

    patient_id: int
    mrn: str
    version_id: int
    doc: PlanDocument
    file_name: str

    def __repr__(self) -> str:  # keeps names out of logs and tracebacks
        return f"PlannedExport(patient_id={self.patient_id}, version_id={self.version_id})"


@dataclass(frozen=True)
class ExportOutcome:
    """What happened to one patient's plan: ``status`` is written, skipped, failed or cancelled;
    ``reason`` explains a skip or failure in words (no patient data)."""

    patient_id: int
    mrn: str
    status: str
    reason: str = ""
    path: Path | None = None
    version: int | None = None
    content_hash: str | None = None
    file_sha256: str | None = None

    @property
    def is_written(self) -> bool:
        return self.status == JobStatus.WRITTEN.value


@dataclass(frozen=True)
class ExportBatch:
    """The plans to render and the patients skipped before rendering (with the reason)."""

    planned: tuple[PlannedExport, ...]
    skipped: tuple[ExportOutcome, ...]


@dataclass(frozen=True)
class ExportSummary:
    """Every patient's outcome, in the order asked for (skipped ones first)."""

    outcomes: tuple[ExportOutcome, ...]

    def _with(self, status: JobStatus) -> tuple[ExportOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == status.value)

    @property
    def written(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.WRITTEN)

    @property
    def skipped(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.SKIPPED)

    @property
    def failed(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.FAILED)

    @property
    def cancelled(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.CANCELLED)

    def describe(self) -> str:
        """One line: "Written 2, skipped 1 (no signed protocol: 1)." and failures/cancels."""
        text = f"Written {len(self.written)}, skipped {len(self.skipped)}"
        reasons: dict[str, int] = {}
        for outcome in self.skipped:
            reasons[_short_reason(outcome.reason)] = reasons.get(
                _short_reason(outcome.reason), 0
            ) + 1
        if reasons:
            text += " (" + "; ".join(f"{r}: {n}" for r, n in reasons.items()) + ")"
        if self.failed:
            text += f", failed {len(self.failed)}"
        if self.cancelled:
            text += f", cancelled {len(self.cancelled)}"
        return text + "."


def _short_reason(reason: str) -> str:
    if reason == NO_SIGNED_PROTOCOL:
        return "no signed protocol"
    if reason == NO_WEIGHT:
        return "no weight on the signed version"
    if reason.startswith(STALE_REVIEW_SKIP):
        return STALE_REVIEW_SKIP
    if "already exists" in reason:
        return "file already exists"
    return reason.rstrip(".")


def plan_export_batch(
    session: Session,
    actor: Actor,
    patient_ids: Sequence[int] | None,
    *,
    pattern: str = DEFAULT_FILE_PATTERN,
    weeks_shown: int | None = None,
    today: date | None = None,
    allow_stale_review: bool = False,
) -> ExportBatch:
    """Collect the plans to export: for ``patient_ids`` (in order), or every patient with an
    active signed protocol when ``None``. Patients without a signed protocol (or whose
    version cannot be printed) are skipped with the reason, and so are patients whose
    interaction review is out of date or missing unless a physician passes
    ``allow_stale_review`` (audited per patient; ``plan_review_gate``). File names follow
    ``pattern`` and are made unique within the batch."""
    require(actor, Permission.EXPORT_PLANS, "export treatment plans")
    check_file_pattern(pattern)
    if allow_stale_review and not actor.can(Permission.SIGN):
        raise UserFacingError(ONLY_PHYSICIANS_TEXT)
    signed = active_signed_protocols(session, patient_ids)
    ids = list(patient_ids) if patient_ids is not None else sorted(signed)
    review_problems = plan_review_problems(session, [i for i in ids if i in signed])
    shared = PlanBatchContext.read(session, weeks_shown)
    day = (today or datetime.now(UTC).date()).isoformat()
    patients: dict[int, Patient] = {}
    reviews: list[InteractionReview] = []  # held so the identity map keeps them for the batch
    review_ids = [v.interaction_review_id for v in signed.values() if v.interaction_review_id]
    for chunk in range(0, max(len(ids), len(review_ids)), _SQL_CHUNK):
        # Load patients and reviews (with decisions) in bulk; the per-plan lookups then come
        # from the session's identity map instead of one query each.
        patients.update(
            (p.id, p)
            for p in session.execute(
                select(Patient).where(Patient.id.in_(ids[chunk : chunk + _SQL_CHUNK]))
            ).scalars()
        )
        reviews.extend(
            session.execute(
                select(InteractionReview)
                .where(InteractionReview.id.in_(review_ids[chunk : chunk + _SQL_CHUNK]))
                .options(selectinload(InteractionReview.decisions))
            ).scalars()
        )
    planned: list[PlannedExport] = []
    skipped: list[ExportOutcome] = []
    taken: set[str] = set()
    for patient_id in ids:
        patient = patients.get(patient_id)
        if patient is None:
            skipped.append(ExportOutcome(patient_id, "", "skipped", "This patient was not found."))
            continue
        version = signed.get(patient_id)
        if version is None:
            skipped.append(ExportOutcome(patient_id, patient.mrn, "skipped", NO_SIGNED_PROTOCOL))
            continue
        problem = review_problems.get(patient_id)
        if problem is not None and not allow_stale_review:
            skipped.append(ExportOutcome(
                patient_id, patient.mrn, "skipped", f"{STALE_REVIEW_SKIP}: {problem}"
            ))
            continue
        try:
            doc = plan_for_version(session, version, shared=shared)
        except UserFacingError as error:
            skipped.append(ExportOutcome(patient_id, patient.mrn, "skipped", error.message))
            continue
        values = {
            "last_name": patient.last_name,
            "first_name": patient.first_name,
            "mrn": patient.mrn,
            "version": str(version.number),
            "plan_id": doc.plan_id,
            "date": day,
        }
        name = unique_file_name(plan_file_name(pattern, values), taken)
        if problem is not None:
            record_stale_review_export(session, actor, patient_id, problem)
        planned.append(PlannedExport(patient_id, patient.mrn, version.version_id, doc, name))
    return ExportBatch(tuple(planned), tuple(skipped))
