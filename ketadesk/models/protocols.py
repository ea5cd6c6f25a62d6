"""Protocols on a patient's chart: the protocol, its numbered versions, and practice templates.

A ``PatientProtocol`` is one course of treatment (active until discontinued with a reason). Each
edit is a ``ProtocolVersion``: a draft can be changed, a signed version never is (editing a
signed protocol starts a new draft). The protocol itself is stored as the JSON of
``ketadesk.core.protocol_serialization.protocol_to_dict`` with its SHA-256 content hash.

Practice limits are stored as one ``PracticeSetting`` row (key ``practice_limits``); no table
of their own is needed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import Base, RecordUidMixin, TimestampMixin, UTCDateTime, VersionedMixin


class PatientProtocol(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """One course of treatment for a patient; at most one is active at a time."""

    __tablename__ = "patient_protocols"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'discontinued')", name="status_known"),
        CheckConstraint(
            "status = 'active' OR discontinued_reason IS NOT NULL", name="discontinued_has_reason"
        ),
        Index("ix_patient_protocols_patient_status", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(64))
    discontinued_reason: Mapped[str | None] = mapped_column(Text)
    discontinued_by: Mapped[str | None] = mapped_column(String(64))
    discontinued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    versions: Mapped[list[ProtocolVersion]] = relationship(
        back_populates="protocol", cascade="all, delete-orphan", order_by="ProtocolVersion.number"
    )


class ProtocolVersion(RecordUidMixin, VersionedMixin, TimestampMixin, Base):
    """One numbered version of a protocol. Doses live in ``protocol_json`` (mg); the weight
    (kg) and its date are the chart weight mg/kg was computed from when it was saved."""

    __tablename__ = "protocol_versions"
    __table_args__ = (
        UniqueConstraint("protocol_id", "number", name="uq_protocol_versions_protocol_number"),
        CheckConstraint("status IN ('draft', 'signed')", name="status_known"),
        CheckConstraint(
            "status = 'draft' OR (signed_by IS NOT NULL AND signed_at IS NOT NULL)",
            name="signed_has_signer",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(
        ForeignKey("patient_protocols.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="draft")
    protocol_json: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    template_name: Mapped[str] = mapped_column(String(200), default="")
    start_date: Mapped[date]
    weight_kg: Mapped[float | None]
    weight_measured_on: Mapped[date | None]
    created_by: Mapped[str] = mapped_column(String(64))
    signed_by: Mapped[str | None] = mapped_column(String(64))
    signed_by_full_name: Mapped[str | None] = mapped_column(String(200))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The interaction review this version was signed over (a plain id: reviews are another
    # feature's table).
    interaction_review_id: Mapped[int | None]
    # JSON list of the warning codes the signer acknowledged.
    acknowledged_warnings_json: Mapped[str] = mapped_column(Text, default="[]")

    protocol: Mapped[PatientProtocol] = relationship(back_populates="versions")


class PracticeTemplate(TimestampMixin, Base):
    """A practice-defined protocol template: the JSON of one entry of a template file."""

    __tablename__ = "practice_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(String(200), unique=True)
    template_json: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
