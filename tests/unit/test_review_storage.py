"""Interaction reviews on a real encrypted practice database: sign, stale, carry forward,
permissions, contraindication overrides, audit events and the interruptive threshold."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.knowledge_base import load_knowledge_base
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign
from ketadesk.storage.practice.settings_store import get_setting, set_setting
from ketadesk.storage.reviews.interaction_reviews import (
    INTERRUPT_THRESHOLD_KEY,
    DecisionInput,
    current_inputs,
    interrupt_threshold,
    interruptive_flags,
    latest_signed_review,
    record_decision,
    review_states_for,
    review_status,
    run_review,
    sign_review,
)


@pytest.fixture
def practice(practice_on):
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


NOW = datetime.now(UTC)


def add_patient(
    session,
    *,
    meds=("Ativan 1 mg bid",),
    conditions=("generalized anxiety disorder",),
    vitals=(128, 82, 70, 80.0),
    pregnant=False,
    mrn="KD-TEST-1",
) -> int:
    patient = Patient(
        mrn=mrn, first_name="Zoë", last_name="Testperson", dob=date(1980, 5, 4),
        state="FL", status="active", pregnant=pregnant,
    )
    session.add(patient)
    session.flush()
    for text in meds:
        session.add(PatientMedication(patient_id=patient.id, entered_text=text))
    for text in conditions:
        session.add(PatientCondition(patient_id=patient.id, entered_text=text))
    if vitals is not None:
        add_vitals(session, patient.id, *vitals, at=NOW - timedelta(days=2))
    session.flush()
    return patient.id


def add_vitals(session, patient_id, systolic, diastolic, heart_rate, weight, *, at=None) -> None:
    session.add(
        VitalSign(
            patient_id=patient_id, measured_at=at or datetime.now(UTC), systolic=systolic,
            diastolic=diastolic, heart_rate=heart_rate, weight_kg=weight, entered_by="drquill",
        )
    )


def decide_all(view, decision="continue_with_monitoring", reason=""):
    return [
        DecisionInput(f.flag.carry_forward_key, decision, note="watch sedation",
                      override_reason=reason)
        for f in view.flags
        if f.needs_decision
    ]


def sign_now(practice, patient_id, reason=""):
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        return sign_review(s, practice.physician, patient_id, decide_all(view, reason=reason),
                           expected_fingerprint=view.fingerprint,
                           read_by_physician=view.not_checked)


@pytest.fixture
def patient_id(practice) -> int:
    with practice.db.session() as s:
        return add_patient(s)


def status_of(practice, patient_id):
    with practice.db.session() as s:
        return review_status(s, patient_id)


def test_no_review_then_current_after_signing(practice, patient_id) -> None:
    assert status_of(practice, patient_id).state == "none"
    signed = sign_now(practice, patient_id)
    status = status_of(practice, patient_id)
    assert status.state == "current"
    assert status.review_id == signed.review_id
    assert status.signed_by == practice.physician.user_name
    assert status.signed_by_full_name == "Dr. Rowan Quill"
    assert status.stale_reason is None
    assert [line.entered_as for line in signed.medication_lines] == ["Ativan 1 mg bid"]
    assert signed.medication_lines[0].generics == ("lorazepam",)
    assert any(f.rule_id == "DRUG-BENZODIAZEPINE" and f.decision for f in signed.flags)
    assert signed.vitals is not None and signed.vitals.systolic == 128


def test_stale_when_a_medication_is_added(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.add(PatientMedication(patient_id=patient_id, entered_text="tramadol 50 mg prn"))
    status = status_of(practice, patient_id)
    assert status.state == "stale"
    assert status.stale_reason == "the medication list changed"
    assert status.stale_since is not None and status.signed_at is not None
    assert status.stale_since > status.signed_at


def test_stale_when_a_dose_changes_and_current_again_when_it_changes_back(
    practice, patient_id
) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        med = s.execute(select(PatientMedication)).scalar_one()
        med.entered_text = "Ativan 2 mg bid"
    assert status_of(practice, patient_id).state == "stale"
    with practice.db.session() as s:
        med = s.execute(select(PatientMedication)).scalar_one()
        med.entered_text = "ativan  1 mg BID"  # case and spacing do not matter
    assert status_of(practice, patient_id).state == "current"


def test_stale_when_a_medication_is_stopped(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.execute(select(PatientMedication)).scalar_one().is_active = False
    assert status_of(practice, patient_id).stale_reason == "the medication list changed"


def test_stale_when_a_condition_is_added(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.add(PatientCondition(patient_id=patient_id, entered_text="glaucoma"))
    status = status_of(practice, patient_id)
    assert (status.state, status.stale_reason) == ("stale", "the conditions changed")


def test_stale_when_new_vitals_differ_but_not_when_they_repeat(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        add_vitals(s, patient_id, 128, 82, 70, 80.0)  # same values, new reading
    assert status_of(practice, patient_id).state == "current"
    with practice.db.session() as s:
        add_vitals(s, patient_id, 152, 96, 70, 80.0)
    status = status_of(practice, patient_id)
    assert (status.state, status.stale_reason) == ("stale", "new vital signs were recorded")


def test_stale_when_pregnancy_status_changes(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.get(Patient, patient_id).pregnant = True
    status = status_of(practice, patient_id)
    assert (status.state, status.stale_reason) == ("stale", "the pregnancy status changed")
    with practice.db.session() as s:
        view = run_review(s, patient_id)
    assert view.flags[0].flag.rule_id == "COND-PREGNANCY"
    assert view.flags[0].flag.severity == "contraindicated"


def test_stale_when_the_knowledge_base_version_changes(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    newer = dataclasses.replace(load_knowledge_base(), version="2099.1.0")
    with practice.db.session() as s:
        status = review_status(s, patient_id, kb=newer)
        states = review_states_for(s, [patient_id], kb=newer)
    assert status.state == "stale"
    assert "knowledge base was updated" in (status.stale_reason or "")
    assert "2099.1.0" in (status.stale_reason or "")
    assert states == {patient_id: "stale"}


def test_implausible_stored_vitals_are_not_checked_not_a_crash(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, vitals=(400, 82, 70, 80.0), conditions=("hypertension",))
        inputs = current_inputs(s, pid)
        view = run_review(s, pid)
    assert inputs.vitals is None
    assert inputs.latest_vitals is not None and inputs.latest_vitals.systolic == 400
    assert "not checked" in (inputs.vitals_not_checked or "")
    assert "Systolic" in (inputs.vitals_not_checked or "")
    assert inputs.vitals_not_checked in view.not_checked
    # With no usable reading, hypertension is flagged as "BP not recorded", not as controlled.
    assert [f.flag.rule_id for f in view.flags if f.flag.kind == "vital"] == [
        load_knowledge_base().bp_not_recorded.rule_id
    ]
    sign_now(practice, pid)
    with practice.db.session() as s:
        add_vitals(s, pid, 140, 82, 70, 80.0)  # the corrected reading makes the review stale
    assert status_of(practice, pid).state == "stale"


def test_unrecognised_lines_are_listed_as_not_checked_in_the_snapshot(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=("Ativan 1 mg bid", "Zyntrobix 10 mg daily"))
        view = run_review(s, pid)
    lines = {line.entered_as: line.read_as_text for line in view.medication_lines}
    assert lines["Zyntrobix 10 mg daily"] == "not checked"
    assert lines["Ativan 1 mg bid"] == "read as: lorazepam"
    signed = sign_now(practice, pid)
    assert "Zyntrobix 10 mg daily" in signed.not_checked


def test_fuzzy_match_is_marked_for_confirmation(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=("clonazepan 0.5 mg bid",))
        view = run_review(s, pid)
    line = view.medication_lines[0]
    assert line.fuzzy and line.generics == ("clonazepam",)
    assert line.read_as_text.startswith("read as: clonazepam")
    assert "confirm" in line.read_as_text


def test_decision_carries_forward_while_drug_and_dose_persist(practice, patient_id) -> None:
    first = sign_now(practice, patient_id)
    with practice.db.session() as s:
        # An unrelated change makes the review stale but keeps the lorazepam line as it was.
        s.add(PatientMedication(patient_id=patient_id, entered_text="omeprazole 20 mg daily"))
    with practice.db.session() as s:
        view = run_review(s, patient_id)
    assert view.status.state == "stale"
    benzo = next(f for f in view.flags if f.flag.rule_id == "DRUG-BENZODIAZEPINE")
    assert benzo.carried is not None
    assert benzo.carried.acknowledgement == (
        f"acknowledged on {first.signed_at.date().isoformat()} by Dr. Rowan Quill"
    )
    assert view.undecided == ()
    with practice.db.session() as s:
        second = sign_review(s, practice.physician, patient_id)  # nothing new to decide
    decision = next(d for d in second.decisions if d.rule_id == "DRUG-BENZODIAZEPINE")
    assert decision.carried_from_review_id == first.review_id
    assert decision.decided_at == first.signed_at
    assert second.review_id != first.review_id
    assert status_of(practice, patient_id).state == "current"


def test_decision_does_not_carry_forward_when_the_dose_changes(practice, patient_id) -> None:
    sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.execute(select(PatientMedication)).scalar_one().entered_text = "Ativan 2 mg bid"
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        benzo = next(f for f in view.flags if f.flag.rule_id == "DRUG-BENZODIAZEPINE")
        assert benzo.carried is None
        assert benzo in view.undecided
        with pytest.raises(UserFacingError, match="still needs a decision"):
            sign_review(s, practice.physician, patient_id)


def test_condition_decision_carries_forward_while_the_condition_persists(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=(), conditions=("glaucoma",))
    sign_now(practice, pid)
    with practice.db.session() as s:
        s.add(PatientMedication(patient_id=pid, entered_text="sertraline 50 mg daily"))
    with practice.db.session() as s:
        view = run_review(s, pid)
    iop = next(f for f in view.flags if f.flag.rule_id == "COND-IOP")
    assert iop.carried is not None and iop.carried.decision == "continue_with_monitoring"


def test_only_physicians_record_decisions_and_sign(practice, patient_id) -> None:
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        choice = decide_all(view)[0]
        with pytest.raises(UserFacingError, match="Only physicians"):
            record_decision(s, practice.admin, patient_id, choice)
        with pytest.raises(UserFacingError, match="Only physicians"):
            sign_review(s, practice.admin, patient_id, decide_all(view))
    assert status_of(practice, patient_id).state == "none"


def test_contraindicated_needs_an_override_reason(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=(), conditions=("abdominal aortic aneurysm",))
        view = run_review(s, pid)
    flag = view.flags[0].flag
    assert flag.severity == "contraindicated"
    with practice.db.session() as s:
        with pytest.raises(UserFacingError, match="override reason"):
            sign_review(s, practice.physician, pid, decide_all(view))
        with pytest.raises(UserFacingError, match="override reason"):
            record_decision(s, practice.physician, pid, decide_all(view, reason="   ")[0])
    signed = sign_now(practice, pid, reason="Vascular surgery cleared; repaired in 2019")
    decision = signed.flags[0].decision
    assert decision is not None
    assert decision.override_reason == "Vascular surgery cleared; repaired in 2019"


def test_holding_ketamine_on_a_contraindication_needs_no_override(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=(), conditions=("AVM",))
        view = run_review(s, pid)
        signed = sign_review(s, practice.physician, pid, decide_all(view, "hold_ketamine"))
    assert signed.flags[0].decision is not None
    assert signed.flags[0].decision.decision == "hold_ketamine"


def test_recorded_draft_decisions_are_used_at_signing(practice, patient_id) -> None:
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        for choice in decide_all(view, "adjust_protocol"):
            record_decision(s, practice.physician, patient_id, choice)
    with practice.db.session() as s:
        again = run_review(s, patient_id)
        assert again.draft_review_id is not None
        assert all(f.pending is not None for f in again.flags if f.needs_decision)
        signed = sign_review(s, practice.physician, patient_id)
    assert signed.review_id == again.draft_review_id
    assert {d.decision for d in signed.decisions} == {"adjust_protocol"}


def test_signing_refuses_a_chart_that_changed_after_opening(practice, patient_id) -> None:
    with practice.db.session() as s:
        view = run_review(s, patient_id)
    with practice.db.session() as s:
        s.add(PatientCondition(patient_id=patient_id, entered_text="glaucoma"))
    with practice.db.session() as s:
        with pytest.raises(UserFacingError, match="chart changed"):
            sign_review(s, practice.physician, patient_id, decide_all(view),
                        expected_fingerprint=view.fingerprint)


def test_unknown_decision_code_is_refused(practice, patient_id) -> None:
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        bad = DecisionInput(view.flags[0].flag.carry_forward_key, "ignore")
        with pytest.raises(UserFacingError, match="Choose a decision"):
            sign_review(s, practice.physician, patient_id, [bad])


def test_signing_and_decisions_are_audited_without_clinical_text(practice, patient_id) -> None:
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        record_decision(s, practice.physician, patient_id, decide_all(view)[0])
    signed = sign_now(practice, patient_id)
    with practice.db.session() as s:
        events = s.execute(
            select(AuditEvent).where(AuditEvent.patient_id == patient_id)
        ).scalars().all()
    actions = [e.action for e in events]
    assert audit_actions.INTERACTION_DECISION_RECORDED in actions
    assert actions[-1] == audit_actions.INTERACTION_REVIEW_SIGNED
    signed_event = events[-1]
    assert f"review {signed.review_id}" in signed_event.detail
    assert signed_event.user_name == practice.physician.user_name
    for event in events:
        text = event.detail.casefold()
        for clinical in ("ativan", "lorazepam", "anxiety", "watch sedation", "zoë"):
            assert clinical not in text


def test_roster_states_match_review_status(practice) -> None:
    with practice.db.session() as s:
        ids = [add_patient(s, mrn=f"KD-TEST-{n}") for n in range(5)]
    sign_now(practice, ids[0])
    sign_now(practice, ids[1])
    with practice.db.session() as s:
        s.add(PatientCondition(patient_id=ids[1], entered_text="hyperthyroidism"))
    with practice.db.session() as s:
        states = review_states_for(s, [*ids, 99999])
        expected = {pid: review_status(s, pid).state for pid in ids}
    assert states == {**expected, 99999: "none"}
    assert [states[pid] for pid in ids] == ["current", "stale", "none", "none", "none"]


def test_signed_snapshot_does_not_change_when_the_chart_does(practice, patient_id) -> None:
    signed = sign_now(practice, patient_id)
    with practice.db.session() as s:
        s.execute(select(PatientMedication)).scalar_one().entered_text = "Xanax 0.5 mg tid"
    with practice.db.session() as s:
        again = latest_signed_review(s, patient_id)
    assert again == signed


def test_interrupt_threshold_setting(practice) -> None:
    with practice.db.session() as s:
        assert interrupt_threshold(s) == "major"
        with pytest.raises(UserFacingError):
            set_setting(s, practice.admin, INTERRUPT_THRESHOLD_KEY, "moderate")
        with pytest.raises(UserFacingError, match="choose one of"):
            set_setting(s, practice.physician, INTERRUPT_THRESHOLD_KEY, "severe")
    with practice.db.session() as s:
        set_setting(s, practice.physician, INTERRUPT_THRESHOLD_KEY, "moderate")
    with practice.db.session() as s:
        assert get_setting(s, INTERRUPT_THRESHOLD_KEY) == "moderate"
        assert interrupt_threshold(s) == "moderate"
        last = s.execute(
            select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
    assert last.action == audit_actions.SETTING_CHANGED
    assert INTERRUPT_THRESHOLD_KEY in last.detail


def test_interruptive_flags_filters_by_threshold(practice) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, meds=("Ativan 0.5 mg daily", "lamotrigine 100 mg bid"),
                          conditions=("glaucoma",))
        flags = [f.flag for f in run_review(s, pid).flags]
    assert {f.severity for f in interruptive_flags(flags, "major")} == {"major"}
    assert {f.severity for f in interruptive_flags(flags, "moderate")} == {"major", "moderate"}
    assert len(interruptive_flags(flags, "minor")) == len(flags)


def test_reconfirming_a_carried_decision_unchanged_keeps_who_and_when(
    practice, patient_id
) -> None:
    first = sign_now(practice, patient_id)  # decide_all: continue, note "watch sedation"
    with practice.db.session() as s:
        s.add(PatientMedication(patient_id=patient_id, entered_text="omeprazole 20 mg daily"))
    second = sign_now(practice, patient_id)  # the screen sends the same choices again
    kept = {d.carry_forward_key: d for d in second.decisions}
    for old in first.decisions:
        assert kept[old.carry_forward_key].decided_at == old.decided_at
        assert kept[old.carry_forward_key].carried_from_review_id == first.review_id
    with practice.db.session() as s:
        s.add(PatientMedication(patient_id=patient_id, entered_text="cetirizine 10 mg daily"))
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        third = sign_review(s, practice.physician, patient_id,
                            decide_all(view, "adjust_protocol"))
    assert all(d.decision == "adjust_protocol" for d in third.decisions)
    assert all(d.carried_from_review_id is None for d in third.decisions)
    assert all(d.decided_at == third.signed_at for d in third.decisions)


def test_a_weight_saved_later_does_not_hide_the_blood_pressure_of_the_same_day(practice) -> None:
    """Defect 17: Demographics saves a weight-only vitals row; the review must still use the
    blood pressure (and heart rate) from the earlier reading, each with its own date."""
    from ketadesk.storage.patients.patients import add_vitals as save_vitals

    bp_time = NOW - timedelta(hours=3)
    with practice.db.session() as s:
        pid = add_patient(s, vitals=None, conditions=("hypertension",))
        save_vitals(s, practice.physician, pid, measured_at=bp_time - timedelta(days=30),
                    systolic=120, diastolic=80, heart_rate=60, weight_kg=70.0)
        save_vitals(s, practice.physician, pid, measured_at=bp_time,
                    systolic=168, diastolic=102, heart_rate=88)
        save_vitals(s, practice.physician, pid, measured_at=NOW - timedelta(minutes=5),
                    weight_kg=82.5)
    with practice.db.session() as s:
        inputs = current_inputs(s, pid)
        view = run_review(s, pid)
    used = inputs.latest_vitals
    assert used is not None and inputs.vitals is not None
    assert (used.systolic, used.diastolic, used.heart_rate, used.weight_kg) == (168, 102, 88, 82.5)
    assert used.bp_measured_at == bp_time and used.heart_rate_measured_at == bp_time
    assert used.weight_measured_at == NOW - timedelta(minutes=5)
    assert f"BP 168/102 mmHg ({bp_time.date().isoformat()})" in used.summary()
    assert "82.5 kg" in used.summary()
    # Hypertension is judged on the 168/102 reading, not flagged as "BP not recorded".
    rule_ids = [f.flag.rule_id for f in view.flags if f.flag.kind == "vital"]
    assert load_knowledge_base().bp_not_recorded.rule_id not in rule_ids
    assert rule_ids
    # The signed snapshot keeps each vital's own date.
    signed = sign_now(practice, pid)
    with practice.db.session() as s:
        latest = latest_signed_review(s, pid)
    assert latest is not None and latest.vitals is not None
    assert latest.vitals.bp_measured_at == bp_time
    assert latest.vitals.systolic == 168 and latest.vitals.weight_kg == 82.5
    assert signed is not None and status_of(practice, pid).state == "current"
    with practice.db.session() as s:
        states = review_states_for(s, [pid])
    assert states[pid] == "current"


def test_a_note_marked_for_the_patient_is_kept_with_the_signed_decision(
    practice, patient_id
) -> None:
    """Defect 7: the "for the patient" mark is stored with the signed decision, audited as a
    mark (never the note), carried forward with it, and refused on an empty note."""
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        benzo = next(f for f in view.flags if f.flag.rule_id == "DRUG-BENZODIAZEPINE")
        key = benzo.flag.carry_forward_key
        with pytest.raises(UserFacingError, match="marked for the patient but is empty"):
            record_decision(s, practice.physician, patient_id, DecisionInput(
                key, "continue_with_monitoring", note="  ", note_for_patient=True))
        signed = sign_review(
            s, practice.physician, patient_id,
            [DecisionInput(key, "continue_with_monitoring",
                           note="Take no lorazepam on dosing days.", note_for_patient=True)],
            expected_fingerprint=view.fingerprint, read_by_physician=view.not_checked,
        )
    decision = next(d for d in signed.decisions if d.carry_forward_key == key)
    assert decision.note_for_patient and decision.note == "Take no lorazepam on dosing days."
    with practice.db.session() as s:
        details = [e.detail for e in s.execute(select(AuditEvent)).scalars()]
        s.add(PatientMedication(patient_id=patient_id, entered_text="omeprazole 20 mg daily"))
    assert any("1 note for the patient" in d for d in details)
    assert not any("lorazepam on dosing" in d for d in details)
    with practice.db.session() as s:
        flags = run_review(s, patient_id).flags
    carried = next(f for f in flags if f.flag.carry_forward_key == key)
    assert carried.carried is not None and carried.carried.note_for_patient


def test_an_unmarked_note_stays_unmarked(practice, patient_id) -> None:
    signed = sign_now(practice, patient_id)
    assert signed.decisions and not any(d.note_for_patient for d in signed.decisions)
