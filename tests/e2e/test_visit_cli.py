"""``visit checkout`` / ``visit return``: patients go to a visit pack and come back, every record
type in both directions, through the real commands (run in process: the same parser and
handlers) against real encrypted databases."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.core.dose_log import DoseLogEntry
from ketadesk.models.audit import AuditEvent
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.outcomes import CheckIn, DoseBreachAlert, QuestionnaireResponse
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.models.visits import VisitLease
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.outcomes.dose_alerts import acknowledge_dose_alert
from ketadesk.storage.patients.patient_medications import add_medication, stop_medication
from ketadesk.storage.patients.patient_records import demographics_of
from ketadesk.storage.patients.patients import (
    add_allergy,
    add_condition,
    add_vitals,
    get_patient_record,
    remove_allergy,
    resolve_condition,
    update_demographics,
)
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.visits.visit_leases import patients_on_visit
from tests.conftest import PASSWORD, PHYSICIAN
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.visit_pack_data import (
    an_open_dose_alert,
    opened,
    patient_id,
    sign_fresh_review,
    sign_new_protocol_version,
    today,
)


def cli(mp: pytest.MonkeyPatch, capsys: Any, db: Path, *args: str, stdin: str = "") -> CliRun:
    return run_in_process(
        mp, capsys, db, *args, "--as", PHYSICIAN, "--password-stdin",
        stdin=stdin or PASSWORD + "\n",
    )


def check_out(mp: pytest.MonkeyPatch, capsys: Any, practice: Path, mrns: list[str],
              pack: Path) -> dict[str, Any]:
    done = cli(mp, capsys, practice, "visit", "checkout", "--patients", ",".join(mrns),
               "--out", str(pack), "--json")
    assert done.code == 0, done.err
    return dict(json.loads(done.out))


def return_pack(mp: pytest.MonkeyPatch, capsys: Any, practice: Path, pack: Path,
                *extra: str) -> dict[str, Any]:
    done = cli(mp, capsys, practice, "visit", "return", str(pack), "--json", *extra)
    assert done.code == 0, done.err
    return dict(json.loads(done.out))


def visit_work(pack: Path, mrns: list[str]) -> dict[str, Any]:
    """A home visit's work in the pack, through the services the app uses: new records of
    every kind, edits of every editable kind, and a removal."""
    made: dict[str, Any] = {}
    with opened(pack) as (db, physician), db.session() as s:
        pid = patient_id(s, mrns[0])
        chart = get_patient_record(s, physician, pid)
        update_demographics(
            s, physician, pid, dataclasses.replace(demographics_of(s.get(Patient, pid)),
                                                   phone="(813) 555-0142"),
            today=today(),
        )
        add_vitals(s, physician, pid, measured_at=datetime.now(UTC) - timedelta(minutes=30),
                   systolic=150, diastolic=95, heart_rate=88)
        stop_medication(s, physician, chart.medications[0].id, reason="patient_stopped")
        add_medication(s, physician, pid, "bupropion 150 mg daily")
        resolve_condition(s, physician, chart.conditions[0].id)
        add_condition(s, physician, pid, "generalized anxiety disorder")
        remove_allergy(s, physician, chart.allergies[0].id)
        add_allergy(s, physician, pid, "latex", "hives")
        phq = outcomes.record_questionnaire(s, physician, pid, "PHQ-9", [1] * 8 + [2], today())
        outcomes.acknowledge_safety_alert(s, physician, phq.id, "Safety plan reviewed at home.")
        outcomes.record_questionnaire(s, physician, pid, "GAD-7", [1] * 7, today())
        dose = outcomes.record_dose(
            s, physician, pid,
            DoseLogEntry(datetime.now(UTC) - timedelta(minutes=20), 10.0, 160, 100, 150, 95,
                         80, 82, True),
        )
        alert = an_open_dose_alert(s, pid)
        assert alert is not None, dose
        acknowledge_dose_alert(s, physician, alert, "Dose held; BP rechecked.")
        sign_fresh_review(s, physician, pid)
        made["protocol_version"] = sign_new_protocol_version(s, physician, pid)
    return made


def test_round_trip_of_every_record_type(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    out = check_out(monkeypatch, capsys, practice, mrns, pack)
    assert out["patients"] == 2 and out["records"] > 30

    # The practice remembers the lease; the roster/chart marker names who took them.
    with opened(practice) as (db, _), db.session() as s:
        ids = [patient_id(s, m) for m in mrns]
        markers = patients_on_visit(s)
        assert set(markers) == set(ids)
        assert "on a visit laptop since" in markers[ids[0]].words()
        assert markers[ids[0]].checked_out_by == PHYSICIAN
        office_counts = _counts(s)

    # The pack opens with the normal commands and holds only its patients.
    shown = cli(monkeypatch, capsys, pack, "outcomes", "--patient", mrns[0], "--json")
    assert shown.code == 0, shown.err
    assert len(json.loads(shown.out)["checkins"]) == 2
    with opened(pack) as (db, _), db.session() as s:
        assert s.execute(select(func.count()).select_from(Patient)).scalar_one() == 2
        assert db.visit_pack is not None and db.visit_pack.patient_count == 2
        assert "visit pack: 2 patients, checked out by Dr. Rowan Quill until" in (
            db.visit_pack.describe()
        )

    # A home visit: a check-in through the command, everything else through the services.
    added = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[1],
                "--systolic", "126", "--diastolic", "82", "--note", "Seen at home.")
    assert added.code == 0, added.err
    visit_work(pack, mrns)

    report = return_pack(monkeypatch, capsys, practice, pack)
    assert report["in_conflict"] == [] and not report["held_for_review"]
    added = dict(report["applied"]["added"])
    added.pop("review_decisions", None)  # as many as the chart's flags needed
    assert added == {
        "patient_medications": 1, "patient_conditions": 1, "patient_allergies": 1,
        "vital_signs": 2, "interaction_reviews": 1, "protocol_versions": 1, "checkins": 1,
        "questionnaire_responses": 2, "safety_alert_acks": 1, "dose_log": 1,
        "dose_breach_alerts": 1, "content_signatures": 3,
    }
    assert report["applied"]["edited"] == {
        "patients": 1, "patient_medications": 1, "patient_conditions": 1,
    }
    assert report["applied"]["removed"] == {"patient_allergies": 1}
    assert report["audit_events_appended"] > 10

    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrns[0])
        chart = get_patient_record(s, physician, pid)
        assert chart.demographics.phone == "(813) 555-0142"
        lines = {m.entered_text: m for m in chart.medications}
        assert not lines["sertraline 50 mg daily"].is_active
        assert lines["bupropion 150 mg daily"].is_active
        assert {c.entered_text: c.is_active for c in chart.conditions} == {
            "major depressive disorder": False, "generalized anxiety disorder": True,
        }
        assert [a.substance for a in chart.allergies] == ["latex"]
        assert (chart.vitals[-1].systolic, chart.vitals[-1].diastolic) == (150, 95)
        forms = outcomes.list_questionnaires(s, pid)
        assert any(f.needs_acknowledgement is False and f.safety_alert for f in forms)
        assert an_open_dose_alert(s, pid) is None
        signed = s.execute(
            select(ProtocolVersion.number).join(ProtocolVersion.protocol)
            .where(ProtocolVersion.status == "signed")
            .where(ProtocolVersion.protocol.has(patient_id=pid))
        ).scalars().all()
        assert sorted(signed) == [1, 2]
        other = patient_id(s, mrns[1])
        assert "Seen at home." in [c.notes for c in outcomes.list_checkins(s, other)]
        lease = s.execute(select(VisitLease)).scalar_one()
        assert lease.status == "returned" and lease.returned_by == PHYSICIAN
        assert patients_on_visit(s) == {}
        # The laptop's block is in the practice's trail, by the same user, with its times.
        block = s.execute(
            select(AuditEvent).where(AuditEvent.detail.like("laptop #%"))
        ).scalars().all()
        assert {e.action for e in block} >= {"checkin_recorded", "protocol_signed",
                                             "safety_alert_acknowledged"}
        assert {e.patient_id for e in block if e.patient_id is not None} <= {pid, other}
        after = _counts(s)
    with opened(practice) as (db, _):
        assert db.verify_audit_trail().is_intact
    assert after[CheckIn] == office_counts[CheckIn] + 1
    assert after[QuestionnaireResponse] == office_counts[QuestionnaireResponse] + 2
    assert after[InteractionReview] == office_counts[InteractionReview] + 1

    # Returning the same pack again changes nothing.
    again = return_pack(monkeypatch, capsys, practice, pack)
    assert again["applied"] == {"added": {}, "edited": {}, "removed": {}}
    assert again["in_conflict"] == [] and again["audit_events_appended"] == 0
    with opened(practice) as (db, _), db.session() as s:
        assert _counts(s) == after
    verified = cli(monkeypatch, capsys, practice, "verify-audit")
    assert verified.code == 0, verified.err


def _counts(s: Any) -> dict[Any, int]:
    return {
        model: s.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (CheckIn, QuestionnaireResponse, InteractionReview, DoseBreachAlert,
                      ProtocolVersion, Patient)
    }


def test_a_pack_refuses_what_needs_the_whole_practice(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, mrns[:1], pack)
    (tmp_path / "roster.csv").write_text(
        "first_name,last_name,dob,sex,state,county\nAna,Test,1980-01-02,female,FL,Hillsborough\n",
        encoding="utf-8",
    )
    for args in (
        ("backup", "--out", str(tmp_path / "copy.db")),
        ("visit", "checkout", "--patients", mrns[0], "--out", str(tmp_path / "p2.db")),
        ("user", "list"),
        ("import-patients", str(tmp_path / "roster.csv")),
    ):
        done = cli(monkeypatch, capsys, pack, *args)
        assert done.code != 0, args
        assert "visit pack" in done.err and "whole practice" in done.err, done.err
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "p2.db").exists()
    # A patient already on a laptop is not checked out twice.
    twice = cli(monkeypatch, capsys, practice, "visit", "checkout", "--patients", mrns[0],
                "--out", str(tmp_path / "p3.db"))
    assert twice.code != 0 and "Already on a visit laptop" in twice.err
    assert not (tmp_path / "p3.db").exists()


def test_wrong_password_for_the_pack_changes_nothing(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """The pack opens with the password it was checked out with: after the physician changed
    their practice password, a wrong pack password is refused in words and nothing changes;
    the right one (the second line on stdin) returns it."""
    from ketadesk.storage.security.users import change_own_password

    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, mrns[:1], pack)
    new_password = "a different horse staple"
    with opened(practice) as (db, physician):
        change_own_password(db, physician, PASSWORD, new_password)
    with opened(pack) as (db, physician), db.session() as s:
        add_vitals(s, physician, patient_id(s, mrns[0]), measured_at=datetime.now(UTC),
                   systolic=120, diastolic=80)
    done = cli(monkeypatch, capsys, practice, "visit", "return", str(pack),
               stdin=new_password + "\nnot the pack password\n")
    assert done.code != 0
    assert "did not open" in done.err and "Traceback" not in done.err
    db, _outcome = PracticeDatabase.unlock(practice, PHYSICIAN, new_password)
    try:
        with db.session() as s:
            assert s.execute(select(VisitLease.status)).scalar_one() == "out"
    finally:
        db.close()
    done = cli(monkeypatch, capsys, practice, "visit", "return", str(pack),
               stdin=new_password + "\n" + PASSWORD + "\n")
    assert done.code == 0, done.err
    assert "1 new records added" in done.out


def test_dry_run_reports_and_changes_nothing(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, mrns[:1], pack)
    done = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[0],
               "--systolic", "126", "--diastolic", "82")
    assert done.code == 0, done.err
    report = return_pack(monkeypatch, capsys, practice, pack, "--dry-run")
    assert report["dry_run"] and report["applied"]["added"]["checkins"] == 1
    text = cli(monkeypatch, capsys, practice, "visit", "return", str(pack), "--dry-run")
    assert "Dry run (nothing was changed)" in text.out
    with opened(practice) as (db, _), db.session() as s:
        assert s.execute(select(VisitLease.status)).scalar_one() == "out"
        assert len(outcomes.list_checkins(s, patient_id(s, mrns[0]))) == 2
