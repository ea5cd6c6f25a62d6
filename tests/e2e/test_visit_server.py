"""Visit packs from a practice server: ``visit checkout`` reads the patients from the server as
the user checking out and records the lease there; the pack is the same encrypted file on the
laptop; ``visit return`` merges it into the server in one transaction under the returning
user's grants, and the server's audit chain and signatures still verify. A laptop record the
server's guards refuse to the returning user (an admin bringing back a physician's
prescription) waits in the conflict queue, in words, and a physician settles it.

Real commands (in process) on the real test cluster; one patient each, to stay quick."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.core.checkins import CheckInDraft
from ketadesk.models.audit import AuditEvent
from ketadesk.models.compliance import Prescription
from ketadesk.models.outcomes import CheckIn
from ketadesk.models.patients import Patient
from ketadesk.models.visits import VisitConflict, VisitLease
from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
from ketadesk.storage.compliance.prescriptions import void_prescription
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.patients.patient_records import demographics_of
from ketadesk.storage.patients.patients import update_demographics
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_leases import revoke_lease
from tests.conftest import PASSWORD
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.unit.signed_protocol_patients import patient_with_signed_protocol
from tests.visit_pack_data import (
    add_compliance_history,
    issue_a_prescription,
    patient_id,
    today,
)

pytestmark = pytest.mark.parametrize("practice_on", ["server"], indirect=True)


def _run(mp: pytest.MonkeyPatch, capsys: Any, practice: Any, user: str, stdin: str,
         *args: str) -> CliRun:
    return run_in_process(mp, capsys, None, *practice.db_option, *args, "--as", user,
                          "--password-stdin", stdin=stdin)


def _a_patient(practice: Any, last_name: str) -> str:
    start = datetime.now(UTC).date() - timedelta(days=15)
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, start, last_name=last_name)
        return str(s.get(Patient, pid).mrn)


def _on_the_laptop(pack: Path, user: str) -> tuple[PracticeDatabase, Any]:
    db, outcome = PracticeDatabase.unlock(pack, user, PASSWORD)
    return db, outcome.actor


def _set_phone(session: Any, actor: Any, pid: int, phone: str) -> None:
    current = demographics_of(session.get(Patient, pid))
    update_demographics(session, actor, pid, dataclasses.replace(current, phone=phone),
                        today=today())


def test_a_physician_checks_out_of_a_server_works_offline_and_returns_with_a_clash_settled(
    practice_on: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice = practice_on
    physician = practice.physician.user_name
    mrn = _a_patient(practice, "Serverpack")
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()

    done = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                "visit", "checkout", "--patients", mrn, "--out", str(pack), "--json")
    assert done.code == 0, done.err
    taken = json.loads(done.out)
    assert taken["patients"] == 1 and taken["opens_for"] == [physician]
    assert pack.is_file() and KeySlotFile.path_for(pack).is_file()  # the same encrypted file
    assert pack.read_bytes()[:16] != b"SQLite format 3\x00"
    with practice.db.read_session() as s:
        [lease] = s.execute(select(VisitLease)).scalars()
        assert (lease.pack_id, lease.checked_out_by, lease.status) == (
            taken["pack_id"], physician, "out"
        )

    # At the laptop, offline: a check-in, and the phone number changed.
    laptop, at_home = _on_the_laptop(pack, physician)
    try:
        with laptop.session() as s:
            pid = patient_id(s, mrn)
            outcomes.record_checkin(
                s, at_home, pid,
                CheckInDraft(today(), "home_visit", "Dr. Rowan Quill", (), "as_prescribed",
                             "Seen at home."),
            )
            _set_phone(s, at_home, pid, "(305) 555-0101")
    finally:
        laptop.close()
    # Meanwhile at the office, on the server: the same phone number, changed differently.
    with practice.db.session() as s:
        office_pid = patient_id(s, mrn)
        _set_phone(s, practice.physician, office_pid, "(305) 555-0202")

    back = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                "visit", "return", str(pack), "--json")
    assert back.code == 0, back.err
    report = json.loads(back.out)
    assert report["applied"]["added"].get("checkins") == 1
    [clash] = report["in_conflict"]
    assert (clash["table"], clash["reason"]) == ("patients", "both_changed")
    assert report["audit_events_appended"] > 0
    with practice.db.read_session() as s:
        assert s.execute(select(CheckIn.notes).where(CheckIn.patient_id == office_pid)
                         ).scalars().all() == ["Seen at home."]
        assert s.execute(select(VisitLease.status)).scalar_one() == "returned"
        block = s.execute(
            select(AuditEvent.detail).where(AuditEvent.detail.like("laptop #%"))
        ).scalars().all()
        assert block and all(physician not in d.split(":")[0] for d in block)

    listed = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                  "visit", "conflicts", "--json")
    [waiting] = json.loads(listed.out)
    settled = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                   "visit", "resolve", str(waiting["id"]), "--keep", "visit")
    assert settled.code == 0, settled.err
    with practice.db.read_session() as s:
        assert s.get(Patient, office_pid).phone.endswith("555-0101")
    verdict = practice.db.verify_audit_trail()  # what verify-audit checks: chain, signatures
    assert verdict.is_intact, verdict.describe()


def test_an_admin_returns_a_physicians_laptop_prescription_which_waits_for_the_physician(
    practice_on: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice = practice_on
    physician, admin = practice.physician.user_name, practice.admin.user_name
    mrn = _a_patient(practice, "Serverrx")
    with practice.db.session() as s:  # consent, licence, DEA, PDMP: what prescribing needs
        office_rx = add_compliance_history(s, practice.physician, patient_id(s, mrn))
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    checkout = ("visit", "checkout", "--patients", mrn, "--out", str(pack),
                "--physician", physician, "--json")

    # The physician's password is checked by the server (a log-in as them): a wrong one
    # writes nothing, anywhere.
    wrong = _run(monkeypatch, capsys, practice, admin, f"{PASSWORD}\nnot the password\n",
                 *checkout)
    assert wrong.code != 0
    assert f"not the password of {physician}" in wrong.err
    assert not pack.exists() and not KeySlotFile.path_for(pack).exists()

    done = _run(monkeypatch, capsys, practice, admin, f"{PASSWORD}\n{PASSWORD}\n", *checkout)
    assert done.code == 0, done.err
    assert json.loads(done.out)["opens_for"] == [admin, physician]

    # On the laptop the physician opens the pack with their own password, looks the patient
    # up in the PDMP, voids the office's prescription and issues a new one.
    laptop, at_home = _on_the_laptop(pack, physician)
    try:
        with laptop.session() as s:
            pid = patient_id(s, mrn)
            record_pdmp_check(s, at_home, pid, state="FL", result="Nothing of concern.",
                              checked_at=datetime.now(UTC))
            void_prescription(s, at_home, office_rx, "Dose changed at the visit.")
            issue_a_prescription(s, at_home, pid)
    finally:
        laptop.close()

    # The admin brings it back: the server lets only the prescriber issue a prescription, so
    # it waits for them, named in words; nothing is lost and the return does not fail.
    back = _run(monkeypatch, capsys, practice, admin, PASSWORD + "\n", "visit", "return",
                str(pack))
    assert back.code == 0, back.err
    assert "waits: prescription: refused by the practice server to the user who" in back.out
    with practice.db.read_session() as s:
        assert s.execute(select(Prescription.id)).scalars().all() == [office_rx]
        assert s.execute(select(VisitLease.status)).scalar_one() == "returned"
        waiting = {(t, r) for t, r in s.execute(select(VisitConflict.table_name,
                                                        VisitConflict.reason))}
    verdict = practice.db.verify_audit_trail()
    assert verdict.is_intact, verdict.describe()
    assert waiting == {("pdmp_checks", "server_refused"), ("prescriptions", "server_refused"),
                       ("content_signatures", "parent_waiting")}

    # The physician returns the same pack (it opens with their password too): what waited
    # for them is now theirs to bring back, under their own grants, and their laptop
    # signature is signed again with their own key on the server.
    again = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                 "visit", "return", str(pack), "--json")
    assert again.code == 0, again.err
    report = json.loads(again.out)
    assert report["in_conflict"] == []
    assert report["applied"]["added"] == {
        "pdmp_checks": 1, "prescriptions": 1, "content_signatures": 1
    }
    assert report["applied"]["edited"] == {"prescriptions": 1}  # the void
    with practice.db.read_session() as s:
        rows = {r.id: r for r in s.execute(select(Prescription)).scalars()}
        assert rows.pop(office_rx).voided_by == physician
        [issued] = rows.values()
        assert issued.prescriber == physician and issued.content_hash
        assert set(s.execute(select(VisitConflict.status)).scalars()) == {"resolved"}
        # The laptop's events, appended in the admin's name (a server has no practice key),
        # each say who did it on the laptop.
        by_physician = s.execute(select(AuditEvent.user_name).where(
            AuditEvent.detail.like(f"laptop #% by {physician}: %"))).scalars().all()
        assert by_physician and set(by_physician) == {admin}
    assert not [c for c in practice.db.content_signatures() if not c.is_valid]
    verified = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n", "verify-audit")
    assert verified.code == 0, verified.out + verified.err


def test_a_revoked_pack_is_held_on_the_server_until_a_physician_releases_it(
    practice_on: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice = practice_on
    physician = practice.physician.user_name
    mrn = _a_patient(practice, "Serverheld")
    pack = tmp_path / "visit.db"
    taken = check_out_patients(practice.db, practice.physician, [mrn], pack, PASSWORD)
    laptop, at_home = _on_the_laptop(pack, physician)
    try:
        with laptop.session() as s:
            _set_phone(s, at_home, patient_id(s, mrn), "(305) 555-0303")
    finally:
        laptop.close()
    with practice.db.session() as s:
        revoke_lease(s, practice.physician, taken.pack_id)

    held = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                "visit", "return", str(pack))
    assert held.code == 0, held.err
    assert f"was revoked by {physician}" in held.out and "nothing was applied" in held.out
    released = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                    "visit", "return", str(pack), "--release-revoked", "--json")
    assert released.code == 0, released.err
    report = json.loads(released.out)
    assert report["released_revoked"] and report["applied"]["edited"] == {"patients": 1}
    with practice.db.read_session() as s:
        assert s.get(Patient, patient_id(s, mrn)).phone.endswith("555-0303")
    leases = _run(monkeypatch, capsys, practice, physician, PASSWORD + "\n",
                  "visit", "leases", "--json")
    assert leases.code == 0, leases.err
    [lease] = json.loads(leases.out)
    assert (lease["pack_id"], lease["status"]) == (taken.pack_id, "returned")
    assert practice.db.verify_audit_trail().is_intact
