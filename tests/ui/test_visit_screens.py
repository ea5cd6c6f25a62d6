"""Home visits in the app: the check-out dialog, the roster's "on visit" marker, the office
warning in a checked-out patient's chart, the conflict review, and the practice-only menus
hidden on a visit pack. Real encrypted practices, a real checked-out pack, real keys.

KETADESK_SCREENSHOTS=folder keeps a PNG of each new screen at 1,280 × 800.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox, QWidget
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, PatientMedication
from ketadesk.models.visits import VisitConflict, VisitLease
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.users import get_user
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_return import return_visit_pack
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.roster.roster_table_model import RosterColumn
from ketadesk.ui.visits.checkout_dialog import CheckOutDialog
from ketadesk.ui.visits.conflict_review import PHYSICIANS_RESOLVE, ConflictReview
from ketadesk.ui.visits.leases_dialog import REVOKE_CANNOT, WHO_REVOKES, LeasesDialog
from ketadesk.ui.visits.return_dialog import ReturnDialog
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice
from tests.ui.layout_check import layout_problems
from tests.visit_pack_data import make_visit_practice, opened, patient_id

SIZE = (1280, 800)


def _screenshot(widget: QWidget, name: str) -> None:
    folder = os.environ.get("KETADESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"{name}-{SIZE[0]}x{SIZE[1]}.png"))


@pytest.fixture(scope="module")
def visit_practice_files(prepared_practice: Path, tmp_path_factory: Any) -> tuple[Path, list[str]]:
    """Two patients with a history who go on a visit, and one who stays at the office."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("visit-screens"))
    mrns = make_visit_practice(path, patients=2, weeks=1)
    return path, mrns


@pytest.fixture
def visit_practice(visit_practice_files: tuple[Path, list[str]], tmp_path: Path):
    path, mrns = visit_practice_files
    return copy_practice(path, tmp_path / "practice"), mrns


def _window(qtbot, db: PracticeDatabase, actor: Any) -> MainWindow:
    # Closed by _close, not by qtbot (its close comes first and would ask about typed work).
    window = MainWindow(AppContext(db, actor))
    window.resize(*SIZE)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.roster.model.rowCount() > 0, timeout=10_000)
    return window


@pytest.fixture
def practice_window(qtbot, visit_practice) -> Iterator[tuple[MainWindow, list[str], Path]]:
    path, mrns = visit_practice
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    yield window, mrns, path
    _close(window)


def _close(window: MainWindow) -> None:
    for chart in window.patient_tabs():
        if isinstance(chart, PatientChart):
            chart.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    window.close()
    window.deleteLater()
    window.context.ops.wait_for_done(10_000)
    if not window.context.db.is_locked:
        window.context.db.close()


def _open_checkout(qtbot, window: MainWindow) -> CheckOutDialog:
    window.visit_checkout_action.trigger()
    dialog = window.findChild(CheckOutDialog)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # Xvfb has no window manager; the keys below go to the fields
    return dialog


def _select_first_two_rows(qtbot, window: MainWindow) -> None:
    table = window.roster.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert len(window.roster.selected_patient_ids()) == 2


def _type_pack_and_password(qtbot, dialog: CheckOutDialog, pack: Path, password: str) -> None:
    dialog.path_edit.selectAll()
    qtbot.keyClicks(dialog.path_edit, str(pack))
    qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Tab)  # on to "Choose…"
    dialog.password.setFocus()
    qtbot.keyClicks(dialog.password, password)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)


def test_check_out_from_the_roster_marks_the_patients_and_refuses_them_twice(
    qtbot, practice_window, tmp_path: Path
) -> None:
    window, mrns, _path = practice_window
    _select_first_two_rows(qtbot, window)
    dialog = _open_checkout(qtbot, window)
    offered = [dialog.patient_list.item(i).text() for i in range(dialog.patient_list.count())]
    assert [m in text for m, text in zip(mrns, offered, strict=True)] == [True, True]
    assert dialog.chosen_mrns() == mrns
    assert dialog.days.value() == 3  # the practice setting's default lease
    _screenshot(dialog, "visit-checkout")

    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    _type_pack_and_password(qtbot, dialog, pack, "not my password")
    qtbot.waitUntil(lambda: dialog.problem.isVisible(), timeout=20_000)
    assert dialog.problem.text() == (
        f"That is not the password of {PHYSICIAN}; nothing was checked out."
    )
    assert not pack.exists()

    dialog.password.clear()
    qtbot.keyClicks(dialog.password, PASSWORD)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert dialog.is_running and dialog.progress.isVisible()
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=30_000)
    assert pack.exists() and not dialog.progress.isVisible()
    summary = dialog.status.text()
    assert summary.startswith("Checked out 2 patients (") and str(pack) in summary
    assert "The lease runs until" in summary and not dialog.problem.isVisible()
    assert dialog.password.text() == ""
    _screenshot(dialog, "visit-checkout-done")
    problems = layout_problems("Check-out dialog (done)", dialog, dialog, SIZE)
    assert not problems, "\n".join(problems)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.findChild(CheckOutDialog) is None, timeout=5_000)

    # The roster says who holds them, since when and until when; the third stays plain.
    model = window.roster.model
    qtbot.waitUntil(lambda: model.visit_marker(0) is not None, timeout=10_000)
    status = [model.index(r, RosterColumn.STATUS) for r in range(3)]
    texts = [model.data(i) for i in status]
    assert texts[:2] == ["On visit", "On visit"] and texts[2] == "Screening"
    tip = model.data(status[0], Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("On a visit laptop since ") and f"by {PHYSICIAN}, lease until" in tip
    assert "Status: Screening." in tip
    assert model.data(status[0], Qt.ItemDataRole.AccessibleTextRole) == tip
    assert model.data(status[2], Qt.ItemDataRole.ToolTipRole) == texts[2]
    _screenshot(window, "roster-on-visit")

    # Checking one of them out again is refused in words, naming who holds them.
    _select_first_two_rows(qtbot, window)
    again = _open_checkout(qtbot, window)
    assert "already on a visit laptop, by drquill" in again.patient_list.item(0).text()
    _type_pack_and_password(qtbot, again, tmp_path / "laptop" / "second.db", PASSWORD)
    qtbot.waitUntil(lambda: again.problem.isVisible(), timeout=30_000)
    assert again.problem.text().startswith(
        f"Already on a visit laptop: {mrns[0]} (by {PHYSICIAN}), {mrns[1]} (by {PHYSICIAN})."
    )
    assert "nothing was checked out" in again.problem.text()
    assert not (tmp_path / "laptop" / "second.db").exists()
    again.reject()


def test_check_out_asks_for_what_is_missing(qtbot, practice_window, tmp_path: Path) -> None:
    window, mrns, _path = practice_window
    window.roster.table.clearSelection()
    window.roster.table.setCurrentIndex(window.roster.model.index(-1, 0))
    dialog = _open_checkout(qtbot, window)
    assert dialog.patient_list.count() <= 1
    dialog.patient_list.clear()
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert dialog.problem.text() == "Tick at least one patient to check out."
    dialog.mrn_edit.setFocus()
    qtbot.keyClicks(dialog.mrn_edit, mrns[1].lower())
    qtbot.keyClick(dialog.mrn_edit, Qt.Key.Key_Return)  # adds the patient, checks nothing out
    assert dialog.chosen_mrns() == [mrns[1]] and dialog.result_ is None
    _type_pack_and_password(qtbot, dialog, tmp_path / "no-such-folder" / "v.db", PASSWORD)
    assert dialog.problem.text().startswith("The folder ")
    dialog.password.clear()
    dialog.path_edit.setText(str(tmp_path / "v.db"))
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert dialog.problem.text() == "Type your password: the visit pack opens with it."
    dialog.reject()


def test_a_checked_out_chart_warns_and_an_office_edit_is_kept(
    qtbot, practice_window, tmp_path: Path
) -> None:
    window, mrns, _path = practice_window
    db, physician = window.context.db, window.context.actor
    check_out_patients(db, physician, [mrns[0]], tmp_path / "visit.db", PASSWORD)
    with db.read_session() as s:
        away, home = patient_id(s, mrns[0]), patient_id(s, mrns[1])
    chart = window.open_patient(away)
    qtbot.waitUntil(lambda: chart.record is not None, timeout=10_000)
    notice = chart.visit_notice
    assert notice.isVisible()
    assert notice.text().startswith("On a visit laptop since ")
    assert f"by {PHYSICIAN}, lease until " in notice.text()
    assert "what you save is kept" in notice.text()
    assert "both copies wait side by side for a physician" in notice.text()
    _screenshot(window, "chart-on-visit")
    problems = layout_problems("Chart of a patient on a visit", window, chart, SIZE)
    assert not problems, "\n".join(problems)

    qtbot.keyClicks(chart.form.editors["city"], "Ocala")
    with qtbot.waitSignal(chart.patient_saved, timeout=10_000):
        qtbot.keyClick(
            chart.form.editors["city"], Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier
        )
    assert not chart.is_dirty and notice.isVisible()
    with db.read_session() as s:
        assert s.get(Patient, away).city.endswith("Ocala")

    other = window.open_patient(home)
    qtbot.waitUntil(lambda: other.record is not None, timeout=10_000)
    assert not other.visit_notice.isVisible()
    # Checked out while its chart is open with typed, unsaved work: the notice appears and
    # the typed words stay.
    qtbot.keyClicks(other.form.editors["city"], "Palatka")
    check_out_patients(db, physician, [mrns[1]], tmp_path / "second.db", PASSWORD)
    window.context.data_changed.emit("visits")
    assert other.visit_notice.isVisible() and other.is_dirty
    assert other.form.value("city").endswith("Palatka")


def test_lease_words_say_when_the_lease_has_ended() -> None:
    from datetime import UTC, datetime, timedelta

    from ketadesk.storage.visits.visit_leases import VisitMarker
    from ketadesk.ui.visits.visit_words import lease_words, on_visit_words

    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    marker = VisitMarker("p1", "drquill", now - timedelta(days=4), now - timedelta(days=1), False)
    assert lease_words(marker, now).startswith("lease ended ")
    assert lease_words(marker, now - timedelta(days=2)).startswith("lease until ")
    revoked = VisitMarker("p1", "drquill", now, now + timedelta(days=3), True)
    assert "(lease revoked)" in on_visit_words("Active", revoked)


# --- conflicts ----------------------------------------------------------------------------
OFFICE_NOTE, VISIT_NOTE = "twice daily with food", "at bedtime"


def _practice_with_conflicts(path: Path, mrn: str, pack: Path) -> None:
    """Check ``mrn`` out, change the phone and a medication's frequency on both sides, and
    return the pack: two records wait for a physician."""
    with opened(path) as (db, physician):
        check_out_patients(db, physician, [mrn], pack, PASSWORD)
    for where, (phone, note) in (
        (pack, ("(813) 555-0199", VISIT_NOTE)),
        (path, ("(813) 555-0100", OFFICE_NOTE)),
    ):
        with opened(where) as (db, _), db.session() as s:
            pid = patient_id(s, mrn)
            s.get(Patient, pid).phone = phone
            med = s.execute(
                select(PatientMedication).where(PatientMedication.patient_id == pid)
            ).scalars().first()
            med.frequency_text = note
    with opened(path) as (db, physician):
        report = return_visit_pack(db, physician, pack, PASSWORD)
    assert len(report.conflicts) == 2


@pytest.fixture(scope="module")
def conflict_files(
    visit_practice_files: tuple[Path, list[str]], tmp_path_factory: Any
) -> tuple[Path, str]:
    source, mrns = visit_practice_files
    folder = tmp_path_factory.mktemp("visit-conflicts")
    path = copy_practice(source, folder / "practice")
    _practice_with_conflicts(path, mrns[0], folder / "visit.db")
    return path, mrns[0]


@pytest.fixture
def conflict_practice(conflict_files: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    path, mrn = conflict_files
    return copy_practice(path, tmp_path / "practice"), mrn


def _row_of(review: ConflictReview, label: str) -> int:
    for row in range(review.queue.rowCount()):
        if label in review.queue.item(row, 1).text():
            return row
    raise AssertionError(label)


def test_a_physician_settles_each_conflict_side_by_side(qtbot, conflict_practice) -> None:
    path, mrn = conflict_practice
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        window.visit_conflicts_action.trigger()
        review = window.tabs.currentWidget()
        assert isinstance(review, ConflictReview)
        assert review.summary.text().startswith("2 records wait for a physician")
        assert not review.role_note.isVisible()
        assert {review.queue.item(r, 0).text() for r in range(2)} == {mrn}
        assert review.queue.item(0, 2).text() == PHYSICIAN

        # The medication: both wordings shown; the laptop's edited by hand, then taken.
        medication = _row_of(review, "medication")
        review.queue.setFocus()
        review.queue.setCurrentCell(medication, 0)
        fields = review.fields
        names = [fields.item(r, 0).text() for r in range(fields.rowCount())]
        assert names == ["Frequency text"]
        assert fields.item(0, 1).text() == OFFICE_NOTE
        assert fields.item(0, 2).text() == VISIT_NOTE
        assert "changed both at the office and on the visit laptop" in review.detail.text()
        _screenshot(window, "visit-conflicts")
        problems = layout_problems("Visit conflicts", window, review, SIZE)
        assert not problems, "\n".join(problems)

        fields.setFocus()
        fields.setCurrentCell(0, 2)
        qtbot.keyClick(fields, Qt.Key.Key_F2)
        qtbot.waitUntil(lambda: fields.findChild(QLineEdit) is not None, timeout=5_000)
        editor = fields.findChild(QLineEdit)
        editor.selectAll()
        qtbot.keyClicks(editor, "at bedtime, with food")
        qtbot.keyClick(editor, Qt.Key.Key_Return)
        fields.setCurrentCell(0, 0)
        qtbot.keyClick(fields, Qt.Key.Key_Space)  # ticks the field
        assert fields.item(0, 0).checkState() == Qt.CheckState.Checked
        assert review.ticked_fields() == (["frequency_text"], {
            "frequency_text": "at bedtime, with food"})
        review.take_fields_button.setFocus()
        qtbot.keyClick(review.take_fields_button, Qt.Key.Key_Space)
        assert not review.problem.isVisible(), review.problem.text()
        assert "the laptop's frequency text taken" in review.done_label.text()
        assert review.summary.text().startswith("1 record waits")

        # The phone: the laptop's copy, by its Alt shortcut (Alt+Y: "Take the laptop's cop&y").
        shown = [review.fields.item(r, 0).text() for r in range(review.fields.rowCount())]
        assert "Phone" in shown
        button = review.take_visit_button
        assert QKeySequence.mnemonic(button.text()) == QKeySequence("Alt+Y")
        button.setFocus()
        qtbot.keyClick(button, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: review.queue.rowCount() == 0, timeout=5_000)
        assert review.summary.text().startswith("Nothing waits")
        with db.read_session() as s:
            pid = patient_id(s, mrn)
            assert s.get(Patient, pid).phone == "(813) 555-0199"
            med = s.execute(
                select(PatientMedication).where(PatientMedication.patient_id == pid)
            ).scalars().first()
            assert med.frequency_text == "at bedtime, with food"
            resolved = s.execute(select(VisitConflict)).scalars().all()
            assert {(c.status, c.resolution, c.resolved_by) for c in resolved} == {
                ("resolved", "fields", PHYSICIAN), ("resolved", "visit", PHYSICIAN)}
    finally:
        _close(window)


def test_an_admin_sees_the_conflicts_but_cannot_settle_them(qtbot, conflict_practice) -> None:
    path, _mrn = conflict_practice
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        review = window.open_visit_conflicts()
        assert isinstance(review, ConflictReview)
        assert review.queue.rowCount() == 2 and review.role_note.isVisible()
        assert review.role_note.text() == PHYSICIANS_RESOLVE
        for button in (review.keep_office_button, review.take_visit_button,
                       review.take_fields_button):
            assert not button.isEnabled()
        assert not review.fields.item(0, 2).flags() & Qt.ItemFlag.ItemIsEditable
        review.resolve("office")  # even asked directly, nothing is settled
        assert review.problem.text() == PHYSICIANS_RESOLVE
        _screenshot(window, "visit-conflicts-admin")
        with db.read_session() as s:
            assert {c.status for c in s.execute(select(VisitConflict)).scalars()} == {"open"}
    finally:
        _close(window)


# --- on the laptop --------------------------------------------------------------------------
def test_a_visit_pack_hides_and_refuses_what_needs_the_whole_practice(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    path, mrns = visit_practice
    pack = tmp_path / "visit.db"
    with opened(path) as (db, physician):
        check_out_patients(db, physician, mrns, pack, PASSWORD)
    db, outcome = PracticeDatabase.unlock(pack, PHYSICIAN, PASSWORD)
    assert get_user(db, PHYSICIAN).user_name == PHYSICIAN
    window = _window(qtbot, db, outcome.actor)
    try:
        assert outcome.actor.can_manage_users  # a manager at the practice, not on the laptop
        for action in (window.users_action, window.import_action, window.visit_checkout_action,
                       window.visit_conflicts_action, window.visit_return_action,
                       window.visit_leases_action):
            assert not action.isVisible(), action.text()
        assert window.settings_action.isVisible()  # practice settings stay readable

        said: list[str] = []

        def answer() -> None:
            box = QApplication.activeModalWidget()
            if isinstance(box, QMessageBox):
                said.append(box.text())
                box.accept()
            else:
                QTimer.singleShot(50, answer)

        QTimer.singleShot(50, answer)
        window.users_action.trigger()  # a hidden action's shortcut or a stray call: refused
        assert said and said[0].startswith("This is a visit pack: 2 patients")
        assert "Managing users needs the whole practice database" in said[0]
        QTimer.singleShot(50, answer)
        assert window.open_visit_conflicts() is None
        assert "Reviewing what visit packs brought back needs the whole practice" in said[1]
    finally:
        _close(window)


# --- returning a pack and revoking one ------------------------------------------------------
def _open_return(qtbot, window: MainWindow) -> ReturnDialog:
    window.visit_return_action.trigger()
    dialog = window.findChild(ReturnDialog)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    return dialog


def _return_with(qtbot, dialog: ReturnDialog, password: str) -> None:
    dialog.password.setFocus()
    dialog.password.selectAll()
    qtbot.keyClicks(dialog.password, password)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert dialog.is_running
    qtbot.waitUntil(lambda: not dialog.is_running, timeout=30_000)


def _lease_status(db: PracticeDatabase) -> set[str]:
    with db.read_session() as s:
        return {lease.status for lease in s.execute(select(VisitLease)).scalars()}


def test_returning_a_pack_checks_applies_and_says_when_nothing_changed(
    qtbot, practice_window, tmp_path: Path
) -> None:
    window, mrns, _path = practice_window
    db = window.context.db
    pack = tmp_path / "visit.db"
    check_out_patients(db, window.context.actor, [mrns[0]], pack, PASSWORD)
    with opened(pack) as (pack_db, _), pack_db.session() as s:
        s.get(Patient, patient_id(s, mrns[0])).phone = "(813) 555-0142"
    dialog = _open_return(qtbot, window)
    assert dialog.focusWidget() is dialog.path_edit
    dialog.path_edit.setFocus()
    qtbot.keyClicks(dialog.path_edit, str(pack))
    qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Tab)  # on to "Choose…"

    _return_with(qtbot, dialog, "not the pack's password")
    assert dialog.problem.isVisible() and dialog.problem.text().startswith(
        f"The visit pack did not open for {PHYSICIAN} with that password"
    )
    assert "Nothing was changed." in dialog.problem.text()
    assert _lease_status(db) == {"out"}

    dialog.check_only.setFocus()
    qtbot.keyClick(dialog.check_only, Qt.Key.Key_Space)
    assert dialog.check_only.isChecked()
    _return_with(qtbot, dialog, PASSWORD)
    assert dialog.status.text().startswith("Check only, nothing was changed. Visit pack ")
    assert "1 edit applied" in dialog.status.text()
    assert _lease_status(db) == {"out"} and not dialog.review_button.isVisible()
    with db.read_session() as s:
        assert s.get(Patient, patient_id(s, mrns[0])).phone != "(813) 555-0142"

    dialog.check_only.setFocus()
    qtbot.keyClick(dialog.check_only, Qt.Key.Key_Space)
    with qtbot.waitSignal(dialog.returned, timeout=30_000):
        _return_with(qtbot, dialog, PASSWORD)
    summary = dialog.status.text()
    assert "1 edit applied" in summary and "Nothing waits for a physician." in summary
    assert not dialog.problem.isVisible() and dialog.password.text() == ""
    assert _lease_status(db) == {"returned"}
    with db.read_session() as s:
        assert s.get(Patient, patient_id(s, mrns[0])).phone == "(813) 555-0142"
    _screenshot(dialog, "visit-return-done")
    problems = layout_problems("Return dialog (done)", dialog, dialog, SIZE)
    assert not problems, "\n".join(problems)

    # The same pack again: nothing changes, and the dialog says so.
    assert dialog.return_button.text() == "Return again"
    _return_with(qtbot, dialog, PASSWORD)
    assert not dialog.problem.isVisible(), dialog.problem.text()
    assert dialog.status.text().startswith("Nothing changed: every record of visit pack ")
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.findChild(ReturnDialog) is None, timeout=5_000)


def test_a_return_that_queues_conflicts_opens_the_review(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    path, mrns = visit_practice
    pack = tmp_path / "visit.db"
    with opened(path) as (db, physician):
        check_out_patients(db, physician, [mrns[0]], pack, PASSWORD)
    for where, phone in ((pack, "(813) 555-0199"), (path, "(813) 555-0100")):
        with opened(where) as (db, _), db.session() as s:
            s.get(Patient, patient_id(s, mrns[0])).phone = phone
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        dialog = window.return_visit_pack(suggested_path=pack)
        assert isinstance(dialog, ReturnDialog)
        qtbot.waitExposed(dialog)
        dialog.activateWindow()
        assert dialog.focusWidget() is dialog.password
        _return_with(qtbot, dialog, PASSWORD)
        summary = dialog.status.text()
        assert "1 record waits for a physician" in summary
        assert "patient demographics: changed both at the office and on the visit laptop" in summary
        assert dialog.review_button.isVisible() and dialog.review_button.hasFocus()
        _screenshot(dialog, "visit-return-conflict")
        qtbot.keyClick(dialog.review_button, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.findChild(ReturnDialog) is None, timeout=5_000)
        review = window.tabs.currentWidget()
        assert isinstance(review, ConflictReview)
        assert review.queue.rowCount() == 1 and review.queue.item(0, 0).text() == mrns[0]
    finally:
        _close(window)


def test_a_consent_signed_at_home_returns_through_the_app_and_a_credential_is_refused(
    qtbot, practice_window, tmp_path: Path
) -> None:
    """The app's return brings a consent signed in the patient's home (on screen) and a PDMP
    look-up into the practice, and names the change it did not bring back (a credential typed
    in on the laptop is the practice's own record)."""
    from ketadesk.core.prescription_checks import CredentialKind
    from ketadesk.models.compliance import ConsentRecord, PrescriberCredential
    from ketadesk.storage.compliance.consent import (
        consent_templates,
        ensure_consent_template,
        record_consent,
    )
    from ketadesk.storage.compliance.credentials import save_credential
    from ketadesk.storage.compliance.pdmp_checks import pdmp_checks_of, record_pdmp_check
    from tests.visit_pack_data import today

    window, mrns, _path = practice_window
    db = window.context.db
    with db.session() as s:
        ensure_consent_template(s, window.context.actor)
    pack = tmp_path / "visit.db"
    check_out_patients(db, window.context.actor, [mrns[0]], pack, PASSWORD)
    with opened(pack) as (pack_db, physician), pack_db.session() as s:
        pid = patient_id(s, mrns[0])
        record_consent(s, physician, pid, template_id=consent_templates(s)[-1].id,
                       signed_on=today(), method="on_screen", today=today())
        record_pdmp_check(s, physician, pid, state="FL",
                          not_checked_reason="No network at the patient's home.")
        save_credential(s, physician, user_name=physician.user_name,
                        kind=CredentialKind.STATE_LICENCE, state="FL", number="ME12345",
                        expires_on=today().replace(year=today().year + 1))
    dialog = window.return_visit_pack(suggested_path=pack)
    assert isinstance(dialog, ReturnDialog)
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    with qtbot.waitSignal(dialog.returned, timeout=30_000):
        _return_with(qtbot, dialog, PASSWORD)
    summary = dialog.status.text()
    assert "2 new records added" in summary and "Nothing waits for a physician." in summary
    assert "1 change was not brought back:" in summary
    assert ("prescriber credential: changed on the visit laptop, but the practice keeps this "
            "at the office") in summary
    _screenshot(dialog, "visit-return-refused")
    problems = layout_problems("Return dialog (refused)", dialog, dialog, SIZE)
    assert not problems, "\n".join(problems)
    with db.read_session() as s:
        pid = patient_id(s, mrns[0])
        methods = s.execute(
            select(ConsentRecord.method).where(ConsentRecord.patient_id == pid)
        ).scalars().all()
        assert methods == ["on_screen"]
        assert [c.consulted for c in pdmp_checks_of(s, pid)] == [False]
        assert s.execute(select(PrescriberCredential)).first() is None
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.findChild(ReturnDialog) is None, timeout=5_000)


def _answer_confirmation(qtbot, key: str, seen: list[str]) -> None:
    """Answer the revoke confirmation with real keys: Enter takes its default (Cancel);
    "revoke" moves to the Revoke button and presses Space."""

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, answer)
            return
        seen.append(f"{box.text()}\n{box.informativeText()}")
        if key == "revoke":
            button = next(b for b in box.buttons() if b.text() == "Revoke")
            button.setFocus()
            qtbot.keyClick(button, Qt.Key.Key_Space)
        else:
            qtbot.keyClick(box, Qt.Key.Key_Return)

    QTimer.singleShot(50, answer)


def _open_leases(qtbot, window: MainWindow) -> LeasesDialog:
    window.visit_leases_action.trigger()
    dialog = window.findChild(LeasesDialog)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    return dialog


def test_a_physician_revokes_a_pack_after_saying_what_revoking_cannot_do(
    qtbot, practice_window, tmp_path: Path
) -> None:
    window, mrns, _path = practice_window
    db, physician = window.context.db, window.context.actor
    first = check_out_patients(db, physician, mrns, tmp_path / "one.db", PASSWORD)
    dialog = _open_leases(qtbot, window)
    table = dialog.table
    assert table.rowCount() == 1 and dialog.summary.text().startswith("1 visit pack is out")
    cells = [table.item(0, c).text() for c in range(table.columnCount())]
    assert cells[0] == first.pack_id and cells[1] == "2" and cells[2] == PHYSICIAN
    assert cells[5] == "out" and not dialog.role_note.isVisible()
    assert dialog.revoke_button.isEnabled()
    _screenshot(dialog, "visit-leases")
    problems = layout_problems("Visit packs out", dialog, dialog, SIZE)
    assert not problems, "\n".join(problems)

    seen: list[str] = []
    _answer_confirmation(qtbot, "cancel", seen)
    dialog.revoke_button.setFocus()
    qtbot.keyClick(dialog.revoke_button, Qt.Key.Key_Space)
    assert seen and first.pack_id in seen[0] and REVOKE_CANNOT in seen[0]
    assert "no remote wipe" in seen[0]
    assert _lease_status(db) == {"out"} and dialog.done_label.text() == ""

    _answer_confirmation(qtbot, "revoke", seen)
    with qtbot.waitSignal(dialog.lease_revoked, timeout=10_000):
        qtbot.keyClick(dialog.revoke_button, Qt.Key.Key_Space)
    assert _lease_status(db) == {"revoked"}
    assert dialog.done_label.text().startswith(f"Visit pack {first.pack_id} revoked")
    assert table.item(0, 5).text() == f"revoked by {PHYSICIAN}"
    assert not dialog.revoke_button.isEnabled()
    with db.read_session() as s:
        events = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.VISIT_PACK_REVOKED)
        ).scalars().all()
        assert [(e.user_name, e.detail) for e in events] == [
            (PHYSICIAN, f"visit pack {first.pack_id}")]
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.findChild(LeasesDialog) is None, timeout=5_000)


def test_an_admin_sees_the_packs_out_but_cannot_revoke(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    path, mrns = visit_practice
    with opened(path) as (db, physician):
        check_out_patients(db, physician, [mrns[0]], tmp_path / "one.db", PASSWORD)
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        assert window.visit_leases_action.isVisible() and window.visit_return_action.isVisible()
        dialog = _open_leases(qtbot, window)
        assert dialog.table.rowCount() == 1 and dialog.role_note.isVisible()
        assert dialog.role_note.text() == WHO_REVOKES
        assert not dialog.revoke_button.isEnabled()
        dialog.revoke_current()  # even asked directly, nothing is revoked
        assert dialog.problem.text() == WHO_REVOKES
        assert _lease_status(db) == {"out"}
        _screenshot(dialog, "visit-leases-admin")
        dialog.reject()
    finally:
        _close(window)
