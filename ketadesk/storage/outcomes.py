"""Check-ins, questionnaires, the home dose log and the PHQ-9 item-9 safety alert.

Services take a Session and return frozen dataclasses; nothing here holds live ORM rows
for the caller. Scoring, validation, dose flags and due dates come from the Qt-free core
(``core/questionnaires``, ``core/checkins``, ``core/dose_log``, ``core/monitoring_due``).

Monitoring cadence: until a patient has a protocol with a monitoring plan, the practice
defaults apply (settings ``default_checkin_every_days`` = 14 and
``default_questionnaire_every_weeks`` = 4; the practice can change both). See
``monitoring_for_patients`` for how a protocol store plugs in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ketadesk.core import audit_actions
from ketadesk.core.checkins import (
    LABELS,
    CheckInDraft,
    SymptomReport,
    validate_checkin,
)
from ketadesk.core.dose_log import DoseFlag, DoseLogEntry, DoseRules, dose_log_flags
from ketadesk.core.errors import UserFacingError
from ketadesk.core.monitoring_due import DueStatus, MonitoringCadence, next_due
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.questionnaires import (
    QuestionnaireScore,
    load_instrument,
    questionnaire_to_json,
    score_questionnaire,
)
from ketadesk.models.outcomes import (
    CheckIn,
    CheckInSymptom,
    DoseLogRecord,
    QuestionnaireResponse,
    SafetyAlertAck,
)
from ketadesk.models.patients import Patient, PatientStatusChange
from ketadesk.storage.audit_log import record_event
from ketadesk.storage.settings_store import get_setting

if TYPE_CHECKING:
    from ketadesk.storage.protocols import ProtocolVersionInfo

MONITORED_STATUSES = ("active",)
"""Only patients in treatment have check-ins and questionnaires due."""

PRACTICE_DEFAULT_SOURCE = "practice default"

# Plausible ranges for patient-reported readings (mmHg, beats/min); outside = a typing slip.
_SYSTOLIC_RANGE = (50, 300)
_DIASTOLIC_RANGE = (20, 200)
_HEART_RATE_RANGE = (20, 250)
_MAX_EFFECTS_CHARS = 2000
_MAX_ACK_NOTE_CHARS = 500
_SQL_CHUNK = 900


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CheckInRecord:
    """A saved check-in. ``mode`` / ``adherence`` are codes; ``*_label`` are words."""

    id: int
    patient_id: int
    checked_on: date
    mode: str
    recorded_by: str
    adherence: str
    notes: str
    protocol_version_id: int | None
    symptoms: tuple[SymptomReport, ...]

    @property
    def mode_label(self) -> str:
        return LABELS.get(self.mode, self.mode)

    @property
    def adherence_label(self) -> str:
        return LABELS.get(self.adherence, self.adherence)

    def symptoms_text(self) -> str:
        """Reported symptoms in words, e.g. "Nausea or vomiting (mild); Headache (moderate)"."""
        shown = [s for s in self.symptoms if s.severity != "none"]
        if not shown:
            return "None reported"
        parts = []
        for report in shown:
            name = LABELS.get(report.symptom, report.symptom)
            if report.note:
                name += f": {report.note}"
            parts.append(f"{name} ({report.severity})")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.checked_on.isoformat(),
            "mode": self.mode,
            "recorded_by": self.recorded_by,
            "symptoms": [
                {"symptom": s.symptom, "severity": s.severity, "note": s.note}
                for s in self.symptoms
            ],
            "adherence": self.adherence,
            "notes": self.notes,
            "protocol_version_id": self.protocol_version_id,
        }


@dataclass(frozen=True)
class AlertAcknowledgement:
    """Who acknowledged an item-9 alert, when (aware UTC) and their short note."""

    acknowledged_by: str
    acknowledged_at: datetime
    note: str


@dataclass(frozen=True)
class QuestionnaireRecord:
    """A saved PHQ-9 or GAD-7. ``total`` / ``band`` are ``None`` when incomplete (points)."""

    id: int
    patient_id: int
    instrument: str  # display name, e.g. "PHQ-9"
    instrument_id: str  # key, e.g. "phq9"
    taken_on: date
    answers: tuple[int | None, ...]
    complete: bool
    total: int | None
    band: str | None
    safety_alert: bool
    entered_by: str
    acknowledgement: AlertAcknowledgement | None = None

    @property
    def needs_acknowledgement(self) -> bool:
        """An item-9 alert that no physician has acknowledged yet."""
        return self.safety_alert and self.acknowledgement is None

    def score(self) -> QuestionnaireScore:
        """Re-score the stored answers with the instrument definition."""
        return score_questionnaire(load_instrument(self.instrument_id), self.answers)

    def to_json(self) -> dict[str, Any]:
        data = questionnaire_to_json(self.score(), self.taken_on)
        data["acknowledged_by"] = (
            None if self.acknowledgement is None else self.acknowledgement.acknowledged_by
        )
        return data


@dataclass(frozen=True)
class DoseLogItem:
    """A saved home session and its protocol flags (breaches and "not checked")."""

    id: int
    patient_id: int
    entry: DoseLogEntry
    entered_by: str
    flags: tuple[DoseFlag, ...] = ()

    @property
    def has_breach(self) -> bool:
        return any(flag.is_breach for flag in self.flags)


@dataclass(frozen=True)
class PatientMonitoring:
    """The monitoring plan that applies to one patient and where it comes from.

    ``source`` is ``"practice default"`` or names the protocol version. ``starts_on`` is the
    date monitoring began (protocol start, or when the patient became active). Intervals are
    in ``cadence`` (days / weeks); ``dose_rules`` are what home doses are checked against.
    """

    cadence: MonitoringCadence
    starts_on: date
    source: str
    dose_rules: DoseRules = field(default_factory=DoseRules)
    protocol_version_id: int | None = None


@dataclass(frozen=True)
class PatientOutcomes:
    """Everything the check-ins tab shows for one patient, newest first in each list.

    ``due`` is ``None`` when the patient is not in active treatment (nothing is due).
    """

    patient_id: int
    checkins: tuple[CheckInRecord, ...]
    questionnaires: tuple[QuestionnaireRecord, ...]
    dose_log: tuple[DoseLogItem, ...]
    monitoring: PatientMonitoring
    due: DueStatus | None

    @property
    def open_alerts(self) -> tuple[QuestionnaireRecord, ...]:
        return tuple(q for q in self.questionnaires if q.needs_acknowledgement)


# --------------------------------------------------------------------------- helpers


def _today() -> date:
    return datetime.now(UTC).date()


def _patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is not in this practice database.")
    return patient


def _checkin_record(row: CheckIn) -> CheckInRecord:
    return CheckInRecord(
        id=row.id,
        patient_id=row.patient_id,
        checked_on=row.checked_on,
        mode=row.mode,
        recorded_by=row.recorded_by,
        adherence=row.adherence,
        notes=row.notes,
        protocol_version_id=row.protocol_version_id,
        symptoms=tuple(SymptomReport(s.symptom, s.severity, s.note) for s in row.symptoms),
    )


def _answers_from_json(text: str) -> tuple[int | None, ...]:
    raw = json.loads(text)
    return tuple(None if value is None else int(value) for value in raw)


def _questionnaire_record(row: QuestionnaireResponse) -> QuestionnaireRecord:
    instrument = load_instrument(row.instrument)
    ack = row.acknowledgement
    return QuestionnaireRecord(
        id=row.id,
        patient_id=row.patient_id,
        instrument=instrument.name,
        instrument_id=instrument.id,
        taken_on=row.taken_on,
        answers=_answers_from_json(row.answers_json),
        complete=row.complete,
        total=row.total,
        band=row.band,
        safety_alert=row.safety_alert,
        entered_by=row.entered_by,
        acknowledgement=None
        if ack is None
        else AlertAcknowledgement(ack.acknowledged_by, ack.acknowledged_at, ack.note),
    )


def _dose_entry(row: DoseLogRecord) -> DoseLogEntry:
    return DoseLogEntry(
        taken_at=row.taken_at,
        dose_mg=row.dose_mg,
        bp_before_systolic=row.bp_before_systolic,
        bp_before_diastolic=row.bp_before_diastolic,
        bp_after_systolic=row.bp_after_systolic,
        bp_after_diastolic=row.bp_after_diastolic,
        hr_before=row.hr_before,
        hr_after=row.hr_after,
        sitter_present=row.sitter_present,
        effects=row.effects,
    )


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _SQL_CHUNK):
        yield ids[start : start + _SQL_CHUNK]


# --------------------------------------------------------------------------- recording


def record_checkin(
    session: Session,
    actor: Actor,
    patient_id: int,
    draft: CheckInDraft,
    *,
    today: date | None = None,
) -> CheckInRecord:
    """Validate and save a check-in (physicians only; audited). Raises ``UserFacingError``
    listing every problem with the draft."""
    require(actor, Permission.EDIT_CLINICAL, "record check-ins")
    _patient(session, patient_id)
    problems = validate_checkin(draft, today or _today())
    if problems:
        raise UserFacingError(" ".join(problem.message for problem in problems))
    row = CheckIn(
        patient_id=patient_id,
        checked_on=draft.date,
        mode=draft.mode,
        recorded_by=draft.recorded_by.strip(),
        adherence=draft.adherence,
        notes=draft.notes.strip(),
        protocol_version_id=draft.protocol_version_id,
        symptoms=[
            CheckInSymptom(symptom=s.symptom, severity=s.severity, note=s.note.strip())
            for s in draft.symptoms
        ],
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.CHECKIN_RECORDED,
        patient_id=patient_id,
        detail=f"check-in {row.id} on {draft.date.isoformat()} ({draft.mode})",
    )
    return _checkin_record(row)


def record_questionnaire(
    session: Session,
    actor: Actor,
    patient_id: int,
    instrument_name: str,
    answers: Sequence[int | None],
    taken_on: date,
    *,
    today: date | None = None,
) -> QuestionnaireRecord:
    """Score and save a PHQ-9 or GAD-7 (answers 0-3 per item, ``None`` = left blank).

    A form with blanks is stored as incomplete, with no total or band. Patient-reported, so
    staff may enter it. Audited; a non-zero PHQ-9 item 9 is recorded as an open alert.
    """
    require(actor, Permission.RECORD_REPORTED_MEDICATION, "enter questionnaires")
    _patient(session, patient_id)
    if taken_on > (today or _today()):
        raise UserFacingError("The questionnaire date is in the future. Use the date it was done.")
    instrument = load_instrument(instrument_name)
    score = score_questionnaire(instrument, answers)
    row = QuestionnaireResponse(
        patient_id=patient_id,
        instrument=instrument.id,
        taken_on=taken_on,
        answers_json=json.dumps(list(score.answers)),
        complete=score.is_complete,
        total=score.total,
        band=score.band,
        safety_alert=score.safety_alert,
        entered_by=actor.user_name,
    )
    session.add(row)
    session.flush()
    state = "complete" if score.is_complete else "incomplete"
    alert = "; item 9 alert raised" if score.safety_alert else ""
    record_event(
        session,
        actor,
        audit_actions.QUESTIONNAIRE_RECORDED,
        patient_id=patient_id,
        detail=f"{instrument.name} {row.id} on {taken_on.isoformat()}, {state}{alert}",
    )
    return _questionnaire_record(row)


def _check_range(value: int | None, bounds: tuple[int, int], what: str) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise UserFacingError(
            f"The {what} must be between {bounds[0]} and {bounds[1]}; check what was typed."
        )


def record_dose(
    session: Session,
    actor: Actor,
    patient_id: int,
    entry: DoseLogEntry,
    *,
    now: datetime | None = None,
) -> DoseLogItem:
    """Save one home session as reported by the patient (dose in mg, BP in mmHg, HR in
    beats/min) and return it with its protocol flags. Staff may enter it; audited."""
    require(actor, Permission.RECORD_REPORTED_MEDICATION, "enter the dose log")
    _patient(session, patient_id)
    if entry.taken_at.tzinfo is None or entry.taken_at.utcoffset() is None:
        raise UserFacingError("The dose time has no time zone; re-enter it.")
    if entry.taken_at > (now or datetime.now(UTC)) + timedelta(minutes=5):
        raise UserFacingError("The dose time is in the future. Use the time it was taken.")
    if not entry.dose_mg > 0 or entry.dose_mg > 2000:
        raise UserFacingError("The dose must be more than 0 mg and no more than 2000 mg.")
    for value, bounds, what in (
        (entry.bp_before_systolic, _SYSTOLIC_RANGE, "systolic pressure before the dose"),
        (entry.bp_before_diastolic, _DIASTOLIC_RANGE, "diastolic pressure before the dose"),
        (entry.bp_after_systolic, _SYSTOLIC_RANGE, "systolic pressure after the dose"),
        (entry.bp_after_diastolic, _DIASTOLIC_RANGE, "diastolic pressure after the dose"),
        (entry.hr_before, _HEART_RATE_RANGE, "heart rate before the dose"),
        (entry.hr_after, _HEART_RATE_RANGE, "heart rate after the dose"),
    ):
        _check_range(value, bounds, what)
    if len(entry.effects) > _MAX_EFFECTS_CHARS:
        raise UserFacingError(f"Effects are limited to {_MAX_EFFECTS_CHARS} characters.")
    row = DoseLogRecord(
        patient_id=patient_id,
        taken_at=entry.taken_at.astimezone(UTC),
        dose_mg=float(entry.dose_mg),
        bp_before_systolic=entry.bp_before_systolic,
        bp_before_diastolic=entry.bp_before_diastolic,
        bp_after_systolic=entry.bp_after_systolic,
        bp_after_diastolic=entry.bp_after_diastolic,
        hr_before=entry.hr_before,
        hr_after=entry.hr_after,
        sitter_present=entry.sitter_present,
        effects=entry.effects.strip(),
        entered_by=actor.user_name,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.DOSE_LOG_RECORDED,
        patient_id=patient_id,
        detail=f"dose log {row.id}",
    )
    for item in list_dose_log(session, patient_id):
        if item.id == row.id:
            return item
    raise AssertionError("the dose just saved was not found")  # pragma: no cover


# --------------------------------------------------------------------------- safety alert


def acknowledge_safety_alert(
    session: Session, actor: Actor, response_id: int, note: str = ""
) -> QuestionnaireRecord:
    """Record that a physician has seen and acted on a PHQ-9 item-9 answer above 0.

    Physicians only; audited. Raises ``UserFacingError`` when the form has no alert or it
    was already acknowledged.
    """
    require(actor, Permission.EDIT_CLINICAL, "acknowledge a suicide-risk answer (PHQ-9 item 9)")
    row = session.get(QuestionnaireResponse, response_id)
    if row is None:
        raise UserFacingError("That questionnaire is not in this practice database.")
    if not row.safety_alert:
        raise UserFacingError("This questionnaire has no item-9 alert to acknowledge.")
    if row.acknowledgement is not None:
        raise UserFacingError(
            f"This alert was already acknowledged by {row.acknowledgement.acknowledged_by}."
        )
    if len(note) > _MAX_ACK_NOTE_CHARS:
        raise UserFacingError(f"The note is limited to {_MAX_ACK_NOTE_CHARS} characters.")
    row.acknowledgement = SafetyAlertAck(
        acknowledged_by=actor.user_name,
        acknowledged_at=datetime.now(UTC),
        note=note.strip(),
    )
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.SAFETY_ALERT_ACKNOWLEDGED,
        patient_id=row.patient_id,
        detail=f"PHQ-9 {row.id} of {row.taken_on.isoformat()}: item 9 alert acknowledged",
    )
    return _questionnaire_record(row)


def open_safety_alerts(session: Session) -> set[int]:
    """Ids of patients with at least one unacknowledged PHQ-9 item-9 alert."""
    query = (
        select(QuestionnaireResponse.patient_id)
        .outerjoin(SafetyAlertAck, SafetyAlertAck.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.safety_alert.is_(True), SafetyAlertAck.id.is_(None))
        .distinct()
    )
    return set(session.execute(query).scalars())


# --------------------------------------------------------------------------- reading


def list_checkins(session: Session, patient_id: int) -> tuple[CheckInRecord, ...]:
    """The patient's check-ins, newest first."""
    rows = session.execute(
        select(CheckIn)
        .where(CheckIn.patient_id == patient_id)
        .options(selectinload(CheckIn.symptoms))
        .order_by(CheckIn.checked_on.desc(), CheckIn.id.desc())
    ).scalars()
    return tuple(_checkin_record(row) for row in rows)


def list_questionnaires(session: Session, patient_id: int) -> tuple[QuestionnaireRecord, ...]:
    """The patient's PHQ-9 and GAD-7 forms (complete and incomplete), newest first."""
    rows = session.execute(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.patient_id == patient_id)
        .options(selectinload(QuestionnaireResponse.acknowledgement))
        .order_by(QuestionnaireResponse.taken_on.desc(), QuestionnaireResponse.id.desc())
    ).scalars()
    return tuple(_questionnaire_record(row) for row in rows)


def list_dose_log(
    session: Session, patient_id: int, rules: DoseRules | None = None
) -> tuple[DoseLogItem, ...]:
    """The patient's home sessions, newest first, each with its protocol flags.

    ``rules`` defaults to the patient's monitoring plan (``monitoring_cadence_for``).
    """
    if rules is None:
        rules = monitoring_cadence_for(session, patient_id).dose_rules
    rows = list(
        session.execute(
            select(DoseLogRecord)
            .where(DoseLogRecord.patient_id == patient_id)
            .order_by(DoseLogRecord.taken_at.desc(), DoseLogRecord.id.desc())
        ).scalars()
    )
    entries = [_dose_entry(row) for row in rows]
    flags = dose_log_flags(entries, rules)
    return tuple(
        DoseLogItem(row.id, row.patient_id, entry, row.entered_by, tuple(flags.get(index, ())))
        for index, (row, entry) in enumerate(zip(rows, entries, strict=True))
    )


def patient_outcomes(session: Session, patient_id: int, today: date) -> PatientOutcomes:
    """Everything the check-ins tab shows for one patient (one session, one read)."""
    _patient(session, patient_id)
    monitoring = monitoring_cadence_for(session, patient_id)
    return PatientOutcomes(
        patient_id=patient_id,
        checkins=list_checkins(session, patient_id),
        questionnaires=list_questionnaires(session, patient_id),
        dose_log=list_dose_log(session, patient_id, monitoring.dose_rules),
        monitoring=monitoring,
        due=due_by_patient(session, [patient_id], today).get(patient_id),
    )


def outcomes_json(outcomes: PatientOutcomes) -> dict[str, Any]:
    """The headless form: questionnaires (oldest first) and check-ins (oldest first)."""
    due = outcomes.due
    return {
        "questionnaires": [q.to_json() for q in reversed(outcomes.questionnaires)],
        "checkins": [c.to_json() for c in reversed(outcomes.checkins)],
        "monitoring": {
            "source": outcomes.monitoring.source,
            "checkin_every_days": outcomes.monitoring.cadence.checkin_every_days,
            "questionnaire_every_weeks": outcomes.monitoring.cadence.questionnaire_every_weeks,
            "next_checkin_due": None if due is None else due.next_checkin_due.isoformat(),
            "questionnaires_due": {}
            if due is None
            else {name: when.isoformat() for name, when in due.questionnaires_due.items()},
            "overdue": [] if due is None else list(due.overdue),
        },
    }


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
    from ketadesk.storage.protocols import cadence_from_protocol, dose_rules_from_protocol

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

    for patient_id, created in scoped(
        select(Patient.id, Patient.created_at).where(Patient.status.in_(MONITORED_STATUSES)),
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
    practice defaults, starting when they became active.
    Patients not in active treatment are absent.
    """
    defaults = practice_default_cadence(session)
    starts = _first_dates(session, patient_ids)
    from ketadesk.storage.protocols import active_signed_protocols

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

    A patient not in active treatment still gets the defaults here (for display and dose-log
    flags), starting the day they were added; ``due_by_patient`` leaves them out.
    """
    found = monitoring_for_patients(session, [patient_id]).get(patient_id)
    if found is not None:
        return found
    patient = _patient(session, patient_id)
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


def patient_id_for_mrn(session: Session, mrn_text: str) -> int:
    """The id of the patient with this MRN (as typed; normalised and check-digit verified)."""
    from ketadesk.core.mrn import normalise_mrn

    mrn = normalise_mrn(mrn_text)
    found = session.execute(select(Patient.id).where(Patient.mrn == mrn)).scalar_one_or_none()
    if found is None:
        raise UserFacingError(f"No patient has the MRN {mrn} in this practice database.")
    return found
