"""Safety alerts for home doses that broke a protocol rule (BP over the hold limit, dose over
the maximum, doses too close together): raised when the dose log is written, shown on the
roster's Safety column, its "Safety alert open" filter and the main-window banner like a
PHQ-9 item-9 answer, and open until a physician acknowledges each one with a note of what
was done (audited; the audit event carries codes, never the note).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.dose_log import SAFETY_ALERT_KINDS, DoseFlagKind
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.outcomes import DoseBreachAlert, DoseLogRecord
from ketadesk.storage.outcomes.outcome_records import DoseAlertRecord, DoseLogItem
from ketadesk.storage.security.audit_log import record_event


def _record(row: DoseBreachAlert) -> DoseAlertRecord:
    return DoseAlertRecord(
        id=row.id,
        patient_id=row.patient_id,
        dose_log_id=row.dose_log_id,
        taken_at=row.dose.taken_at,
        dose_mg=row.dose.dose_mg,
        kinds=tuple(DoseFlagKind(code) for code in row.kinds.split(",") if code),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        note=row.note,
    )


def raise_dose_alerts(
    session: Session, actor: Actor, patient_id: int, items: Sequence[DoseLogItem]
) -> tuple[DoseAlertRecord, ...]:
    """Open an alert for each dose in ``items`` with a safety breach and no alert yet.

    A dose entered late can make the next one "too soon", so every dose of the patient is
    passed in, not only the one just saved. Audited with the breach codes only.
    """
    known = set(
        session.execute(
            select(DoseBreachAlert.dose_log_id).where(DoseBreachAlert.patient_id == patient_id)
        ).scalars()
    )
    raised: list[DoseAlertRecord] = []
    for item in items:
        kinds = sorted({f.kind for f in item.flags if f.kind in SAFETY_ALERT_KINDS})
        if not kinds or item.id in known:
            continue
        row = DoseBreachAlert(
            patient_id=patient_id, dose_log_id=item.id, kinds=",".join(kinds)
        )
        session.add(row)
        session.flush()
        record_event(
            session,
            actor,
            audit_actions.DOSE_ALERT_RAISED,
            patient_id=patient_id,
            detail=f"dose log {item.id}: {row.kinds}",
        )
        raised.append(_record(row))
    return tuple(raised)


def acknowledge_dose_alert(
    session: Session, actor: Actor, alert_id: int, note: str
) -> DoseAlertRecord:
    """Record that a physician has seen a dose-breach alert and acted on it.

    Physicians only; ``note`` (what was done) is required. Audited without the note.
    """
    from ketadesk.storage.outcomes.outcomes import require_ack_note

    require(actor, Permission.EDIT_CLINICAL, "acknowledge a home-dose safety alert")
    row = session.get(DoseBreachAlert, alert_id)
    if row is None:
        raise UserFacingError("That dose alert is not in this practice database.")
    if row.acknowledged_at is not None:
        raise UserFacingError(f"This dose alert was already acknowledged by {row.acknowledged_by}.")
    row.note = require_ack_note(note)
    row.acknowledged_by = actor.user_name
    row.acknowledged_at = datetime.now(UTC)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.DOSE_ALERT_ACKNOWLEDGED,
        patient_id=row.patient_id,
        detail=f"dose log {row.dose_log_id}: {row.kinds} alert acknowledged",
    )
    return _record(row)


def open_dose_alerts(session: Session, patient_id: int) -> tuple[DoseAlertRecord, ...]:
    """The patient's unacknowledged dose-breach alerts, newest dose first."""
    rows = session.execute(
        select(DoseBreachAlert)
        .join(DoseLogRecord, DoseBreachAlert.dose_log_id == DoseLogRecord.id)
        .where(DoseBreachAlert.patient_id == patient_id, DoseBreachAlert.acknowledged_at.is_(None))
        .order_by(DoseLogRecord.taken_at.desc())
    ).scalars()
    return tuple(_record(row) for row in rows)


def patients_with_open_dose_alerts(session: Session) -> set[int]:
    """Ids of patients with at least one unacknowledged dose-breach alert."""
    return set(
        session.execute(
            select(DoseBreachAlert.patient_id)
            .where(DoseBreachAlert.acknowledged_at.is_(None))
            .distinct()
        ).scalars()
    )
