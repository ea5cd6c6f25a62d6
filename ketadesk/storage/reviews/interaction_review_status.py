"""Whether a patient's latest signed interaction review still matches the chart.

A review is stale when the fingerprint of the chart's current inputs (active medication lines
as typed, active conditions, the latest vitals, the pregnant flag and the knowledge-base
version) differs from the one stored at signing; the reason is then given in words, without
clinical details.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.interaction_check import age_band
from ketadesk.core.knowledge_base import KnowledgeBase, load_knowledge_base
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.patients import PatientCondition, PatientMedication, VitalSign
from ketadesk.storage.reviews.interaction_review_inputs import (
    ReviewInputs,
    current_inputs,
    inputs_fingerprint,
    inputs_for_patients,
    vitals_key,
)
from ketadesk.storage.reviews.interaction_review_snapshot import (
    latest_signed_row,
    snapshot_for_comparison,
)
from ketadesk.storage.reviews.interaction_review_views import ReviewStatus

_SQL_CHUNK = 900


def review_status(
    session: Session, patient_id: int, kb: KnowledgeBase | None = None
) -> ReviewStatus:
    """``"none"`` without a signed review; ``"current"`` while the chart's inputs and the
    knowledge-base version match the latest signed review; otherwise ``"stale"`` with a
    reason in words."""
    kb = kb or load_knowledge_base()
    row = latest_signed_row(session, patient_id)
    if row is None:
        return ReviewStatus("none", None, None, None, None)
    inputs = current_inputs(session, patient_id)
    return status_against(
        session, row, inputs, inputs_fingerprint(inputs, kb.version, kb), kb.version
    )


def status_against(
    session: Session,
    signed: InteractionReview | None,
    inputs: ReviewInputs,
    fingerprint: str,
    kb_version: str,
) -> ReviewStatus:
    """The status of the ``signed`` review (None = never signed) against the chart's current
    ``inputs`` and their ``fingerprint``."""
    if signed is None:
        return ReviewStatus("none", None, None, None, None)
    if signed.fingerprint == fingerprint:
        return ReviewStatus(
            "current", signed.id, signed.signed_at, signed.signed_by, None,
            signed.signed_by_full_name,
        )
    return ReviewStatus(
        "stale",
        signed.id,
        signed.signed_at,
        signed.signed_by,
        _stale_reason(snapshot_for_comparison(signed.snapshot_json), inputs, kb_version),
        signed.signed_by_full_name,
        _changed_since(session, inputs.patient_id, signed.signed_at),
    )


def _norm(lines: Iterable[str]) -> list[str]:
    return sorted({" ".join(line.casefold().split()) for line in lines if line.strip()})


def _stale_reason(snapshot: Mapping[str, Any], inputs: ReviewInputs, kb_version: str) -> str:
    reasons = []
    if _norm(snapshot.get("medication_lines", [])) != _norm(inputs.medication_lines):
        reasons.append("the medication list changed")
    if _norm(snapshot.get("conditions", [])) != _norm(inputs.conditions):
        reasons.append("the conditions changed")
    stored_vitals = snapshot.get("vitals")
    stored_key = "none" if stored_vitals is None else json.dumps(
        [stored_vitals.get(k) for k in ("systolic", "diastolic", "heart_rate", "weight_kg")]
    )
    if stored_key != vitals_key(inputs.latest_vitals):
        reasons.append("new vital signs were recorded")
    if bool(snapshot.get("pregnant")) != inputs.pregnant:
        reasons.append("the pregnancy status changed")
    if "age_band" in snapshot and snapshot["age_band"] != age_band(inputs.age_years):
        reasons.append("the patient moved into another age group")
    signed_version = str(snapshot.get("kb_version", ""))
    if signed_version != kb_version:
        reasons.append(
            f"the interaction knowledge base was updated ({signed_version} to {kb_version})"
        )
    return "; ".join(reasons) or "the chart changed"


def _changed_since(
    session: Session, patient_id: int, signed_at: datetime | None
) -> datetime | None:
    if signed_at is None:
        return None
    candidates: list[datetime | None] = [
        session.execute(
            select(PatientMedication.updated_at)
            .where(PatientMedication.patient_id == patient_id)
            .order_by(PatientMedication.updated_at.desc())
            .limit(1)
        ).scalar_one_or_none(),
        session.execute(
            select(PatientCondition.updated_at)
            .where(PatientCondition.patient_id == patient_id)
            .order_by(PatientCondition.updated_at.desc())
            .limit(1)
        ).scalar_one_or_none(),
        session.execute(
            select(VitalSign.measured_at)
            .where(VitalSign.patient_id == patient_id)
            .order_by(VitalSign.measured_at.desc())
            .limit(1)
        ).scalar_one_or_none(),
    ]
    after = [c for c in candidates if c is not None and c > signed_at]
    return max(after) if after else None


def review_states_for(
    session: Session, patient_ids: Sequence[int], kb: KnowledgeBase | None = None
) -> dict[int, str]:
    """``"none"``, ``"current"`` or ``"stale"`` for each patient id (for the roster column).

    A handful of queries per call whatever the page size (ids are read in chunks).
    """
    kb = kb or load_knowledge_base()
    ids = list(dict.fromkeys(patient_ids))
    states: dict[int, str] = dict.fromkeys(ids, "none")
    for start in range(0, len(ids), _SQL_CHUNK):
        chunk = ids[start:start + _SQL_CHUNK]
        signed: dict[int, str] = {}
        for patient_id, fingerprint in session.execute(
            select(InteractionReview.patient_id, InteractionReview.fingerprint)
            .where(InteractionReview.patient_id.in_(chunk), InteractionReview.status == "signed")
            .order_by(InteractionReview.signed_at, InteractionReview.id)
        ):
            signed[patient_id] = fingerprint  # the newest signing wins
        if not signed:
            continue
        for pid, inputs in inputs_for_patients(session, list(signed)).items():
            current = inputs_fingerprint(inputs, kb.version, kb) == signed[pid]
            states[pid] = "current" if current else "stale"
    return states
