"""Compliance records and printed plans on a home visit, through ``visit checkout`` / ``visit
return`` (run in process) on real encrypted databases: what was signed at the office is in the
pack, and a consent signed, a PDMP look-up, a telemedicine record, a prescription issued,
voided and filled, and a plan printed in the patient's home reach the practice; the practice's
consent texts and credentials go to the laptop read-only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.core.prescription_checks import CredentialKind, TelemedicineBasis
from ketadesk.models.audit import AuditEvent
from ketadesk.models.compliance import (
    ConsentRecord,
    PdmpCheck,
    PrescriberCredential,
    Prescription,
    PrescriptionFill,
    TelemedicineRecord,
)
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.storage.compliance.consent import consent_templates, consents_of
from ketadesk.storage.compliance.credentials import save_credential
from ketadesk.storage.compliance.pdmp_checks import pdmp_checks_of
from ketadesk.storage.compliance.prescriptions import (
    prescriptions_of,
    record_fill,
    void_prescription,
)
from ketadesk.storage.compliance.telemedicine import record_telemedicine, telemedicine_records
from ketadesk.storage.security.content_signatures import prescription_hash
from tests.e2e.test_visit_cli import check_out, cli, return_pack
from tests.visit_pack_data import (
    add_compliance_history,
    issue_a_prescription,
    opened,
    patient_id,
    sign_fresh_review,
    sign_new_protocol_version,
    today,
)

_COUNTED = (ConsentRecord, PdmpCheck, TelemedicineRecord, Prescription, PrescriptionFill,
            SignedPlanContent, PrescriberCredential)


def _counts(s: Any) -> dict[Any, int]:
    return {m: s.execute(select(func.count()).select_from(m)).scalar_one() for m in _COUNTED}


def _by_uid(s: Any, model: Any) -> dict[str, Any]:
    return {row.uid: row for row in s.execute(select(model)).scalars()}


def test_compliance_records_and_printed_plans_travel_both_ways(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    mrn = mrns[0]
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        sign_fresh_review(s, physician, pid)
        office_rx = add_compliance_history(s, physician, pid)
        office_rx_uid = s.get(Prescription, office_rx).uid
        template_version = consent_templates(s)[-1].version
    office_plan = tmp_path / "office-plan.pdf"
    done = cli(monkeypatch, capsys, practice, "export-plan", "--patient", mrn,
               "--out", str(office_plan))
    assert done.code == 0, done.err
    with opened(practice) as (db, _), db.session() as s:
        office_uids = {model: set(_by_uid(s, model)) for model in _COUNTED[:-1]}
        assert all(office_uids.values())
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    check_out(monkeypatch, capsys, practice, [mrn], pack)

    # Office -> laptop: what was signed at the office is in the pack, as the office holds it,
    # and the plan printed at the office verifies on the laptop.
    with opened(pack) as (db, _), db.session() as s:
        assert {m: set(_by_uid(s, m)) for m in _COUNTED[:-1]} == office_uids
        pack_pid = patient_id(s, mrn)
        assert len(consents_of(s, pack_pid)) == 1 and len(pdmp_checks_of(s, pack_pid)) == 1
        assert len(telemedicine_records(s, pack_pid)) == 1
        [rx] = prescriptions_of(s, pack_pid)
        assert len(rx.fills) == 1 and rx.content_hash == prescription_hash(
            s.get(Prescription, rx.id))
        assert s.execute(select(func.count()).select_from(PrescriberCredential)).scalar_one() == 2
    verified = cli(monkeypatch, capsys, pack, "verify-plan", str(office_plan), "--json")
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["matches"] is True

    # The home visit: a PDMP look-up that could not be done and a consent signed on screen
    # (through the commands), a telemedicine record, the office's prescription voided, a new
    # protocol version signed, a new prescription issued and filled, its plan printed, and a
    # credential typed in on the laptop (the practice's own record: refused at return).
    done = cli(monkeypatch, capsys, pack, "pdmp", "record", "--patient", mrn, "--state", "FL",
               "--not-checked-reason", "No network at the patient's home.")
    assert done.code == 0, done.err
    done = cli(monkeypatch, capsys, pack, "consent", "record", "--patient", mrn,
               "--template", str(template_version), "--signed-on", today().isoformat(),
               "--on-screen")
    assert done.code == 0, done.err
    with opened(pack) as (db, physician), db.session() as s:
        pack_pid = patient_id(s, mrn)
        record_telemedicine(s, physician, pack_pid, basis=TelemedicineBasis.DEA_FLEXIBILITIES,
                            today=today(), description="Follow-up by video from home.")
        void_prescription(s, physician, s.execute(select(Prescription.id).where(
            Prescription.uid == office_rx_uid)).scalar_one(), "Dose changed at the visit.")
        sign_new_protocol_version(s, physician, pack_pid)
        new_rx = issue_a_prescription(s, physician, pack_pid)
        record_fill(s, physician, new_rx, filled_on=today(), today=today())
        new_rx_uid = s.get(Prescription, new_rx).uid
        save_credential(s, physician, user_name=physician.user_name,
                        kind=CredentialKind.STATE_LICENCE, state="NJ", number="25MA09999",
                        expires_on=today() + timedelta(days=300))
    laptop_plan = tmp_path / "laptop-plan.pdf"
    done = cli(monkeypatch, capsys, pack, "export-plan", "--patient", mrn,
               "--out", str(laptop_plan))
    assert done.code == 0, done.err

    with opened(practice) as (db, _), db.session() as s:
        before = _counts(s)
    report = return_pack(monkeypatch, capsys, practice, pack)
    assert report["in_conflict"] == [], report["in_conflict"]
    added = report["applied"]["added"]
    assert {k: added.get(k) for k in (
        "consent_records", "pdmp_checks", "telemedicine_records", "prescriptions",
        "prescription_fills", "signed_plan_contents", "protocol_versions",
    )} == {
        "consent_records": 1, "pdmp_checks": 1, "telemedicine_records": 1, "prescriptions": 1,
        "prescription_fills": 1, "signed_plan_contents": 1, "protocol_versions": 1,
    }
    assert added["content_signatures"] >= 2  # the protocol version and the prescription
    assert report["applied"]["edited"] == {"prescriptions": 1}
    assert [(r["table"], r["reason"]) for r in report["refused"]] == [
        ("prescriber_credentials", "read_only_at_office")
    ]
    assert "practice keeps this at the office" in report["refused"][0]["words"]
    text = cli(monkeypatch, capsys, practice, "visit", "return", str(pack), "--dry-run")
    assert "prescriber credential: changed on the visit laptop" in text.out

    # Laptop -> office: the records are the practice's now, with the laptop's audit events.
    with opened(practice) as (db, _), db.session() as s:
        after = _counts(s)
        assert after == {**before, ConsentRecord: before[ConsentRecord] + 1,
                         PdmpCheck: before[PdmpCheck] + 1,
                         TelemedicineRecord: before[TelemedicineRecord] + 1,
                         Prescription: before[Prescription] + 1,
                         PrescriptionFill: before[PrescriptionFill] + 1,
                         SignedPlanContent: before[SignedPlanContent] + 1}
        voided = _by_uid(s, Prescription)[office_rx_uid]
        assert voided.status == "void" and voided.void_reason == "Dose changed at the visit."
        issued = _by_uid(s, Prescription)[new_rx_uid]
        assert issued.patient_id == pid and issued.status == "issued"
        # Its hash covers its id in the practice, and the physician's signature covers that.
        assert issued.content_hash == prescription_hash(issued)
        assert [f.fill_number for f in issued.fills] == [0]
        assert {c.method for c in s.execute(select(ConsentRecord).where(
            ConsentRecord.patient_id == pid)).scalars()} == {"paper", "on_screen"}
        assert any(not c.consulted for c in pdmp_checks_of(s, pid))
        block = list(s.execute(
            select(AuditEvent).where(AuditEvent.detail.like("laptop #%"))).scalars())
        laptop_block = {e.action for e in block}
        # The laptop's plan and prescription events name the practice's protocol version.
        newest_version = s.execute(
            select(func.max(ProtocolVersion.id)).where(ProtocolVersion.status == "signed")
        ).scalar_one()
        printed = [e.detail for e in block if e.action == "plan_exported"]
        assert printed and f"(protocol version id {newest_version})" in printed[-1]
        issued = [e.detail for e in block if e.action == "prescription_issued"]
        assert issued and f"from protocol version {newest_version};" in issued[-1]
        assert laptop_block >= {"plan_exported", "consent_recorded", "pdmp_check_recorded",
                                "prescription_issued", "prescription_voided",
                                "prescription_fill_recorded", "telemedicine_recorded"}
    with opened(practice) as (db, _):
        signatures = db.content_signatures()
        assert signatures and all(c.is_valid for c in signatures)
        assert any(c.subject_kind == "prescription" for c in signatures)
    for plan in (office_plan, laptop_plan):
        verified = cli(monkeypatch, capsys, practice, "verify-plan", str(plan), "--json")
        assert verified.code == 0, verified.err
        assert json.loads(verified.out)["matches"] is True

    # Returning the same pack again changes nothing (the refusal is named again).
    again = return_pack(monkeypatch, capsys, practice, pack)
    assert again["applied"] == {"added": {}, "edited": {}, "removed": {}}
    assert again["in_conflict"] == [] and len(again["refused"]) == 1
    with opened(practice) as (db, _), db.session() as s:
        assert _counts(s) == after
    assert cli(monkeypatch, capsys, practice, "verify-audit").code == 0


def test_a_plan_printed_on_both_sides_is_one_plan(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """The same signed plan printed at the office after check-out and on the laptop has one
    content hash: the return finds the office's and adds nothing, nor asks."""
    practice, mrns = visit_practice
    with opened(practice) as (db, physician), db.session() as s:
        sign_fresh_review(s, physician, patient_id(s, mrns[0]))
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, mrns[:1], pack)
    for db_path, out in ((practice, "office.pdf"), (pack, "laptop.pdf")):
        done = cli(monkeypatch, capsys, db_path, "export-plan", "--patient", mrns[0],
                   "--out", str(tmp_path / out))
        assert done.code == 0, done.err
    report = return_pack(monkeypatch, capsys, practice, pack)
    assert report["in_conflict"] == []
    assert "signed_plan_contents" not in report["applied"]["added"]
    with opened(practice) as (db, _), db.session() as s:
        assert s.execute(select(func.count()).select_from(SignedPlanContent)).scalar_one() == 1
    verified = cli(monkeypatch, capsys, practice, "verify-plan", str(tmp_path / "laptop.pdf"))
    assert verified.code == 0, verified.err



def test_a_prescription_voided_on_both_sides_and_a_fill_recorded_on_both_wait(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """The prescription is the one compliance record edited after it is made (voided): voided
    at the office and on the laptop it waits for a physician, who keeps one side whole (a
    prescription is signed as a whole: never merged field by field). A refill recorded on
    both sides under one number waits too; nothing is decided silently."""
    practice, mrns = visit_practice
    mrn = mrns[0]
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        sign_fresh_review(s, physician, pid)
        rx_id = add_compliance_history(s, physician, pid)
        rx_uid = s.get(Prescription, rx_id).uid
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    with opened(pack) as (db, physician), db.session() as s:
        pack_rx = s.execute(select(Prescription.id).where(Prescription.uid == rx_uid)).scalar_one()
        record_fill(s, physician, pack_rx, filled_on=today(), today=today())
        void_prescription(s, physician, pack_rx, "Stopped at the home visit.")
    with opened(practice) as (db, physician), db.session() as s:
        record_fill(s, physician, rx_id, filled_on=today(), today=today())
        void_prescription(s, physician, rx_id, "Pharmacy reported a problem.")

    report = return_pack(monkeypatch, capsys, practice, pack)
    waiting = sorted((c["table"], c["reason"]) for c in report["in_conflict"])
    assert waiting == [("prescription_fills", "clashes"), ("prescriptions", "both_changed")]
    listed = cli(monkeypatch, capsys, practice, "visit", "conflicts", "--json")
    assert listed.code == 0, listed.err
    queue = {c["table"]: c for c in json.loads(listed.out)}
    rx_conflict = queue["prescriptions"]
    assert rx_conflict["record"] == "prescription" and rx_conflict["patient_mrn"] == mrn
    assert set(rx_conflict["differing_fields"]) >= {"void_reason"}

    fields = cli(monkeypatch, capsys, practice, "visit", "resolve", str(rx_conflict["id"]),
                 "--keep", "fields", "--fields", "void_reason")
    assert fields.code != 0 and "field by field" in fields.err
    kept = cli(monkeypatch, capsys, practice, "visit", "resolve", str(rx_conflict["id"]),
               "--keep", "visit")
    assert kept.code == 0, kept.err
    office = cli(monkeypatch, capsys, practice, "visit", "resolve",
                 str(queue["prescription_fills"]["id"]), "--keep", "office")
    assert office.code == 0, office.err
    with opened(practice) as (db, _), db.session() as s:
        rx = _by_uid(s, Prescription)[rx_uid]
        assert rx.void_reason == "Stopped at the home visit." and rx.status == "void"
        assert rx.content_hash == prescription_hash(rx)  # the signed part is unchanged
        assert [f.fill_number for f in rx.fills] == [0, 1]
        before = _counts(s)
    # Returned again: the physician's decisions stand; nothing is asked twice.
    again = return_pack(monkeypatch, capsys, practice, pack)
    assert again["in_conflict"] == [] and again["applied"] == {
        "added": {}, "edited": {}, "removed": {}}
    with opened(practice) as (db, _), db.session() as s:
        assert _counts(s) == before
    with opened(practice) as (db, _):
        assert all(c.is_valid for c in db.content_signatures())
