"""Home visits offline: leases of patients checked out to a visit pack, the conflicts a
returned pack left for a physician, and (inside a pack) the versions its records started from.

A visit pack is a KetaDesk database of its own holding a few patients. The practice keeps a
``VisitLease`` per pack (who took which patients, until when, and what became of it); the pack
keeps a ``VisitPackBase`` row per record it carried, with the version the record had at
check-out, so at return an edit made on the laptop is applied only when the practice's copy
is still at that version, and goes to the ``VisitConflict`` queue when both sides changed it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketadesk.models.base import Base, UTCDateTime, utc_now

LEASE_STATUSES = ("out", "returned", "revoked", "expired")
CONFLICT_STATUSES = ("open", "resolved")


class VisitLease(Base):
    """One visit pack checked out of this practice."""

    __tablename__ = "visit_leases"
    __table_args__ = (
        CheckConstraint(
            "status IN ('out', 'returned', 'revoked', 'expired')", name="status_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(32), unique=True)
    checked_out_by: Mapped[str] = mapped_column(String(64))
    checked_out_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="out")
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    returned_by: Mapped[str | None] = mapped_column(String(64))
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The newest of the pack's own audit events already appended to the practice's trail.
    audit_seq_returned: Mapped[int] = mapped_column(default=0)

    patients: Mapped[list[VisitLeasePatient]] = relationship(
        back_populates="lease", cascade="all, delete-orphan", order_by="VisitLeasePatient.id"
    )


class VisitLeasePatient(Base):
    """One patient in a visit pack."""

    __tablename__ = "visit_lease_patients"
    __table_args__ = (
        UniqueConstraint("lease_id", "patient_id", name="uq_visit_lease_patients_lease_patient"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("visit_leases.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )

    lease: Mapped[VisitLease] = relationship(back_populates="patients")


class VisitConflict(Base):
    """A record changed both at the office and on the laptop, waiting for a physician.

    ``office_json`` / ``visit_json`` hold the record's fields on each side when the pack came
    back (clinical content: never copied into the audit trail).
    """

    __tablename__ = "visit_conflicts"
    __table_args__ = (
        UniqueConstraint("pack_id", "record_uid", name="uq_visit_conflicts_pack_record"),
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        Index("ix_visit_conflicts_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(32))
    table_name: Mapped[str] = mapped_column(String(64))
    record_uid: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[int | None] = mapped_column(index=True)
    # Why it waits: "both_changed", "both_signed" (two new protocol versions of one number),
    # "revoked" (the pack's lease was revoked: everything it brings waits).
    reason: Mapped[str] = mapped_column(String(32))
    base_version: Mapped[int | None]
    office_version: Mapped[int | None]
    office_json: Mapped[str] = mapped_column(Text, default="{}")
    visit_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class VisitPackBase(Base):
    """Inside a visit pack: the version one carried record had when it was checked out."""

    __tablename__ = "visit_pack_base"

    record_uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]


class VisitSyncedRecord(Base):
    """At the practice: the last point a returned pack and the practice agreed on a record
    (so returning the same pack again applies nothing twice and loses no office change)."""

    __tablename__ = "visit_synced_records"

    pack_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    visit_version: Mapped[int]
    office_version: Mapped[int]
