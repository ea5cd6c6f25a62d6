"""FHIR R4 export of a demo practice, validated by fhir.resources, imported into a fresh
practice and compared field by field; then the practice export and its manifest."""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.fhir_codes import fhir_codes
from ketadesk.core.fhir_reading import read_fhir_files
from ketadesk.models.audit import AuditEvent
from ketadesk.models.compliance import Prescription
from ketadesk.models.outcomes import QuestionnaireResponse
from ketadesk.models.patients import Patient
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice

DEMO_PATIENTS = 16


@pytest.fixture(scope="module")
def demo_practice_file(prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared practice with demo patients, reviews, protocols and outcomes (the demo
    command's own steps), plus a few chart entries the demo lacks: ICD-10-CM codes, a stopped
    medication with dose and start date, a middle name and an intersex patient."""
    from ketadesk.commands.demo import DEMO_STEPS
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.patients.patient_medications import add_medication, stop_medication
    from ketadesk.storage.patients.patients import add_condition, create_patient
    from ketadesk.storage.security.database import PracticeDatabase

    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("fhir-demo"))
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    physician = outcome.actor
    with db.session() as session:
        populate_demo_patients(session, DEMO_PATIENTS, entered_by=PHYSICIAN)
    for step in DEMO_STEPS:
        module_name, function_name = step.split(":")
        getattr(importlib.import_module(module_name), function_name)(db, physician)
    with db.session() as session:
        today = datetime.now(UTC).date()
        pid = create_patient(session, physician, PatientDemographics(
            first_name="Ulla", middle_name="Marie Anne", last_name="Sørensen",
            dob=date(1979, 5, 17), sex="intersex", state="NJ", county="Mercer",
            phone="(609) 555-0142", address_line1="12 Example Road", address_line2="Apt 3",
            city="Princeton", zip="08540",
        ), today=today).id
        add_condition(session, physician, pid, "Major depressive disorder, recurrent, moderate",
                      icd10="F33.1", concept_id="major_depressive_disorder")
        add_condition(session, physician, pid, "I10 since 2015")
        med = add_medication(session, physician, pid, "lorazepam", dose_text="1 mg",
                             frequency_text="at bedtime", start_date=date(2024, 2, 1))
        stop_medication(session, physician, med.id, reason="prescriber_stopped")
        add_medication(session, physician, pid, "zyxwv elixir 5 mL daily")
    db.close()
    return path


def _open(path: Path):
    from ketadesk.storage.security.database import PracticeDatabase

    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    return db, outcome.actor


def _chart(session, patient_id: int) -> dict[str, object]:
    from ketadesk.storage.patients.patient_records import load_patient, patient_record

    record = patient_record(load_patient(session, patient_id))
    forms = session.execute(
        select(QuestionnaireResponse).where(QuestionnaireResponse.patient_id == patient_id)
        .order_by(QuestionnaireResponse.taken_on, QuestionnaireResponse.instrument)
    ).scalars()
    return {
        "demographics": record.demographics,
        "medications": sorted(
            (m.entered_text, m.dose_text, m.frequency_text, m.start_date, m.is_active)
            for m in record.medications
        ),
        "conditions": sorted(
            (c.entered_text, c.icd10, c.concept_id, c.is_active) for c in record.conditions
        ),
        "vitals": [
            (v.measured_at, v.systolic, v.diastolic, v.heart_rate, v.weight_kg)
            for v in record.vitals
        ],
        "questionnaires": [
            (f.instrument, f.taken_on, f.answers_json, f.complete, f.total, f.band, f.safety_alert)
            for f in forms
        ],
    }


def test_round_trip_through_fhir_keeps_every_patient_field_by_field(
    demo_practice_file: Path, prepared_practice: Path, tmp_path: Path
) -> None:
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles
    from ketadesk.storage.interchange.fhir_import import import_fhir_reading

    source = copy_practice(demo_practice_file, tmp_path / "source")
    db, physician = _open(source)
    with db.session() as session:
        ids = all_patient_ids(session)
        summary = export_patient_bundles(session, physician, ids, tmp_path / "out")
        before = {
            p.mrn: _chart(session, p.id)
            for p in session.execute(select(Patient)).scalars()
        }
        prescriptions = session.execute(
            select(func.count()).select_from(Prescription)
        ).scalar_one()
    db.close()
    assert summary.patients == len(ids) == DEMO_PATIENTS + 1

    files = [(p.name, p.read_bytes()) for p in sorted((tmp_path / "out").iterdir())]
    reading = read_fhir_files(files, today=datetime.now(UTC).date())
    assert reading.problems == ()
    assert {s.reason for s in reading.skipped} <= {
        "not imported: questionnaire answers are read from the QuestionnaireResponse",
        "not imported: a treatment plan is signed again in KetaDesk, never copied from a file",
        "not imported: who signed what in the other system stays with that system's record",
        "not imported: prescriptions are issued and signed in KetaDesk, not imported",
    }
    assert reading.prescriptions_not_imported == prescriptions > 0  # the demo issues some

    target = copy_practice(prepared_practice, tmp_path / "target")
    db, physician = _open(target)
    with db.session() as session:
        result = import_fhir_reading(session, physician, reading)
    assert result.patients == len(ids) and result.duplicates == ()
    assert [n.entered_text for n in result.not_checked] == ["zyxwv elixir 5 mL daily"]
    with db.session() as session:
        after = {
            p.external_id: _chart(session, p.id)
            for p in session.execute(select(Patient)).scalars()
        }
    db.close()
    assert after.keys() == before.keys()
    for mrn, chart in before.items():
        for part, value in chart.items():
            assert after[mrn][part] == value, f"{mrn} {part} differs after the round trip"


def test_every_exported_resource_passes_the_library_and_uses_checked_codes(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        export_patient_bundles(session, physician, all_patient_ids(session), tmp_path / "out")
    db.close()
    codes = fhir_codes()
    known_loinc = {
        c.code for c in (codes.blood_pressure, codes.systolic, codes.diastolic, codes.heart_rate,
                         codes.body_weight, *codes.answer_codes)
    } | {c for i in codes.instruments.values() for c in (i.panel.code, i.total.code, *i.items)}
    kinds: set[str] = set()
    for path in (tmp_path / "out").iterdir():
        bundle = Bundle.model_validate_json(path.read_bytes())
        assert bundle.type == "collection"
        urls = {entry.fullUrl for entry in bundle.entry}
        for entry in bundle.entry:
            data = json.loads(entry.resource.model_dump_json())
            model = get_fhir_model_class(data["resourceType"])
            model.model_validate(data)  # each resource on its own, as a receiver reads it
            kinds.add(data["resourceType"])
            subject = data.get("subject") or data.get("patient")
            if subject:
                assert subject["reference"] in urls  # every reference resolves in the bundle
            text = entry.resource.model_dump_json()
            for coding in _codings(data):
                if coding.get("system") == codes.loinc:
                    assert coding["code"] in known_loinc, text[:200]
    assert kinds == {"Patient", "Condition", "MedicationStatement", "Observation",
                     "QuestionnaireResponse", "CarePlan", "Provenance", "MedicationRequest"}


def _codings(value: object):
    if isinstance(value, dict):
        if "code" in value and "system" in value:
            yield value
        for child in value.values():
            yield from _codings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _codings(child)


def test_care_plan_carries_the_dosing_calendar_and_provenance_names_the_signer(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    from ketadesk.core.dosing_calendar import dosing_calendar
    from ketadesk.storage.interchange.fhir_export import export_patient_bundles
    from ketadesk.storage.protocols.protocol_versions import active_signed_protocols

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        signed = active_signed_protocols(session)
        patient_id, version = sorted(signed.items())[0]
        summary = export_patient_bundles(session, physician, [patient_id], tmp_path / "out")
    db.close()
    bundle = json.loads(summary.files[0].read_bytes())
    resources = [e["resource"] for e in bundle["entry"]]
    plans = [r for r in resources if r["resourceType"] == "CarePlan" and r["status"] == "active"]
    assert len(plans) == 1
    weight = version.weight.kg if version.weight else None
    calendar = dosing_calendar(version.protocol, version.start_date, weight)
    activities = [a["detail"] for a in plans[0]["activity"]]
    assert [(a["scheduledPeriod"]["start"], a["dailyAmount"]["value"]) for a in activities] == [
        (s.date.isoformat(), s.dose_mg) for s in calendar
    ]
    provenance = [r for r in resources if r["resourceType"] == "Provenance"]
    plan_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is plans[0])
    signer = next(p for p in provenance if p["target"][0]["reference"] == plan_url)
    assert signer["agent"][0]["who"]["display"] == version.signed_by_full_name
    assert signer["agent"][0]["who"]["identifier"]["value"] == version.signed_by


def test_export_and_import_are_audited_with_counts_only(
    demo_practice_file: Path, prepared_practice: Path, tmp_path: Path
) -> None:
    from ketadesk.storage.interchange.fhir_export import export_patient_bundles
    from ketadesk.storage.interchange.fhir_import import import_fhir_reading

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        chosen = select(Patient).where(Patient.middle_name == "Marie Anne")
        patient = session.execute(chosen).scalar_one()
        export_patient_bundles(session, physician, [patient.id], tmp_path / "out")
        event = session.execute(
            select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
    db.close()
    assert (event.action, event.patient_id) == ("fhir_exported", patient.id)
    assert event.detail == f"1 of 1 patients, {_resource_count(tmp_path / 'out')} resources"

    files = [(p.name, p.read_bytes()) for p in (tmp_path / "out").iterdir()]
    db, physician = _open(copy_practice(prepared_practice, tmp_path / "fresh"))
    with db.session() as session:
        reading = read_fhir_files(files, today=datetime.now(UTC).date())
        import_fhir_reading(session, physician, reading)
        event = session.execute(
            select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
    db.close()
    assert event.action == "fhir_imported"
    assert event.detail == (
        "1 patients, 2 medications, 2 conditions, 0 vitals, 0 questionnaires imported from "
        "FHIR; 0 possible duplicates skipped; 0 resources skipped"
    )
    for words in ("Ulla", "Sørensen", "lorazepam", "zyxwv", "depressive"):
        assert words not in event.detail


def _resource_count(folder: Path) -> int:
    [path] = list(folder.iterdir())
    return len(json.loads(path.read_bytes())["entry"])


def test_practice_export_has_bundles_plans_audit_users_and_a_true_manifest(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    from ketadesk.core.errors import UserFacingError
    from ketadesk.core.permissions import Actor, Role
    from ketadesk.storage.interchange.practice_export import export_practice
    from ketadesk.storage.plans.plan_export import export_plans
    from ketadesk.storage.protocols.protocol_versions import active_signed_protocols

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        first = sorted(active_signed_protocols(session))[:1]
    (tmp_path / "printed").mkdir()
    export_plans(db, physician, first, tmp_path / "printed", workers=1, allow_stale_review=True)
    admin = Actor(99, "frontdesk", "Sam Frontdesk", Role.ADMIN, False)
    with pytest.raises(UserFacingError, match="manage users"):
        export_practice(db, admin, tmp_path / "refused")
    out = tmp_path / "leaving"
    summary = export_practice(db, physician, out)
    with db.session() as session:
        events = session.execute(
            select(func.count()).select_from(AuditEvent)
            .where(AuditEvent.action == "practice_exported")
        ).scalar_one()
    db.close()
    assert events == 1
    assert summary.patients == DEMO_PATIENTS + 1 and summary.plans == 1
    manifest = json.loads((out / "manifest.json").read_bytes())
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"manifest.json"}
    for name, entry in listed.items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    [pdf] = list((out / "plans").iterdir())
    assert pdf.read_bytes().startswith(b"%PDF")
    users = list(csv.DictReader((out / "users.csv").read_text(encoding="utf-8").splitlines()))
    assert {u["user_name"] for u in users} == {"drquill", "frontdesk"}
    text = (out / "users.csv").read_text(encoding="utf-8").lower()
    assert "argon2" not in text and "password" not in text and "$" not in text
    audit = list(csv.DictReader((out / "audit-trail.csv").read_text("utf-8").splitlines()))
    assert audit[0]["seq"] == "1" and all(row["row_hash"] for row in audit)
    with pytest.raises(UserFacingError, match="not empty"):
        db2, physician2 = _open(copy_practice(demo_practice_file, tmp_path / "db2"))
        try:
            export_practice(db2, physician2, out)
        finally:
            db2.close()


def test_fast_json_writer_gives_the_librarys_own_document(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    """KetaDesk writes bundles with core.fhir_json (the library's serializer is slow); for
    every patient of the demo practice the document must equal the library's own output (and
    each resource's elements come in the order the model declares them)."""
    from ketadesk.core.fhir_export_mapping import patient_bundle
    from ketadesk.core.fhir_json import fhir_json_bytes
    from ketadesk.storage.interchange.fhir_export import (
        all_patient_ids,
        export_context,
        patient_snapshots,
    )

    db, _physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        context = export_context(session)
        snapshots = patient_snapshots(session, all_patient_ids(session))
    db.close()
    for snapshot in snapshots:
        bundle = patient_bundle(snapshot, context)
        ours = json.loads(fhir_json_bytes(bundle))
        library = json.loads(bundle.model_dump_json(exclude_none=True))
        assert ours == library, snapshot.mrn
        for entry, written in zip(bundle.entry, ours["entry"], strict=True):
            # Elements in the order the library's model declares them (FHIR's own order).
            declared = [info.alias or name
                        for name, info in type(entry.resource).model_fields.items()]
            keys = list(written["resource"])[1:]
            assert keys == sorted(keys, key=declared.index), snapshot.mrn


def test_a_stopped_export_keeps_the_complete_bundles_and_audits_the_count(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        seen.append((done, total))
        return done < 3

    with db.session() as session:
        ids = all_patient_ids(session)
        summary = export_patient_bundles(
            session, physician, ids, tmp_path / "out", progress=progress
        )
    assert summary.stopped and summary.patients == 3
    with db.session() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "fhir_exported")
        ).scalar_one()
    db.close()
    assert seen == [(1, len(ids)), (2, len(ids)), (3, len(ids))]
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 3
    for path in files:
        Bundle.model_validate_json(path.read_bytes())
    assert event.detail.startswith(f"3 of {len(ids)} patients, ")


def test_bundles_written_on_worker_processes_equal_those_written_here(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    from ketadesk.storage.interchange.fhir_bundle_files import write_all
    from ketadesk.storage.interchange.fhir_export import (
        all_patient_ids,
        export_context,
        patient_snapshots,
    )

    db, _physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        context = export_context(session)
        snapshots = patient_snapshots(session, all_patient_ids(session))
    db.close()
    here = write_all([snapshots], context, _made(tmp_path / "here"), total=len(snapshots),
                     workers=1, progress=None)
    seen: list[int] = []
    there = write_all([snapshots[:9], snapshots[9:]], context, _made(tmp_path / "there"),
                      total=len(snapshots), workers=2,
                      progress=lambda done, total: seen.append(done) is None)
    assert (here.resources, here.stopped) == (there.resources, there.stopped)
    assert sorted(p.name for p in here.files) == sorted(p.name for p in there.files)
    for path in here.files:
        assert path.read_bytes() == (tmp_path / "there" / path.name).read_bytes()
    assert seen[-1] == len(snapshots)


def _made(folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    return folder


def _resources_in(folder: Path) -> int:
    return sum(len(Bundle.model_validate_json(p.read_bytes()).entry) for p in folder.iterdir())


def test_export_on_worker_processes_equals_the_export_here_file_for_file(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    """The export itself (reads, workers, audit) on two processes and in this one.
    (``test_bundles_written_on_worker_processes_equal_those_written_here`` compares the
    bytes for one export time.)"""
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        ids = all_patient_ids(session)
        here = export_patient_bundles(session, physician, ids, tmp_path / "here")
        there = export_patient_bundles(session, physician, ids, tmp_path / "there", workers=2,
                                       parallel_from=1)
    db.close()
    assert (here.patients, here.resources, here.stopped) == (
        there.patients, there.resources, there.stopped) == (len(ids), here.resources, False)
    names = sorted(p.name for p in (tmp_path / "here").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "there").iterdir())
    for name in names:  # resource for resource; only the export time differs
        ours, theirs = (json.loads((tmp_path / side / name).read_bytes())
                        for side in ("here", "there"))
        assert ours.pop("timestamp") <= theirs.pop("timestamp")
        assert ours == theirs, name


def test_a_stopped_worker_export_leaves_only_whole_files_and_audits_true_counts(
    demo_practice_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel on the worker path: the jobs not started are dropped, nothing is left
    half-written, and the audit event counts exactly the files and resources on disk."""
    from ketadesk.storage.interchange import fhir_bundle_files
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles

    db, physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    out = tmp_path / "out"
    with db.session() as session:
        ids = all_patient_ids(session)
        # Many small jobs, so most are still waiting when Cancel is pressed.
        monkeypatch.setattr(fhir_bundle_files, "CHUNK", 2)
        summary = export_patient_bundles(
            session, physician, ids, out, workers=2, parallel_from=1,
            progress=lambda done, total: False,  # Cancel pressed at the first progress
        )
    with db.session() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "fhir_exported")
        ).scalar_one()
    db.close()
    assert summary.stopped and 0 < summary.patients < len(ids)
    on_disk = sorted(out.iterdir())
    assert not [p for p in on_disk if not p.name.endswith(".fhir.json")]  # no .partial left
    assert sorted(summary.files) == on_disk
    assert _resources_in(out) == summary.resources
    assert event.detail == (
        f"{summary.patients} of {len(ids)} patients, {summary.resources} resources"
    )


def test_a_failing_worker_export_removes_half_written_files_and_reports_the_error(
    demo_practice_file: Path, tmp_path: Path
) -> None:
    import dataclasses

    from ketadesk.storage.interchange.fhir_bundle_files import write_all
    from ketadesk.storage.interchange.fhir_export import (
        all_patient_ids,
        export_context,
        patient_snapshots,
    )

    db, _physician = _open(copy_practice(demo_practice_file, tmp_path / "db"))
    with db.session() as session:
        context = export_context(session)
        snapshots = patient_snapshots(session, all_patient_ids(session))
    db.close()
    with_form = next(i for i, s in enumerate(snapshots) if s.questionnaires)
    form = snapshots[with_form].questionnaires[0]
    snapshots[with_form] = dataclasses.replace(snapshots[with_form], questionnaires=(
        dataclasses.replace(form, instrument_id="no-such-instrument"),
    ))
    folder = _made(tmp_path / "out")
    stale = folder / "OLD-1.fhir.json.partial"  # as a worker killed mid-file leaves it
    stale.write_bytes(b'{"resourceType": "Bun')
    with pytest.raises(KeyError):
        write_all([snapshots], context, folder, total=len(snapshots), workers=2,
                  progress=None, chunk=2)
    left = sorted(folder.iterdir())
    assert all(p.name.endswith(".fhir.json") for p in left)
    for path in left:
        Bundle.model_validate_json(path.read_bytes())


def test_resource_ids_are_the_standard_name_based_uuids() -> None:
    """The export names each resource with a version 5 UUID worked out without the uuid
    module (a million a large export); it must equal the standard one for any name."""
    import uuid

    from ketadesk.core.fhir_export_mapping import name_uuid

    names = ["", "ketadesk:0f3a:patient:1", "ketadesk:0f3a:questionnaire-panel:48213",
             "Sørensen ✓", *(f"ketadesk:practice:{kind}:{n}" for kind in ("bp", "hr")
                            for n in range(0, 5000, 7))]
    for name in names:
        assert name_uuid(name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name)), name
