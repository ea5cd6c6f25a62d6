"""No plan leaves the practice over an out-of-date interaction review without a physician
saying so.

A plan printed after the chart changed (a medication recorded at the front desk, say) would
carry the old review's findings. So exporting or printing a plan whose patient has a stale or
missing interaction review is refused, with the reason in words; only a physician may go on
anyway (``allow_stale_review``), and that choice is written to the audit trail (codes and ids,
no clinical text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission
from ketadesk.models.patients import Patient
from ketadesk.storage.protocols.protocol_versions import active_signed_protocols
from ketadesk.storage.reviews.interaction_review_status import review_states_for, review_status
from ketadesk.storage.security.audit_log import record_event

STALE_REVIEW_SKIP = "interaction review out of date or missing"
NO_REVIEW_TEXT = "this patient has no signed interaction review"
ONLY_PHYSICIANS_TEXT = (
    "Only a physician may export a plan over an out-of-date or missing interaction review."
)


def plan_review_problem(session: Session, patient_id: int) -> str | None:
    """Why the patient's plan should not go out now (the review is stale or missing), in
    words; ``None`` while the signed review still matches the chart."""
    status = review_status(session, patient_id)
    if status.state == "current":
        return None
    if status.state == "none":
        return NO_REVIEW_TEXT
    signed_on = "" if status.signed_at is None else f" signed {status.signed_at.date().isoformat()}"
    changed = f": {status.stale_reason}" if status.stale_reason else ""
    return f"the interaction review{signed_on} is out of date{changed}"


def plan_review_problems(session: Session, patient_ids: Sequence[int]) -> dict[int, str]:
    """``plan_review_problem`` for many patients; patients without a problem are absent."""
    states = review_states_for(session, patient_ids)
    return {
        patient_id: problem
        for patient_id, state in states.items()
        if state != "current" and (problem := plan_review_problem(session, patient_id))
    }


def refusal_text(mrn: str, problem: str) -> str:
    """The refusal for one patient, naming them by MRN only."""
    return (
        f"The plan for {mrn} was not exported: {problem}. A physician must run and sign the "
        "interaction review again first (or, as a physician, export anyway)."
    )


def record_stale_review_export(
    session: Session, actor: Actor, patient_id: int, problem: str
) -> None:
    """A physician chose to export over a stale or missing review: check the role, audit it."""
    if not actor.can(Permission.SIGN):
        raise UserFacingError(ONLY_PHYSICIANS_TEXT)
    state = "missing" if problem == NO_REVIEW_TEXT else "stale"
    record_event(
        session,
        actor,
        audit_actions.PLAN_STALE_REVIEW_CONFIRMED,
        patient_id=patient_id,
        detail=f"plan exported with the interaction review {state}; confirmed by a physician",
    )


def check_plan_review(
    session: Session, actor: Actor, patient_id: int, mrn: str, *, allow_stale_review: bool
) -> None:
    """Refuse (``UserFacingError`` naming the MRN) unless the review is current, or a
    physician allowed a stale one (then audited)."""
    problem = plan_review_problem(session, patient_id)
    if problem is None:
        return
    if not allow_stale_review:
        raise UserFacingError(refusal_text(mrn, problem))
    record_stale_review_export(session, actor, patient_id, problem)


@dataclass(frozen=True)
class StaleReviewPlan:
    """A patient whose plan would go out over a stale or missing review: id, MRN, reason."""

    patient_id: int
    mrn: str
    problem: str


def stale_review_plans(
    session: Session, patient_ids: Sequence[int] | None
) -> tuple[StaleReviewPlan, ...]:
    """Among ``patient_ids`` (``None`` = everyone) with a signed protocol, those whose plan
    would go out over a stale or missing interaction review, in id order."""
    signed = active_signed_protocols(session, patient_ids)
    problems = plan_review_problems(session, sorted(signed))
    if not problems:
        return ()
    rows = session.execute(select(Patient.id, Patient.mrn).where(Patient.id.in_(list(problems))))
    mrns: dict[int, str] = {pid: mrn for pid, mrn in rows}
    return tuple(
        StaleReviewPlan(pid, mrns.get(pid, ""), problem) for pid, problem in problems.items()
    )
