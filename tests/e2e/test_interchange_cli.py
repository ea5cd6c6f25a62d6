"""``export-fhir``, ``import-fhir`` and ``export-practice`` as real subprocesses."""

from __future__ import annotations

import json

from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice
from tests.e2e.cli_runner import run_ketadesk


def _with_patients(prepared, folder, count: int = 3):
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.security.database import PracticeDatabase

    path = copy_practice(prepared, folder)
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        populate_demo_patients(session, count, entered_by=PHYSICIAN, seed=7)
    db.close()
    return path


def test_export_all_then_import_the_folder_into_another_practice(prepared_practice, tmp_path):
    source = _with_patients(prepared_practice, tmp_path / "source")
    out = tmp_path / "bundles"
    login = ("--as", PHYSICIAN, "--password-stdin")
    exported = run_ketadesk("--db", str(source), "export-fhir", "--all", "--out", str(out),
                            *login, stdin=PASSWORD + "\n")
    assert exported.returncode == 0, exported.stderr
    assert "Exported 3 patients" in exported.stderr
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and all(n.startswith("KD-") and n.endswith(".fhir.json") for n in names)
    mrn = names[1].removesuffix(".fhir.json")

    one = tmp_path / "one.json"
    single = run_ketadesk("--db", str(source), "export-fhir", "--patient", mrn.lower(),
                          "--out", str(one), *login, stdin=PASSWORD + "\n")
    assert single.returncode == 0, single.stderr
    assert json.loads(one.read_bytes())["entry"][0]["resource"]["identifier"][0]["value"] == mrn

    target = copy_practice(prepared_practice, tmp_path / "target")
    args = ("--db", str(target), "import-fhir", str(out), *login)
    dry = run_ketadesk(*args, "--dry-run", stdin=PASSWORD + "\n")
    assert dry.returncode == 0, dry.stderr
    assert "Would import 3 patients" in dry.stderr
    done = run_ketadesk(*args, "--json", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == 3 and len(report["new_mrns"]) == 3
    assert report["vitals"] == 9 and report["problems"] == []


def test_a_malformed_file_imports_nothing_and_says_why(prepared_practice, tmp_path):
    target = copy_practice(prepared_practice, tmp_path / "db")
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [', encoding="utf-8")
    result = run_ketadesk("--db", str(target), "import-fhir", str(bad), "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert "Not readable: broken.json: the file is not valid JSON (line 1" in result.stderr
    assert "nothing was imported" in result.stderr


def test_practice_export_is_for_user_managers_only(prepared_practice, tmp_path):
    source = _with_patients(prepared_practice, tmp_path / "db", count=2)
    refused = run_ketadesk("--db", str(source), "export-practice", "--out", str(tmp_path / "x"),
                           "--as", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
    assert refused.returncode == 3
    assert "Only users who manage users may export the whole practice." in refused.stderr
    out = tmp_path / "leaving"
    done = run_ketadesk("--db", str(source), "export-practice", "--out", str(out),
                        "--as", PHYSICIAN, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "Exported 2 patients" in done.stderr
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["counts"]["patients"] == 2 and manifest["counts"]["users"] == 2
