"""``python -m ketadesk check-interactions`` run as a real subprocess (no database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "ketadesk", "check-interactions", *args],
        input=stdin, capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=120,
        check=False,
    )


PATIENT = {
    "medications": ["Klonopin 0.5 mg bid", "Percocet 5/325 prn", "sertraline 100 mg daily",
                    "foobarium 10 mg", "lorazapam 1 mg qhs"],
    "conditions": ["HTN", "mystery syndrome"],
    "vitals": {"systolic": 152, "diastolic": 94, "heart_rate": 80, "weight_kg": 72.5},
    "pregnant": False,
}


def test_object_in_object_out_from_stdin() -> None:
    proc = _run("--json", "-", stdin=json.dumps(PATIENT))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"flags", "unrecognized", "read_as", "kb_version"}
    assert out["unrecognized"] == ["foobarium 10 mg", "mystery syndrome"]
    severities = [f["severity"] for f in out["flags"]]
    assert severities[0] == "major"
    rules = {(f["drug"], f["class"]) for f in out["flags"]}
    assert ("oxycodone", "Opioid agonist") in rules
    assert ("clonazepam", "Benzodiazepine") in rules
    assert (None, "Blood pressure") in rules
    benzo = next(f for f in out["flags"] if f["drug"] == "clonazepam")
    assert "diazepam-equivalent" in benzo["title"]
    assert {"entered_as": "lorazapam 1 mg qhs", "generic": ["lorazepam"], "fuzzy": True,
            "kind": "medication", "route": "systemic"} in out["read_as"]
    htn = next(r for r in out["read_as"] if r["kind"] == "condition")
    assert htn["concept"] == "hypertension" and htn["context"] == "present"
    assert htn["code"] == "I10"
    assert not any(f["drug"] == "sertraline" for f in out["flags"])


def test_array_in_array_out_in_the_same_order(tmp_path: Path) -> None:
    items = [{"medications": ["Nardil 15 mg tid"]}, {}, {"pregnant": True}]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    proc = _run("--json", str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert isinstance(out, list) and len(out) == 3
    assert out[0]["flags"][0]["drug"] == "phenelzine"
    assert out[1]["flags"] == [] and out[1]["unrecognized"] == []
    assert out[2]["flags"][0]["severity"] == "contraindicated"
    assert out[2]["flags"][0]["drug"] is None


def test_bad_json_is_one_line_on_stderr_and_exit_1() -> None:
    proc = _run("--json", "-", stdin="{not json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not valid JSON" in lines[0]
    assert "Traceback" not in proc.stderr


def test_wrong_shapes_are_reported_with_the_item_number(tmp_path: Path) -> None:
    for payload, expected in (
        ('[{"medications": []}, {"medications": "Xanax"}]', "Item 2"),
        ('"just text"', "JSON object"),
        ('{"vitals": {"systolic": "high"}}', "systolic"),
        ('{"vitals": {"systolic": 500, "diastolic": 80}}', "between"),
    ):
        proc = _run("--json", "-", stdin=payload)
        assert proc.returncode == 1, payload
        assert len(proc.stderr.strip().splitlines()) == 1
        assert expected in proc.stderr
        assert proc.stdout == ""


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("--json", str(tmp_path / "absent.json"))
    assert proc.returncode == 1
    assert "not found" in proc.stderr


def test_needs_no_database_and_works_from_another_folder(tmp_path: Path) -> None:
    env_home = tmp_path / "home"
    env_home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "ketadesk", "check-interactions", "--json", "-"],
        input=json.dumps({"medications": ["Ativan 1 mg"]}), capture_output=True, text=True,
        cwd=tmp_path, timeout=120, check=False,
        env={**os.environ, "HOME": str(env_home), "PYTHONPATH": str(REPO),
             "XDG_DATA_HOME": str(env_home / "data")},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["read_as"][0]["generic"] == ["lorazepam"]
    assert not any(env_home.rglob("*.db")) and not any(tmp_path.glob("*.db"))


def test_conditions_are_read_in_context_and_age_is_used() -> None:
    payload = {"conditions": ["denies SI", "FHx of schizophrenia", "AUD in remission x 2 yrs",
                              "BPD"],
               "dob": "2010-01-15"}
    proc = _run("--json", "-", stdin=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["unrecognized"] == ["BPD"]
    contexts = {r["entered_as"]: r["context"] for r in out["read_as"] if r["kind"] == "condition"}
    assert contexts == {"denies SI": "negated", "FHx of schizophrenia": "family",
                        "AUD in remission x 2 yrs": "historical"}
    titles = [f["title"] for f in out["flags"]]
    assert any("under 18" in t for t in titles)
    assert not any(f["entered_as"] == "denies SI" for f in out["flags"])
