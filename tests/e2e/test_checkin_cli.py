"""``python -m ketadesk checkin add``: a check-in with blood pressure, recorded headless, then
read back through ``outcomes --json`` (in process: the same parser and handlers, no start-up)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ketadesk.core.demographics import PatientDemographics
from ketadesk.storage.patients.patients import create_patient
from tests.both_back_ends import run_on
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN


@pytest.fixture
def closed_practice(practice_on: Any) -> Any:
    """A practice file and a practice server (the commands log in on their own)."""
    return practice_on


def add_patient(practice: Any) -> str:
    with practice.db.session() as s:
        record = create_patient(
            s,
            practice.physician,
            PatientDemographics(
                first_name="Zoë", last_name="Checkin", dob=date(1980, 5, 6), sex="female",
                state="FL", county="Hillsborough",
            ),
            today=datetime.now(UTC).date(),
        )
    return record.mrn


def test_checkin_add_appears_in_outcomes(
    closed_practice: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    mrn = add_patient(closed_practice)
    at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    done = run_on(
        monkeypatch, capsys, closed_practice,
        "checkin", "add", "--patient", mrn.lower(), "--as", PHYSICIAN, "--password-stdin",
        "--systolic", "132", "--diastolic", "84", "--heart-rate", "71",
        "--note", "Seen at home; steady.", "--at", at.isoformat(),
        stdin=PASSWORD + "\n",
    )
    assert done.code == 0, done.err
    assert "BP 132/84 mmHg" in done.out
    shown = run_on(
        monkeypatch, capsys, closed_practice,
        "outcomes", "--patient", mrn, "--as", PHYSICIAN, "--password-stdin", "--json",
        stdin=PASSWORD + "\n",
    )
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    [checkin] = data["checkins"]
    assert checkin["mode"] == "home_visit"
    assert checkin["notes"] == "Seen at home; steady."
    assert checkin["date"] == at.astimezone().date().isoformat()
    [vitals] = data["vitals"]
    assert (vitals["systolic"], vitals["diastolic"], vitals["heart_rate"]) == (132, 84, 71)
    assert datetime.fromisoformat(vitals["measured_at"]) == at
    text = run_on(
        monkeypatch, capsys, closed_practice,
        "outcomes", "--patient", mrn, "--as", PHYSICIAN, "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert "132/84 mmHg  HR 71/min" in text.out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--systolic", "80", "--diastolic", "120"], "diastolic"),
        (["--systolic", "120", "--diastolic", "80", "--at", "next tuesday"], "--at"),
        (["--systolic", "120", "--diastolic", "80", "--at", "2999-01-01T10:00"], "future"),
        (["--systolic", "120", "--diastolic", "80", "--heart-rate", "900"], "heart rate"),
    ],
)
def test_checkin_add_refuses_bad_input_and_saves_nothing(
    closed_practice: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any,
    extra: list[str], words: str,
) -> None:
    mrn = add_patient(closed_practice)
    done = run_on(
        monkeypatch, capsys, closed_practice,
        "checkin", "add", "--patient", mrn, "--as", PHYSICIAN, "--password-stdin", *extra,
        stdin=PASSWORD + "\n",
    )
    assert done.code != 0
    assert words in done.err.lower() or words in done.err
    assert "Traceback" not in done.err
    shown = run_on(
        monkeypatch, capsys, closed_practice,
        "outcomes", "--patient", mrn, "--as", PHYSICIAN, "--password-stdin", "--json",
        stdin=PASSWORD + "\n",
    )
    data = json.loads(shown.out)
    assert data["checkins"] == [] and data["vitals"] == []


def test_checkin_add_needs_a_physician(
    closed_practice: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    mrn = add_patient(closed_practice)
    done = run_on(
        monkeypatch, capsys, closed_practice,
        "checkin", "add", "--patient", mrn, "--as", ADMIN, "--password-stdin",
        "--systolic", "120", "--diastolic", "80",
        stdin=PASSWORD + "\n",
    )
    assert done.code != 0 and "ketadesk:" in done.err
