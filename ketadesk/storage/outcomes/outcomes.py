"""Check-ins, questionnaires, the home dose log and the PHQ-9 item-9 safety alert.

Services take a Session and return frozen dataclasses; nothing here holds live ORM rows
for the caller. Scoring, validation, dose flags and due dates come from the Qt-free core
(``core/questionnaires``, ``core/checkins``, ``core/dose_log``, ``core/monitoring_due``).

Monitoring cadence: until a patient has a protocol with a monitoring plan, the practice
defaults apply (settings ``default_checkin_every_days`` = 14 and
``default_questionnaire_every_weeks`` = 4; the practice can change both). The plans and
due dates live in ``monitoring_plans``, the frozen views in ``outcome_records``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ketadesk.core import audit_actions
from ketadesk.core.checkins import CheckInDraft, validate_checkin
from ketadesk.core.dose_log import (
    DoseCalendarContext,
    DoseLogEntry,
    DoseRules,
    dose_entry_concerns,
    dose_log_flags,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.questionnaires import load_instrument, score_questionnaire
from ketadesk.models.outcomes import (
    CheckIn,
    CheckInSymptom,
    DoseLogRecord,
    QuestionnaireResponse,
    SafetyAlertAck,
)
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes.dose_alerts import (
    open_dose_alerts,
    raise_dose_alerts,
)
from ketadesk.storage.outcomes.monitoring_plans import (
    due_by_patient,
    monitoring_cadence_for,
)
from ketadesk.storage.outcomes.outcome_records import (
    CheckInRecord,
    DoseLogItem,
    PatientOutcomes,
    QuestionnaireRecord,
    checkin_record,
    dose_entry,
    outcome_patient,
    questionnaire_record,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import (
    SAFETY_ALERT_ACK,
    safety_ack_hash,
    sign_content,
)

# Plausible ranges for patient-reported readings (mmHg, beats/min); outside = a typing slip.
_SYSTOLIC_RANGE = (50, 300)
_DIASTOLIC_RANGE = (20, 200)
_HEART_RATE_RANGE = (20, 250)
_MAX_EFFECTS_CHARS = 2000
_MAX_ACK_NOTE_CHARS = 500


# --------------------------------------------------------------------------- helpers


def _today() -> date:
    return datetime.now(UTC).date()


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
    outcome_patient(session, patient_id)
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
    return checkin_record(row)


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
    outcome_patient(session, patient_id)
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
    return questionnaire_record(row)


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
    beats/min) and return it with its protocol flags. Staff may enter it; audited. A safety
    breach (``core.dose_log.SAFETY_ALERT_KINDS``) opens an alert for the physician
    (``dose_alerts``)."""
    require(actor, Permission.RECORD_REPORTED_MEDICATION, "enter the dose log")
    outcome_patient(session, patient_id)
    if entry.taken_at.tzinfo is None or entry.taken_at.utcoffset() is None:
        raise UserFacingError("The dose time has no time zone; re-enter it.")
    if entry.taken_at > (now or datetime.now(UTC)) + timedelta(minutes=5):
        raise UserFacingError("The dose time is in the future. Use the time it was taken.")
    if not entry.dose_mg > 0 or entry.dose_mg > 2000:
        raise UserFacingError("The dose must be more than 0 mg and no more than 2000 mg.")
    blocking = [
        c.message
        for c in dose_entry_concerns(entry, now or datetime.now(UTC), DoseCalendarContext())
        if c.blocks_saving
    ]
    if blocking:
        raise UserFacingError(" ".join(blocking))
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
    items = list_dose_log(session, patient_id)
    raise_dose_alerts(session, actor, patient_id, items)
    for item in items:
        if item.id == row.id:
            return item
    raise AssertionError("the dose just saved was not found")  # pragma: no cover


# --------------------------------------------------------------------------- safety alert


def require_ack_note(note: str) -> str:
    """The stripped "what was done" note of an acknowledgement; refuses an empty or long one."""
    note = note.strip()
    if not note:
        raise UserFacingError(
            "Write what was done before acknowledging the alert (for example: phoned the "
            "patient, reviewed the safety plan)."
        )
    if len(note) > _MAX_ACK_NOTE_CHARS:
        raise UserFacingError(f"The note is limited to {_MAX_ACK_NOTE_CHARS} characters.")
    return note


def acknowledge_safety_alert(
    session: Session, actor: Actor, response_id: int, note: str = ""
) -> QuestionnaireRecord:
    """Record that a physician has seen and acted on a PHQ-9 item-9 answer above 0.

    Physicians only; audited (the audit event carries no note). ``note`` says what was done
    and is required. Raises ``UserFacingError`` when the form has no alert, it was already
    acknowledged, or the note is empty.
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
    note = require_ack_note(note)
    row.acknowledgement = SafetyAlertAck(
        acknowledged_by=actor.user_name,
        acknowledged_at=datetime.now(UTC),
        note=note,
    )
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.SAFETY_ALERT_ACKNOWLEDGED,
        patient_id=row.patient_id,
        detail=f"PHQ-9 {row.id} of {row.taken_on.isoformat()}: item 9 alert acknowledged",
    )
    sign_content(session, actor, SAFETY_ALERT_ACK, row.id, safety_ack_hash(row))
    return questionnaire_record(row)


# --------------------------------------------------------------------------- reading


def list_checkins(session: Session, patient_id: int) -> tuple[CheckInRecord, ...]:
    """The patient's check-ins, newest first."""
    rows = session.execute(
        select(CheckIn)
        .where(CheckIn.patient_id == patient_id)
        .options(selectinload(CheckIn.symptoms))
        .order_by(CheckIn.checked_on.desc(), CheckIn.id.desc())
    ).scalars()
    return tuple(checkin_record(row) for row in rows)


def list_questionnaires(session: Session, patient_id: int) -> tuple[QuestionnaireRecord, ...]:
    """The patient's PHQ-9 and GAD-7 forms (complete and incomplete), newest first."""
    rows = session.execute(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.patient_id == patient_id)
        .options(selectinload(QuestionnaireResponse.acknowledgement))
        .order_by(QuestionnaireResponse.taken_on.desc(), QuestionnaireResponse.id.desc())
    ).scalars()
    return tuple(questionnaire_record(row) for row in rows)


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
    entries = [dose_entry(row) for row in rows]
    flags = dose_log_flags(entries, rules)
    return tuple(
        DoseLogItem(row.id, row.patient_id, entry, row.entered_by, tuple(flags.get(index, ())))
        for index, (row, entry) in enumerate(zip(rows, entries, strict=True))
    )


def patient_outcomes(session: Session, patient_id: int, today: date) -> PatientOutcomes:
    """Everything the check-ins tab shows for one patient (one session, one read)."""
    outcome_patient(session, patient_id)
    monitoring = monitoring_cadence_for(session, patient_id)
    return PatientOutcomes(
        patient_id=patient_id,
        checkins=list_checkins(session, patient_id),
        questionnaires=list_questionnaires(session, patient_id),
        dose_log=list_dose_log(session, patient_id, monitoring.dose_rules),
        monitoring=monitoring,
        due=due_by_patient(session, [patient_id], today).get(patient_id),
        signed_versions=_signed_versions(session, patient_id),
        dose_context=dose_calendar_context(session, patient_id),
        open_dose_alerts=open_dose_alerts(session, patient_id),
    )


def dose_calendar_context(session: Session, patient_id: int) -> DoseCalendarContext:
    """What a new home dose is compared with: the first planned session of the patient's
    active protocol (its earliest signed version), the planned session days of every signed
    version (each from its start to the next version's), and the maximum single dose (mg) in
    force. Empty without a signed protocol, whatever the patient's status."""
    from ketadesk.core.dosing_calendar import dosing_calendar
    from ketadesk.storage.protocols.protocol_versions import patient_protocols

    active = [course for course in patient_protocols(session, patient_id)
              if course.status == "active"]
    signed = sorted(
        (version for course in active for version in course.versions if version.is_signed),
        key=lambda version: (version.start_date, version.number),
    )
    if not signed:
        return DoseCalendarContext()
    planned: set[date] = set()
    for version, following in zip(signed, [*signed[1:], None], strict=True):
        weight = None if version.weight is None else version.weight.kg
        try:
            sessions = dosing_calendar(version.protocol, version.start_date, weight)
        except UserFacingError:
            continue  # a version the calendar cannot lay out has no planned days to compare
        planned.update(
            s.date for s in sessions if following is None or s.date < following.start_date
        )
    first = min(planned) if planned else signed[0].start_date
    rules = monitoring_cadence_for(session, patient_id).dose_rules
    return DoseCalendarContext(
        first_session=min(first, signed[0].start_date),
        planned_dates=tuple(sorted(planned)),
        max_single_dose_mg=rules.max_single_dose_mg,
    )


def _signed_versions(session: Session, patient_id: int) -> tuple[tuple[date, int], ...]:
    from ketadesk.storage.protocols.protocol_versions import (
        patient_protocols,
    )

    found = [
        (version.start_date, version.number)
        for course in patient_protocols(session, patient_id)
        for version in course.versions
        if version.is_signed
    ]
    return tuple(sorted(found))


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


def patient_id_for_mrn(session: Session, mrn_text: str) -> int:
    """The id of the patient with this MRN (as typed; normalised and check-digit verified)."""
    from ketadesk.core.mrn import normalise_mrn

    mrn = normalise_mrn(mrn_text)
    found = session.execute(select(Patient.id).where(Patient.mrn == mrn)).scalar_one_or_none()
    if found is None:
        raise UserFacingError(f"No patient has the MRN {mrn} in this practice database.")
    return found
