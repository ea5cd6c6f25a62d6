"""Interaction reviews: run the checker over a patient's chart, record decisions, sign, go stale.

Services take a Session and return frozen dataclasses; nothing here hands out live ORM rows.
The checking itself is the Qt-free core (``core/interaction_check``); this module gathers the
chart's inputs, keeps the physician's decisions and the signed snapshot, and says whether
the latest signed review still matches the chart (``review_status``).

A review is stale when the fingerprint of the chart's current inputs (active medication lines
as typed, active conditions, the latest vitals, the pregnant flag and the knowledge-base
version) differs from the one stored at signing. A decision carries forward to the next
review while the same finding persists: same rule, drug, dose and frequency for a drug flag,
same rule and condition for a condition flag, and the same severity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.interaction_check import (
    ConditionReading,
    Flag,
    InteractionResult,
    Vitals,
    check_patient,
    read_condition,
    review_fingerprint,
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
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign
from ketadesk.storage.audit_log import record_event
from ketadesk.storage.settings_store import get_setting

ReviewState = Literal["none", "current", "stale"]
DecisionCode = Literal[
    "continue_with_monitoring", "adjust_protocol", "hold_ketamine", "ask_other_prescriber_to_change"
]

DECISION_LABELS: Mapping[str, str] = {
    "continue_with_monitoring": "Continue with monitoring",
    "adjust_protocol": "Adjust the ketamine protocol",
    "hold_ketamine": "Hold ketamine",
    "ask_other_prescriber_to_change": "Ask the other prescriber to change the interacting drug",
}
assert tuple(DECISION_LABELS) == DECISIONS

#: Flags at or above this severity need a decision before the review can be signed.
DECISION_REQUIRED_FROM: Severity = "moderate"
INTERRUPT_THRESHOLD_KEY = "interaction_interrupt_threshold"
_MAX_NOTE_CHARS = 2000
_SQL_CHUNK = 900
_SNAPSHOT_FORMAT = 1


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class VitalsUsed:
    """The latest vitals on the chart: BP in mmHg, heart rate per minute, weight in kg."""

    measured_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None

    def summary(self) -> str:
        """E.g. ``"BP 150/95 mmHg, HR 72/min, 80.5 kg (2026-11-20)"``."""
        parts = []
        if self.systolic is not None or self.diastolic is not None:
            systolic = "?" if self.systolic is None else str(self.systolic)
            diastolic = "?" if self.diastolic is None else str(self.diastolic)
            parts.append(f"BP {systolic}/{diastolic} mmHg")
        if self.heart_rate is not None:
            parts.append(f"HR {self.heart_rate}/min")
        if self.weight_kg is not None:
            parts.append(f"{self.weight_kg:g} kg")
        text = ", ".join(parts) or "no values"
        return f"{text} ({self.measured_at.date().isoformat()})"


@dataclass(frozen=True)
class ReviewInputs:
    """Everything a review is run over, exactly as it stands on the chart.

    ``vitals`` is None when there are no vitals or when the latest set is implausible; in
    the second case ``vitals_not_checked`` says why, and the raw values are in
    ``latest_vitals`` so the physician sees what was not used.
    """

    patient_id: int
    medication_lines: tuple[str, ...]
    conditions: tuple[str, ...]
    latest_vitals: VitalsUsed | None
    vitals: Vitals | None
    vitals_not_checked: str | None
    pregnant: bool


@dataclass(frozen=True)
class DecisionView:
    """A recorded decision on one flag (possibly carried forward from an earlier review)."""

    carry_forward_key: str
    rule_id: str
    severity: str
    decision: str
    note: str
    override_reason: str
    decided_by: str
    decided_by_full_name: str
    decided_at: datetime
    carried_from_review_id: int | None
    review_id: int | None = None

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS.get(self.decision, self.decision)

    @property
    def acknowledgement(self) -> str:
        """E.g. ``"acknowledged on 2026-11-25 by Dr. Rowan Quill"``."""
        who = self.decided_by_full_name or self.decided_by
        return f"acknowledged on {self.decided_at.date().isoformat()} by {who}"


@dataclass(frozen=True)
class DecisionInput:
    """What the physician chose for one flag, identified by its ``carry_forward_key``."""

    carry_forward_key: str
    decision: str
    note: str = ""
    override_reason: str = ""


@dataclass(frozen=True)
class FlagView:
    """One flag on the review screen with any decision already made about it.

    ``carried`` is a decision from the previous signed review that still applies (same
    finding, same severity); ``pending`` is one recorded on the current draft.
    """

    flag: Flag
    needs_decision: bool
    carried: DecisionView | None
    pending: DecisionView | None

    @property
    def decision(self) -> DecisionView | None:
        """The decision that will be signed unless the physician changes it."""
        return self.pending or self.carried


@dataclass(frozen=True)
class MedicationLineView:
    """One medication line as typed and what it was read as (``generics`` empty = not checked)."""

    entered_as: str
    generics: tuple[str, ...]
    matched_name: str | None
    fuzzy: bool
    unit_assumed: bool
    unit: str | None

    @property
    def is_checked(self) -> bool:
        return bool(self.generics)

    @property
    def read_as_text(self) -> str:
        """``"read as: lorazepam"``, or ``"not checked"`` when the line was not recognised."""
        if not self.generics:
            return "not checked"
        text = "read as: " + " + ".join(self.generics)
        if self.fuzzy:
            text += " (near match; please confirm)"
        if self.unit_assumed and self.unit:
            text += f"; unit assumed {self.unit}"
        return text


@dataclass(frozen=True)
class ConditionLineView:
    """One condition as typed and the vocabulary concept it matched (None = not checked)."""

    entered_as: str
    concept_name: str | None

    @property
    def read_as_text(self) -> str:
        return "not checked" if self.concept_name is None else f"read as: {self.concept_name}"


@dataclass(frozen=True)
class ReviewStatus:
    """Whether the patient has a signed review that still matches the chart.

    ``state`` is ``"none"`` (never signed), ``"current"`` or ``"stale"``. ``signed_by`` is the
    signer's user name and ``signed_by_full_name`` their display name. For a stale review,
    ``stale_reason`` says what changed in words (no clinical details) and ``stale_since``
    is when the newest chart change after signing was made, when known.
    """

    state: ReviewState
    review_id: int | None
    signed_at: datetime | None
    signed_by: str | None
    stale_reason: str | None
    signed_by_full_name: str | None = None
    stale_since: datetime | None = None

    @property
    def is_current(self) -> bool:
        return self.state == "current"

    def summary(self) -> str:
        """One line for a status bar."""
        if self.state == "none":
            return "No signed interaction review."
        when = self.signed_at.date().isoformat() if self.signed_at else "?"
        who = self.signed_by_full_name or self.signed_by or "?"
        if self.state == "current":
            return f"Current: signed on {when} by {who}."
        return f"Stale: signed on {when} by {who}; since then {self.stale_reason}."


@dataclass(frozen=True)
class ReviewDraftView:
    """A freshly run review: the checker's result plus decisions carried or pending.

    ``fingerprint`` identifies the inputs shown; pass it back to :func:`sign_review` so a
    chart change between opening and signing is caught.
    """

    patient_id: int
    inputs: ReviewInputs
    result: InteractionResult
    fingerprint: str
    medication_lines: tuple[MedicationLineView, ...]
    condition_lines: tuple[ConditionLineView, ...]
    flags: tuple[FlagView, ...]
    status: ReviewStatus
    draft_review_id: int | None

    @property
    def not_checked(self) -> tuple[str, ...]:
        """Every medication line and condition that was not recognised, plus unread vitals."""
        items = list(self.result.unrecognized)
        if self.inputs.vitals_not_checked:
            items.append(self.inputs.vitals_not_checked)
        return tuple(items)

    @property
    def undecided(self) -> tuple[FlagView, ...]:
        """Flags that need a decision and have none yet."""
        return tuple(f for f in self.flags if f.needs_decision and f.decision is None)


@dataclass(frozen=True)
class SnapshotSource:
    title: str
    section: str
    link: str | None


@dataclass(frozen=True)
class SnapshotFlag:
    """A flag exactly as it was signed (from the stored snapshot, not re-run)."""

    rule_id: str
    severity: str
    kind: str
    drug: str | None
    drug_class: str
    title: str
    effect: str
    management: str
    entered_as: str
    carry_forward_key: str
    sources: tuple[SnapshotSource, ...]
    decision: DecisionView | None


@dataclass(frozen=True)
class SignedReview:
    """The latest signed review as stored: what was checked, found, decided and by whom.

    ``not_checked`` lists medication lines and conditions not recognised, and unread vitals.
    ``vitals`` is None when no vitals were used (see ``vitals_not_checked``).
    """

    review_id: int
    patient_id: int
    signed_at: datetime
    signed_by: str
    signed_by_full_name: str
    kb_version: str
    fingerprint: str
    medication_lines: tuple[MedicationLineView, ...]
    conditions: tuple[ConditionLineView, ...]
    vitals: VitalsUsed | None
    vitals_not_checked: str | None
    pregnant: bool
    flags: tuple[SnapshotFlag, ...]
    not_checked: tuple[str, ...]
    benzodiazepine_load: str | None
    decisions: tuple[DecisionView, ...]


# --------------------------------------------------------------------------- inputs


def medication_line(entered_text: str, dose_text: str | None, frequency_text: str | None) -> str:
    """The line to check: what was typed, plus structured dose/frequency not already in it."""
    parts = [" ".join(entered_text.split())]
    for extra in (dose_text, frequency_text):
        cleaned = " ".join((extra or "").split())
        if cleaned and cleaned.casefold() not in parts[0].casefold():
            parts.append(cleaned)
    return " ".join(p for p in parts if p)


def _condition_line(entered_text: str, icd10: str | None) -> str:
    text = " ".join(entered_text.split())
    code = (icd10 or "").strip()
    if code and code.casefold() not in text.casefold():
        return f"{text} ({code})"
    return text


def _vitals_from_row(
    row: VitalSign | None,
) -> tuple[VitalsUsed | None, Vitals | None, str | None]:
    if row is None:
        return None, None, None
    used = VitalsUsed(row.measured_at, row.systolic, row.diastolic, row.heart_rate, row.weight_kg)
    try:
        vitals = Vitals(row.systolic, row.diastolic, row.heart_rate, row.weight_kg)
    except UserFacingError as error:
        return used, None, f"Latest vitals ({used.summary()}) not checked: {error.message}"
    return used, vitals, None


def current_inputs(session: Session, patient_id: int) -> ReviewInputs:
    """The patient's active medication lines as typed, active conditions, latest vitals and
    pregnant flag. Implausible stored vitals are not used; the reason is in
    ``vitals_not_checked``."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is no longer in the practice database.")
    meds = session.execute(
        select(PatientMedication.entered_text, PatientMedication.dose_text,
               PatientMedication.frequency_text)
        .where(PatientMedication.patient_id == patient_id, PatientMedication.is_active)
        .order_by(PatientMedication.id)
    ).all()
    conditions = session.execute(
        select(PatientCondition.entered_text, PatientCondition.icd10)
        .where(PatientCondition.patient_id == patient_id, PatientCondition.is_active)
        .order_by(PatientCondition.id)
    ).all()
    latest = session.execute(
        select(VitalSign)
        .where(VitalSign.patient_id == patient_id)
        .order_by(VitalSign.measured_at.desc(), VitalSign.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    used, vitals, not_checked = _vitals_from_row(latest)
    return ReviewInputs(
        patient_id=patient_id,
        medication_lines=tuple(
            line for m in meds if (line := medication_line(m[0], m[1], m[2]))
        ),
        conditions=tuple(line for c in conditions if (line := _condition_line(c[0], c[1]))),
        latest_vitals=used,
        vitals=vitals,
        vitals_not_checked=not_checked,
        pregnant=bool(patient.pregnant),
    )


def inputs_fingerprint(inputs: ReviewInputs, kb_version: str) -> str:
    """SHA-256 (hex) of the review inputs and knowledge-base version.

    Vitals that could not be used still count: a corrected reading makes the review stale.
    """
    base = review_fingerprint(
        inputs.medication_lines, inputs.conditions, inputs.vitals, inputs.pregnant, kb_version
    )
    if inputs.vitals is None and inputs.latest_vitals is not None:
        raw = _vitals_key(inputs.latest_vitals)
        return hashlib.sha256(f"{base}|vitals not checked|{raw}".encode()).hexdigest()
    return base


def _vitals_key(used: VitalsUsed | None) -> str:
    if used is None:
        return "none"
    return json.dumps([used.systolic, used.diastolic, used.heart_rate, used.weight_kg])


# --------------------------------------------------------------------------- status


def _latest_signed_row(session: Session, patient_id: int) -> InteractionReview | None:
    return session.execute(
        select(InteractionReview)
        .where(InteractionReview.patient_id == patient_id, InteractionReview.status == "signed")
        .order_by(InteractionReview.signed_at.desc(), InteractionReview.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def review_status(
    session: Session, patient_id: int, kb: KnowledgeBase | None = None
) -> ReviewStatus:
    """``"none"`` without a signed review; ``"current"`` while the chart's inputs and the
    knowledge-base version match the latest signed review; otherwise ``"stale"`` with a
    reason in words."""
    kb = kb or load_knowledge_base()
    row = _latest_signed_row(session, patient_id)
    if row is None:
        return ReviewStatus("none", None, None, None, None)
    inputs = current_inputs(session, patient_id)
    if inputs_fingerprint(inputs, kb.version) == row.fingerprint:
        return ReviewStatus(
            "current", row.id, row.signed_at, row.signed_by, None, row.signed_by_full_name
        )
    snapshot = _load_snapshot(row.snapshot_json)
    return ReviewStatus(
        "stale",
        row.id,
        row.signed_at,
        row.signed_by,
        _stale_reason(snapshot, inputs, kb.version),
        row.signed_by_full_name,
        _changed_since(session, patient_id, row.signed_at),
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
    if stored_key != _vitals_key(inputs.latest_vitals):
        reasons.append("new vital signs were recorded")
    if bool(snapshot.get("pregnant")) != inputs.pregnant:
        reasons.append("the pregnancy status changed")
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
        with_review = list(signed)
        meds: dict[int, list[str]] = {pid: [] for pid in with_review}
        for pid, text, dose, frequency in session.execute(
            select(PatientMedication.patient_id, PatientMedication.entered_text,
                   PatientMedication.dose_text, PatientMedication.frequency_text)
            .where(PatientMedication.patient_id.in_(with_review), PatientMedication.is_active)
            .order_by(PatientMedication.id)
        ):
            meds[pid].append(medication_line(text, dose, frequency))
        conditions: dict[int, list[str]] = {pid: [] for pid in with_review}
        for pid, text, icd10 in session.execute(
            select(PatientCondition.patient_id, PatientCondition.entered_text,
                   PatientCondition.icd10)
            .where(PatientCondition.patient_id.in_(with_review), PatientCondition.is_active)
            .order_by(PatientCondition.id)
        ):
            conditions[pid].append(_condition_line(text, icd10))
        latest: dict[int, VitalSign] = {}
        for vital in session.execute(
            select(VitalSign)
            .where(VitalSign.patient_id.in_(with_review))
            .order_by(VitalSign.measured_at, VitalSign.id)
        ).scalars():
            latest[vital.patient_id] = vital
        pregnant = {
            pid: bool(flag)
            for pid, flag in session.execute(
                select(Patient.id, Patient.pregnant).where(Patient.id.in_(with_review))
            )
        }
        for pid in with_review:
            used, vitals, not_checked = _vitals_from_row(latest.get(pid))
            inputs = ReviewInputs(
                pid,
                tuple(line for line in meds[pid] if line),
                tuple(line for line in conditions[pid] if line),
                used,
                vitals,
                not_checked,
                bool(pregnant.get(pid, False)),
            )
            current = inputs_fingerprint(inputs, kb.version) == signed[pid]
            states[pid] = "current" if current else "stale"
    return states


# --------------------------------------------------------------------------- running


def _decision_view(row: ReviewDecision) -> DecisionView:
    return DecisionView(
        carry_forward_key=row.carry_forward_key,
        rule_id=row.rule_id,
        severity=row.severity,
        decision=row.decision,
        note=row.note,
        override_reason=row.override_reason,
        decided_by=row.decided_by,
        decided_by_full_name=row.decided_by_full_name,
        decided_at=row.decided_at,
        carried_from_review_id=row.carried_from_review_id,
        review_id=row.review_id,
    )


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
        inputs.medication_lines, inputs.conditions, inputs.vitals, inputs.pregnant, kb
    )
    previous = _latest_signed_row(session, patient_id)
    carried: dict[str, DecisionView] = {}
    if previous is not None:
        carried = {d.carry_forward_key: _decision_view(d) for d in previous.decisions}
    draft = _draft_row(session, patient_id)
    pending: dict[str, DecisionView] = {}
    if draft is not None:
        pending = {d.carry_forward_key: _decision_view(d) for d in draft.decisions}
    flags = []
    for flag in result.flags:
        old = carried.get(flag.carry_forward_key)
        if old is not None and old.severity != flag.severity:
            old = None  # a decision made at another severity does not carry forward
        new = pending.get(flag.carry_forward_key)
        if new is not None and new.severity != flag.severity:
            new = None
        flags.append(FlagView(flag, needs_decision(flag.severity), old, new))
    fingerprint = inputs_fingerprint(inputs, kb.version)
    if previous is None:
        status = ReviewStatus("none", None, None, None, None)
    elif previous.fingerprint == fingerprint:
        status = ReviewStatus("current", previous.id, previous.signed_at, previous.signed_by,
                              None, previous.signed_by_full_name)
    else:
        status = ReviewStatus(
            "stale", previous.id, previous.signed_at, previous.signed_by,
            _stale_reason(_load_snapshot(previous.snapshot_json), inputs, kb.version),
            previous.signed_by_full_name,
            _changed_since(session, patient_id, previous.signed_at),
        )
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
        status=status,
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
    )


def _condition_line_view(reading: ConditionReading) -> ConditionLineView:
    return ConditionLineView(reading.entered_as, reading.name)


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
    return DecisionInput(choice.carry_forward_key, choice.decision, note, reason)


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
    return _decision_view(row)


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
    return f"review {review_id}; {flag.rule_id} ({flag.severity}): {choice.decision}{override}"


def _write_decision(
    session: Session,
    review: InteractionReview,
    flag: Flag,
    choice: DecisionInput,
    actor: Actor,
    at: datetime,
) -> ReviewDecision:
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
    row.override_reason = choice.override_reason
    row.decided_by = actor.user_name
    row.decided_by_full_name = actor.full_name
    row.decided_at = at
    row.carried_from_review_id = None
    session.flush()
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
) -> SignedReview:
    """Sign the patient's interaction review as it stands now.

    ``decisions`` override those recorded on the draft or carried forward. Every flag of
    moderate severity or above needs a decision; contraindicated ones an override reason
    (unless ketamine is held). With ``expected_fingerprint`` (from :func:`run_review`), a
    chart that changed since the screen was opened is refused.
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
    review.snapshot_json = json.dumps(_snapshot(view), sort_keys=True)
    review.signed_by = actor.user_name
    review.signed_by_full_name = actor.full_name
    review.signed_at = now
    session.flush()
    record_event(
        session, actor, audit_actions.INTERACTION_REVIEW_SIGNED, patient_id=patient_id,
        detail=(
            f"review {review.id}; kb {view.result.kb_version}; {len(view.flags)} flags; "
            f"{len(plan)} decisions; {overrides} contraindication overrides; "
            f"{len(view.not_checked)} not checked"
        ),
    )
    signed = latest_signed_review(session, patient_id)
    assert signed is not None
    return signed


def _same(old: DecisionView | None, new: DecisionInput) -> bool:
    return old is not None and (old.decision, old.note, old.override_reason) == (
        new.decision, new.note, new.override_reason
    )


def _copy_carried(review: InteractionReview, flag: Flag, old: DecisionView) -> None:
    row = next(
        (d for d in review.decisions if d.carry_forward_key == flag.carry_forward_key), None
    )
    if row is None:
        row = ReviewDecision(carry_forward_key=flag.carry_forward_key)
        review.decisions.append(row)
    row.rule_id = flag.rule_id
    row.severity = flag.severity
    row.decision = old.decision
    row.note = old.note
    row.override_reason = old.override_reason
    row.decided_by = old.decided_by
    row.decided_by_full_name = old.decided_by_full_name
    row.decided_at = old.decided_at
    # Point at the review where the decision was first made, so the chain stays short.
    row.carried_from_review_id = old.carried_from_review_id or old.review_id


def _snapshot(view: ReviewDraftView) -> dict[str, Any]:
    inputs = view.inputs
    used = inputs.latest_vitals
    load = view.result.benzodiazepine_load
    return {
        "format": _SNAPSHOT_FORMAT,
        "kb_version": view.result.kb_version,
        "medication_lines": [
            {
                "entered_as": line.entered_as,
                "generics": list(line.generics),
                "matched_name": line.matched_name,
                "fuzzy": line.fuzzy,
                "unit_assumed": line.unit_assumed,
                "unit": line.unit,
            }
            for line in view.medication_lines
        ],
        "conditions": [
            {"entered_as": c.entered_as, "concept_name": c.concept_name}
            for c in view.condition_lines
        ],
        "vitals": None
        if used is None
        else {
            "measured_at": used.measured_at.isoformat(),
            "systolic": used.systolic,
            "diastolic": used.diastolic,
            "heart_rate": used.heart_rate,
            "weight_kg": used.weight_kg,
        },
        "vitals_used": inputs.vitals is not None,
        "vitals_not_checked": inputs.vitals_not_checked,
        "pregnant": inputs.pregnant,
        "flags": [
            {
                "rule_id": f.flag.rule_id,
                "severity": f.flag.severity,
                "kind": f.flag.kind,
                "drug": f.flag.drug,
                "class": f.flag.drug_class,
                "title": f.flag.title,
                "effect": f.flag.effect,
                "management": f.flag.management,
                "entered_as": f.flag.entered_as,
                "carry_forward_key": f.flag.carry_forward_key,
                "sources": [
                    {"title": s.title, "section": s.section, "link": s.link}
                    for s in f.flag.sources
                ],
            }
            for f in view.flags
        ],
        "unrecognized": list(view.result.unrecognized),
        "not_checked": list(view.not_checked),
        "benzodiazepine_load": None if load is None else load.summary(),
    }


def _load_snapshot(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    # Snapshot line entries are objects; the stale comparison wants the typed text.
    for key in ("medication_lines", "conditions"):
        data[key] = [
            item["entered_as"] if isinstance(item, dict) else str(item)
            for item in data.get(key, [])
        ]
    return data


def latest_signed_review(session: Session, patient_id: int) -> SignedReview | None:
    """The newest signed review as it was signed (snapshot), or None when there is none."""
    row = _latest_signed_row(session, patient_id)
    if row is None:
        return None
    assert row.signed_at is not None and row.signed_by is not None
    data = json.loads(row.snapshot_json or "{}")
    decisions = {d.carry_forward_key: _decision_view(d) for d in row.decisions}
    vitals = data.get("vitals")
    return SignedReview(
        review_id=row.id,
        patient_id=patient_id,
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        signed_by_full_name=row.signed_by_full_name or row.signed_by,
        kb_version=row.kb_version,
        fingerprint=row.fingerprint,
        medication_lines=tuple(
            MedicationLineView(
                entered_as=m["entered_as"],
                generics=tuple(m.get("generics", ())),
                matched_name=m.get("matched_name"),
                fuzzy=bool(m.get("fuzzy")),
                unit_assumed=bool(m.get("unit_assumed")),
                unit=m.get("unit"),
            )
            for m in data.get("medication_lines", [])
        ),
        conditions=tuple(
            ConditionLineView(c["entered_as"], c.get("concept_name"))
            for c in data.get("conditions", [])
        ),
        vitals=None
        if vitals is None or not data.get("vitals_used", True)
        else VitalsUsed(
            datetime.fromisoformat(vitals["measured_at"]),
            vitals.get("systolic"),
            vitals.get("diastolic"),
            vitals.get("heart_rate"),
            vitals.get("weight_kg"),
        ),
        vitals_not_checked=data.get("vitals_not_checked"),
        pregnant=bool(data.get("pregnant")),
        flags=tuple(
            SnapshotFlag(
                rule_id=f["rule_id"],
                severity=f["severity"],
                kind=f["kind"],
                drug=f.get("drug"),
                drug_class=f.get("class", ""),
                title=f["title"],
                effect=f.get("effect", ""),
                management=f.get("management", ""),
                entered_as=f.get("entered_as", ""),
                carry_forward_key=f["carry_forward_key"],
                sources=tuple(
                    SnapshotSource(s["title"], s.get("section", ""), s.get("link"))
                    for s in f.get("sources", [])
                ),
                decision=decisions.get(f["carry_forward_key"]),
            )
            for f in data.get("flags", [])
        ),
        not_checked=tuple(data.get("not_checked", [])),
        benzodiazepine_load=data.get("benzodiazepine_load"),
        decisions=tuple(decisions.values()),
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
