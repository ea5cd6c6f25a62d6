"""The patient chart service against a real encrypted practice database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import is_valid_mrn
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.patients import patients as svc
from ketadesk.storage.patients.patient_medications import (
    add_medication,
    stop_medication,
    verify_medication,
)


@pytest.fixture
def practice(practice_on):
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = date(2026, 3, 15)
DRAFT = PatientDemographics(
    first_name="Zoë",
    last_name="Ñúñez-Łukasiewicz",
    dob=date(1980, 2, 1),
    sex="F",
    state="florida",
    county="miami dade county",
    phone="305.555.0142",
    email="zoe@EXAMPLE.org",
)


def create(practice, draft=DRAFT, **kw):
    with practice.db.session() as s:
        return svc.create_patient(s, practice.physician, draft, today=TODAY, **kw)


def audit_rows(practice):
    with practice.db.session() as s:
        return [
            (e.action, e.patient_id, e.detail)
            for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
        ]


def test_create_normalises_generates_mrn_and_audits_without_names(practice) -> None:
    record = create(practice, height_cm=168.0, weight_kg=61.5)
    assert is_valid_mrn(record.mrn)
    d = record.demographics
    assert (d.first_name, d.state, d.county, d.phone) == (
        "Zoë",
        "FL",
        "Miami-Dade",
        "(305) 555-0142",
    )
    assert d.email == "zoe@example.org"
    assert record.status == "screening"
    assert record.height_cm == 168.0
    assert record.latest_weight_kg == 61.5
    second = create(practice, replace(DRAFT, first_name="Mateo", last_name="Quillon"))
    assert second.mrn != record.mrn and is_valid_mrn(second.mrn)
    created = [r for r in audit_rows(practice) if r[0] == audit_actions.PATIENT_CREATED]
    assert [r[1] for r in created] == [record.id, second.id]
    for _, _, detail in audit_rows(practice):
        assert "Zo" not in detail and "ñez" not in detail.lower()


def test_validation_errors_name_every_field(practice) -> None:
    bad = replace(DRAFT, first_name="", state="TX", phone="12")
    with pytest.raises(svc.DemographicsInvalidError) as caught:
        create(practice, bad)
    fields = {p.field for p in caught.value.problems}
    assert {"first_name", "state", "phone"} <= fields
    assert "Florida and New Jersey" in " ".join(p.message for p in caught.value.problems)


def test_minor_needs_confirmation(practice) -> None:
    minor = replace(DRAFT, dob=date(2012, 5, 5))
    with pytest.raises(svc.DemographicsInvalidError) as caught:
        create(practice, minor)
    assert caught.value.problems[0].level == "confirm"
    assert create(practice, minor, confirmed_minor=True).demographics.dob == date(2012, 5, 5)


def test_duplicate_same_folded_name_and_dob(practice) -> None:
    first = create(practice)
    with pytest.raises(svc.PossibleDuplicateError) as caught:
        create(practice, replace(DRAFT, first_name="zoe", last_name="Nunez Lukasiewicz"))
    assert caught.value.mrns == (first.mrn,)
    other = create(practice, replace(DRAFT, first_name="ZOË"), allow_duplicate=True)
    assert other.mrn != first.mrn


def test_get_record_audits_view_and_update_lists_field_names(practice) -> None:
    record = create(practice)
    with practice.db.session() as s:
        svc.get_patient_record(s, practice.admin, record.id)
    with practice.db.session() as s:
        updated = svc.update_demographics(
            s,
            practice.admin,
            record.id,
            replace(record.demographics, city="Gainesville", phone="(352) 555-0101"),
            today=TODAY,
            height_cm=170.0,
        )
    assert updated.demographics.city == "Gainesville"
    events = audit_rows(practice)
    assert (audit_actions.PATIENT_VIEWED, record.id, "") in events
    update = [e for e in events if e[0] == audit_actions.PATIENT_UPDATED][-1]
    assert update[2] == "demographics: phone, city, height_cm"


def test_search_columns_follow_updates(practice) -> None:
    from ketadesk.storage.roster.roster_query import RosterFilter, fetch_roster_page

    record = create(practice)
    with practice.db.session() as s:
        assert [r.patient_id for r in fetch_roster_page(s, RosterFilter("luka"))] == [record.id]
        svc.update_demographics(
            s,
            practice.physician,
            record.id,
            replace(record.demographics, last_name="Brightwater"),
            today=TODAY,
        )
    with practice.db.session() as s:
        assert fetch_roster_page(s, RosterFilter("luka")) == []
        assert [r.patient_id for r in fetch_roster_page(s, RosterFilter("bright zo"))] == [
            record.id
        ]


def test_medications_kept_as_typed_and_permissions(practice) -> None:
    record = create(practice)
    typed = "  Ativan 1 mg at bedtime (½ tab if groggy)"
    with practice.db.session() as s:
        med = add_medication(s, practice.admin, record.id, typed, dose_text="1 mg")
    assert med.entered_text == typed
    assert med.source == "patient_reported" and med.entered_by == practice.admin.user_name
    with practice.db.session() as s, pytest.raises(UserFacingError, match="physicians"):
        add_medication(s, practice.admin, record.id, "sertraline", source="verified")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="physicians"):
        verify_medication(s, practice.admin, med.id)
    with practice.db.session() as s:
        verified = verify_medication(s, practice.physician, med.id)
    assert verified.is_verified and verified.verified_by == practice.physician.user_name
    with practice.db.session() as s, pytest.raises(UserFacingError, match="physicians"):
        stop_medication(s, practice.admin, med.id, reason="patient_stopped")
    with practice.db.session() as s:
        stop_medication(s, practice.physician, med.id, reason="patient_stopped")
    with practice.db.session() as s:
        chart = svc.get_patient_record(s, practice.physician, record.id)
    assert chart.medications[0].entered_text == typed and chart.active_medications == ()


def test_medication_text_must_not_be_blank(practice) -> None:
    record = create(practice)
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Type the medication"):
        add_medication(s, practice.physician, record.id, "   ")


def test_conditions_allergies_and_suggestions(practice) -> None:
    record = create(practice)
    with practice.db.session() as s:
        svc.add_condition(s, practice.physician, record.id, "treatment-resistant depression")
        c = svc.add_condition(s, practice.physician, record.id, "hypertension")
        svc.add_allergy(s, practice.physician, record.id, "penicillin", "hives")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="physicians"):
        svc.add_condition(s, practice.admin, record.id, "migraine")
    with practice.db.session() as s:
        svc.resolve_condition(s, practice.physician, c.id)
        assert set(svc.condition_suggestions(s)) == {
            "treatment-resistant depression",
            "hypertension",
        }
        chart = svc.get_patient_record(s, practice.physician, record.id)
    assert [(x.entered_text, x.is_active) for x in chart.conditions] == [
        ("treatment-resistant depression", True),
        ("hypertension", False),
    ]
    assert chart.allergies[0].reaction == "hives"


def test_vitals_checks_ranges_and_time(practice) -> None:
    record = create(practice)
    now = datetime(2026, 3, 15, 15, 0, tzinfo=UTC)
    with practice.db.session() as s:
        v = svc.add_vitals(
            s,
            practice.physician,
            record.id,
            measured_at=now,
            systolic=128,
            diastolic=82,
            heart_rate=70,
            weight_kg=70.2,
            now=now,
        )
    assert (v.systolic, v.diastolic, v.entered_by) == (128, 82, practice.physician.user_name)
    with practice.db.session() as s, pytest.raises(UserFacingError, match="swapped"):
        svc.add_vitals(
            s, practice.physician, record.id, measured_at=now, systolic=80, diastolic=120, now=now
        )
    with practice.db.session() as s, pytest.raises(UserFacingError, match="future"):
        svc.add_vitals(
            s,
            practice.physician,
            record.id,
            measured_at=now + timedelta(hours=2),
            heart_rate=70,
            now=now,
        )
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Weight must be"):
        svc.add_vitals(s, practice.physician, record.id, measured_at=now, weight_kg=700.0, now=now)


def test_status_change_needs_reason_and_physician(practice) -> None:
    record = create(practice)
    with practice.db.session() as s, pytest.raises(UserFacingError, match="reason"):
        svc.change_status(s, practice.physician, record.id, "active", "   ")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="physicians"):
        svc.change_status(s, practice.admin, record.id, "active", "screening complete")
    with practice.db.session() as s:
        chart = svc.change_status(s, practice.physician, record.id, "active", "screening complete")
    assert chart.status == "active"
    assert chart.status_changes[-1].reason == "screening complete"
    assert ("patient_updated", record.id, "status: screening -> active") in audit_rows(practice)


def test_stopping_a_medication_records_who_when_why_and_audits_no_free_text(practice) -> None:
    record = create(practice)
    with practice.db.session() as s:
        ativan = add_medication(s, practice.physician, record.id, "Ativan 1 mg at bedtime")
        odd = add_medication(s, practice.physician, record.id, "Grandma's sleep tea (Pt: Lina)")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Choose why"):
        stop_medication(s, practice.admin, ativan.id, reason="")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="short note"):
        stop_medication(s, practice.admin, ativan.id, reason="other", note="  ")
    moment = datetime(2026, 3, 16, 14, 5, tzinfo=UTC)
    with practice.db.session() as s:
        stopped = stop_medication(
            s, practice.admin, ativan.id, reason="entered_in_error",
            note="Pt says never took it; ask Dr Q", now=moment,
        )
        stop_medication(s, practice.admin, odd.id, reason="other", note="Lina stopped it")
    assert (stopped.stopped_by, stopped.stopped_at, stopped.stop_reason) == (
        practice.admin.user_name, moment, "entered_in_error"
    )
    with practice.db.session() as s:
        saved = {m.id: m for m in svc.get_patient_record(s, practice.physician, record.id)
                 .medications}
    assert saved[ativan.id].stop_note == "Pt says never took it; ask Dr Q"
    assert saved[odd.id].stopped_by == practice.admin.user_name and not saved[odd.id].is_active
    details = [d for a, _, d in audit_rows(practice) if "stopped" in d]
    assert details == [
        "medication stopped: lorazepam (reason: entered in error)",
        "medication stopped: unrecognised line (reason: other)",
    ]
    every_detail = " ".join(d for _, _, d in audit_rows(practice))
    for private in ("Ativan", "Grandma", "Lina", "never took", "ask Dr"):
        assert private not in every_detail
    with practice.db.session() as s, pytest.raises(UserFacingError, match="already stopped"):
        stop_medication(s, practice.physician, ativan.id, reason="replaced")


def test_conditions_keep_their_code_and_concept(practice) -> None:
    record = create(practice)
    with practice.db.session() as s:
        picked = svc.add_condition(s, practice.physician, record.id, "hx of Psychotic disorder",
                                   "F20", "psychosis")
        typed = svc.add_condition(s, practice.physician, record.id, "I10 since 2015")
        plain = svc.add_condition(s, practice.physician, record.id, "migraine w/o aura")
        denied = svc.add_condition(s, practice.physician, record.id, "denies Suicidal ideation",
                                   "R45.851", "suicidal_ideation")
        family = svc.add_condition(s, practice.physician, record.id, "FHx F31.9")
        chart = svc.get_patient_record(s, practice.physician, record.id)
    assert (picked.icd10, picked.concept_id) == ("F20", "psychosis")
    assert (typed.icd10, typed.concept_id) == ("I10", "hypertension")
    assert (plain.icd10, plain.concept_id) == (None, None)  # read by the review, not coded
    # Denied or a relative's: not the patient's problem, so no code is stored.
    assert (denied.icd10, denied.concept_id) == (None, None)
    assert (family.icd10, family.concept_id) == (None, None)
    assert [(c.icd10, c.concept_id) for c in chart.conditions] == [
        ("F20", "psychosis"), ("I10", "hypertension"), (None, None), (None, None), (None, None),
    ]
