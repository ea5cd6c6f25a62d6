"""The roster's clinical state per patient, kept current by the writes that change it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ketadesk.models.base import Base


class PatientRosterStatus(Base):
    """What the roster's clinical columns show for one patient.

    A patient without a row shows the defaults: no signed review, no protocol, not monitored,
    no open alert. ``next_checkin_due`` is the chart's next check-in date; ``next_due`` the
    soonest of the check-in and the questionnaires (overdue when before today).
    """

    __tablename__ = "patient_roster_status"
    __table_args__ = (
        Index("ix_patient_roster_status_review", "review_state"),
        Index("ix_patient_roster_status_next_due", "next_due"),
        Index("ix_patient_roster_status_checkin", "next_checkin_due"),
        Index("ix_patient_roster_status_safety", "safety_alert"),
    )

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    review_state: Mapped[str] = mapped_column(String(8), default="none")
    protocol_state: Mapped[str] = mapped_column(String(12), default="none")
    next_checkin_due: Mapped[date | None]
    next_due: Mapped[date | None]
    safety_alert: Mapped[bool] = mapped_column(default=False)


class RosterStatusMeta(Base):
    """One row: the knowledge-base version the stored review states were worked out with."""

    __tablename__ = "roster_status_meta"

    id: Mapped[int] = mapped_column(primary_key=True)
    kb_version: Mapped[str] = mapped_column(String(64))
