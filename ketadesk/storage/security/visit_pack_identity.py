"""What makes a database a visit pack: its identity and lease, stored in ``practice_meta``.

A visit pack is a KetaDesk database of its own (see ``storage/visits``). It opens with the
normal app and commands; the lease written here lets the opening code refuse a pack whose
lease ended (plus a grace period) unless it is being returned, and lets commands that need
the whole practice refuse to run on a pack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.models.practice import PracticeMeta

VISIT_PACK_META = "visit_pack"


@dataclass(frozen=True)
class VisitPackIdentity:
    """A pack's identity: which practice it came from, who took it, until when (UTC)."""

    pack_id: str
    practice_database_id: str
    checked_out_by: str
    checked_out_by_full_name: str
    checked_out_at: datetime
    expires_at: datetime
    grace_days: int
    patient_count: int
    kb_version: str

    @property
    def closes_at(self) -> datetime:
        """After this the pack no longer opens, except to be returned."""
        return self.expires_at + timedelta(days=self.grace_days)

    def describe(self) -> str:
        """The bar's words: "visit pack: 3 patients, checked out by Dr. X until 2026-03-04"."""
        noun = "patient" if self.patient_count == 1 else "patients"
        until = self.expires_at.astimezone().strftime("%Y-%m-%d %H:%M")
        return (
            f"visit pack: {self.patient_count} {noun}, checked out by "
            f"{self.checked_out_by_full_name or self.checked_out_by} until {until}"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "pack_id": self.pack_id,
                "practice_database_id": self.practice_database_id,
                "checked_out_by": self.checked_out_by,
                "checked_out_by_full_name": self.checked_out_by_full_name,
                "checked_out_at": self.checked_out_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "grace_days": self.grace_days,
                "patient_count": self.patient_count,
                "kb_version": self.kb_version,
            },
            sort_keys=True,
        )


def visit_pack_identity(session: Session) -> VisitPackIdentity | None:
    """The pack's identity, or None for a practice database."""
    row = session.get(PracticeMeta, VISIT_PACK_META)
    if row is None:
        return None
    data = json.loads(row.value)
    return VisitPackIdentity(
        pack_id=str(data["pack_id"]),
        practice_database_id=str(data["practice_database_id"]),
        checked_out_by=str(data["checked_out_by"]),
        checked_out_by_full_name=str(data.get("checked_out_by_full_name", "")),
        checked_out_at=datetime.fromisoformat(data["checked_out_at"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        grace_days=int(data["grace_days"]),
        patient_count=int(data["patient_count"]),
        kb_version=str(data["kb_version"]),
    )


def write_visit_pack_identity(session: Session, identity: VisitPackIdentity) -> None:
    session.merge(PracticeMeta(key=VISIT_PACK_META, value=identity.to_json()))


def refuse_closed_pack(identity: VisitPackIdentity | None, now: datetime) -> None:
    """Raise when the pack's lease and grace period are over (it may still be returned)."""
    if identity is None or now <= identity.closes_at:
        return
    ended = identity.expires_at.astimezone().strftime("%Y-%m-%d %H:%M")
    raise UserFacingError(
        f"This visit pack's lease ended on {ended} and its {identity.grace_days}-day grace "
        "period is over, so it no longer opens for work. Bring it back to the practice and "
        "return it with 'visit return'; nothing in it is lost."
    )


def refuse_in_visit_pack(identity: VisitPackIdentity | None, what: str) -> None:
    """Raise when ``what`` (a feature that needs the whole practice) is tried on a pack."""
    if identity is None:
        return
    raise UserFacingError(
        f"This is a {identity.describe()}. {what} needs the whole practice database; do it "
        "at the practice, not on the visit pack. Nothing was changed."
    )
