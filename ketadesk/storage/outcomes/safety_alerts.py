"""Which patients have an open safety alert, for the main window's banner and the roster.

Kept apart from ``outcomes`` (check-ins, questionnaires, the dose log) so that the banner's
first read, which starts right after the roster first paints, loads only these queries and
not the questionnaire and check-in machinery while the user may already be typing a search.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.models.outcomes import QuestionnaireResponse, SafetyAlertAck
from ketadesk.storage.outcomes.dose_alerts import patients_with_open_dose_alerts


@dataclass(frozen=True)
class OpenSafetyAlerts:
    """Patients with an open safety alert, by kind: an unacknowledged PHQ-9 item-9 answer
    (``suicide_risk``) or an unacknowledged home-dose breach (``dose_breach``)."""

    suicide_risk: frozenset[int] = frozenset()
    dose_breach: frozenset[int] = frozenset()

    @property
    def patient_ids(self) -> set[int]:
        return set(self.suicide_risk | self.dose_breach)


def open_safety_alert_kinds(session: Session) -> OpenSafetyAlerts:
    """Which patients have which kind of open safety alert (for the main-window banner)."""
    query = (
        select(QuestionnaireResponse.patient_id)
        .outerjoin(SafetyAlertAck, SafetyAlertAck.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.safety_alert.is_(True), SafetyAlertAck.id.is_(None))
        .distinct()
    )
    return OpenSafetyAlerts(
        suicide_risk=frozenset(session.execute(query).scalars()),
        dose_breach=frozenset(patients_with_open_dose_alerts(session)),
    )


def open_safety_alerts(session: Session) -> set[int]:
    """Ids of patients with at least one open safety alert: an unacknowledged PHQ-9 item-9
    answer or an unacknowledged home-dose breach."""
    return open_safety_alert_kinds(session).patient_ids
