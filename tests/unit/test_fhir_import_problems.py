"""Hand-written FHIR files from "another system": each bad one refused or reported in words,
good ones imported all or nothing, duplicates reported and never merged."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_reading import MAX_FILE_BYTES, read_fhir_files
from ketadesk.models.patients import Patient, PatientMedication, VitalSign
from ketadesk.storage.interchange.fhir_import import import_fhir_reading

TODAY = date(2026, 11, 30)
LOINC = "http://loinc.org"


def patient(pid: str = "p1", **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.999", "value": f"OLD-{pid}"}],
        "name": [{"family": "Brightwater", "given": ["Hana"]}],
        "gender": "female", "birthDate": "1981-04-12",
        "address": [{"line": ["5 Example Street"], "city": "Tampa", "state": "FL",
                     "district": "Hillsborough", "postalCode": "33602"}],
    }
    resource.update(changes)
    return resource


def heart_rate(value: float = 72, unit: str = "/min", subject: str = "Patient/p1") -> dict:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": subject}, "effectiveDateTime": "2026-10-01T09:30:00-04:00",
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
    }


def bundle(*resources: dict) -> bytes:
    return json.dumps({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }).encode()


def read(data: bytes, name: str = "other.json"):
    return read_fhir_files([(name, data)], today=TODAY)


def reasons(data: bytes) -> list[str]:
    return [p.describe() for p in read(data).problems]


def test_an_icd10_code_that_does_not_exist_is_refused_by_name() -> None:
    condition = {
        "resourceType": "Condition", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F99.99X"}],
                 "text": "mood trouble"},
    }
    [problem] = reasons(bundle(patient(), condition))
    assert "entry 2 (Condition)" in problem
    assert "'F99.99X' is not an ICD-10-CM code KetaDesk knows" in problem


def test_a_bad_answer_code_and_a_wrong_unit_are_refused_in_words() -> None:
    form = {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "subject": {"reference": "Patient/p1"}, "authored": "2026-10-01",
        "item": [{"linkId": "44250-9", "answer": [{"valueCoding": {
            "system": LOINC, "code": "LA9999-9"}}]}],
    }
    problems = reasons(bundle(patient(), form, heart_rate(unit="mmol/L")))
    assert any("answer code 'LA9999-9' is not one of the four LOINC answers" in p
               for p in problems)
    assert any("the heart rate is in 'mmol/L', not in /min or beats/minute" in p
               for p in problems)


def test_a_resource_about_a_patient_missing_from_the_file_is_refused() -> None:
    [problem] = reasons(bundle(patient(), heart_rate(subject="Patient/somebody-else")))
    assert "it is about patient 'Patient/somebody-else', who is not in the file" in problem


def test_unknown_types_are_refused_and_unkept_types_listed_as_skipped() -> None:
    encounter = {"resourceType": "Encounter", "status": "finished",
                 "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}}
    reading = read(bundle(patient(), {"resourceType": "Spaceship", "id": "x"}, encounter))
    assert [p.describe() for p in reading.problems] == [
        "other.json, entry 2 (Spaceship x): 'Spaceship' is not a FHIR R4 resource type"
    ]
    assert [p.describe() for p in reading.skipped] == [
        "other.json, entry 3 (Encounter): not imported: KetaDesk does not keep Encounter records"
    ]


def test_a_resource_the_library_rejects_is_reported_with_the_element() -> None:
    no_code = {"resourceType": "Observation", "status": "final",
               "subject": {"reference": "Patient/p1"}}
    [problem] = reasons(bundle(patient(), no_code))
    assert "code is required but missing" in problem


def test_malformed_json_says_where() -> None:
    [problem] = reasons(b'{"resourceType": "Bundle", "entry": [\n  {"resource": }\n]}')
    assert problem.startswith("other.json: the file is not valid JSON (line 2, column")


def test_a_50_mb_file_is_refused_before_it_is_read() -> None:
    huge = b'{"resourceType": "Bundle", "entry": [' + b" " * (50 * 1024 * 1024) + b"]}"
    assert len(huge) > MAX_FILE_BYTES
    [problem] = reasons(huge)
    assert "is 50.0 MB; KetaDesk reads FHIR files up to 25 MB" in problem


def test_a_patient_outside_florida_and_new_jersey_is_refused_in_the_forms_words() -> None:
    texan = patient(address=[{"city": "Austin", "state": "TX", "postalCode": "73301"}])
    [problem] = reasons(bundle(texan))
    assert problem == (
        "other.json, entry 1 (Patient p1): This practice treats patients in Florida and New "
        "Jersey only. County is required."
    )


def test_ndjson_with_type_and_id_references_is_read() -> None:
    lines = [json.dumps(patient()), json.dumps(heart_rate()), ""]
    reading = read("\n".join(lines).encode(), name="export.ndjson")
    assert reading.problems == ()
    [found] = reading.patients
    [vitals] = found.vitals.values()
    assert vitals.heart_rate == 72 and vitals.measured_at.isoformat() == "2026-10-01T13:30:00+00:00"


def test_a_weight_in_pounds_is_converted_to_kg() -> None:
    weight = heart_rate() | {
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "valueQuantity": {"value": 165, "unit": "lb", "code": "[lb_av]",
                          "system": "http://unitsofmeasure.org"},
    }
    [found] = read(bundle(patient(), weight)).patients
    assert [v.weight_kg for v in found.vitals.values()] == [74.8]


def _count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_file_with_one_bad_resource_imports_nothing(practice) -> None:
    reading = read(bundle(patient(), heart_rate(), heart_rate(value=400)))
    assert [p.describe() for p in reading.problems] == [
        "other.json, entry 3 (Observation): Heart rate must be 30-220 beats per minute."
    ]
    with practice.db.session() as session:
        with pytest.raises(UserFacingError, match="could not be read, so nothing was imported"):
            import_fhir_reading(session, practice.physician, reading)
    with practice.db.session() as session:
        assert _count(session, Patient) == 0 and _count(session, VitalSign) == 0


def test_only_physicians_import_clinical_records(practice) -> None:
    with practice.db.session() as session:
        with pytest.raises(UserFacingError, match="Only physicians may import"):
            import_fhir_reading(session, practice.admin, read(bundle(patient())))


def test_duplicates_are_reported_and_never_merged(practice) -> None:
    medication = {"resourceType": "MedicationStatement", "status": "active",
                  "medicationCodeableConcept": {"text": "sertraline 50 mg daily"},
                  "subject": {"reference": "Patient/p1"}}
    with practice.db.session() as session:
        first = import_fhir_reading(
            session, practice.physician, read(bundle(patient(), medication))
        )
    assert first.patients == 1 and first.not_checked == ()
    again = read(bundle(patient(), medication))
    with practice.db.session() as session:
        skipped = import_fhir_reading(session, practice.physician, again)
    assert skipped.patients == 0
    assert [(d.existing_mrn, d.where) for d in skipped.duplicates] == [
        (first.new_mrns[0], "other.json, entry 1 (Patient p1)")
    ]
    with practice.db.session() as session:
        kept = import_fhir_reading(session, practice.physician, again, import_duplicates=True)
    assert kept.patients == 1 and kept.new_mrns != first.new_mrns
    with practice.db.session() as session:
        assert _count(session, Patient) == 2
        rows = session.execute(select(PatientMedication)).scalars().all()
        assert [(m.source, m.entered_text) for m in rows] == [
            ("patient_reported", "sertraline 50 mg daily")
        ] * 2
        assert session.execute(select(Patient.external_id)).scalars().all() == ["OLD-p1"] * 2


def test_dry_run_writes_nothing(practice) -> None:
    with practice.db.session() as session:
        result = import_fhir_reading(
            session, practice.physician, read(bundle(patient(), heart_rate())), dry_run=True
        )
        session.rollback()
    assert result.patients == 1 and result.vitals == 1 and result.dry_run
    with practice.db.session() as session:
        assert _count(session, Patient) == 0


def test_a_blood_pressure_without_values_is_skipped_with_the_reason() -> None:
    absent = heart_rate() | {
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                       "dataAbsentReason": {"text": "patient refused"}}],
    }
    absent.pop("valueQuantity")
    reading = read(bundle(patient(), absent))
    assert reading.problems == ()
    assert [p.reason for p in reading.skipped] == [
        "not imported: it carries no value (the other system recorded why it is absent)"
    ]
    assert reading.patients[0].vitals == {}
