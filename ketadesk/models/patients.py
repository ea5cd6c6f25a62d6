"""Patients and their chart: demographics, conditions, allergies, medications, vitals."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import Base, RecordUidMixin, TimestampMixin, UTCDateTime, VersionedMixin

PATIENT_STATUSES = ("screening", "active", "paused", "discharged")
STATUS_LABELS = {
    "screening": "Screening",
    "active": "Active",
    "paused": "Paused",
    "discharged": "Discharged",
}
MEDICATION_SOURCES = ("patient_reported", "verified")


class Patient(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint("state IN ('FL', 'NJ')", name="state_served"),
        CheckConstraint(
            "status IN ('screening', 'active', 'paused', 'discharged')", name="status_known"
        ),
        Index("ix_patients_last_first", "last_name_folded", "first_name_folded"),
        Index("ix_patients_dob", "dob"),
        Index("ix_patients_state_status", "state", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(16), unique=True)
    # Another system's record number from an imported roster, kept for reference only.
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # Case- and diacritic-folded copies for search and sort ("Zoë" is found by "zoe").
    first_name_folded: Mapped[str] = mapped_column(String(100), default="")
    last_name_folded: Mapped[str] = mapped_column(String(100), default="")
    dob: Mapped[date]
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    phone: Mapped[str | None] = mapped_column(String(32))
    phone_digits: Mapped[str] = mapped_column(String(16), default="", index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str | None] = mapped_column(String(10))
    county: Mapped[str | None] = mapped_column(String(64))
    emergency_contact_name: Mapped[str | None] = mapped_column(String(200))
    emergency_contact_phone: Mapped[str | None] = mapped_column(String(32))
    # Who the emergency contact is to the patient ("spouse", "parent", "friend" or as typed).
    emergency_contact_relationship: Mapped[str | None] = mapped_column(String(60))
    sitter_name: Mapped[str | None] = mapped_column(String(200))
    sitter_phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="screening")
    pregnant: Mapped[bool] = mapped_column(default=False)
    height_cm: Mapped[float | None]
    last_visit_on: Mapped[date | None]
    # Who last saved the details (user name): named when a save meets their change.
    updated_by: Mapped[str | None] = mapped_column(String(64))

    medications: Mapped[list[PatientMedication]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientMedication.id"
    )
    conditions: Mapped[list[PatientCondition]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientCondition.id"
    )
    allergies: Mapped[list[PatientAllergy]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientAllergy.id"
    )
    vitals: Mapped[list[VitalSign]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="VitalSign.measured_at"
    )
    status_changes: Mapped[list[PatientStatusChange]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientStatusChange.id"
    )


class PatientMedication(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """A current medication exactly as typed ("Ativan 1 mg at bedtime"), plus optional structure."""

    __tablename__ = "patient_medications"
    __table_args__ = (
        CheckConstraint("source IN ('patient_reported', 'verified')", name="source_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    entered_text: Mapped[str] = mapped_column(String(300))
    dose_text: Mapped[str | None] = mapped_column(String(100))
    frequency_text: Mapped[str | None] = mapped_column(String(100))
    start_date: Mapped[date | None]
    source: Mapped[str] = mapped_column(String(20), default="patient_reported")
    verified_by: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(default=True)
    entered_by: Mapped[str] = mapped_column(String(64), default="")
    # Who stopped the line, when, and why: a reason code (storage/patients/patient_medications
    # lists them) and an optional note in the user's words (never copied into the audit trail).
    stopped_by: Mapped[str | None] = mapped_column(String(64))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stop_reason: Mapped[str | None] = mapped_column(String(30))
    stop_note: Mapped[str | None] = mapped_column(String(300))

    patient: Mapped[Patient] = relationship(back_populates="medications")


class PatientCondition(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    __tablename__ = "patient_conditions"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    entered_text: Mapped[str] = mapped_column(String(300))
    icd10: Mapped[str | None] = mapped_column(String(16))
    # The knowledge-base concept of a condition picked from the problem list or typed as a code.
    concept_id: Mapped[str | None] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(default=True)
    entered_by: Mapped[str] = mapped_column(String(64), default="")

    patient: Mapped[Patient] = relationship(back_populates="conditions")


class PatientAllergy(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    __tablename__ = "patient_allergies"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    substance: Mapped[str] = mapped_column(String(200))
    reaction: Mapped[str | None] = mapped_column(String(300))

    patient: Mapped[Patient] = relationship(back_populates="allergies")


class VitalSign(RecordUidMixin, Base):
    """One set of vitals: blood pressure (mmHg), heart rate (beats/min), weight (kg)."""

    __tablename__ = "vital_signs"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    systolic: Mapped[int | None]
    diastolic: Mapped[int | None]
    heart_rate: Mapped[int | None]
    weight_kg: Mapped[float | None]
    entered_by: Mapped[str] = mapped_column(String(64))

    patient: Mapped[Patient] = relationship(back_populates="vitals")


class PatientStatusChange(RecordUidMixin, Base):
    __tablename__ = "patient_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    patient: Mapped[Patient] = relationship(back_populates="status_changes")
