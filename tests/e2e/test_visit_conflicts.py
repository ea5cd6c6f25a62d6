"""Conflicts: a record changed both at the office and on the visit laptop waits for a physician
(every editable record type), two protocol versions signed on both sides never replace each
other, and a physician settles each one: keep office, keep visit, or chosen fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.core.dose_log import DoseLogEntry
from ketadesk.core.errors import UserFacingError
from ketadesk.models.base import Base
from ketadesk.models.interaction_reviews import InteractionReview, ReviewDecision
from ketadesk.models.outcomes import DoseBreachAlert
from ketadesk.models.patients import Patient, PatientAllergy, PatientCondition, PatientMedication
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.visits import VisitConflict
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.visits.visit_conflicts import list_conflicts, resolve_conflict
from tests.conftest import copy_practice
from tests.e2e.test_visit_cli import check_out, cli, return_pack
from tests.visit_pack_data import (
    an_open_dose_alert,
    make_visit_practice,
    opened,
    patient_id,
    sign_new_protocol_version,
)

# (model, column, office value, visit value): one edit on each side of each editable type.
EDITS: tuple[tuple[type[Base], str, str, str], ...] = (
    (Patient, "phone", "(813) 555-0100", "(813) 555-0199"),
    (PatientMedication, "frequency_text", "twice daily", "at bedtime"),
    (PatientCondition, "icd10", "F33.1", "F33.2"),
    (PatientAllergy, "reaction", "hives", "anaphylaxis"),
    (DoseBreachAlert, "note", "Called the patient.", "Rechecked BP at home."),
    (PatientProtocol, "discontinued_reason", "Office note", "Visit note"),
    (ProtocolVersion, "template_name", "Office template", "Visit template"),
    (InteractionReview, "created_by", "office-user", "visit-user"),
    (ReviewDecision, "note", "Office decision note", "Visit decision note"),
)


@pytest.fixture(scope="module")
def conflict_practice_files(prepared_practice: Path, tmp_path_factory: Any) -> tuple[Path, str]:
    """One patient with a history, an open dose alert and a decision on their review."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("conflict-practice"))
    [mrn] = make_visit_practice(path, patients=1, weeks=1)
    with opened(path) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        outcomes.record_dose(
            s, physician, pid,
            DoseLogEntry(datetime.now(UTC) - timedelta(hours=3), 10.0, 165, 100, 150, 95, 80,
                         82, True),
        )
        assert an_open_dose_alert(s, pid) is not None
        review = s.execute(
            select(InteractionReview).where(InteractionReview.patient_id == pid)
        ).scalars().first()
        review.decisions.append(
            ReviewDecision(
                rule_id="test-rule", carry_forward_key="test-key", severity="moderate",
                decision="continue_with_monitoring", note="", decided_by="drquill",
                decided_at=datetime.now(UTC),
            )
        )
    return path, mrn


@pytest.fixture
def conflict_practice(
    conflict_practice_files: tuple[Path, str], tmp_path: Path
) -> tuple[Path, str]:
    path, mrn = conflict_practice_files
    return copy_practice(path, tmp_path / "practice"), mrn


def edit_each(path: Path, mrn: str, side: int) -> None:
    """Change one field of one record of every editable type (an ORM edit, as the services
    make them: the record's version goes up)."""
    with opened(path) as (db, _), db.session() as s:
        pid = patient_id(s, mrn)
        for model, column, *values in EDITS:
            row = _row_of(s, model, pid)
            before = row.version
            setattr(row, column, values[side])
            s.flush()
            assert row.version == before + 1, model


def _row_of(s: Any, model: type[Base], pid: int) -> Any:
    if model is Patient:
        return s.get(Patient, pid)
    if model is ProtocolVersion:
        return s.execute(
            select(ProtocolVersion).join(PatientProtocol)
            .where(PatientProtocol.patient_id == pid).order_by(ProtocolVersion.id)
        ).scalars().first()
    if model is ReviewDecision:
        return s.execute(
            select(ReviewDecision).join(InteractionReview)
            .where(InteractionReview.patient_id == pid).order_by(ReviewDecision.id)
        ).scalars().first()
    return s.execute(
        select(model).where(model.patient_id == pid).order_by(model.id)  # type: ignore[attr-defined]
    ).scalars().first()


def test_a_conflict_on_each_editable_type_waits_and_is_resolved(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrn = conflict_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    edit_each(practice, mrn, 0)
    edit_each(pack, mrn, 1)

    report = return_pack(monkeypatch, capsys, practice, pack)
    waiting = {(c["table"], c["reason"]) for c in report["in_conflict"]}
    assert waiting == {(model.__tablename__, "both_changed") for model, *_ in EDITS}
    assert report["applied"]["edited"] == {}

    listed = cli(monkeypatch, capsys, practice, "visit", "conflicts", "--json")
    assert listed.code == 0, listed.err
    queue = json.loads(listed.out)
    assert len(queue) == len(EDITS)
    by_table = {c["table"]: c for c in queue}
    for model, column, office_value, visit_value in EDITS:
        entry = by_table[model.__tablename__]
        assert entry["patient_mrn"] == mrn
        assert entry["differing_fields"] == [column]
        assert entry["office"][column] == office_value
        assert entry["visit"][column] == visit_value
    text = cli(monkeypatch, capsys, practice, "visit", "conflicts")
    assert "changed both at the office and on the visit laptop" in text.out

    # The office's copies are untouched while they wait; a second return queues nothing new.
    again = return_pack(monkeypatch, capsys, practice, pack)
    assert len(again["in_conflict"]) == len(EDITS)
    with opened(practice) as (db, _), db.session() as s:
        pid = patient_id(s, mrn)
        for model, column, office_value, _visit in EDITS:
            assert getattr(_row_of(s, model, pid), column) == office_value
        assert len(s.execute(select(VisitConflict)).scalars().all()) == len(EDITS)

    # Settle them: keep visit (command line), keep office, and field by field.
    first = by_table["patients"]["id"]
    done = cli(monkeypatch, capsys, practice, "visit", "resolve", str(first), "--keep", "visit")
    assert done.code == 0, done.err
    choices = ["office", "fields", "visit"]
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        for index, (model, column, office_value, visit_value) in enumerate(EDITS[1:]):
            choice = choices[index % 3]
            fields = [column] if choice == "fields" else []
            resolve_conflict(s, physician, by_table[model.__tablename__]["id"], choice, fields)
            expected = office_value if choice == "office" else visit_value
            if model is ProtocolVersion:
                # A signed version is never replaced: the laptop's is kept beside it.
                assert choice == "visit"
                assert getattr(_row_of(s, model, pid), column) == office_value
                newest = s.execute(
                    select(ProtocolVersion).join(PatientProtocol)
                    .where(PatientProtocol.patient_id == pid)
                    .order_by(ProtocolVersion.number.desc())
                ).scalars().first()
                assert (newest.template_name, newest.status) == (visit_value, "signed")
                continue
            assert getattr(_row_of(s, model, pid), column) == expected, model
        assert s.get(Patient, pid).phone == "(813) 555-0199"
        assert list_conflicts(s) == ()
        with pytest.raises(UserFacingError, match="already resolved"):
            resolve_conflict(s, physician, first, "office")
    # Resolved: returning the pack again brings nothing back into the queue.
    settled = return_pack(monkeypatch, capsys, practice, pack)
    assert settled["in_conflict"] == [] and settled["applied"]["edited"] == {}
    verified = cli(monkeypatch, capsys, practice, "verify-audit")
    assert verified.code == 0, verified.err


def test_only_a_physician_resolves(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrn = conflict_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    edit_each(practice, mrn, 0)
    edit_each(pack, mrn, 1)
    return_pack(monkeypatch, capsys, practice, pack)
    with opened(practice) as (db, _), db.session() as s:
        from ketadesk.core.permissions import Actor, Role

        admin = Actor(2, "frontdesk", "Sam Frontdesk", Role.ADMIN, False)
        conflict = list_conflicts(s)[0]
        with pytest.raises(UserFacingError, match="Only a physician"):
            resolve_conflict(s, admin, conflict.id, "visit")


def test_protocol_versions_signed_on_both_sides_never_replace_each_other(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrn = conflict_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    hashes = {}
    for side, path in (("office", practice), ("visit", pack)):
        with opened(path) as (db, physician), db.session() as s:
            pid = patient_id(s, mrn)
            _sign_after_fresh_review(s, physician, pid)
            version_id = sign_new_protocol_version(s, physician, pid)
            row = s.get(ProtocolVersion, version_id)
            assert row.number == 2
            hashes[side] = row.uid
    report = return_pack(monkeypatch, capsys, practice, pack)
    reasons = {(c["table"], c["reason"]) for c in report["in_conflict"]}
    assert ("protocol_versions", "both_signed") in reasons
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        signed = _signed_numbers(s, pid)
        assert signed == {1: signed[1], 2: hashes["office"]}  # the office's #2 stands
        entry = next(c for c in list_conflicts(s) if c.reason == "both_signed")
        resolve_conflict(s, physician, entry.id, "visit")
        signed = _signed_numbers(s, pid)
        # Both signed versions are kept: the laptop's becomes number 3.
        assert signed[2] == hashes["office"] and signed[3] == hashes["visit"]


def _sign_after_fresh_review(s: Any, physician: Any, pid: int) -> None:
    from tests.visit_pack_data import sign_fresh_review

    sign_fresh_review(s, physician, pid)


def _signed_numbers(s: Any, pid: int) -> dict[int, str]:
    rows = s.execute(
        select(ProtocolVersion.number, ProtocolVersion.uid).join(PatientProtocol)
        .where(PatientProtocol.patient_id == pid, ProtocolVersion.status == "signed")
    ).all()
    return {number: uid for number, uid in rows}


def test_an_edit_on_the_laptop_of_a_record_removed_at_the_office_waits(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    from ketadesk.storage.patients.patients import remove_allergy

    practice, mrn = conflict_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    with opened(practice) as (db, physician), db.session() as s:
        allergy = _row_of(s, PatientAllergy, patient_id(s, mrn))
        remove_allergy(s, physician, allergy.id)
    with opened(pack) as (db, _), db.session() as s:
        _row_of(s, PatientAllergy, patient_id(s, mrn)).reaction = "swelling"
    report = return_pack(monkeypatch, capsys, practice, pack)
    assert [(c["table"], c["reason"]) for c in report["in_conflict"]] == [
        ("patient_allergies", "deleted_at_office")
    ]
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        assert _row_of(s, PatientAllergy, pid) is None
        resolve_conflict(s, physician, list_conflicts(s)[0].id, "visit")
        assert _row_of(s, PatientAllergy, pid).reaction == "swelling"


def test_one_draft_signed_at_the_office_and_on_the_laptop_keeps_both(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    from ketadesk.storage.protocols import protocols as protocol_store
    from ketadesk.storage.protocols.protocol_versions import get_version
    from tests.visit_pack_data import sign_fresh_review, today

    practice, mrn = conflict_practice
    with opened(practice) as (db, physician), db.session() as s:
        draft_id = protocol_store.create_draft_from_previous(
            s, physician, patient_id(s, mrn)
        ).version_id
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    for path in (practice, pack):
        with opened(path) as (db, physician), db.session() as s:
            pid = patient_id(s, mrn)
            sign_fresh_review(s, physician, pid)
            draft = s.execute(
                select(ProtocolVersion).where(ProtocolVersion.status == "draft")
                .join(PatientProtocol).where(PatientProtocol.patient_id == pid)
            ).scalar_one()
            if path == practice:
                assert draft.id == draft_id
            protocol = get_version(s, draft.id).protocol
            check = protocol_store.signing_check(s, physician, pid, protocol, today())
            protocol_store.sign_version(
                s, physician, draft.id,
                acknowledged_warnings=[m.code for m in check.warnings], today=today(),
            )
    report = return_pack(monkeypatch, capsys, practice, pack)
    reasons = {(c["table"], c["reason"]) for c in report["in_conflict"]}
    assert ("protocol_versions", "both_changed") in reasons
    # The laptop's signature is not carried over the office's signed copy.
    assert ("content_signatures", "parent_waiting") in reasons
    with opened(practice) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        before = _signed_numbers(s, pid)
        entry = next(c for c in list_conflicts(s) if c.table == "protocol_versions")
        with pytest.raises(UserFacingError, match="signed and cannot be changed field by field"):
            resolve_conflict(s, physician, entry.id, "fields", ["template_name"])
        resolve_conflict(s, physician, entry.id, "visit")
        after = _signed_numbers(s, pid)
        assert after[2] == before[2]  # the office's signed version is untouched
        assert set(after) == {1, 2, 3}
    verified = cli(monkeypatch, capsys, practice, "verify-audit")
    assert verified.code == 0, verified.out + verified.err


def test_merged_wording_for_a_text_field_and_what_it_refuses(
    conflict_practice: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """A physician may take a ticked text field with wording merged from both copies; the
    wording is kept in the record and the audit names only the field."""
    from ketadesk.models.audit import AuditEvent

    practice, mrn = conflict_practice
    pack = tmp_path / "visit.db"
    check_out(monkeypatch, capsys, practice, [mrn], pack)
    edit_each(practice, mrn, 0)
    edit_each(pack, mrn, 1)
    return_pack(monkeypatch, capsys, practice, pack)
    merged = "twice daily; at bedtime when nauseous"
    with opened(practice) as (db, physician), db.session() as s:
        by_table = {c.table: c for c in list_conflicts(s)}
        medication = by_table[PatientMedication.__tablename__].id
        demographics = by_table[Patient.__tablename__].id
        with pytest.raises(UserFacingError, match="Tick 'frequency_text'"):
            resolve_conflict(s, physician, medication, "fields", ["dose_text"],
                             merged_text={"frequency_text": merged})
        with pytest.raises(UserFacingError, match="Only text can be merged by hand"):
            resolve_conflict(s, physician, medication, "fields", ["is_active"],
                             merged_text={"is_active": "no"})
        with pytest.raises(UserFacingError, match="Name the fields"):
            resolve_conflict(s, physician, medication, "fields", ["nonsense"])
    with opened(practice) as (db, physician), db.session() as s:
        resolve_conflict(s, physician, medication, "fields", ["frequency_text"],
                         merged_text={"frequency_text": merged})
        resolve_conflict(s, physician, demographics, "fields", ["phone"],
                         merged_text={"phone": "(813) 555-0142"})
    with opened(practice) as (db, _), db.session() as s:
        pid = patient_id(s, mrn)
        assert _row_of(s, PatientMedication, pid).frequency_text == merged
        assert s.get(Patient, pid).phone == "(813) 555-0142"
        details = [
            e.detail for e in s.execute(select(AuditEvent)).scalars()
            if e.detail and "merged wording" in e.detail
        ]
        assert len(details) == 2 and all(merged not in d and "555" not in d for d in details)
