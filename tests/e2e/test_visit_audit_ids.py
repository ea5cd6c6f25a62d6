"""The laptop's audit block names the practice's records: the record ids in its events'
details and their patients are translated from the pack's ids to the practice's (through the
unique ids, as the merge does); an id with no practice record is written as the pack's, marked
``pack#N``. The pack's own chain is verified as it is; the practice's trail stays intact."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.models.audit import AuditEvent
from ketadesk.models.outcomes import CheckIn
from ketadesk.models.patients import PatientAllergy
from ketadesk.storage.patients.patients import add_allergy, remove_allergy
from ketadesk.storage.security.audit_log import AuditFilter, find_events
from ketadesk.storage.visits.visit_audit_ids import practice_detail
from tests.e2e.test_visit_cli import check_out, cli, return_pack
from tests.visit_pack_data import opened, patient_id


def test_laptop_events_name_the_practices_records_and_patients(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, mrns[:1], pack)

    # On the laptop: a check-in, an allergy added and removed again (it never reaches the
    # practice), and a carried allergy removed.
    done = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[0],
               "--systolic", "124", "--diastolic", "80", "--note", "Seen at home.")
    assert done.code == 0, done.err
    with opened(pack) as (db, physician):
        with db.session() as s:
            pid = patient_id(s, mrns[0])
            laptop_checkin = s.execute(
                select(CheckIn.id).where(CheckIn.notes == "Seen at home.")
            ).scalar_one()
            carried_allergy = s.execute(
                select(PatientAllergy.id).where(PatientAllergy.patient_id == pid)
            ).scalar_one()
            passing = add_allergy(s, physician, pid, "latex", "hives").id
            remove_allergy(s, physician, passing)
            remove_allergy(s, physician, carried_allergy)
        assert db.verify_audit_trail().is_intact
    with opened(practice) as (db, _), db.session() as s:
        other = s.get(CheckIn, laptop_checkin)  # the same number names another check-in here
        assert other is not None and other.notes != "Seen at home."

    report = return_pack(monkeypatch, capsys, practice, pack)
    assert report["in_conflict"] == [] and report["audit_events_appended"] > 0

    with opened(practice) as (db, _), db.session() as s:
        pid = patient_id(s, mrns[0])
        merged = s.execute(
            select(CheckIn.id, CheckIn.patient_id).where(CheckIn.notes == "Seen at home.")
        ).one()
        assert merged.patient_id == pid and merged.id != laptop_checkin
        block = {
            e.detail.split(": ", 1)[1]: e
            for e in s.execute(
                select(AuditEvent).where(AuditEvent.detail.like("laptop #%"))
            ).scalars()
        }
        recorded = next(d for d in block if d.startswith("check-in "))
        assert recorded.startswith(f"check-in {merged.id} on "), recorded
        assert block[recorded].patient_id == pid
        assert f"allergy {carried_allergy} removed" in block
        assert block[f"allergy {carried_allergy} removed"].patient_id == pid
        assert f"allergy pack#{passing} added" in block
        assert f"allergy pack#{passing} removed" in block

        # The audit viewer's query (and its CSV) show the practice's patient for them.
        rows = find_events(s, AuditFilter(patient_id=pid))
        laptop_rows = [r for r in rows if r.detail.startswith("laptop #")]
        assert laptop_rows and {r.patient_mrn for r in laptop_rows} == {mrns[0]}
        assert any(r.detail.endswith(recorded) for r in laptop_rows)
        assert not any(
            r.detail.startswith("laptop #")
            for r in find_events(s, AuditFilter(patient_id=patient_id(s, mrns[1])))
        )
    with opened(practice) as (db, _):
        assert db.verify_audit_trail().is_intact
    verified = cli(monkeypatch, capsys, practice, "verify-audit")
    assert verified.code == 0, verified.err
    again = return_pack(monkeypatch, capsys, practice, pack)
    assert again["audit_events_appended"] == 0
    assert json.dumps(again["in_conflict"]) == "[]"


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("check-in 12 on 2026-12-01 (home)", "check-in 112 on 2026-12-01 (home)"),
        ("PHQ-9 7 of 2026-12-01: item 9 alert acknowledged",
         "PHQ-9 107 of 2026-12-01: item 9 alert acknowledged"),
        ("protocol 3 version 2; hash abc", "protocol 103 version 2; hash abc"),
        ("review 4; kb 2026.1; 3 flags", "review pack#4; kb 2026.1; 3 flags"),
        ("dose log 9: bp alert acknowledged", "dose log 109: bp alert acknowledged"),
        ("prescription 5: fill 2 on 2026-12-01", "prescription pack#5: fill 2 on 2026-12-01"),
        ("consent template version 3 (id 5)", "consent template version 3 (id 5)"),
        ("demographics: phone", "demographics: phone"),
    ],
)
def test_detail_ids_are_translated_or_marked(detail: str, expected: str) -> None:
    known = {"checkins": 12, "questionnaire_responses": 7, "patient_protocols": 3,
             "dose_log": 9}

    def office_id_of(table: str, pack_id: int) -> int | None:
        return pack_id + 100 if known.get(table) == pack_id else None

    assert practice_detail(detail, office_id_of) == expected
    assert not re.search(r"pack#\d+", practice_detail("user drquill role physician",
                                                      office_id_of))
