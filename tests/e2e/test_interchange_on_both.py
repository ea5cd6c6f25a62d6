"""``export-practice`` and ``import-fhir`` on a practice file and on a practice server (in
process: the same parser and handlers): the same folder and the same patients on both, under
each user's own grants, audited."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, VitalSign
from tests.both_back_ends import run_on
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice


def _events(practice, action: str) -> list[tuple[str, str]]:
    with practice.db.session() as s:
        rows = s.execute(
            select(AuditEvent.user_name, AuditEvent.detail).where(AuditEvent.action == action)
        ).all()
    return [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def fhir_folder(prepared_practice, tmp_path_factory) -> Path:
    """Three synthetic patients' FHIR bundles, exported once from a practice file."""
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.interchange.fhir_export import all_patient_ids, export_patient_bundles
    from ketadesk.storage.security.database import PracticeDatabase

    folder = tmp_path_factory.mktemp("fhir-source")
    path = copy_practice(prepared_practice, folder / "db")
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        with db.session() as session:
            populate_demo_patients(session, 3, entered_by=PHYSICIAN, seed=7)
            export_patient_bundles(session, outcome.actor, all_patient_ids(session),
                                   folder / "bundles")
    finally:
        db.close()
    return folder / "bundles"


def test_import_fhir_then_export_the_practice(practice_on, fhir_folder, tmp_path, monkeypatch,
                                              capsys) -> None:
    import_args = ("import-fhir", str(fhir_folder), "--password-stdin", "--json")
    as_admin = run_on(monkeypatch, capsys, practice_on, *import_args, "--as", ADMIN,
                      stdin=PASSWORD + "\n")
    assert as_admin.code == 3, as_admin.err
    assert "Only physicians may import patient records" in as_admin.err
    dry = run_on(monkeypatch, capsys, practice_on, *import_args, "--dry-run", "--as", PHYSICIAN,
                 stdin=PASSWORD + "\n")
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["would_import"] == 3 and json.loads(dry.out)["imported"] == 0
    done = run_on(monkeypatch, capsys, practice_on, *import_args, "--as", PHYSICIAN,
                  stdin=PASSWORD + "\n")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["imported"] == 3 and report["vitals"] == 9 and report["problems"] == []
    with practice_on.db.session() as s:
        mrns = sorted(s.scalars(select(Patient.mrn)).all())
        vitals = s.scalar(select(func.count()).select_from(VitalSign))
    assert mrns == sorted(report["new_mrns"]) and vitals == 9
    physician = practice_on.name_of(PHYSICIAN)
    assert [who for who, _ in _events(practice_on, audit_actions.FHIR_IMPORTED)] == [physician]

    refused = run_on(monkeypatch, capsys, practice_on, "export-practice", "--out",
                     str(tmp_path / "x"), "--as", ADMIN, "--password-stdin",
                     stdin=PASSWORD + "\n")
    assert refused.code == 3
    assert "Only users who manage users may export the whole practice." in refused.err
    out = tmp_path / "leaving"
    exported = run_on(monkeypatch, capsys, practice_on, "export-practice", "--out", str(out),
                      "--as", PHYSICIAN, "--password-stdin", stdin=PASSWORD + "\n")
    assert exported.code == 0, exported.err
    assert "Exported 3 patients" in exported.err
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["exported_by"] == physician
    assert manifest["counts"]["patients"] == 3 and manifest["counts"]["users"] == 2
    names = sorted(f["path"] for f in manifest["files"])
    assert names == sorted([*(f"fhir/{m}.fhir.json" for m in mrns), "audit-trail.csv",
                            "users.csv"])
    with (out / "users.csv").open(encoding="utf-8", newline="") as handle:
        users = [(r["user_name"], r["role"], r["manages_users"]) for r in csv.DictReader(handle)]
    assert users == sorted([(physician, "physician", "True"),
                            (practice_on.name_of(ADMIN), "admin", "False")])
    with (out / "audit-trail.csv").open(encoding="utf-8", newline="") as handle:
        actions = [r["action"] for r in csv.DictReader(handle)]
    assert audit_actions.FHIR_IMPORTED in actions
    assert [who for who, _ in _events(practice_on, audit_actions.PRACTICE_EXPORTED)] == [
        physician
    ]
