"""Two workstations save the same chart: the second save is refused, never silent, and says
who saved and what is stored now (on a practice file and on a practice server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.patients import Patient
from ketadesk.storage.patients import patients as svc
from ketadesk.storage.patients.chart_versions import ChartChangedError
from tests.conftest import PASSWORD
from tests.workstations import front_desk_workstation

TODAY = date(2026, 3, 15)
DRAFT = PatientDemographics(
    first_name="Zoë", last_name="Ñúñez", dob=date(1980, 2, 1), sex="F", state="FL",
    county="Miami-Dade", phone="(305) 555-0142", email="zoe@example.org",
)


def _create(practice):
    with practice.db.session() as s:
        return svc.create_patient(s, practice.physician, DRAFT, today=TODAY)


def _save(db, actor, patient_id, draft, version, height_cm=None):
    with db.session() as s:
        return svc.update_demographics(
            s, actor, patient_id, draft, today=TODAY, expected_version=version,
            height_cm=height_cm,
        )


def test_versions_count_saves_and_name_the_saver(practice_on) -> None:
    record = _create(practice_on)
    assert (record.version, record.updated_by) == (1, practice_on.physician.user_name)
    saved = _save(practice_on.db, practice_on.physician, record.id,
                  replace(record.demographics, city="Tampa"), record.version)
    assert saved.version == 2
    # A save that changes nothing keeps the version.
    same = _save(practice_on.db, practice_on.physician, record.id, saved.demographics, 2)
    assert same.version == 2


def test_second_workstation_save_is_refused_with_the_stored_chart(practice_on) -> None:
    record = _create(practice_on)
    with front_desk_workstation(practice_on, PASSWORD) as (desk_db, desk):
        # Both opened version 1; the front desk saves first.
        theirs = _save(desk_db, desk, record.id,
                       replace(record.demographics, phone="(305) 555-0199"), record.version)
        assert theirs.version == 2
        with pytest.raises(ChartChangedError) as caught:
            _save(practice_on.db, practice_on.physician, record.id,
                  replace(record.demographics, email="rowan@example.org"), record.version)
    error = caught.value
    assert error.changed_by == "Sam Frontdesk"
    assert error.current.version == 2
    assert error.current.demographics.phone == "(305) 555-0199"
    assert error.current.demographics.email == "zoe@example.org"
    assert "Sam Frontdesk saved this patient's details while you were editing" in error.message
    with practice_on.db.read_session() as s:  # nothing of the refused save was stored
        row = s.execute(select(Patient.email, Patient.version).where(Patient.id == record.id)).one()
    assert tuple(row) == ("zoe@example.org", 2)
    # Saving again over the version now stored goes through, and keeps their phone.
    merged = replace(error.current.demographics, email="rowan@example.org")
    saved = _save(practice_on.db, practice_on.physician, record.id, merged, error.current.version)
    assert saved.version == 3
    assert (saved.demographics.phone, saved.demographics.email) == (
        "(305) 555-0199", "rowan@example.org",
    )
    assert saved.updated_by == practice_on.physician.user_name


def test_a_status_change_moves_the_version_on(practice_on) -> None:
    record = _create(practice_on)
    with practice_on.db.session() as s:
        changed = svc.change_status(s, practice_on.physician, record.id, "active", "Screened")
    assert changed.version == record.version + 1
    with pytest.raises(ChartChangedError) as caught:
        _save(practice_on.db, practice_on.physician, record.id,
              replace(record.demographics, city="Tampa"), record.version)
    assert caught.value.changed_by == "Dr. Rowan Quill"
