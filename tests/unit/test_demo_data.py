"""Demo patients are synthetic but internally consistent (city, county and state agree)."""

from __future__ import annotations

from datetime import UTC, datetime

from ketadesk.core.demographics import counties_for_state, validate_demographics
from ketadesk.models.patients import Patient
from ketadesk.storage.demo.demo_data import CITIES, populate_demo_patients
from ketadesk.storage.patients.patients import get_patient_record


def test_demo_addresses_are_consistent_and_valid(practice):
    with practice.db.session() as session:
        populate_demo_patients(session, 40, entered_by="drquill")
    city_county = {city: county for pairs in CITIES.values() for city, county in pairs}
    with practice.db.session() as session:
        patients = session.query(Patient).all()
        assert len(patients) == 40
        for patient in patients:
            assert patient.county == city_county[patient.city]
            assert patient.county in counties_for_state(patient.state)
        record = get_patient_record(session, practice.physician, patients[0].id)
    problems = validate_demographics(record.demographics, datetime.now(UTC).date())
    assert [p for p in problems if p.level == "error"] == []


def test_demo_has_signed_protocols_whose_review_went_stale_at_the_front_desk(practice):
    """Defect 6: the stale-review export path can be seen and tried in the demo."""
    from ketadesk.storage.demo import demo_protocols, demo_reviews
    from ketadesk.storage.plans.plan_review_gate import stale_review_plans

    with practice.db.session() as session:
        populate_demo_patients(session, 40, entered_by="drquill")
    demo_reviews.populate(practice.db, practice.physician)
    demo_protocols.populate(practice.db, practice.physician)
    with practice.db.session() as session:
        stale = stale_review_plans(session, None)
    assert len(stale) == demo_protocols.DEMO_STALE_AFTER_SIGNING
    assert all("the medication list changed" in item.problem for item in stale)


def test_a_patient_added_after_the_demo_patients_gets_the_next_id(practice_on):
    """On a server the demo patients are numbered from the id sequence, so the practice's
    own next patient does not collide with them (a file numbers on from the highest id)."""
    from datetime import date

    from ketadesk.core.demographics import PatientDemographics
    from ketadesk.storage.patients.patients import create_patient

    with practice_on.db.session() as session:
        populate_demo_patients(session, 3, entered_by=practice_on.physician.user_name)
    draft = PatientDemographics(
        first_name="Ada", last_name="Okafor", dob=date(1981, 4, 2), sex="female",
        state="FL", county="Hillsborough County", phone="(813) 555-0100",
    )
    with practice_on.db.session() as session:
        created = create_patient(session, practice_on.physician, draft, today=date(2026, 3, 15))
    with practice_on.db.read_session() as session:
        rows = session.query(Patient.id, Patient.mrn).order_by(Patient.id).all()
    assert len(rows) == 4 and len({mrn for _id, mrn in rows}) == 4
    assert created.id == rows[-1].id > max(row.id for row in rows[:3])
