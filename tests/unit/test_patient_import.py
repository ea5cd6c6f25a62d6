"""Applying a roster CSV import plan: all or nothing, skip-invalid, duplicates, progress."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.core.errors import UserFacingError
from ketadesk.core.patient_csv import read_patient_csv
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.patients.patient_import import import_patients


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = date(2026, 3, 15)
HEADER = "Last Name,First Name,Date of Birth,sex,state,county,phone,weight_kg"
GOOD = [
    "Ñúñez-Łukasiewicz,Zoë,1980-02-01,F,FL,Alachua,(352) 555-0101,61.5",
    "Quillon,Mateo,07/04/1975,M,NJ,Cape May,,",
    "Brightwater,Hana,1990-12-24,female,FL,Leon,,",
]
BAD = "Fairweather,Óscar,1985-13-40,M,TX,Nowhere,,"


def plan_of(*rows: str):
    return read_patient_csv(("\n".join([HEADER, *rows]) + "\n").encode(), today=TODAY)


def patient_count(practice) -> int:
    with practice.db.session() as s:
        return s.execute(select(func.count()).select_from(Patient)).scalar_one()


def test_good_file_imports_everything_with_mrns_and_weights(practice) -> None:
    with practice.db.session() as s:
        result = import_patients(s, practice.admin, plan_of(*GOOD))
    assert result.imported == 3 and len(set(result.new_mrns)) == 3
    with practice.db.session() as s:
        names = set(s.execute(select(Patient.first_name)).scalars())
        weights = s.execute(select(VitalSign.weight_kg)).scalars().all()
        actions = s.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert names == {"Zoë", "Mateo", "Hana"}
    assert weights == [61.5]
    imported = [d for a, d in actions if a == "patients_imported"]
    assert imported and "Zo" not in imported[0]


def test_bad_row_imports_nothing_unless_skipping(practice) -> None:
    plan = plan_of(GOOD[0], BAD, GOOD[1])
    assert plan.invalid_row_numbers == (3,)
    with pytest.raises(UserFacingError, match="nothing was imported"):
        with practice.db.session() as s:
            import_patients(s, practice.admin, plan)
    assert patient_count(practice) == 0
    with practice.db.session() as s:
        result = import_patients(s, practice.admin, plan, skip_invalid=True)
    assert result.imported == 2 and result.skipped_invalid_rows == (3,)
    assert patient_count(practice) == 2


def test_duplicates_of_stored_patients_reported_not_merged(practice) -> None:
    with practice.db.session() as s:
        first = import_patients(s, practice.admin, plan_of(GOOD[0]))
    again = plan_of("NUNEZ LUKASIEWICZ,zoe,02/01/1980,F,FL,Alachua,,", GOOD[2])
    with practice.db.session() as s:
        result = import_patients(s, practice.admin, again)
    assert [(d.row_number, d.existing_mrn) for d in result.duplicates_of_existing] == [
        (2, first.new_mrns[0])
    ]
    assert result.skipped_duplicate_rows == (2,) and result.imported == 1
    with practice.db.session() as s:
        result = import_patients(s, practice.admin, again, import_duplicates=True)
    assert result.imported == 2
    assert patient_count(practice) == 4


def test_interrupted_import_leaves_database_as_it_was(practice) -> None:
    rows = [
        f"Tester{chr(97 + i % 26)}{chr(97 + i // 26)},Hana,1990-01-01,F,FL,Leon,,"
        for i in range(250)
    ]
    plan = plan_of(*rows)
    assert len(plan.rows) == 250
    calls = []

    def progress(done: int, total: int) -> bool:
        calls.append(done)
        return done < 200

    with pytest.raises(UserFacingError, match="cancelled"):
        with practice.db.session() as s:
            import_patients(s, practice.admin, plan, progress=progress)
    assert calls == [100, 200]
    assert patient_count(practice) == 0

    class Crash(Exception):
        pass

    def crash(done: int, total: int) -> bool:
        raise Crash

    with pytest.raises(Crash), practice.db.session() as s:
        import_patients(s, practice.admin, plan, progress=crash)
    assert patient_count(practice) == 0


def test_dry_run_writes_nothing(practice) -> None:
    with practice.db.session() as s:
        result = import_patients(s, practice.admin, plan_of(*GOOD), dry_run=True)
    assert result.imported == 3 and result.dry_run
    assert patient_count(practice) == 0


def test_imported_patients_are_searchable(practice) -> None:
    from ketadesk.storage.roster.roster_query import RosterFilter, fetch_roster_page

    with practice.db.session() as s:
        fetch_roster_page(s, RosterFilter())  # index exists before the import
        import_patients(s, practice.admin, plan_of(*GOOD))
    with practice.db.session() as s:
        rows = fetch_roster_page(s, RosterFilter("zoe nunez"))
    assert [r.first_name for r in rows] == ["Zoë"]


def test_other_systems_record_number_is_kept_as_external_id(practice) -> None:
    from ketadesk.storage.roster import roster_query as rq

    plan = read_patient_csv(
        (
            b"Patient ID,Last Name,First Name,DOB,sex,state,county\n"
            b"ACME-00417,Quillon,Mateo,07/04/1975,M,NJ,Cape May\n"
            b",Brightwater,Hana,1990-12-24,female,FL,Leon\n"
        ),
        today=TODAY,
    )
    with practice.db.session() as s:
        import_patients(s, practice.admin, plan)
    with practice.db.session() as s:
        stored = dict(s.execute(select(Patient.first_name, Patient.external_id)).all())
        found = rq.fetch_roster_page(s, rq.RosterFilter(search_text="acme-0041"))
    assert stored == {"Mateo": "ACME-00417", "Hana": None}
    assert [r.first_name for r in found] == ["Mateo"]
    assert not stored["Mateo"].startswith("KD")


def test_the_emergency_contact_and_relationship_are_imported(practice) -> None:
    """Defect 16: the relationship column lands beside the emergency contact."""
    header = HEADER + ",Emergency Contact,Emergency Phone,Emergency Contact Relationship"
    row = GOOD[0] + ",Tomas Varga (husband),352-555-0102,spouse"
    plan = read_patient_csv(f"{header}\n{row}\n".encode(), today=TODAY)
    assert plan.problems == ()
    with practice.db.session() as s:
        import_patients(s, practice.admin, plan)
    with practice.db.session() as s:
        patient = s.execute(select(Patient)).scalar_one()
        assert (patient.emergency_contact_name, patient.emergency_contact_relationship) == (
            "Tomas Varga (husband)", "spouse"
        )
