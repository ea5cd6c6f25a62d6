"""The roster's stored clinical state agrees with a from-scratch computation after every kind
of write, on a real encrypted database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from ketadesk.core.checkins import CheckInDraft, SymptomReport
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.outcomes import QuestionnaireResponse
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication
from ketadesk.models.protocols import PatientProtocol
from ketadesk.models.roster_status import PatientRosterStatus, RosterStatusMeta
from ketadesk.storage.demo import demo_outcomes, demo_protocols, demo_reviews
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.outcomes.monitoring_plans import due_by_patient
from ketadesk.storage.patients import patients as patient_service
from ketadesk.storage.patients.patient_medications import add_medication, stop_medication
from ketadesk.storage.practice.settings_store import set_setting
from ketadesk.storage.protocols.protocols import discontinue_protocol
from ketadesk.storage.reviews.interaction_reviews import run_review, sign_review
from ketadesk.storage.roster import roster_query as rq
from ketadesk.storage.roster.roster_columns import install_roster_columns
from ketadesk.storage.roster.roster_status import (
    compute_roster_statuses,
    ensure_roster_status,
    forget_checked_engines,
    local_today,
    stored_roster_statuses,
)


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


PATIENTS = 40


@pytest.fixture
def clinic(practice):
    install_roster_columns()
    with practice.db.session() as s:
        populate_demo_patients(s, PATIENTS, entered_by="drquill")
    demo_reviews.populate(practice.db, practice.physician)
    demo_protocols.populate(practice.db, practice.physician)
    demo_outcomes.populate(practice.db, practice.physician)
    return practice


def assert_stored_matches_scratch(practice) -> None:
    with practice.db.session() as s:
        stored = stored_roster_statuses(s)
        scratch = compute_roster_statuses(s)
    assert stored == scratch


def test_bulk_demo_writes_are_stored(clinic) -> None:
    assert_stored_matches_scratch(clinic)
    with clinic.db.session() as s:
        stored = stored_roster_statuses(s)
    states = {status.review_state for status in stored.values()}
    assert {"current"} <= states
    assert any(status.protocol_state == "signed" for status in stored.values())
    assert any(status.safety_alert for status in stored.values())
    assert any(status.next_checkin_due for status in stored.values())


def test_next_checkin_is_the_charts(clinic) -> None:
    """Defect 19 of issue 13: the roster's "Next check-in" is the chart's check-in date."""
    with clinic.db.session() as s:
        rows = rq.fetch_roster_page(s, rq.RosterFilter(), limit=1000)
        chart = due_by_patient(s, [r.patient_id for r in rows], local_today())
        shown = {
            r.patient_id: r.extras["next_checkin_due"] for r in rows
        }
        overdue = {r.patient_id: r.extras["overdue_days"] for r in rows}
    assert any(shown.values())
    for patient_id, due in shown.items():
        status = chart.get(patient_id)
        assert due == (status.next_checkin_due if status else None)
        assert overdue[patient_id] == (status.days_overdue if status else 0)


def test_a_failed_write_leaves_the_stored_state_alone(clinic) -> None:
    with clinic.db.session() as s:
        target = s.execute(select(Patient.id).where(Patient.status == "active")).scalars().first()
        before = stored_roster_statuses(s, [target])
    with pytest.raises(RuntimeError), clinic.db.session() as s:
        patient_service.change_status(s, clinic.physician, target, "discharged", "moved away")
        s.flush()
        raise RuntimeError("the save failed after the change")
    with clinic.db.session() as s:
        assert stored_roster_statuses(s, [target]) == before
    assert_stored_matches_scratch(clinic)


def test_an_upgraded_practice_is_filled_once_at_first_open(clinic) -> None:
    with clinic.db.session() as s:
        s.execute(delete(PatientRosterStatus))
        s.execute(delete(RosterStatusMeta))
    forget_checked_engines()
    with clinic.db.session() as s:
        assert ensure_roster_status(s) is True
    with clinic.db.session() as s:
        assert ensure_roster_status(s) is False  # once per engine
    assert_stored_matches_scratch(clinic)


def test_a_new_knowledge_base_version_rebuilds(clinic) -> None:
    with clinic.db.session() as s:
        s.execute(update(RosterStatusMeta).values(kb_version="an older version"))
        s.execute(delete(PatientRosterStatus))
    forget_checked_engines()
    with clinic.db.session() as s:
        assert ensure_roster_status(s) is True
        assert s.execute(select(RosterStatusMeta.kb_version)).scalar_one() != "an older version"
    assert_stored_matches_scratch(clinic)


def test_overdue_follows_the_date_without_a_write(clinic) -> None:
    """The stored due date is compared with today's date in SQL: no rewrite at midnight."""
    with clinic.db.session() as s:
        stored = stored_roster_statuses(s)
    due = [pid for pid, status in stored.items() if status.next_due is not None]
    assert due
    pid = due[0]
    when = stored[pid].next_due
    assert when is not None
    for today in (when - timedelta(days=1), when, when + timedelta(days=3)):
        assert stored[pid].overdue_days(today) == max(0, (today - when).days)


# --------------------------------------------------------------------------- random writes

_ACTIONS = (
    "medication",
    "stop_medication",
    "condition",
    "resolve_condition",
    "vitals",
    "status",
    "checkin",
    "questionnaire_alert",
    "acknowledge",
    "sign_review",
    "discontinue",
    "cadence",
    "new_patient",
    "delete_patient",
)


def _apply(practice, action: str, pick: int) -> None:
    physician = practice.physician
    now = datetime.now(UTC)
    today = local_today()
    with practice.db.session() as s:
        ids = list(s.execute(select(Patient.id).order_by(Patient.id)).scalars())
        pid = ids[pick % len(ids)]
        if action == "medication":
            add_medication(s, physician, pid, "Lorazepam 1 mg at bedtime")
        elif action == "stop_medication":
            med = s.execute(
                select(PatientMedication.id).where(
                    PatientMedication.patient_id == pid, PatientMedication.is_active
                )
            ).scalar()
            if med is not None:
                stop_medication(s, physician, med, reason="replaced")
        elif action == "condition":
            patient_service.add_condition(s, physician, pid, "hypertension")
        elif action == "resolve_condition":
            cond = s.execute(
                select(PatientCondition.id).where(
                    PatientCondition.patient_id == pid, PatientCondition.is_active
                )
            ).scalar()
            if cond is not None:
                patient_service.resolve_condition(s, physician, cond)
        elif action == "vitals":
            patient_service.add_vitals(
                s, physician, pid, measured_at=now, systolic=150, diastolic=95, heart_rate=80
            )
        elif action == "status":
            current = s.get(Patient, pid)
            assert current is not None
            new = "active" if current.status != "active" else "paused"
            patient_service.change_status(s, physician, pid, new, "test")
        elif action == "checkin":
            draft = CheckInDraft(
                date=today,
                mode="phone",
                recorded_by="Dr. Rowan Quill",
                symptoms=(SymptomReport("nausea", "mild"),),
                adherence="as_prescribed",
            )
            outcomes.record_checkin(s, physician, pid, draft, today=today)
        elif action == "questionnaire_alert":
            outcomes.record_questionnaire(
                s, physician, pid, "PHQ-9", [1, 1, 1, 1, 1, 1, 1, 0, 2], today, today=today
            )
        elif action == "acknowledge":
            open_form = s.execute(
                select(QuestionnaireResponse.id).where(
                    QuestionnaireResponse.safety_alert.is_(True),
                    ~QuestionnaireResponse.acknowledgement.has(),
                )
            ).scalar()
            if open_form is not None:
                outcomes.acknowledge_safety_alert(s, physician, open_form, "Called; safe.")
        elif action == "sign_review":
            view = run_review(s, pid)
            decisions = [demo_reviews.demo_decision(f) for f in view.flags if f.needs_decision]
            sign_review(s, physician, pid, decisions, expected_fingerprint=view.fingerprint)
        elif action == "discontinue":
            protocol = s.execute(
                select(PatientProtocol.id).where(PatientProtocol.status == "active")
            ).scalar()
            if protocol is not None:
                discontinue_protocol(s, physician, protocol, "test")
        elif action == "cadence":
            set_setting(s, physician, "default_checkin_every_days", 3 + pick % 20)
        elif action == "new_patient":
            s.add(
                Patient(
                    mrn=f"KD-9{pick % 10_000_000:07d}",
                    first_name="Nova",
                    last_name="Newcomer",
                    dob=today.replace(year=today.year - 40),
                    state="NJ",
                    status="active",
                )
            )
        elif action == "delete_patient" and len(ids) > 5:
            s.execute(delete(InteractionReview).where(InteractionReview.patient_id == pid))
            s.delete(s.get(Patient, pid))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(_ACTIONS), st.integers(min_value=0, max_value=10_000)),
        min_size=3,
        max_size=8,
    )
)
def test_stored_state_agrees_with_scratch_after_random_writes(clinic, steps) -> None:
    for action, pick in steps:
        try:
            _apply(clinic, action, pick)
        except Exception as error:  # a refused write (e.g. a duplicate MRN) changes nothing
            if type(error).__name__ not in ("UserFacingError", "IntegrityError"):
                raise
        assert_stored_matches_scratch(clinic)
