"""``python -m ketadesk outcomes`` as a real subprocess against a real encrypted database and a
practice server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ketadesk.core.checkins import CheckInDraft, SymptomReport
from ketadesk.core.mrn import format_mrn
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes import outcomes
from tests.conftest import PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server."""
    return practice_on


def add_patient_with_outcomes(practice: Any) -> str:
    today = datetime.now(UTC).date()
    mrn = format_mrn(4321)
    with practice.db.session() as s:
        patient = Patient(
            mrn=mrn,
            first_name="Ñúñez",
            last_name="Łukasiewicz",
            dob=date(1975, 1, 2),
            state="NJ",
            status="active",
        )
        s.add(patient)
        s.flush()
        pid = patient.id
        outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", [2] * 8 + [0], today - timedelta(days=28)
        )
        outcomes.record_questionnaire(
            s, practice.admin, pid, "GAD-7", [1, None, 1, 1, 1, 1, 1], today - timedelta(days=28)
        )
        outcomes.record_questionnaire(s, practice.admin, pid, "PHQ-9", [1] * 9, today)
        outcomes.record_checkin(
            s,
            practice.physician,
            pid,
            CheckInDraft(
                today,
                "phone",
                "Dr. Rowan Quill",
                (SymptomReport("nausea", "mild"),),
                "as_prescribed",
                "Steady.",
            ),
        )
    return mrn


def test_outcomes_json(practice: Any) -> None:
    mrn = add_patient_with_outcomes(practice)
    result = run_ketadesk(
        *practice.db_option,
        "outcomes",
        "--patient",
        mrn.lower(),
        "--as",
        practice.name_of(PHYSICIAN),
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    forms = data["questionnaires"]
    assert [(f["instrument"], f["total"], f["band"], f["complete"]) for f in forms] == [
        ("PHQ-9", 16, "moderately severe", True),
        ("GAD-7", None, None, False),
        ("PHQ-9", 9, "mild", True),
    ]
    assert forms[1]["items"] == [1, None, 1, 1, 1, 1, 1]
    assert forms[2]["safety_alert"] is True and forms[2]["acknowledged_by"] is None
    assert data["checkins"][0]["mode"] == "phone"
    assert data["checkins"][0]["symptoms"] == [
        {"symptom": "nausea", "severity": "mild", "note": ""}
    ]
    assert data["monitoring"]["overdue"] == ["GAD-7"]  # only an incomplete GAD-7 so far


def test_outcomes_text_shows_the_urgent_alert(practice: Any) -> None:
    mrn = add_patient_with_outcomes(practice)
    result = run_ketadesk(
        *practice.db_option,
        "outcomes",
        "--patient",
        mrn,
        "--as",
        practice.name_of(PHYSICIAN),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "URGENT" in result.stdout and "988" in result.stdout
    assert "INCOMPLETE (not scored)" in result.stdout
    assert "Phone call" in result.stdout


def test_unknown_or_mistyped_mrn_is_one_line_error(practice: Any) -> None:
    for mrn, message in ((format_mrn(999), "No patient has the MRN"), ("KD-00000019", "mistyped")):
        result = run_ketadesk(
            *practice.db_option,
            "outcomes",
            "--patient",
            mrn,
            "--as",
            practice.name_of(PHYSICIAN),
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr
