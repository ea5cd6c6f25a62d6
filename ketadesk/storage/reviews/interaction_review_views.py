"""Frozen views of an interaction review: decisions, flags, read-as lines, status and draft.

The review services (``storage/interaction_reviews``) return these; nothing here holds a live
ORM row. :func:`decision_view` is the one place a stored decision row becomes a view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ketadesk.core.interaction_check import Flag, InteractionResult
from ketadesk.models.interaction_reviews import DECISIONS, ReviewDecision
from ketadesk.storage.reviews.interaction_review_inputs import ReviewInputs

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
    note_for_patient: bool = False

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS.get(self.decision, self.decision)

    @property
    def acknowledgement(self) -> str:
        """E.g. ``"acknowledged on 2026-11-25 by Dr. Rowan Quill"``."""
        who = self.decided_by_full_name or self.decided_by
        return f"acknowledged on {self.decided_at.date().isoformat()} by {who}"


def decision_view(row: ReviewDecision) -> DecisionView:
    """The frozen view of a stored decision row."""
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
        note_for_patient=bool(row.note_for_patient),
    )


@dataclass(frozen=True)
class DecisionInput:
    """What the physician chose for one flag, identified by its ``carry_forward_key``."""

    carry_forward_key: str
    decision: str
    note: str = ""
    override_reason: str = ""
    # Print ``note`` on the patient's plan (unmarked notes stay in the review, never printed).
    note_for_patient: bool = False


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
    route: str = "systemic"
    route_word: str | None = None

    @property
    def is_checked(self) -> bool:
        return bool(self.generics)

    @property
    def is_local(self) -> bool:
        """True for a product that acts where it is applied (cream, eye drops, shampoo ...)."""
        return self.route == "local"

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
        if self.is_local:
            form = f"{self.route_word}: " if self.route_word else ""
            text += f" ({form}acts locally, no systemic interaction)"
        return text


#: Joins a partly read condition line and the part of it that was not checked.
UNREAD_PART_MARK = " — part not checked: "


@dataclass(frozen=True)
class ConditionLineView:
    """One condition as typed and what it was read as.

    ``concept_name`` is the whole reading in words (None = not checked); ``read_as_text`` is
    the reader's own sentence ("read as: no suicidal ideation (negated)", or "not checked: BPD
    is ambiguous (...)" so the physician sees why); ``unread`` lists the parts of a partly
    read line that named nothing known (those parts were not checked).
    """

    entered_as: str
    concept_name: str | None
    read_as_text: str = ""
    unread: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.read_as_text:
            text = "not checked" if self.concept_name is None else f"read as: {self.concept_name}"
            object.__setattr__(self, "read_as_text", text)

    @property
    def is_checked(self) -> bool:
        """True when at least one condition in the line was read."""
        return self.concept_name is not None

    @property
    def not_checked_parts(self) -> tuple[str, ...]:
        """What of this line the physician must read: the whole line when nothing was read,
        else each unread part."""
        if not self.is_checked:
            return (self.entered_as,)
        return tuple(f"{self.entered_as}{UNREAD_PART_MARK}{part}" for part in self.unread)


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
        """Every medication line and condition that was not recognised, each unread part of
        a partly read condition line, plus unread vitals."""
        items = list(self.result.unrecognized)
        for line in self.condition_lines:
            if line.is_checked:
                items.extend(line.not_checked_parts)
        if self.inputs.vitals_not_checked:
            items.append(self.inputs.vitals_not_checked)
        return tuple(items)

    @property
    def undecided(self) -> tuple[FlagView, ...]:
        """Flags that need a decision and have none yet."""
        return tuple(f for f in self.flags if f.needs_decision and f.decision is None)
