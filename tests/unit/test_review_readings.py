"""What the review says it read, on a real encrypted practice database: condition readings in
words (negated, history, family, ambiguous, partly read), local medication routes, and the
patient's age from the date of birth (flag and staleness by age band)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication
from ketadesk.storage.reviews.interaction_review_inputs import local_today
from ketadesk.storage.reviews.interaction_reviews import (
    DecisionInput,
    latest_signed_review,
    review_states_for,
    review_status,
    run_review,
    sign_review,
)


@pytest.fixture
def practice(practice_on):
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


def add_patient(session, *, conditions=(), meds=(), dob=date(1980, 5, 4), mrn="KD-READ-1"):
    patient = Patient(mrn=mrn, first_name="Ines", last_name="Sample", dob=dob, state="NJ",
                      status="active", pregnant=False)
    session.add(patient)
    session.flush()
    for text in meds:
        session.add(PatientMedication(patient_id=patient.id, entered_text=text))
    for text in conditions:
        session.add(PatientCondition(patient_id=patient.id, entered_text=text))
    session.flush()
    return patient.id


def decide_all(view):
    return [DecisionInput(f.flag.carry_forward_key, "continue_with_monitoring")
            for f in view.flags if f.needs_decision]


def test_condition_lines_say_how_each_was_read(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, conditions=(
            "hx of AAA repair", "denies SI", "FHx bipolar disorder", "BPD",
            "HTN, moyamoya disease",
        ))
        view = run_review(s, pid)
    read = {c.entered_as: c for c in view.condition_lines}
    assert read["hx of AAA repair"].read_as_text == (
        "read as: Aneurysmal vascular disease (history)"
    )
    assert read["denies SI"].read_as_text == "read as: no suicidal ideation (negated)"
    assert read["FHx bipolar disorder"].read_as_text == (
        "read as: family history of bipolar disorder (family)"
    )
    bpd = read["BPD"]
    assert not bpd.is_checked
    assert bpd.read_as_text.startswith("not checked: BPD is ambiguous (bipolar disorder or ")
    partly = read["HTN, moyamoya disease"]
    assert partly.is_checked and partly.unread == ("moyamoya disease",)
    assert view.not_checked == (
        "BPD", "HTN, moyamoya disease — part not checked: moyamoya disease",
    )


def test_signed_snapshot_keeps_readings_and_unread_parts(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, conditions=("denies SI", "HTN, moyamoya disease"))
        view = run_review(s, pid)
        sign_review(s, practice.physician, pid, decide_all(view),
                    expected_fingerprint=view.fingerprint, read_by_physician=view.not_checked)
        signed = latest_signed_review(s, pid)
    assert signed is not None
    assert [c.read_as_text for c in signed.conditions] == [
        "read as: no suicidal ideation (negated)", "read as: Hypertension",
    ]
    assert signed.conditions[1].unread == ("moyamoya disease",)


def test_a_local_product_says_it_acts_locally(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=("ketoconazole 2% shampoo twice weekly", "sertraline 50 mg"))
        view = run_review(s, pid)
    shampoo, tablet = view.medication_lines
    assert shampoo.is_local
    assert shampoo.read_as_text == (
        "read as: ketoconazole (shampoo: acts locally, no systemic interaction)"
    )
    assert not tablet.is_local and "locally" not in tablet.read_as_text


def _birthday_years_ago(years: int, days_later: int = 0) -> date:
    today = local_today()
    return today.replace(year=today.year - years) + timedelta(days=days_later)


def test_age_from_the_date_of_birth_raises_the_age_caution(practice) -> None:
    with practice.db.session() as s:
        young = add_patient(s, dob=_birthday_years_ago(16), mrn="KD-READ-2")
        adult = add_patient(s, dob=_birthday_years_ago(40), mrn="KD-READ-3")
        old = add_patient(s, dob=_birthday_years_ago(70), mrn="KD-READ-4")
        rules = {pid: {f.flag.rule_id for f in run_review(s, pid).flags}
                 for pid in (young, adult, old)}
    assert "AGE-UNDER-18" in rules[young]
    assert not any(r.startswith("AGE-") for r in rules[adult])
    assert "AGE-65-AND-OVER" in rules[old]


def test_review_goes_stale_when_the_patient_crosses_an_age_band(practice) -> None:
    with practice.db.session() as s:
        # 64 today, 65 tomorrow: the same age band until the birthday is recorded as passed.
        pid = add_patient(s, dob=_birthday_years_ago(65, days_later=1))
        view = run_review(s, pid)
        sign_review(s, practice.physician, pid, decide_all(view),
                    expected_fingerprint=view.fingerprint)
        assert review_status(s, pid).state == "current"
        # Correcting the date of birth by a year puts the patient in the 65-and-over band.
        patient = s.get(Patient, pid)
        patient.dob = _birthday_years_ago(66)
        s.flush()
        status = review_status(s, pid)
        assert status.state == "stale"
        assert "age group" in (status.stale_reason or "")
        assert review_states_for(s, [pid]) == {pid: "stale"}
        # A birthday inside the same band changes nothing.
        patient.dob = _birthday_years_ago(60)
        s.flush()
        assert review_status(s, pid).state == "current"


def test_signing_with_unread_lines_needs_the_physician_to_confirm_each(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, conditions=("BPD", "HTN, moyamoya disease"),
                          meds=("Zyntrobix 10 mg daily",))
        view = run_review(s, pid)
        assert len(view.not_checked) == 3
        with pytest.raises(UserFacingError, match="3 lines on this review were not checked"):
            sign_review(s, practice.physician, pid, decide_all(view))
        with pytest.raises(UserFacingError, match="1 line on this review was not checked"):
            sign_review(s, practice.physician, pid, decide_all(view),
                        read_by_physician=view.not_checked[:2])
        assert latest_signed_review(s, pid) is None
        sign_review(s, practice.physician, pid, decide_all(view),
                    read_by_physician=reversed(view.not_checked))
        signed = latest_signed_review(s, pid)
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.INTERACTION_REVIEW_SIGNED)
            .order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one()
    assert signed is not None
    assert signed.read_by_physician == view.not_checked
    # The audit trail counts the confirmations and names none of the lines.
    assert "3 not checked; 3 read by the physician" in event.detail
    for text in ("BPD", "moyamoya", "Zyntrobix"):
        assert text not in event.detail
