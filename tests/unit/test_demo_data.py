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
