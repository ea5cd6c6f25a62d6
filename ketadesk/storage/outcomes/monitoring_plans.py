"""Monitoring plans and due dates: which cadence applies to each patient in active treatment
(a signed protocol's plan, else the practice defaults) and when check-ins and questionnaires
are next due.

Intervals: check-ins in days, questionnaires in weeks. The practice defaults are the settings
``default_checkin_every_days`` and ``default_questionnaire_every_weeks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from ketadesk.core.monitoring_due import DueStatus, MonitoringCadence, next_due
from ketadesk.models.outcomes import CheckIn, QuestionnaireResponse
from ketadesk.models.patients import Patient, PatientStatusChange
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.storage.outcomes.outcome_records import PatientMonitoring, outcome_patient
from ketadesk.storage.practice.settings_store import get_setting

if TYPE_CHECKING:
    from ketadesk.storage.protocols.protocol_versions import (
        ProtocolVersionInfo,
    )

MONITORED_STATUSES = ("active",)
"""Patients in treatment have check-ins and questionnaires due."""

MONITORED_WITH_SIGNED_PROTOCOL = ("screening",)
"""Statuses that are monitored too once the patient has a signed protocol in force.

Decision (issue 13, defect 4): a signed protocol is a physician's order to start treatment.
A patient still marked "Screening" when it is signed may already be dosing at home, so the
protocol's dose rules and its monitoring cadence apply from its start date; the chart's status
is a label for the front desk, not a safety switch. Signing also offers to make the patient
Active (the protocol editor asks). "Paused" and "Discharged" are deliberate stops by a
physician, so nothing falls due for them; their home doses are still checked against the
signed protocol's dose rules (``monitoring_cadence_for``), because a dose taken is checked
whatever the label says.
"""

PRACTICE_DEFAULT_SOURCE = "practice default"

_SQL_CHUNK = 900


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _SQL_CHUNK):
        yield ids[start : start + _SQL_CHUNK]


# --------------------------------------------------------------------------- monitoring


def practice_default_cadence(session: Session) -> MonitoringCadence:
    """The practice defaults (settings; check-ins every N days, questionnaires every N weeks)."""
    return MonitoringCadence(
        checkin_every_days=int(get_setting(session, "default_checkin_every_days")),
        questionnaire_every_weeks=int(get_setting(session, "default_questionnaire_every_weeks")),
    )


def monitoring_from_protocol(
    version: ProtocolVersionInfo, defaults: MonitoringCadence
) -> PatientMonitoring:
    """The monitoring plan of a signed protocol version: its cadence (check-ins in days,
    questionnaires in weeks; a check-in interval it leaves empty falls back to the practice
    default) and the rules home doses are checked against (hours, mg, mmHg)."""
    from ketadesk.storage.protocols.protocols import cadence_from_protocol, dose_rules_from_protocol

    return PatientMonitoring(
        cadence=cadence_from_protocol(
            version.protocol, defaults.checkin_every_days, defaults.questionnaire_every_weeks
        ),
        starts_on=version.start_date,
        source=version.label,
        dose_rules=dose_rules_from_protocol(version.protocol),
        protocol_version_id=version.version_id,
    )


def _first_dates(session: Session, ids: Sequence[int] | None) -> dict[int, date]:
    """When monitoring began for patients without a protocol: the latest activation, else the
    first outcome record, else when the patient was added."""
    starts: dict[int, date] = {}

    def scoped(query: Any, column: Any) -> Iterable[Any]:
        if ids is None:
            yield from session.execute(query)
            return
        for chunk in _chunks(ids):
            yield from session.execute(query.where(column.in_(chunk)))

    signed_protocol = exists(
        select(ProtocolVersion.id)
        .join(PatientProtocol, ProtocolVersion.protocol_id == PatientProtocol.id)
        .where(
            PatientProtocol.patient_id == Patient.id,
            PatientProtocol.status == "active",
            ProtocolVersion.status == "signed",
        )
    )
    monitored = or_(
        Patient.status.in_(MONITORED_STATUSES),
        and_(Patient.status.in_(MONITORED_WITH_SIGNED_PROTOCOL), signed_protocol),
    )
    for patient_id, created in scoped(
        select(Patient.id, Patient.created_at).where(monitored),
        Patient.id,
    ):
        starts[patient_id] = created.date()
    earliest_queries = (
        (select(CheckIn.patient_id, func.min(CheckIn.checked_on)), CheckIn.patient_id),
        (
            select(QuestionnaireResponse.patient_id, func.min(QuestionnaireResponse.taken_on)),
            QuestionnaireResponse.patient_id,
        ),
    )
    for query, column in earliest_queries:
        for patient_id, first in scoped(query.group_by(column), column):
            if patient_id in starts and first is not None:
                starts[patient_id] = min(starts[patient_id], first)
    activation = select(
        PatientStatusChange.patient_id, func.max(PatientStatusChange.changed_at)
    ).where(PatientStatusChange.to_status == "active")
    for patient_id, when in scoped(
        activation.group_by(PatientStatusChange.patient_id), PatientStatusChange.patient_id
    ):
        if patient_id in starts and when is not None:
            # SQL aggregates bypass the UTC type decorator: the value may be naive UTC text.
            activated = when if isinstance(when, date) else datetime.fromisoformat(str(when))
            day = activated.date() if isinstance(activated, datetime) else activated
            starts[patient_id] = min(starts[patient_id], day)
    return starts


def monitoring_for_patients(
    session: Session, patient_ids: Sequence[int] | None = None
) -> dict[int, PatientMonitoring]:
    """The monitoring plan for each patient in active treatment (``None`` = all of them).

    Patients with a signed protocol in force get its monitoring plan; everyone else gets the
    practice defaults, starting when they became active. Patients not in treatment are absent
    (in treatment: Active, or Screening with a signed protocol in force).
    """
    defaults = practice_default_cadence(session)
    starts = _first_dates(session, patient_ids)
    from ketadesk.storage.protocols.protocol_versions import (
        active_signed_protocols,
    )

    protocols = active_signed_protocols(session, sorted(starts))
    result: dict[int, PatientMonitoring] = {}
    for patient_id, starts_on in starts.items():
        active = protocols.get(patient_id)
        result[patient_id] = (
            PatientMonitoring(defaults, starts_on, PRACTICE_DEFAULT_SOURCE)
            if active is None
            else monitoring_from_protocol(active, defaults)
        )
    return result


def monitoring_cadence_for(session: Session, patient_id: int) -> PatientMonitoring:
    """The monitoring plan for one patient (practice defaults when no protocol sets one).

    A patient not monitored (paused, discharged, or screening without a signed protocol)
    still gets a plan here for display and dose-log flags: the signed protocol's, when one is
    in force (its dose rules apply whatever the status; see ``MONITORED_WITH_SIGNED_PROTOCOL``),
    else the defaults from the day they were added. ``due_by_patient`` leaves them out.
    """
    found = monitoring_for_patients(session, [patient_id]).get(patient_id)
    if found is not None:
        return found
    from ketadesk.storage.protocols.protocol_versions import active_signed_protocols

    signed = active_signed_protocols(session, [patient_id]).get(patient_id)
    if signed is not None:
        return monitoring_from_protocol(signed, practice_default_cadence(session))
    patient = outcome_patient(session, patient_id)
    return PatientMonitoring(
        practice_default_cadence(session), patient.created_at.date(), PRACTICE_DEFAULT_SOURCE
    )


def _last_contacts(
    session: Session, ids: Sequence[int] | None
) -> tuple[dict[int, date], dict[int, dict[str, date]]]:
    checkin_query = select(CheckIn.patient_id, func.max(CheckIn.checked_on)).group_by(
        CheckIn.patient_id
    )
    form_query = (
        select(
            QuestionnaireResponse.patient_id,
            QuestionnaireResponse.instrument,
            func.max(QuestionnaireResponse.taken_on),
        )
        .where(QuestionnaireResponse.complete.is_(True))
        .group_by(QuestionnaireResponse.patient_id, QuestionnaireResponse.instrument)
    )
    last_checkin: dict[int, date] = {}
    last_forms: dict[int, dict[str, date]] = {}
    chunks: Iterable[Sequence[int] | None] = [None] if ids is None else _chunks(ids)
    for chunk in chunks:
        cq, fq = checkin_query, form_query
        if chunk is not None:
            cq = cq.where(CheckIn.patient_id.in_(chunk))
            fq = fq.where(QuestionnaireResponse.patient_id.in_(chunk))
        for patient_id, when in session.execute(cq):
            last_checkin[patient_id] = when
        for patient_id, instrument, when in session.execute(fq):
            last_forms.setdefault(patient_id, {})[instrument] = when
    return last_checkin, last_forms


def due_by_patient(
    session: Session, patient_ids: Sequence[int] | None, today: date
) -> dict[int, DueStatus]:
    """Next due dates and what is overdue, for each patient in active treatment.

    ``patient_ids=None`` means every patient. Patients not in active treatment are absent.
    """
    monitoring = monitoring_for_patients(session, patient_ids)
    if not monitoring:
        return {}
    ids = None if patient_ids is None else sorted(monitoring)
    last_checkin, last_forms = _last_contacts(session, ids)
    return {
        patient_id: next_due(
            last_checkin.get(patient_id),
            last_forms.get(patient_id, {}),
            plan.cadence,
            plan.starts_on,
            today,
        )
        for patient_id, plan in monitoring.items()
    }


def next_due_by_patient(
    session: Session, patient_ids: Sequence[int], today: date
) -> dict[int, date]:
    """For the roster: the soonest due date (check-in or questionnaire) per patient in active
    treatment; patients not in active treatment are absent."""
    return {
        patient_id: status.next_due
        for patient_id, status in due_by_patient(session, patient_ids, today).items()
    }


def overdue_patient_ids(session: Session, today: date) -> set[int]:
    """For the roster's "overdue" filter: patients in active treatment with a check-in or
    questionnaire past its due date (due today is not overdue)."""
    return {
        patient_id
        for patient_id, status in due_by_patient(session, None, today).items()
        if status.is_overdue
    }
