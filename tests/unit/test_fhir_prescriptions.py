"""Issued prescriptions in the FHIR export (one MedicationRequest each, validated by
fhir.resources) and in the import (listed as not imported, never made into prescriptions or
medication lines), on real encrypted practice databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest
from sqlalchemy import func, select

from ketadesk.core.fhir_import_mapping import PRESCRIPTION_NOT_IMPORTED
from ketadesk.core.fhir_reading import read_fhir_files
from ketadesk.models.compliance import Prescription
from ketadesk.models.patients import PatientMedication
from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
from ketadesk.storage.compliance.prescriptions import (
    PrescriptionRequest,
    issue_prescription,
    record_fill,
    void_prescription,
)
from ketadesk.storage.interchange.fhir_export import export_patient_bundles
from ketadesk.storage.interchange.fhir_import import import_fhir_reading
from ketadesk.storage.plans.plan_document_builder import practice_database_id
from ketadesk.storage.security.database import PracticeDatabase
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.e2e.cli_runner import run_ketadesk
from tests.unit.test_prescription_storage import TODAY, ready_patient


def _issue(s: Any, practice: Any, pid: int, quantity: float, refills: int) -> Any:
    """Issue after a fresh look-up (Florida wants one after the previous prescription)."""
    record_pdmp_check(s, practice.admin, pid, state="FL", result="No concerns",
                      checked_at=datetime.now(UTC))
    return issue_prescription(s, practice.physician, pid, PrescriptionRequest(quantity, refills))


def _export(practice: Any, patient_id: int, folder: Path) -> dict[str, Any]:
    with practice.db.session() as s:
        summary = export_patient_bundles(s, practice.physician, [patient_id], folder)
    return dict(json.loads(summary.files[0].read_bytes()))


def _requests(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"]


def test_an_issued_prescription_is_a_valid_medication_request(practice_on, tmp_path) -> None:  # type: ignore[no-untyped-def]
    practice = practice_on
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=2, pharmacy="Demo Rx"))
        practice_id = practice_database_id(s)
    bundle = _export(practice, pid, tmp_path / "out")
    Bundle.model_validate(bundle)  # the whole bundle, as another system would read it
    [request] = _requests(bundle)
    MedicationRequest.model_validate(request)
    assert request["status"] == "active" and request["intent"] == "order"
    assert request["identifier"] == [{
        "use": "official", "system": f"urn:ketadesk:practice:{practice_id}:prescription",
        "value": str(rx.id),
    }]
    concept = request["medicationCodeableConcept"]
    assert concept == {"text": f"{rx.product}, {rx.strength_mg_per_unit:g} mg per "
                               f"{rx.unit_name}"}  # text only: no RxNorm code is invented
    patient_url = bundle["entry"][0]["fullUrl"]
    assert request["subject"] == {"reference": patient_url}
    assert datetime.fromisoformat(request["authoredOn"]) == rx.issued_at
    assert request["requester"]["display"] == practice.physician.full_name
    assert request["requester"]["identifier"]["value"] == practice.physician.user_name
    assert request["dosageInstruction"] == [{"text": rx.directions}]
    assert request["dispenseRequest"] == {
        "numberOfRepeatsAllowed": 2, "quantity": {"value": 30.0, "unit": rx.unit_name},
    }
    plans = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"}
    assert request["basedOn"][0]["reference"] in plans
    request_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is request)
    [signer] = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Provenance"
                and e["resource"]["target"][0]["reference"] == request_url]
    assert signer["agent"][0]["who"]["identifier"]["value"] == practice.physician.user_name


def test_voided_filled_and_unsigned_prescriptions(practice_on, tmp_path) -> None:  # type: ignore[no-untyped-def]
    practice = practice_on
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        voided = _issue(s, practice, pid, 30, 0)
        void_prescription(s, practice.physician, voided.id, "Wrong pharmacy")
        used = _issue(s, practice, pid, 30, 0)
        record_fill(s, practice.physician, used.id, filled_on=TODAY, today=TODAY)
        stopped = _issue(s, practice, pid, 30, 1)
        record_fill(s, practice.physician, stopped.id, filled_on=TODAY, today=TODAY)
        void_prescription(s, practice.physician, stopped.id, "Treatment ended")
        # A row nobody signed (as a draft would be) is no prescription to send anywhere.
        row = s.get(Prescription, used.id)
        assert row is not None
        unsigned = Prescription(**{
            c.name: getattr(row, c.name) for c in Prescription.__table__.columns
            if c.name not in ("id", "uid", "version", "created_at", "updated_at")
        })
        unsigned.content_hash = "0" * 64
        s.add(unsigned)
        s.flush()
        unsigned_id = unsigned.id
    status = {int(r["identifier"][0]["value"]): r["status"]
              for r in _requests(_export(practice, pid, tmp_path / "out"))}
    assert status == {voided.id: "cancelled", used.id: "completed", stopped.id: "stopped"}
    assert unsigned_id not in status


def test_reimported_prescriptions_are_listed_and_never_imported(
    practice, prepared_practice, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        _issue(s, practice, pid, 30, 1)
        voided = _issue(s, practice, pid, 20, 0)
        void_prescription(s, practice.physician, voided.id, "Entered for the wrong day")
    with practice.db.session() as s:
        export_patient_bundles(s, practice.physician, [pid], tmp_path / "out")
    files = [(p.name, p.read_bytes()) for p in (tmp_path / "out").iterdir()]
    reading = read_fhir_files(files, today=TODAY)
    assert reading.problems == ()
    assert reading.prescriptions_not_imported == 2
    assert reading.skipped_by_kind()["MedicationRequest"] == 2
    reasons = [p.reason for p in reading.skipped if p.kind == "MedicationRequest"]
    assert reasons == [f"not imported: {PRESCRIPTION_NOT_IMPORTED}"] * 2
    assert reasons[0] == ("not imported: prescriptions are issued and signed in KetaDesk, "
                          "not imported")

    db, outcome = PracticeDatabase.unlock(copy_practice(prepared_practice, tmp_path / "fresh"),
                                          PHYSICIAN, PASSWORD)
    try:
        with db.session() as s:
            result = import_fhir_reading(s, outcome.actor, reading)
        assert result.patients == 1 and result.prescriptions_not_imported == 2
        with db.session() as s:
            assert s.execute(select(func.count()).select_from(Prescription)).scalar_one() == 0
            medications = s.execute(select(PatientMedication.entered_text)).scalars().all()
        assert not any("ketamine" in m.lower() for m in medications)
    finally:
        db.close()


def test_another_systems_medication_request_is_still_a_medication_line() -> None:
    """Only KetaDesk's own prescriptions are held back: another system's order is what the
    patient takes, which the interaction review must see."""
    patient = {"resourceType": "Patient", "id": "p1",
               "name": [{"family": "Example", "given": ["Ada"]}], "birthDate": "1980-01-02",
               "gender": "female", "address": [{"state": "FL", "district": "Alachua"}]}
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "identifier": [{"system": "urn:other-ehr:rx", "value": "77"}],
             "medicationCodeableConcept": {"text": "sertraline 50 mg"},
             "subject": {"reference": "Patient/p1"}}
    text = "\n".join(json.dumps(r) for r in (patient, order)).encode()
    reading = read_fhir_files([("other.ndjson", text)], today=TODAY)
    assert reading.problems == () and reading.prescriptions_not_imported == 0
    assert [m.entered_text for m in reading.patients[0].medications] == ["sertraline 50 mg"]


def test_cli_export_includes_prescriptions_and_import_reports_them(
    practice, prepared_practice, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid, PrescriptionRequest(30, 1))
        from ketadesk.models.patients import Patient

        patient = s.get(Patient, pid)
        assert patient is not None
        mrn = patient.mrn
    practice.db.close()
    login = ("--as", PHYSICIAN, "--password-stdin")
    out = tmp_path / "one.fhir.json"
    exported = run_ketadesk("--db", str(practice.path), "export-fhir", "--patient", mrn,
                            "--out", str(out), *login, stdin=PASSWORD + "\n")
    assert exported.returncode == 0, exported.stderr
    [request] = _requests(json.loads(out.read_bytes()))
    assert request["identifier"][0]["value"] == str(rx.id)

    target = copy_practice(prepared_practice, tmp_path / "target")
    done = run_ketadesk("--db", str(target), "import-fhir", str(out), "--json", *login,
                        stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert ("1 prescription not imported: prescriptions are issued and signed in KetaDesk."
            in done.stderr)
    report = json.loads(done.stdout)
    assert report["imported"] == 1 and report["prescriptions_not_imported"] == 1
    assert report["skipped_by_kind"]["MedicationRequest"] == 1
