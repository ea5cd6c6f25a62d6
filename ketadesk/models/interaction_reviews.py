"""Interaction reviews: a physician's signed read of how a patient's chart interacts with ketamine.

A review is a ``draft`` while decisions are being recorded and ``signed`` once a physician signs
it. Signing stores a JSON snapshot of exactly what was checked (medication lines as typed,
conditions, the vitals used, the pregnant flag, the flags and what was "not checked") and a
fingerprint of those inputs plus the knowledge-base version; the review is stale as soon as
the fingerprint of the chart's current inputs differs. Signed reviews are never edited.

Each ``ReviewDecision`` is the physician's decision on one flag, keyed by the flag's
``carry_forward_key`` so it can carry forward to the next review while the same drug, dose
and conditions persist.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import Base, RecordUidMixin, TimestampMixin, UTCDateTime, VersionedMixin

REVIEW_STATUSES = ("draft", "signed")
DECISIONS = (
    "continue_with_monitoring",
    "adjust_protocol",
    "hold_ketamine",
    "ask_other_prescriber_to_change",
)


class InteractionReview(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """One interaction review of one patient; ``snapshot_json`` is filled when signed."""

    __tablename__ = "interaction_reviews"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'signed')", name="status_known"),
        CheckConstraint(
            "status = 'draft' OR (signed_by IS NOT NULL AND signed_at IS NOT NULL)",
            name="signed_has_signer",
        ),
        Index("ix_interaction_reviews_patient_status", "patient_id", "status", "signed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # SHA-256 (hex) of the inputs the review was run over, knowledge-base version included.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    kb_version: Mapped[str] = mapped_column(String(64), default="")
    snapshot_json: Mapped[str] = mapped_column(Text, default="{}")
    created_by: Mapped[str] = mapped_column(String(64))
    signed_by: Mapped[str | None] = mapped_column(String(64))
    signed_by_full_name: Mapped[str | None] = mapped_column(String(200))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    decisions: Mapped[list[ReviewDecision]] = relationship(
        back_populates="review", cascade="all, delete-orphan", order_by="ReviewDecision.id"
    )


class ReviewDecision(RecordUidMixin, VersionedMixin, Base):
    """A physician's decision on one flag of a review.

    A decision carried forward from an earlier review keeps its original ``decided_by`` and
    ``decided_at`` and names the review it came from in ``carried_from_review_id``.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (
        UniqueConstraint(
            "review_id", "carry_forward_key", name="uq_review_decisions_review_key"
        ),
        CheckConstraint(
            "decision IN ('continue_with_monitoring', 'adjust_protocol', 'hold_ketamine', "
            "'ask_other_prescriber_to_change')",
            name="decision_known",
        ),
        CheckConstraint(
            "severity IN ('contraindicated', 'major', 'moderate', 'minor')", name="severity_known"
        ),
        Index("ix_review_decisions_key", "carry_forward_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        ForeignKey("interaction_reviews.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[str] = mapped_column(String(100))
    carry_forward_key: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    # The physician marked the note "for the patient": only then is it printed on the plan.
    note_for_patient: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Required (non-empty) when the flag is contraindicated; enforced by the service.
    override_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_by_full_name: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    carried_from_review_id: Mapped[int | None]

    review: Mapped[InteractionReview] = relationship(back_populates="decisions")
