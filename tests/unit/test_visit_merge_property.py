"""The merge of a returned visit pack, checked against a reference model (hypothesis).

Random interleavings of office edits, laptop edits, records added on the laptop (check-ins,
PDMP look-ups, telemedicine records, in turn), returns and a physician's
resolutions run on a real practice and a real pack. The reference tracks, for each side, every
edit its current copy of the record stands on (its lineage): a return applies the laptop's copy
only when it stands on everything the office's does, leaves the office's when it already holds
the laptop's, and otherwise queues a conflict. Keeping the office's copy folds the laptop's
lineage in; taking the laptop's makes the office stand where the laptop stands.
So: no committed change is lost without a physician's decision, and nothing applies twice.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.core.visit_merge import MergeAction, Side, Synced, merge_decision
from ketadesk.models.compliance import PdmpCheck, TelemedicineRecord
from ketadesk.models.outcomes import CheckIn
from ketadesk.models.patients import Patient
from ketadesk.models.visits import VisitConflict
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_conflicts import resolve_conflict
from ketadesk.storage.visits.visit_return import merge_visit_pack
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.visit_pack_data import make_visit_practice, opened

OPERATIONS = ("office_edit", "visit_edit", "visit_add", "return", "keep_office", "keep_visit")


@dataclass(frozen=True)
class AddedKind:
    """A kind of record a home visit adds: how to make one carrying a token, and the column
    that carries it."""

    make: Callable[[int, str], Any]
    text: Any


ADDED_KINDS = (
    AddedKind(
        lambda pid, token: CheckIn(
            patient_id=pid, checked_on=datetime.now(UTC).date(), mode="home_visit",
            recorded_by="Dr. Rowan Quill", adherence="as_prescribed", notes=token,
        ),
        CheckIn.notes,
    ),
    AddedKind(
        lambda pid, token: PdmpCheck(
            patient_id=pid, state="FL", checked_at=datetime.now(UTC), checked_by=PHYSICIAN,
            checked_by_role="physician", not_checked_reason=token,
        ),
        PdmpCheck.not_checked_reason,
    ),
    AddedKind(
        lambda pid, token: TelemedicineRecord(
            patient_id=pid, basis="dea_flexibilities", description=token,
            recorded_by=PHYSICIAN,
        ),
        TelemedicineRecord.description,
    ),
)


@dataclass
class Reference:
    office: str = "base"
    visit: str = "base"
    office_lineage: set[str] = field(default_factory=lambda: {"base"})
    visit_lineage: set[str] = field(default_factory=lambda: {"base"})
    queued: tuple[str, frozenset[str], str] | None = None  # visit value, lineage, office then
    added: list[str] = field(default_factory=list)
    returned_adds: set[str] = field(default_factory=set)

    def do_return(self) -> None:
        self.returned_adds |= set(self.added)
        if self.office == self.visit or self.visit_lineage <= self.office_lineage:
            if self.office == self.visit:
                self.queued = None
            return
        if self.office_lineage <= self.visit_lineage:
            self.office, self.office_lineage = self.visit, set(self.visit_lineage)
            self.queued = None
            return
        self.queued = (self.visit, frozenset(self.visit_lineage), self.office)

    def keep(self, side: str) -> bool:
        """False when the physician's choice is refused (the office changed since)."""
        assert self.queued is not None
        value, lineage, office_then = self.queued
        if office_then != self.office:
            return False
        if side == "visit":
            # The office now holds the laptop's copy, so the laptop's next edit stands on it:
            # the office edits the physician set aside are decided, not unseen.
            self.office, self.office_lineage = value, set(lineage)
        else:
            # The laptop's copy was set aside, but the laptop still stands on it: its next
            # edit has not seen the office's copy and must come back as a conflict.
            self.office_lineage |= lineage
        self.queued = None
        return True


@pytest.fixture(scope="module")
def practice_and_pack(
    prepared_practice: Path, tmp_path_factory: Any
) -> tuple[Path, Path, bytes, bytes]:
    folder = tmp_path_factory.mktemp("merge-property")
    practice = copy_practice(prepared_practice, folder / "practice")
    [mrn] = make_visit_practice(practice, patients=1, weeks=1)
    with opened(practice) as (db, physician), db.session() as s:
        s.execute(select(Patient).where(Patient.mrn == mrn)).scalar_one().phone = "base"
    pack = folder / "laptop" / "visit.db"
    pack.parent.mkdir()
    with opened(practice) as (db, physician):
        check_out_patients(db, physician, [mrn], pack, PASSWORD)
    keys = (
        KeySlotFile.load(practice).unwrap_for_user(PHYSICIAN, PASSWORD),
        KeySlotFile.load(pack).unwrap_for_user(PHYSICIAN, PASSWORD),
    )
    return practice, pack, *keys


def _open(path: Path, key: bytes) -> PracticeDatabase:
    return PracticeDatabase.open_with_key(path, key, KeySlotFile.load(path))


def _patient(s: Any) -> Patient:
    return s.execute(select(Patient).where(Patient.last_name == "Visitpersona")).scalar_one()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from((*OPERATIONS, "return", "office_edit", "visit_edit")),
                min_size=1, max_size=12))
@example(["office_edit", "visit_edit", "return", "keep_office", "return", "visit_edit",
          "return", "office_edit", "keep_visit", "return", "keep_visit"])
@example(["visit_add", "visit_edit", "return", "office_edit", "visit_edit", "visit_add",
          "return", "return", "keep_visit", "office_edit", "return"])
@example(["office_edit", "visit_edit", "return", "keep_visit", "visit_edit", "return"])
@pytest.mark.slow
def test_random_interleavings_never_lose_a_change_nor_apply_one_twice(
    practice_and_pack: tuple[Path, Path, bytes, bytes], operations: list[str]
) -> None:
    source_practice, source_pack, practice_key, pack_key = practice_and_pack
    folder = Path(tempfile.mkdtemp(prefix="ketadesk-merge-"))
    try:
        practice_db = _open(copy_practice(source_practice, folder / "practice"), practice_key)
        pack_db = _open(copy_practice(source_pack, folder / "laptop"), pack_key)
        actor = Actor(1, PHYSICIAN, "Dr. Rowan Quill", Role.PHYSICIAN, True)
        model = Reference()
        try:
            for step, operation in enumerate(operations):
                _run(operation, f"555-{step:04d}", practice_db, pack_db, actor, model)
                _check(practice_db, model)
        finally:
            practice_db.close()
            pack_db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(
    operation: str, token: str, practice_db: PracticeDatabase, pack_db: PracticeDatabase,
    actor: Actor, model: Reference,
) -> None:
    if operation == "office_edit":
        with practice_db.session() as s:
            _patient(s).phone = token
        model.office = token
        model.office_lineage.add(token)
    elif operation == "visit_edit":
        with pack_db.session() as s:
            _patient(s).phone = token
        model.visit = token
        model.visit_lineage.add(token)
    elif operation == "visit_add":
        # The kinds of record a visit adds take turns (a check-in, a PDMP look-up, a
        # telemedicine record), each carrying the token in its text.
        kind = ADDED_KINDS[len(model.added) % len(ADDED_KINDS)]
        with pack_db.session() as s:
            s.add(kind.make(_patient(s).id, token))
        model.added.append(token)
    elif operation == "return":
        merge_visit_pack(practice_db, actor, pack_db)
        model.do_return()
    elif model.queued is not None:
        side = "office" if operation == "keep_office" else "visit"
        with practice_db.session() as s:
            conflict = s.execute(
                select(VisitConflict.id).where(VisitConflict.status == "open")
            ).scalar_one()
            try:
                resolve_conflict(s, actor, conflict, side)
                accepted = True
            except UserFacingError as refused:
                assert "changed again" in refused.message
                accepted = False
        assert accepted == model.keep(side)


def _check(practice_db: PracticeDatabase, model: Reference) -> None:
    with practice_db.session() as s:
        assert _patient(s).phone == model.office
        waiting = s.execute(
            select(VisitConflict.visit_json).where(VisitConflict.status == "open")
        ).scalars().all()
        assert len(waiting) == (model.queued is not None)
        if model.queued is not None:
            assert f'"phone": "{model.queued[0]}"' in waiting[0]
        notes = [
            text for kind in ADDED_KINDS for text in s.execute(select(kind.text)).scalars()
        ]
        for token in model.added:
            assert notes.count(token) == (token in model.returned_adds)


@given(
    base=st.integers(1, 4),
    office_edits=st.integers(0, 3),
    visit_edits=st.integers(0, 3),
    same_content=st.booleans(),
)
def test_merge_rule_never_overwrites_an_office_edit(
    base: int, office_edits: int, visit_edits: int, same_content: bool
) -> None:
    """The rule alone: an office edit since the sync point is never overwritten, a laptop edit
    since it is never dropped silently, and equal copies need nothing."""
    office = Side(base + office_edits, "office" if office_edits else "base")
    visit = Side(base + visit_edits, "visit" if visit_edits else "base")
    if same_content:
        visit = Side(visit.version, office.content)
    decision = merge_decision(Synced(base, base), office, visit)
    if office.content == visit.content:
        assert decision.action is MergeAction.NOTHING
    elif office_edits and visit_edits:
        assert decision.action is MergeAction.CONFLICT
    elif visit_edits:
        assert decision.action is MergeAction.APPLY
    else:
        assert decision.action is MergeAction.NOTHING
    assert merge_decision(None, None, visit).action is MergeAction.ADD
