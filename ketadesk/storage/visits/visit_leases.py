"""Leases of patients checked out to visit packs: the practice's record of which patients are
on a visit laptop, since when, by whom and until when; revoking a lost laptop's lease."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.models.visits import VisitLease, VisitLeasePatient
from ketadesk.storage.security.audit_log import record_event

# Leases whose patients are still "on a visit laptop".
OUTSTANDING = ("out", "revoked")


@dataclass(frozen=True)
class LeaseInfo:
    pack_id: str
    checked_out_by: str
    checked_out_at: datetime
    expires_at: datetime
    status: str
    patient_ids: tuple[int, ...]
    revoked_by: str | None
    returned_at: datetime | None

    def status_at(self, now: datetime) -> str:
        """``out`` becomes ``expired`` once the lease has ended."""
        if self.status == "out" and now > self.expires_at:
            return "expired"
        return self.status

    def to_json(self, now: datetime) -> dict[str, object]:
        return {
            "pack_id": self.pack_id,
            "checked_out_by": self.checked_out_by,
            "checked_out_at": self.checked_out_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "status": self.status_at(now),
            "patients": len(self.patient_ids),
            "revoked_by": self.revoked_by,
            "returned_at": None if self.returned_at is None else self.returned_at.isoformat(),
        }


@dataclass(frozen=True)
class VisitMarker:
    """What the roster and chart show: "on a visit laptop since … by …"."""

    pack_id: str
    checked_out_by: str
    since: datetime
    until: datetime
    is_revoked: bool

    def words(self) -> str:
        since = self.since.astimezone().strftime("%Y-%m-%d %H:%M")
        text = f"on a visit laptop since {since} by {self.checked_out_by}"
        return text + (" (lease revoked)" if self.is_revoked else "")


def lease_info(row: VisitLease) -> LeaseInfo:
    return LeaseInfo(
        pack_id=row.pack_id,
        checked_out_by=row.checked_out_by,
        checked_out_at=row.checked_out_at,
        expires_at=row.expires_at,
        status=row.status,
        patient_ids=tuple(p.patient_id for p in row.patients),
        revoked_by=row.revoked_by,
        returned_at=row.returned_at,
    )


def lease_row(session: Session, pack_id: str) -> VisitLease | None:
    return session.execute(
        select(VisitLease).where(VisitLease.pack_id == pack_id.strip().lower())
    ).scalar_one_or_none()


def list_leases(session: Session) -> tuple[LeaseInfo, ...]:
    """Every lease, newest first."""
    rows = session.execute(
        select(VisitLease)
        .options(selectinload(VisitLease.patients))
        .order_by(VisitLease.checked_out_at.desc(), VisitLease.id.desc())
    ).scalars()
    return tuple(lease_info(row) for row in rows)


def patients_on_visit(
    session: Session, patient_ids: Iterable[int] | None = None
) -> dict[int, VisitMarker]:
    """Patients on an outstanding lease (out, or revoked and not back), by patient id; the
    roster asks for the page it shows, the chart for one patient."""
    query = (
        select(VisitLeasePatient.patient_id, VisitLease)
        .join(VisitLease, VisitLease.id == VisitLeasePatient.lease_id)
        .where(VisitLease.status.in_(OUTSTANDING))
        .order_by(VisitLease.checked_out_at)
    )
    if patient_ids is not None:
        query = query.where(VisitLeasePatient.patient_id.in_(list(patient_ids)))
    found: dict[int, VisitMarker] = {}
    for patient_id, lease in session.execute(query):
        found[patient_id] = VisitMarker(
            lease.pack_id,
            lease.checked_out_by,
            lease.checked_out_at,
            lease.expires_at,
            lease.status == "revoked",
        )
    return found


def revoke_lease(
    session: Session, actor: Actor, pack_id: str, *, now: datetime | None = None
) -> LeaseInfo:
    """Mark a pack's lease revoked (a lost or stolen laptop): its return is then held for a
    physician's review instead of applied. Physicians and users who manage users; audited."""
    if actor.role != Role.PHYSICIAN and not actor.can_manage_users:
        raise UserFacingError(
            "Only a physician or a user who manages users can revoke a visit pack."
        )
    row = lease_row(session, pack_id)
    if row is None:
        raise UserFacingError(
            f"No visit pack {pack_id.strip()[:40]!r} was checked out of this practice "
            "(see 'visit leases' for the pack ids)."
        )
    if row.status == "returned":
        raise UserFacingError("That visit pack was already returned; there is nothing to revoke.")
    if row.status != "revoked":
        row.status = "revoked"
        row.revoked_by = actor.user_name
        row.revoked_at = now or datetime.now(UTC)
        record_event(
            session, actor, audit_actions.VISIT_PACK_REVOKED, detail=f"visit pack {row.pack_id}"
        )
    session.flush()
    return lease_info(row)
