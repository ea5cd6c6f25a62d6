"""The checks that left the log-in path still catch what they caught there.

- Page check on a worker (``check_pages_later``): a damaged page found after the roster is on
  screen hides every patient, says the same damage message as before, and nothing is written
  to the folder (the log-in events are held and dropped).
- Audit: log-in walks only the events after the newest checkpoint; a tampered event after it is
  named at log-in, one before it by the background walk, which raises the same alarm (an
  ``audit_check_failed`` event and the banner for users who manage users).

File only: the page check and the log-in checkpoint walk belong to the encrypted file.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.roster.roster_columns import install_roster_columns
from ketadesk.storage.roster.roster_query import prepare_roster
from ketadesk.storage.security.audit_checkpoint import (
    WalkStopped,
    latest_checkpoint,
    walk_whole_chain,
    walk_whole_chain_apart,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import (
    DatabaseDamagedError,
    PracticeDatabase,
    backups_dir,
    damaged_database_error,
)
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.security.integrity_gate import IntegrityGate
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.reliability.conftest import changed_files, folder_hashes, record_figure
from tests.reliability.test_audit_tampering import _plan

PAGE = 4096
DAMAGED = "The practice database is damaged"
TRIALS = int(os.environ.get("KETADESK_CHECKPOINT_TRIALS", "40"))


# --- page check on a worker --------------------------------------------------------------------
@pytest.fixture
def damaged_late(demo_practice_files: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A practice with one good backup, then a byte flipped in its last page (a page the
    roster and the log-in never read)."""
    folder = tmp_path / "practice"
    path = copy_practice(demo_practice_files, folder)
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    backup = db.backup_to(backups_dir(path) / "practice-20261201.db")
    db.close()
    data = bytearray(path.read_bytes())
    data[len(data) - PAGE // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    return path, backup


def test_damage_found_after_opening_refuses_writes_and_changes_no_file(damaged_late) -> None:
    path, backup = damaged_late
    before = folder_hashes(path.parent)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD, check_pages_later=True)
    try:
        with pytest.raises(DatabaseDamagedError) as caught:
            db.wait_for_page_check()
        assert caught.value.message.startswith(DAMAGED)
        assert str(backup) in caught.value.message
        with pytest.raises(DatabaseDamagedError), db.session() as session:
            record_event(session, outcome.actor, audit_actions.PATIENT_VIEWED, patient_id=1)
    finally:
        db.close()
    assert changed_files(before, folder_hashes(path.parent)) == set()


def test_the_desktop_hides_the_data_when_the_background_page_check_fails(
    qtbot, damaged_late, tmp_path
) -> None:
    path, backup = damaged_late
    before = folder_hashes(path.parent)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD, check_pages_later=True)
    window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    qtbot.addWidget(window)
    window.show()
    assert window.roster.isVisible()  # the roster is on screen before the check is done
    window.start_background_checks()
    qtbot.waitUntil(lambda: window.is_damaged, timeout=20_000)
    window.grab().save(str(tmp_path / "damaged-window.png"))
    assert not window.roster.isVisible() and not window.workspace.isVisible()
    assert window.damage_notice.text().startswith(f"⚠ {DAMAGED}")
    assert str(backup) in window.damage_notice.text()
    assert not window.menuBar().isEnabled()
    assert db.is_locked  # the key is dropped
    window.close()
    assert changed_files(before, folder_hashes(path.parent)) == set()


def test_a_sound_database_opened_this_way_writes_the_log_in_after_the_check(
    demo_practice_files, tmp_path
) -> None:
    path = copy_practice(demo_practice_files, tmp_path / "db")
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD, check_pages_later=True)
    try:
        db.wait_for_page_check()
        with db.session() as session:
            newest = session.execute(
                select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(1)
            ).scalar_one()
        assert newest == audit_actions.LOGIN
    finally:
        db.close()


# --- writes made while the page check runs ----------------------------------------------------
def _hold_page_check(db: PracticeDatabase) -> IntegrityGate:
    """Give ``db`` a real page check that has not started yet: the gate stays closed (writes
    guarded) until the test calls ``start()``, however long the test needs."""
    gate = IntegrityGate(db.path, db.database_key(), lambda: damaged_database_error(db.path))
    gate.guard(db.engine)
    db.gate = gate
    return gate


def _viewed_events(db: PracticeDatabase, after_seq: int) -> list[tuple[int | None, datetime]]:
    with db.read_session() as session:
        rows = session.execute(
            select(AuditEvent.patient_id, AuditEvent.occurred_at)
            .where(AuditEvent.seq > after_seq, AuditEvent.action == audit_actions.PATIENT_VIEWED)
            .order_by(AuditEvent.seq)
        ).all()
    return [(patient_id, at) for patient_id, at in rows]


def _newest_seq(db: PracticeDatabase) -> int:
    with db.read_session() as session:
        return int(session.execute(select(func.max(AuditEvent.seq))).scalar_one())


def _open_first_roster_row(qtbot, window: MainWindow) -> int:
    """Select the roster's first patient and press Enter, as a user does; the patient's id."""
    table = window.roster.table
    table.setFocus()
    table.setCurrentIndex(window.roster.model.index(0, 0))
    patient_id = window.roster.selected_patient_id()
    assert patient_id is not None
    qtbot.keyClick(table, Qt.Key.Key_Return)
    return patient_id


@pytest.fixture
def window_with_page_check_held(qtbot, demo_practice_files, tmp_path):
    """A logged-in main window over a sound demo practice whose page check is held closed.
    A timer opens the gate after a minute, so a GUI thread that waits for it still ends."""
    path = copy_practice(demo_practice_files, tmp_path / "practice")
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    install_roster_columns()
    with db.session() as session:  # as in a practice in use: statuses stored, indexes built
        prepare_roster(session)
    gate = _hold_page_check(db)
    fallback = threading.Timer(60, gate.start)
    fallback.start()
    window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    qtbot.addWidget(window)
    window.show()
    window.start_background_checks()
    yield window, db, gate, fallback
    fallback.cancel()
    window.close()


def test_a_chart_opened_before_the_page_check_passes_is_audited_after_it(
    qtbot, window_with_page_check_held, tmp_path
) -> None:
    window, db, gate, fallback = window_with_page_check_held
    since = _newest_seq(db)
    opened_at = datetime.now(UTC)
    patient_id = _open_first_roster_row(qtbot, window)
    charts = window.patient_tabs()
    # The chart is on screen and the GUI thread never waited: the check has not even started.
    assert [chart.patient_id for chart in charts] == [patient_id]  # type: ignore[attr-defined]
    assert window.tabs.currentWidget() is charts[0]
    assert not fallback.finished.is_set() and not gate.is_done
    assert _viewed_events(db, since) == []  # held in memory, not yet written
    assert window.audit_status.text() == "Checking the database…"
    window.grab().save(str(tmp_path / "chart-while-checking.png"))
    checked_at = datetime.now(UTC)
    gate.start()
    qtbot.waitUntil(lambda: window.audit_status.text().startswith("Audit trail"), timeout=30_000)
    viewed = _viewed_events(db, since)
    assert [who for who, _at in viewed] == [patient_id]
    # The event keeps the moment the chart was opened, not the moment it was written.
    assert opened_at <= viewed[0][1].replace(tzinfo=UTC) <= checked_at
    assert window.audit_status.text().startswith("Audit trail intact")


def test_a_chart_opened_before_a_failed_page_check_is_never_written(
    qtbot, window_with_page_check_held, tmp_path
) -> None:
    window, db, gate, _fallback = window_with_page_check_held
    _open_first_roster_row(qtbot, window)
    assert len(window.patient_tabs()) == 1 and not gate.is_done
    # The file is damaged after it was opened (a page the roster and the chart never read).
    db.engine.dispose()
    data = bytearray(db.path.read_bytes())
    data[len(data) - PAGE // 2] ^= 0x5A
    db.path.write_bytes(bytes(data))
    before = folder_hashes(db.path.parent)
    gate.start()
    qtbot.waitUntil(lambda: window.is_damaged, timeout=30_000)
    window.grab().save(str(tmp_path / "damaged-after-chart.png"))
    assert window.damage_notice.text() == f"⚠ {damaged_database_error(db.path).message}"
    assert "No backup was found beside it" in window.damage_notice.text()
    assert not window.tabs.isVisible() and db.is_locked
    assert changed_files(before, folder_hashes(db.path.parent)) == set()


# --- audit checkpoint ---------------------------------------------------------------------------
def _tamper(path: Path, key: bytes, statements: list[str]) -> None:
    connection = raw_connection(path, key)
    connection.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    connection.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


@pytest.fixture(scope="module")
def checkpointed_practice(
    prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, bytes, int, int]:
    """A closed practice: 40 events, a full walk (the checkpoint), 20 events after it.
    Returns (path, key, checkpoint seq, event count)."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("checkpointed"))
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    for count in (40, 20):
        with db.session() as session:
            for number in range(count):
                record_event(session, outcome.actor, audit_actions.PATIENT_VIEWED,
                             patient_id=number % 9 + 1, detail="chart opened")
        if count == 40:
            assert db.check_whole_audit_trail(outcome.actor).is_intact
    with db.session() as session:
        checkpoint = latest_checkpoint(session)
        total = session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).first()
    key = db.database_key()
    db.close()
    assert checkpoint is not None and total is not None
    return path, key, checkpoint.seq, total[0]


def _copy(source: Path, folder: Path) -> Path:
    return copy_practice(source, folder)


def _actions(db: PracticeDatabase) -> list[str]:
    with db.session() as session:
        return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_tampering_after_the_checkpoint_is_named_at_log_in(checkpointed_practice, tmp_path):
    path, key, checkpoint, count = checkpointed_practice
    copy = _copy(path, tmp_path / "after")
    target = checkpoint + 5
    assert target < count
    _tamper(copy, key, [f"UPDATE audit_events SET detail = 'x' WHERE seq = {target}"])
    db, outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == target
        assert _actions(db)[-1] == audit_actions.AUDIT_CHECK_FAILED
    finally:
        db.close()


def test_tampering_before_the_checkpoint_is_named_by_the_background_walk(
    qtbot, checkpointed_practice, tmp_path
):
    path, key, checkpoint, _count = checkpointed_practice
    copy = _copy(path, tmp_path / "before")
    target = checkpoint // 2
    # The detail is covered by the chain's hash only (its signature covers that hash, which the
    # edit leaves as it was): the walk names it from the hash.
    _tamper(copy, key, [f"UPDATE audit_events SET detail = 'nothing here' WHERE seq = {target}"])
    db, outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    # Log-in walked only the events after the checkpoint, so it did not see this one ...
    assert outcome.audit.is_intact
    window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    qtbot.addWidget(window)
    window.show()
    assert not window.audit_warning.isVisible()
    # ... the background walk does, and raises the same alarm as log-in would.
    window.start_background_checks()
    qtbot.waitUntil(lambda: window.audit_warning.isVisible(), timeout=20_000)
    window.grab().save(str(tmp_path / "audit-alarm.png"))
    assert f"broken at event {target}:" in window.audit_warning.text()
    assert window.audit_status.text() == "⚠ Audit trail broken"
    actions = _actions(db)
    assert actions[-1] == audit_actions.AUDIT_CHECK_FAILED
    assert audit_actions.AUDIT_VERIFIED not in actions[checkpoint + 1 :]  # no new checkpoint
    window.close()


def test_the_walk_in_a_process_of_its_own_finds_what_the_walk_here_finds(
    checkpointed_practice, tmp_path
) -> None:
    path, key, checkpoint, _count = checkpointed_practice
    anchor = KeySlotFile.load(path).audit_anchor
    intact = _copy(path, tmp_path / "intact")
    assert walk_whole_chain_apart(intact, key, anchor) == walk_whole_chain(intact, key, anchor)
    tampered = _copy(path, tmp_path / "tampered")
    _tamper(tampered, key, [f"DELETE FROM audit_events WHERE seq = {checkpoint - 3}"])
    apart = walk_whole_chain_apart(tampered, key, anchor)
    assert apart == walk_whole_chain(tampered, key, anchor)
    assert not apart.verdict.is_intact and apart.through is None


def test_a_walk_stopped_by_the_lock_ends_its_process(checkpointed_practice) -> None:
    path, key, _checkpoint, _count = checkpointed_practice
    with pytest.raises(WalkStopped):
        walk_whole_chain_apart(path, key, None, keep_going=lambda: False)
    assert multiprocessing.active_children() == []  # the child holding the key is gone


def test_an_intact_walk_moves_the_checkpoint_forward(qtbot, checkpointed_practice, tmp_path):
    path, _key, checkpoint, count = checkpointed_practice
    copy = _copy(path, tmp_path / "intact")
    db, outcome = PracticeDatabase.unlock(copy, PHYSICIAN, PASSWORD)
    window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    qtbot.addWidget(window)
    window.show()
    window.start_background_checks()
    qtbot.waitUntil(lambda: window.audit_status.text().startswith("Audit trail intact"),
                    timeout=20_000)
    with db.session() as session:
        moved = latest_checkpoint(session)
    assert moved is not None and moved.seq > checkpoint and moved.seq >= count
    window.close()


def test_random_tampering_is_caught_at_log_in_or_by_the_walk(checkpointed_practice, tmp_path):
    path, key, checkpoint, count = checkpointed_practice
    slots = KeySlotFile.load(path)
    rng = random.Random(int(os.environ.get("KETADESK_TAMPER_SEED", "1515")))
    at_login = in_background = 0
    for trial in range(TRIALS):
        statements, expected, description = _plan(rng, count)
        copy = _copy(path, tmp_path / f"t{trial}")
        _tamper(copy, key, statements)
        db = PracticeDatabase.open_with_key(copy, key, slots)
        try:
            with db.session() as session:
                from ketadesk.storage.security.audit_checkpoint import verify_since_checkpoint

                login = verify_since_checkpoint(session, slots.audit_anchor)
            walk = db.verify_audit_trail()
        finally:
            db.close()
        assert not walk.is_intact and walk.first_bad_seq == expected, (description, walk)
        if description.startswith("edit") and expected > checkpoint:
            assert not login.is_intact and login.first_bad_seq == expected, description
        if login.is_intact:
            in_background += 1
        else:
            at_login += 1
        shutil.rmtree(copy.parent)
    record_figure("audit_checkpoint_tampering", trials=TRIALS, named_at_login=at_login,
                  named_by_background_walk_only=in_background)
    assert at_login and in_background
