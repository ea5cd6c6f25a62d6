"""Synthetic outcomes for the demo practice: check-ins, PHQ-9/GAD-7 over time, home doses.

Deterministic for a given seed. Most active patients improve, some do not; a few have fallen
behind on monitoring (overdue), two have an unacknowledged non-zero PHQ-9 item 9, and one has
an incomplete GAD-7. Bulk inserts keep large demo practices fast.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ketadesk.core.checkins import Adherence, CheckInMode, Severity, Symptom
from ketadesk.core.dosing_calendar import dosing_calendar
from ketadesk.core.permissions import Actor
from ketadesk.core.questionnaires import Instrument, load_instrument, score_questionnaire
from ketadesk.models.outcomes import CheckIn, CheckInSymptom, DoseLogRecord, QuestionnaireResponse
from ketadesk.models.patients import Patient
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocols,
)
from ketadesk.storage.roster.roster_status import mark_patients_changed
from ketadesk.storage.security.database import PracticeDatabase

_ALERT_PATIENTS = 2
_OVERDUE_SHARE = 0.2
_EFFECTS = (
    "Felt floaty for about an hour, then calm.",
    "Mild nausea, settled after resting.",
    "Relaxed; slept well afterwards.",
    "Some dizziness standing up; sat down until it passed.",
    "",
)


def populate(database: PracticeDatabase, physician: Actor) -> None:
    """The ``demo`` step: add outcomes for every patient in active treatment."""
    with database.session() as session:
        populate_demo_outcomes(session, entered_by=physician.user_name)


def _answers_for(rng: random.Random, instrument: Instrument, total: int) -> list[int | None]:
    """Item answers (0-3) that add up to ``total`` points, spread at random."""
    count = len(instrument.items)
    answers = [0] * count
    total = max(0, min(total, instrument.max_total))
    while total > 0:
        index = rng.randrange(count)
        if answers[index] < instrument.max_answer:
            answers[index] += 1
            total -= 1
    return list(answers)


def populate_demo_outcomes(
    session: Session,
    *,
    entered_by: str,
    seed: int = 20261126,
    today: date | None = None,
) -> int:
    """Insert synthetic outcomes for every active patient; returns how many patients got them."""
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC)
    phq9, gad7 = load_instrument("PHQ-9"), load_instrument("GAD-7")
    patient_ids = list(
        session.execute(
            select(Patient.id).where(Patient.status == "active").order_by(Patient.id)
        ).scalars()
    )
    next_checkin_id = 1 + (
        session.execute(select(CheckIn.id).order_by(CheckIn.id.desc()).limit(1)).scalar() or 0
    )
    checkins: list[dict[str, Any]] = []
    symptoms: list[dict[str, Any]] = []
    forms: list[dict[str, Any]] = []
    doses: list[dict[str, Any]] = []
    stamps = {"created_at": now, "updated_at": now}
    alert_ids = set(patient_ids[1 : 1 + 3 * _ALERT_PATIENTS : 3])
    protocols = active_signed_protocols(session, patient_ids)
    incomplete_id = patient_ids[2] if len(patient_ids) > 2 else None

    for patient_id in patient_ids:
        start = today - timedelta(days=rng.randrange(42, 180))
        is_overdue = rng.random() < _OVERDUE_SHARE and patient_id not in alert_ids
        # Overdue patients stopped being seen some weeks ago; the others were seen recently.
        last_contact = today - timedelta(days=rng.randrange(35, 70) if is_overdue else 0)
        improving = rng.random() < 0.7 and patient_id not in alert_ids
        baseline_phq, baseline_gad = rng.randrange(12, 25), rng.randrange(9, 19)

        form_dates: list[date] = []
        when = start
        while when <= last_contact:
            form_dates.append(when)
            when += timedelta(weeks=4) - timedelta(days=rng.randrange(0, 4))
        for number, taken_on in enumerate(form_dates):
            progress = number / max(1, len(form_dates) - 1)
            drop = (0.75 if improving else 0.15) * progress
            for instrument, baseline in ((phq9, baseline_phq), (gad7, baseline_gad)):
                total = round(baseline * (1 - drop)) + rng.randrange(-1, 2)
                answers = _answers_for(rng, instrument, total)
                is_last = number == len(form_dates) - 1
                if instrument is phq9:
                    # Item 9 stays 0 except for the demo alert patients' latest form.
                    extra = answers[8] or 0
                    answers[8] = 1 if (patient_id in alert_ids and is_last) else 0
                    answers[0] = min(3, (answers[0] or 0) + extra)
                elif patient_id == incomplete_id and is_last:
                    answers[4] = None  # one question left blank: stored as incomplete
                score = score_questionnaire(instrument, answers)
                forms.append(
                    {
                        "patient_id": patient_id,
                        "instrument": instrument.id,
                        "taken_on": taken_on,
                        "answers_json": json.dumps(list(score.answers)),
                        "complete": score.is_complete,
                        "total": score.total,
                        "band": score.band,
                        "safety_alert": score.safety_alert,
                        "entered_by": entered_by,
                        **stamps,
                    }
                )

        when = start + timedelta(days=rng.randrange(10, 15))
        while when <= last_contact:
            checkin_id = next_checkin_id
            next_checkin_id += 1
            checkins.append(
                {
                    "id": checkin_id,
                    "patient_id": patient_id,
                    "checked_on": when,
                    "mode": rng.choice(list(CheckInMode)).value,
                    "recorded_by": entered_by,
                    "adherence": rng.choices(
                        [Adherence.AS_PRESCRIBED, Adherence.MISSED_DOSES], weights=(5, 1)
                    )[0].value,
                    "notes": rng.choice(
                        ("Doing well.", "Reports steadier mood.", "Sleep improving.", "")
                    ),
                    "protocol_version_id": (
                        protocols[patient_id].version_id if patient_id in protocols else None
                    ),
                    **stamps,
                }
            )
            for symptom in rng.sample(
                [Symptom.DISSOCIATION, Symptom.NAUSEA, Symptom.DIZZINESS, Symptom.HEADACHE],
                rng.randrange(0, 3),
            ):
                symptoms.append(
                    {
                        "checkin_id": checkin_id,
                        "symptom": symptom.value,
                        "severity": rng.choice([Severity.MILD, Severity.MODERATE]).value,
                        "note": "",
                    }
                )
            when += timedelta(days=14 + rng.randrange(-2, 3))

        # Home doses only for patients with a signed protocol, on its calendar's dates and
        # doses; now and then a dose is taken a day early or with a high blood pressure, so the
        # dose log has breaches to flag.
        version = protocols.get(patient_id)
        if version is None:
            continue
        weight = version.weight.kg if version.weight else None
        window_start = last_contact - timedelta(days=42)
        evening = time(20, rng.randrange(0, 50))  # the patient's usual dosing time
        for planned in dosing_calendar(version.protocol, version.start_date, weight):
            if not window_start <= planned.date <= min(last_contact, today):
                continue
            day = planned.date - timedelta(days=1) if rng.random() < 0.05 else planned.date
            taken_at = datetime.combine(day, evening, tzinfo=UTC)
            systolic = rng.randrange(112, 138) + (24 if rng.random() < 0.06 else 0)
            doses.append(
                {
                    "patient_id": patient_id,
                    "taken_at": taken_at,
                    "dose_mg": planned.dose_mg,
                    "bp_before_systolic": systolic,
                    "bp_before_diastolic": rng.randrange(68, 88),
                    "bp_after_systolic": systolic + rng.randrange(4, 22),
                    "bp_after_diastolic": rng.randrange(72, 96),
                    "hr_before": rng.randrange(60, 88),
                    "hr_after": rng.randrange(64, 96),
                    "sitter_present": rng.random() < 0.95,
                    "effects": rng.choice(_EFFECTS),
                    "entered_by": entered_by,
                    **stamps,
                }
            )

    for model, rows in (
        (CheckIn, checkins),
        (CheckInSymptom, symptoms),
        (QuestionnaireResponse, forms),
        (DoseLogRecord, doses),
    ):
        if rows:
            session.execute(insert(model), rows)
    mark_patients_changed(session, patient_ids)
    return len(patient_ids)
