"""Prescribing compliance: prescribers' credentials, PDMP look-ups, informed-consent templates
and records, telemedicine records, prescriptions and their fills.

Users are referred to by user name (as elsewhere in the chart). A prescription is never
edited once issued: ``status`` goes from ``issued`` to ``void`` with a reason, and the signed
content (``content_hash``) excludes the void fields. No PDMP data is stored: a look-up holds
only who, when, which state's system and the result in the practice's own words, or the reason
it could not be done.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import (
    Base,
    RecordUidMixin,
    TimestampMixin,
    UTCDateTime,
    VersionedMixin,
)


class PrescriberCredential(TimestampMixin, Base):
    """A physician's state medical licence or DEA registration for one state."""

    __tablename__ = "prescriber_credentials"
    __table_args__ = (
        CheckConstraint("kind IN ('state_licence', 'dea_registration')", name="kind_known"),
        CheckConstraint("state IN ('FL', 'NJ')", name="state_served"),
        UniqueConstraint("user_name", "kind", "state", "number",
                         name="uq_prescriber_credentials_user_kind_state_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(2))
    number: Mapped[str] = mapped_column(String(32))
    expires_on: Mapped[date]
    recorded_by: Mapped[str] = mapped_column(String(64))


class PdmpCheck(RecordUidMixin, TimestampMixin, Base):
    """One consultation of a state's prescription drug monitoring programme (or the reason it
    could not be consulted). ``checked_by_role`` tells a physician from an admin designee."""

    __tablename__ = "pdmp_checks"
    __table_args__ = (
        CheckConstraint("state IN ('FL', 'NJ')", name="state_served"),
        CheckConstraint(
            "(result_text IS NULL) <> (not_checked_reason IS NULL)", name="result_or_reason"
        ),
        Index("ix_pdmp_checks_patient_checked", "patient_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(2))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_by: Mapped[str] = mapped_column(String(64))
    checked_by_role: Mapped[str] = mapped_column(String(16))
    result_text: Mapped[str | None] = mapped_column(Text)
    not_checked_reason: Mapped[str | None] = mapped_column(Text)


class ConsentTemplate(TimestampMixin, Base):
    """One version of the practice's informed-consent text (never edited: a change is a new
    version). ``paragraphs_json`` is a JSON list of paragraphs."""

    __tablename__ = "consent_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    paragraphs_json: Mapped[str] = mapped_column(Text)
    is_example: Mapped[bool] = mapped_column(default=False)
    example_notice: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(64))


class ConsentRecord(RecordUidMixin, TimestampMixin, Base):
    """A patient's signed consent: which template version, the day signed, paper or screen."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint("method IN ('paper', 'on_screen')", name="method_known"),
        Index("ix_consent_records_patient_signed", "patient_id", "signed_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("consent_templates.id"), index=True)
    signed_on: Mapped[date]
    method: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(64))

    template: Mapped[ConsentTemplate] = relationship()


class TelemedicineRecord(RecordUidMixin, TimestampMixin, Base):
    """What a remote prescription relies on: the in-person evaluation date, the DEA
    flexibilities (their end date lives in the rules file), or a registration or exception
    with its own end date."""

    __tablename__ = "telemedicine_records"
    __table_args__ = (
        CheckConstraint(
            "basis IN ('in_person_evaluation', 'dea_flexibilities', "
            "'registration_or_exception')",
            name="basis_known",
        ),
        CheckConstraint(
            "basis <> 'in_person_evaluation' OR in_person_evaluation_on IS NOT NULL",
            name="evaluation_has_date",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    basis: Mapped[str] = mapped_column(String(32))
    in_person_evaluation_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    description: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))


class Prescription(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """A ketamine prescription issued from a signed protocol version. Amounts: strength in mg
    per unit, quantity in units. ``checklist_json`` keeps the checklist as it was at issue."""

    __tablename__ = "prescriptions"
    __table_args__ = (
        CheckConstraint("status IN ('issued', 'void')", name="status_known"),
        CheckConstraint("status = 'issued' OR void_reason IS NOT NULL", name="void_has_reason"),
        CheckConstraint("refills >= 0", name="refills_not_negative"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_prescriptions_patient_issued", "patient_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    product: Mapped[str] = mapped_column(String(300))
    strength_mg_per_unit: Mapped[float]
    unit_name: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[float]
    directions: Mapped[str] = mapped_column(Text)
    refills: Mapped[int]
    pharmacy: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_on: Mapped[date]
    prescriber: Mapped[str] = mapped_column(String(64))
    prescriber_full_name: Mapped[str] = mapped_column(String(200))
    prescriber_dea_number: Mapped[str] = mapped_column(String(16), default="")
    prescriber_licence_number: Mapped[str] = mapped_column(String(32), default="")
    remote: Mapped[bool] = mapped_column(default=False)
    checklist_json: Mapped[str] = mapped_column(Text, default="[]")
    acknowledged_warnings_json: Mapped[str] = mapped_column(Text, default="[]")
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="issued")
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_by: Mapped[str | None] = mapped_column(String(64))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    fills: Mapped[list[PrescriptionFill]] = relationship(
        back_populates="prescription", cascade="all, delete-orphan",
        order_by="PrescriptionFill.fill_number",
    )


class PrescriptionFill(RecordUidMixin, TimestampMixin, Base):
    """One dispensing of a prescription: fill 0 is the first fill, 1, 2 ... are refills."""

    __tablename__ = "prescription_fills"
    __table_args__ = (
        UniqueConstraint("prescription_id", "fill_number",
                         name="uq_prescription_fills_prescription_number"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[int] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    fill_number: Mapped[int]
    filled_on: Mapped[date]
    quantity: Mapped[float]
    pharmacy: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))

    prescription: Mapped[Prescription] = relationship(back_populates="fills")
