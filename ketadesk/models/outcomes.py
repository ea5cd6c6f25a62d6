"""Outcomes: check-ins, PHQ-9/GAD-7 forms, item-9 acknowledgements and the home dose log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, column, or_, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import Base, RecordUidMixin, TimestampMixin, UTCDateTime, VersionedMixin


class CheckIn(RecordUidMixin, TimestampMixin, Base):
    """One contact with the patient: how it was done, side effects, adherence, notes."""

    __tablename__ = "checkins"
    __table_args__ = (
        CheckConstraint(
            "mode IN ('video', 'phone', 'home_visit', 'in_office')", name="mode_known"
        ),
        Index("ix_checkins_patient_date", "patient_id", "checked_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    checked_on: Mapped[date]
    mode: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(64))
    adherence: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    # The protocol version in force; a plain id until the protocol tables exist.
    protocol_version_id: Mapped[int | None]

    symptoms: Mapped[list[CheckInSymptom]] = relationship(
        back_populates="checkin", cascade="all, delete-orphan", order_by="CheckInSymptom.id"
    )


class CheckInSymptom(RecordUidMixin, Base):
    """One side effect asked about at a check-in, with its severity."""

    __tablename__ = "checkin_symptoms"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(
        ForeignKey("checkins.id", ondelete="CASCADE"), index=True
    )
    symptom: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")

    checkin: Mapped[CheckIn] = relationship(back_populates="symptoms")


class QuestionnaireResponse(RecordUidMixin, TimestampMixin, Base):
    """A PHQ-9 or GAD-7 form. ``answers_json`` is a JSON list (``null`` = left blank).

    ``total`` and ``band`` are NULL for an incomplete form; ``safety_alert`` is true when
    PHQ-9 item 9 was answered above 0, whether or not the form is complete.
    """

    __tablename__ = "questionnaire_responses"
    __table_args__ = (
        # An expression, not text: SQLite renders ``complete = 1``, PostgreSQL ``complete = true``.
        CheckConstraint(
            or_(column("complete") == true(), column("total").is_(None)),
            name="incomplete_has_no_total",
        ),
        Index("ix_questionnaire_responses_patient_instr", "patient_id", "instrument", "taken_on"),
        Index("ix_questionnaire_responses_alert", "safety_alert"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(16))
    taken_on: Mapped[date]
    answers_json: Mapped[str] = mapped_column(Text)
    complete: Mapped[bool]
    total: Mapped[int | None]
    band: Mapped[str | None] = mapped_column(String(64))
    safety_alert: Mapped[bool] = mapped_column(default=False)
    entered_by: Mapped[str] = mapped_column(String(64))

    acknowledgement: Mapped[SafetyAlertAck | None] = relationship(
        back_populates="response", cascade="all, delete-orphan", uselist=False
    )


class SafetyAlertAck(RecordUidMixin, Base):
    """A physician's acknowledgement of an item-9 alert (who, when, short note)."""

    __tablename__ = "safety_alert_acks"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("questionnaire_responses.id", ondelete="CASCADE"), unique=True
    )
    acknowledged_by: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")

    response: Mapped[QuestionnaireResponse] = relationship(back_populates="acknowledgement")


class DoseLogRecord(RecordUidMixin, TimestampMixin, Base):
    """One home session as reported by the patient: dose (mg), BP (mmHg), HR (beats/min)."""

    __tablename__ = "dose_log"
    __table_args__ = (
        CheckConstraint("dose_mg > 0", name="dose_positive"),
        Index("ix_dose_log_patient_taken", "patient_id", "taken_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dose_mg: Mapped[float]
    bp_before_systolic: Mapped[int | None]
    bp_before_diastolic: Mapped[int | None]
    bp_after_systolic: Mapped[int | None]
    bp_after_diastolic: Mapped[int | None]
    hr_before: Mapped[int | None]
    hr_after: Mapped[int | None]
    sitter_present: Mapped[bool | None]
    effects: Mapped[str] = mapped_column(Text, default="")
    entered_by: Mapped[str] = mapped_column(String(64))


class DoseBreachAlert(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """A home dose that broke a safety rule of the protocol (BP above the hold limit, dose
    above the maximum, doses too close together), open until a physician acknowledges it.

    ``kinds`` holds the breach codes (``core.dose_log.DoseFlagKind`` values, comma-separated),
    never free text. The acknowledgement (who, when, a required note of what was done) lives
    on the same row.
    """

    __tablename__ = "dose_breach_alerts"
    __table_args__ = (Index("ix_dose_breach_alerts_open", "patient_id", "acknowledged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    dose_log_id: Mapped[int] = mapped_column(
        ForeignKey("dose_log.id", ondelete="CASCADE"), unique=True
    )
    kinds: Mapped[str] = mapped_column(String(128))
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)

    dose: Mapped[DoseLogRecord] = relationship()
