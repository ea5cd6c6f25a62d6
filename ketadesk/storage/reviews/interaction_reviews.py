"""Interaction reviews: run the checker over a patient's chart, record decisions, sign, go stale.

Services take a Session and return frozen dataclasses; nothing here hands out live ORM rows.
The checking itself is the Qt-free core (``core/interaction_check``); this module runs it over
the chart's inputs (``interaction_review_inputs``), keeps the physician's decisions and stores
the signed snapshot (``interaction_review_snapshot``). Whether the latest signed review still
matches the chart is ``review_status`` (``interaction_review_status``). The views returned are
in ``interaction_review_views``; this module is the public service and names them all.

A review is stale when the fingerprint of the chart's current inputs (active medication lines
as typed, active conditions, the latest vitals, the pregnant flag and the knowledge-base
version) differs from the one stored at signing. A decision carries forward to the next
review while the same finding persists: same rule, drug, dose and frequency for a drug flag,
same rule and condition for a condition flag, and the same severity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.interaction_check import (
    ConditionReading,
    Flag,
    check_patient,
    read_condition,
)
from ketadesk.core.knowledge_base import (
    SEVERITY_ORDER,
    KnowledgeBase,
    Severity,
    load_knowledge_base,
    severity_rank,
)
from ketadesk.core.medication_names import read_medication_line
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.settings import SETTINGS
from ketadesk.models.interaction_reviews import DECISIONS, InteractionReview, ReviewDecision
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.reviews.interaction_review_inputs import (
    ReviewInputs,
    VitalsUsed,
    current_inputs,
    inputs_fingerprint,
    medication_line,
)
from ketadesk.storage.reviews.interaction_review_snapshot import (
    SignedReview,
    SnapshotFlag,
    SnapshotSource,
    latest_signed_review,
    latest_signed_row,
    snapshot_of,
)
from ketadesk.storage.reviews.interaction_review_status import (
    review_states_for,
    review_status,
    status_against,
)
from ketadesk.storage.reviews.interaction_review_views import (
    DECISION_LABELS,
    ConditionLineView,
    DecisionCode,
    DecisionInput,
    DecisionView,
    FlagView,
    MedicationLineView,
    ReviewDraftView,
    ReviewState,
    ReviewStatus,
    decision_view,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import (
    INTERACTION_REVIEW,
    review_snapshot_hash,
    sign_content,
)

__all__ = [
    "DECISION_LABELS",
    "DECISION_REQUIRED_FROM",
    "INTERRUPT_THRESHOLD_KEY",
    "ConditionLineView",
    "DecisionCode",
    "DecisionInput",
    "DecisionView",
    "FlagView",
    "MedicationLineView",
    "ReviewDraftView",
    "ReviewInputs",
    "ReviewState",
    "ReviewStatus",
    "SignedReview",
    "SnapshotFlag",
    "SnapshotSource",
    "VitalsUsed",
    "current_inputs",
    "inputs_fingerprint",
    "interrupt_threshold",
    "interruptive_flags",
    "latest_signed_review",
    "medication_line",
    "needs_decision",
    "record_decision",
    "review_states_for",
    "review_status",
    "run_review",
    "sign_review",
]

#: Flags at or above this severity need a decision before the review can be signed.
DECISION_REQUIRED_FROM: Severity = "moderate"
INTERRUPT_THRESHOLD_KEY = "interaction_interrupt_threshold"
_MAX_NOTE_CHARS = 2000


# --------------------------------------------------------------------------- running


def _draft_row(session: Session, patient_id: int) -> InteractionReview | None:
    return session.execute(
        select(InteractionReview)
        .where(InteractionReview.patient_id == patient_id, InteractionReview.status == "draft")
        .order_by(InteractionReview.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def needs_decision(severity: str) -> bool:
    """True for flags of ``moderate`` severity or above."""
    return severity_rank(severity) <= severity_rank(DECISION_REQUIRED_FROM)


def run_review(
    session: Session, patient_id: int, kb: KnowledgeBase | None = None
) -> ReviewDraftView:
    """Check the patient's chart now; attach decisions carried forward from the previous
    signed review (same finding and severity) and any recorded on the open draft."""
    kb = kb or load_knowledge_base()
    inputs = current_inputs(session, patient_id)
    result = check_patient(
        inputs.medication_lines, inputs.conditions, inputs.vitals, inputs.pregnant, kb,
        age_years=inputs.age_years,
    )
    previous = latest_signed_row(session, patient_id)
    carried: dict[str, DecisionView] = {}
    if previous is not None:
        carried = {d.carry_forward_key: decision_view(d) for d in previous.decisions}
    draft = _draft_row(session, patient_id)
    pending: dict[str, DecisionView] = {}
    if draft is not None:
        pending = {d.carry_forward_key: decision_view(d) for d in draft.decisions}
    flags = []
    for flag in result.flags:
        old = carried.get(flag.carry_forward_key)
        if old is not None and old.severity != flag.severity:
            old = None  # a decision made at another severity does not carry forward
        new = pending.get(flag.carry_forward_key)
        if new is not None and new.severity != flag.severity:
            new = None
        flags.append(FlagView(flag, needs_decision(flag.severity), old, new))
    fingerprint = inputs_fingerprint(inputs, kb.version, kb)
    return ReviewDraftView(
        patient_id=patient_id,
        inputs=inputs,
        result=result,
        fingerprint=fingerprint,
        medication_lines=tuple(_medication_line_view(line, kb) for line in inputs.medication_lines),
        condition_lines=tuple(
            _condition_line_view(read_condition(text, kb)) for text in inputs.conditions
        ),
        flags=tuple(flags),
        status=status_against(session, previous, inputs, fingerprint, kb.version),
        draft_review_id=None if draft is None else draft.id,
    )


def _medication_line_view(line: str, kb: KnowledgeBase) -> MedicationLineView:
    reading = read_medication_line(line, kb)
    return MedicationLineView(
        entered_as=reading.entered_as,
        generics=reading.generics,
        matched_name=reading.matched_name,
        fuzzy=reading.fuzzy,
        unit_assumed=reading.unit_assumed,
        unit=reading.unit,
        route=reading.route,
        route_word=reading.route_word,
    )


def _condition_line_view(reading: ConditionReading) -> ConditionLineView:
    return ConditionLineView(
        reading.entered_as, reading.name, reading.read_as_text, reading.unread
    )


# --------------------------------------------------------------------------- decisions


def _validated_decision(choice: DecisionInput, flag: Flag) -> DecisionInput:
    if choice.decision not in DECISIONS:
        raise UserFacingError(
            "Choose a decision: continue with monitoring, adjust the protocol, hold ketamine, "
            "or ask the other prescriber to change the interacting drug."
        )
    note = choice.note.strip()
    # An override reason belongs to contraindicated findings only.
    reason = choice.override_reason.strip() if flag.severity == "contraindicated" else ""
    if len(note) > _MAX_NOTE_CHARS or len(reason) > _MAX_NOTE_CHARS:
        raise UserFacingError(f"Notes are limited to {_MAX_NOTE_CHARS} characters.")
    if flag.severity == "contraindicated" and choice.decision != "hold_ketamine" and not reason:
        raise UserFacingError(
            "A contraindicated finding needs an explicit override reason unless ketamine is "
            "held."
        )
    if choice.note_for_patient and not note:
        raise UserFacingError(
            "The note is marked for the patient but is empty; write what the patient should "
            "read, or clear \"for the patient\"."
        )
    return DecisionInput(
        choice.carry_forward_key, choice.decision, note, reason, choice.note_for_patient
    )


def record_decision(
    session: Session,
    actor: Actor,
    patient_id: int,
    choice: DecisionInput,
    kb: KnowledgeBase | None = None,
) -> DecisionView:
    """Record (or replace) a physician's decision on one current flag on the open draft.

    Contraindicated flags need an override reason unless the decision is to hold ketamine.
    """
    require(actor, Permission.SIGN, "record decisions on an interaction review")
    view = run_review(session, patient_id, kb)
    flag = _flag_for(view, choice.carry_forward_key)
    checked = _validated_decision(choice, flag)
    draft = _draft_row(session, patient_id)
    if draft is None:
        draft = InteractionReview(
            patient_id=patient_id, status="draft", created_by=actor.user_name,
            fingerprint=view.fingerprint, kb_version=view.result.kb_version,
        )
        session.add(draft)
        session.flush()
    row = _write_decision(session, draft, flag, checked, actor, datetime.now(UTC))
    record_event(
        session, actor, audit_actions.INTERACTION_DECISION_RECORDED, patient_id=patient_id,
        detail=_decision_detail(draft.id, flag, checked),
    )
    return decision_view(row)


def _flag_for(view: ReviewDraftView, key: str) -> Flag:
    for item in view.flags:
        if item.flag.carry_forward_key == key:
            return item.flag
    raise UserFacingError(
        "That finding is no longer on this patient's review (the chart changed); "
        "reopen the review."
    )


def _decision_detail(review_id: int, flag: Flag, choice: DecisionInput) -> str:
    override = "; override reason given" if choice.override_reason else ""
    for_patient = "; note for the patient" if choice.note_for_patient else ""
    return (
        f"review {review_id}; {flag.rule_id} ({flag.severity}): {choice.decision}"
        f"{override}{for_patient}"
    )


def _write_decision(
    session: Session,
    review: InteractionReview,
    flag: Flag,
    choice: DecisionInput,
    actor: Actor,
    at: datetime,
) -> ReviewDecision:
    row = _store_decision(review, flag, choice, actor.user_name, actor.full_name, at, None)
    session.flush()
    return row


def _store_decision(
    review: InteractionReview,
    flag: Flag,
    choice: DecisionInput | DecisionView,
    decided_by: str,
    decided_by_full_name: str,
    decided_at: datetime,
    carried_from_review_id: int | None,
) -> ReviewDecision:
    """Write ``choice`` on ``flag`` into the review's decision row for that finding (added
    when the review has none yet)."""
    row = next(
        (d for d in review.decisions if d.carry_forward_key == flag.carry_forward_key), None
    )
    if row is None:
        row = ReviewDecision(carry_forward_key=flag.carry_forward_key)
        review.decisions.append(row)
    row.rule_id = flag.rule_id
    row.severity = flag.severity
    row.decision = choice.decision
    row.note = choice.note
    row.note_for_patient = choice.note_for_patient
    row.override_reason = choice.override_reason
    row.decided_by = decided_by
    row.decided_by_full_name = decided_by_full_name
    row.decided_at = decided_at
    row.carried_from_review_id = carried_from_review_id
    return row


# --------------------------------------------------------------------------- signing


def sign_review(
    session: Session,
    actor: Actor,
    patient_id: int,
    decisions: Sequence[DecisionInput] = (),
    *,
    expected_fingerprint: str | None = None,
    kb: KnowledgeBase | None = None,
    read_by_physician: Sequence[str] = (),
) -> SignedReview:
    """Sign the patient's interaction review as it stands now.

    ``decisions`` override those recorded on the draft or carried forward. Every flag of
    moderate severity or above needs a decision; contraindicated ones an override reason
    (unless ketamine is held). With ``expected_fingerprint`` (from :func:`run_review`), a
    chart that changed since the screen was opened is refused. Every item the software did
    not check (``ReviewDraftView.not_checked``) must be in ``read_by_physician``: the physician
    confirms having read each one, and the signed snapshot says so.
    """
    require(actor, Permission.SIGN, "sign an interaction review")
    view = run_review(session, patient_id, kb)
    if expected_fingerprint is not None and expected_fingerprint != view.fingerprint:
        raise UserFacingError(
            "The chart changed after this review was opened. Reopen the review and sign again."
        )
    chosen = {d.carry_forward_key: d for d in decisions}
    unknown = [key for key in chosen if key not in {f.flag.carry_forward_key for f in view.flags}]
    if unknown:
        raise UserFacingError(
            "A decision refers to a finding that is no longer on this review; reopen the review."
        )
    confirmed = _confirmed_reads(view, read_by_physician)
    now = datetime.now(UTC)
    draft = _draft_row(session, patient_id)
    review = draft or InteractionReview(patient_id=patient_id, created_by=actor.user_name)
    if draft is None:
        session.add(review)
        session.flush()
    plan: list[tuple[FlagView, DecisionInput | None, DecisionView | None]] = []
    missing = 0
    for item in view.flags:
        fresh = chosen.get(item.flag.carry_forward_key)
        if fresh is not None:
            fresh = _validated_decision(fresh, item.flag)
            same = next((d for d in (item.pending, item.carried) if _same(d, fresh)), None)
            # Re-confirming an earlier decision unchanged keeps who made it and when.
            plan.append((item, None, same) if same else (item, fresh, None))
        elif item.pending is not None:
            plan.append((item, None, item.pending))
        elif item.carried is not None:
            plan.append((item, None, item.carried))
        elif item.needs_decision:
            missing += 1
    if missing:
        raise UserFacingError(
            f"{missing} finding{'s' if missing != 1 else ''} of moderate severity or above "
            f"still need{'s' if missing == 1 else ''} a decision before the review can be signed."
        )
    keep = {item.flag.carry_forward_key for item, _, _ in plan}
    for row in list(review.decisions):
        if row.carry_forward_key not in keep:
            review.decisions.remove(row)
    session.flush()
    overrides = 0
    for item, fresh, existing in plan:
        if fresh is not None:
            _write_decision(session, review, item.flag, fresh, actor, now)
            overrides += bool(fresh.override_reason)
        elif existing is not None and existing is item.carried:
            _copy_carried(review, item.flag, existing)
            overrides += bool(existing.override_reason)
        elif existing is not None:
            overrides += bool(existing.override_reason)
    session.flush()
    review.status = "signed"
    review.fingerprint = view.fingerprint
    review.kb_version = view.result.kb_version
    review.snapshot_json = json.dumps(snapshot_of(view, confirmed), sort_keys=True)
    review.signed_by = actor.user_name
    review.signed_by_full_name = actor.full_name
    review.signed_at = now
    session.flush()
    sign_content(session, actor, INTERACTION_REVIEW, review.id, review_snapshot_hash(review))
    for_patient = sum(d.note_for_patient for d in review.decisions)
    record_event(
        session, actor, audit_actions.INTERACTION_REVIEW_SIGNED, patient_id=patient_id,
        detail=(
            f"review {review.id}; kb {view.result.kb_version}; {len(view.flags)} flags; "
            f"{len(plan)} decisions; {overrides} contraindication overrides; "
            f"{len(view.not_checked)} not checked; {len(confirmed)} read by the physician; "
            f"{for_patient} note{'s' if for_patient != 1 else ''} for the patient"
        ),
    )
    signed = latest_signed_review(session, patient_id)
    assert signed is not None
    return signed


def _confirmed_reads(view: ReviewDraftView, read: Sequence[str]) -> tuple[str, ...]:
    """The not-checked items in the order shown, once each physician has confirmed them all."""
    confirmed = set(read)
    missing = [item for item in view.not_checked if item not in confirmed]
    if missing:
        count = len(missing)
        raise UserFacingError(
            f"{count} line{'s' if count != 1 else ''} on this review "
            f"{'were' if count != 1 else 'was'} not checked by the software. Confirm that you "
            f"have read {'each of them' if count != 1 else 'it'} before signing."
        )
    return tuple(dict.fromkeys(view.not_checked))


def _same(old: DecisionView | None, new: DecisionInput) -> bool:
    return old is not None and (
        old.decision, old.note, old.override_reason, old.note_for_patient
    ) == (new.decision, new.note, new.override_reason, new.note_for_patient)


def _copy_carried(review: InteractionReview, flag: Flag, old: DecisionView) -> None:
    # Point at the review where the decision was first made, so the chain stays short.
    _store_decision(
        review, flag, old, old.decided_by, old.decided_by_full_name, old.decided_at,
        old.carried_from_review_id or old.review_id,
    )


# --------------------------------------------------------------------------- threshold


def interrupt_threshold(session: Session) -> Severity:
    """The practice's severity at or above which flags interrupt protocol signing."""
    value = get_setting(session, INTERRUPT_THRESHOLD_KEY)
    if value in SEVERITY_ORDER:
        return value  # type: ignore[no-any-return]
    default = SETTINGS[INTERRUPT_THRESHOLD_KEY].default
    assert default in SEVERITY_ORDER
    return default  # type: ignore[no-any-return]


def interruptive_flags(flags: Iterable[Flag], threshold: str) -> tuple[Flag, ...]:
    """Flags at or above ``threshold`` severity, most severe first."""
    limit = severity_rank(threshold)
    return tuple(
        sorted(
            (f for f in flags if severity_rank(f.severity) <= limit),
            key=lambda f: severity_rank(f.severity),
        )
    )

