"""Issue 13, "How the UI is tested": the whole working day by keyboard alone, on the X server.

Log in with Enter, find the patient with Ctrl+F, open the chart, add a medication and a
condition with Enter, run and sign the interaction review, write and sign a protocol, log a
home dose and a check-in, export the plan, lock and unlock, log out. Every step is a key
press sent where the keyboard focus is (as X delivers it): no mouse click, no slot called.
The test does only what a window manager would do on a desk: give the main window back its
activation when a dialog closes (Xvfb runs none).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QPlainTextEdit, QWidget

from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.audit import AuditEvent
from ketadesk.reports.plan_verify import extract_plan_text
from ketadesk.storage.outcomes.outcomes import patient_outcomes
from ketadesk.storage.patients.patients import add_vitals, create_patient, get_patient_record
from ketadesk.storage.practice.practice_limits_store import set_practice_limits
from ketadesk.storage.reviews.interaction_reviews import latest_signed_review
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.ui.app import SessionFlow
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.outcomes.checkin_dialog import CheckInDialog
from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
from ketadesk.ui.outcomes.dose_dialog import DoseDialog
from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog
from ketadesk.ui.protocol.protocol_editor import ProtocolEditor
from ketadesk.ui.review.interaction_review import ReviewScreen
from ketadesk.ui.session.login_dialog import LoginDialog
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.ui import screens
from tests.unit.signed_protocol_patients import generous_limits

LAST_NAME = "Keyboardson"
Key = Qt.Key


# --------------------------------------------------------------------------- the keyboard


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None, "no widget has the keyboard focus"
    return widget


def press(qtbot, key: Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """One key, delivered to the widget that has the keyboard focus."""
    qtbot.keyClick(focused(), key, modifiers)


def shortcut(qtbot, sequence: str) -> None:
    combination = QKeySequence(sequence)[0]
    press(qtbot, combination.key(), combination.keyboardModifiers())


def type_text(qtbot, text: str) -> None:
    qtbot.keyClicks(focused(), text)


def has_focus(widget: QWidget) -> bool:
    current = QApplication.focusWidget()
    return current is not None and (current is widget or widget.isAncestorOf(current))


def tab_to(qtbot, widget: QWidget, *, limit: int = 60) -> int:
    """Press Tab until ``widget`` has the focus, as a person does; the number of presses.
    Fails when the widget cannot be reached by the keyboard."""
    for presses in range(limit + 1):
        if has_focus(widget):
            return presses
        press(qtbot, Key.Key_Tab)
    raise AssertionError(
        f"{widget.accessibleName() or type(widget).__name__} cannot be reached with Tab "
        f"(focus stays on {type(QApplication.focusWidget()).__name__})"
    )


def chart_section(qtbot, chart: PatientChart, page: QWidget) -> None:
    """Alt + the section's underlined letter shows it; the focus moves into it with Tab."""
    title = chart.tabs.tabText(chart.tabs.indexOf(page)).replace("&&", "")
    assert "&" in title, f"the chart section {title!r} has no Alt+letter"
    letter = title[title.index("&") + 1]
    press(qtbot, Key(ord(letter.upper())), Qt.KeyboardModifier.AltModifier)
    assert chart.tabs.currentWidget() is page, f"Alt+{letter} did not show {title!r}"


def activate(qtbot, window: QWidget) -> None:
    """What a window manager does when a dialog closes: the window is active again."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)


def when_dialog(kind: type[QDialog], act: Callable[[QDialog], None]) -> None:
    """Act (by keyboard) on the next modal dialog of ``kind`` once it has the focus."""

    def attempt() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind) and dialog.isActiveWindow():
            act(dialog)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


# --------------------------------------------------------------------------- the practice


@pytest.fixture
def practice_path(prepared_practice: Path, tmp_path: Path) -> Path:
    """The prepared practice with its limits set and one synthetic patient on the roster
    (weighed, blood pressure taken), as the front desk would have left them."""
    path = copy_practice(prepared_practice, tmp_path / "db")
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    today = datetime.now(UTC).date()
    with db.session() as session:
        set_practice_limits(session, outcome.actor, generous_limits())
        draft = PatientDemographics(
            first_name="Wren", last_name=LAST_NAME, dob=date(1979, 6, 14), sex="female",
            state="FL", county="Pinellas", phone="(727) 555-0134",
            sitter_name="Ada Keyboardson", sitter_phone="(727) 555-0135",
        )
        pid = create_patient(session, outcome.actor, draft, today=today).id
        add_vitals(session, outcome.actor, pid, measured_at=datetime.now(UTC) - timedelta(hours=2),
                   systolic=122, diastolic=78, heart_rate=68, weight_kg=70.0)
    db.close()
    return path


def test_a_working_day_by_keyboard_alone(qtbot, practice_path: Path, tmp_path: Path,
                                         monkeypatch) -> None:
    quits: list[bool] = []
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append(True)))

    # 1. Log in: the user name, Tab, the password, Enter.
    def log_in(dialog: QDialog) -> None:
        assert isinstance(dialog, LoginDialog)
        assert has_focus(dialog.user_edit)
        type_text(qtbot, PHYSICIAN)
        press(qtbot, Key.Key_Tab)
        assert has_focus(dialog.password_edit)
        type_text(qtbot, PASSWORD)
        press(qtbot, Key.Key_Return)

    flow = SessionFlow(practice_path, MemorySecretStore(available=False))
    when_dialog(LoginDialog, log_in)
    assert flow.start()
    window = flow.window
    assert window is not None
    qtbot.addWidget(window)
    activate(qtbot, window)
    qtbot.waitUntil(lambda: window.roster.model.rowCount() == 1, timeout=10_000)

    # 2. Ctrl+F, the name, Enter: the chart opens.
    shortcut(qtbot, "Ctrl+F")
    assert has_focus(window.roster.search)
    type_text(qtbot, LAST_NAME)
    press(qtbot, Key.Key_Return)
    chart = window.tabs.currentWidget()
    assert isinstance(chart, PatientChart) and chart.patient_id is not None
    patient_id = chart.patient_id
    qtbot.waitUntil(lambda: chart.windowTitle().startswith(LAST_NAME) or LAST_NAME
                    in chart.windowTitle(), timeout=10_000)
    window.context.ops.wait_for_done(10_000)

    # 3. The Medications tab (Ctrl+Tab), the line typed, Enter adds it.
    chart_section(qtbot, chart, chart.medications_tab)
    tab_to(qtbot, chart.med_text)
    type_text(qtbot, "Ativan 0.5 mg at bedtime")
    press(qtbot, Key.Key_Return)
    qtbot.waitUntil(lambda: chart.med_table.rowCount() == 1, timeout=10_000)

    # 4. The Conditions tab, the condition typed, Enter adds it.
    chart_section(qtbot, chart, chart.conditions_tab)
    tab_to(qtbot, chart.condition_text)
    type_text(qtbot, "major depressive disorder")
    press(qtbot, Key.Key_Escape)  # closes the suggestions, keeps the text
    press(qtbot, Key.Key_Return)
    qtbot.waitUntil(lambda: chart.condition_table.rowCount() == 1, timeout=10_000)
    window.context.ops.wait_for_done(10_000)

    # 5. The interaction review (Alt+R): a decision chosen with the arrow keys, a note for the
    #    patient ticked with Space, then Sign review with Space.
    review = chart.findChild(ReviewScreen)
    assert review is not None
    chart_section(qtbot, chart, review)
    qtbot.waitUntil(lambda: review.is_loaded and bool(review.flag_cards()), timeout=10_000)
    card = next(c for c in review.flag_cards() if c.item.needs_decision)
    tab_to(qtbot, card.decision_combo)
    press(qtbot, Key.Key_Down)  # "Continue ketamine with monitoring" (no popup, no wheel)
    assert card.decision_combo.currentData() == "continue_with_monitoring"
    press(qtbot, Key.Key_Tab)
    assert has_focus(card.note_edit)
    type_text(qtbot, "Take no lorazepam on dosing days.")
    press(qtbot, Key.Key_Tab)
    assert has_focus(card.for_patient_check)
    press(qtbot, Key.Key_Space)
    assert card.for_patient_check.isChecked()
    tab_to(qtbot, review.sign_button)
    with qtbot.waitSignal(review.review_signed, timeout=20_000):
        press(qtbot, Key.Key_Space)
    window.context.ops.wait_for_done(10_000)

    # 6. The protocol (Alt+T): a template picked by typing its name, used, its example values
    #    confirmed, each warning ticked with Space, then Sign protocol; Enter makes the patient
    #    Active in the question that follows.
    editor = chart.findChild(ProtocolEditor)
    assert editor is not None
    chart_section(qtbot, chart, editor)
    qtbot.waitUntil(lambda: editor.is_loaded, timeout=10_000)
    tab_to(qtbot, editor.header.template_combo)
    type_text(qtbot, "Micro")  # (Space would open the list)
    assert editor.header.template_combo.currentData() == "Microdose, sublingual"
    tab_to(qtbot, editor.header.use_template_button)
    press(qtbot, Key.Key_Space)
    tab_to(qtbot, editor.example_banner.confirm_button)
    press(qtbot, Key.Key_Space)
    qtbot.waitUntil(lambda: editor.sign_panel.message_list.count() > 0, timeout=10_000)
    messages = editor.sign_panel.message_list
    tab_to(qtbot, messages)
    for _ in range(messages.count()):
        item = messages.currentItem()
        if item is not None and item.checkState() == Qt.CheckState.Unchecked and (
            item.flags() & Qt.ItemFlag.ItemIsUserCheckable
        ):
            press(qtbot, Key.Key_Space)
        press(qtbot, Key.Key_Down)
    qtbot.waitUntil(lambda: not editor.sign_blockers(), timeout=10_000)
    tab_to(qtbot, editor.sign_button)
    with qtbot.waitSignal(editor.protocol_signed, timeout=20_000):
        press(qtbot, Key.Key_Space)
    qtbot.waitUntil(lambda: editor.activation_question is not None, timeout=10_000)
    question = editor.activation_question
    qtbot.waitUntil(lambda: question.isActiveWindow(), timeout=5_000)
    with qtbot.waitSignal(editor.patient_activated, timeout=20_000):
        press(qtbot, Key.Key_Return)
    activate(qtbot, window)
    window.context.ops.wait_for_done(10_000)

    # 7. Check-ins (Alt+K): "Log home dose…" with Space; the dialog is filled field by field
    #    with Tab, the sitter chosen with the arrow keys, and Enter saves.
    checkins = chart.findChild(CheckInsTab)
    assert checkins is not None
    chart_section(qtbot, chart, checkins)
    qtbot.waitUntil(lambda: checkins.outcomes is not None, timeout=10_000)
    tab_to(qtbot, checkins.dose_button)
    press(qtbot, Key.Key_Space)
    dose = checkins.open_dialog
    assert isinstance(dose, DoseDialog)
    qtbot.waitUntil(dose.isActiveWindow, timeout=5_000)
    assert has_focus(dose.taken_edit)  # now, as the dialog opens
    press(qtbot, Key.Key_Tab)
    assert has_focus(dose.dose_spin)
    type_text(qtbot, "10")
    press(qtbot, Key.Key_Tab)
    type_text(qtbot, "124")
    press(qtbot, Key.Key_Tab)
    type_text(qtbot, "78")
    tab_to(qtbot, dose.sitter_box)
    press(qtbot, Key.Key_Down)
    assert dose.sitter_box.currentText() == "Yes"
    with qtbot.waitSignal(checkins.dose_logged, timeout=20_000):
        press(qtbot, Key.Key_Return)
    activate(qtbot, window)

    #    "New check-in…": the note typed, Tab to Save, Space.
    tab_to(qtbot, checkins.new_checkin_button)
    press(qtbot, Key.Key_Space)
    checkin = checkins.open_dialog
    assert isinstance(checkin, CheckInDialog)
    qtbot.waitUntil(checkin.isActiveWindow, timeout=5_000)
    tab_to(qtbot, checkin.notes_edit)
    type_text(qtbot, "First week went well; sitter present each time.")
    press(qtbot, Key.Key_Tab)
    assert has_focus(checkin.buttons.button(QDialogButtonBox.StandardButton.Save))
    with qtbot.waitSignal(checkins.checkin_saved, timeout=20_000):
        press(qtbot, Key.Key_Space)
    activate(qtbot, window)
    window.context.ops.wait_for_done(10_000)

    # 8. Ctrl+P exports this patient's plan: the folder typed, Enter exports, Escape closes.
    folder = tmp_path / "plans"
    folder.mkdir()
    summaries: list[object] = []

    def export(dialog: QDialog) -> None:
        assert isinstance(dialog, PlanExportDialog)
        tab_to(qtbot, dialog.folder_edit)
        type_text(qtbot, str(folder))
        press(qtbot, Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.last_summary is not None, timeout=30_000)
        summaries.append(dialog.last_summary)
        activate(qtbot, dialog)  # the progress dialog has closed over it
        press(qtbot, Key.Key_Escape)

    when_dialog(PlanExportDialog, export)
    shortcut(qtbot, "Ctrl+P")
    assert summaries and len(list(folder.glob("*.pdf"))) == 1
    activate(qtbot, window)

    # 9. Ctrl+L locks; the password and Enter unlock.
    shortcut(qtbot, "Ctrl+L")
    assert window.is_locked
    assert has_focus(window.lock_screen.password_edit)
    type_text(qtbot, PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=20_000):
        press(qtbot, Key.Key_Return)
    assert not window.is_locked

    # 10. Log out from the File menu by its letters (Alt+F, O); Escape at the log-in dialog
    #     that follows leaves the app.
    when_dialog(LoginDialog, lambda _dialog: press(qtbot, Key.Key_Escape))
    with qtbot.waitSignal(window.logged_out, timeout=10_000):
        press(qtbot, Key.Key_F, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=5_000)
        qtbot.keyClick(QApplication.activePopupWidget(), Key.Key_O)
    assert quits == [True] and flow.window is None
    assert window.context.db.is_locked

    # What the keys did, read back from the database and the exported plan.
    db, outcome = PracticeDatabase.unlock(practice_path, PHYSICIAN, PASSWORD)
    try:
        with db.session() as session:
            record = get_patient_record(session, outcome.actor, patient_id)
            signed_review = latest_signed_review(session, patient_id)
            outcomes = patient_outcomes(session, record.id, datetime.now(UTC).date())
            actions = {e.action for e in session.query(AuditEvent)}
    finally:
        db.close()
    assert [m.entered_text for m in record.medications] == ["Ativan 0.5 mg at bedtime"]
    assert [c.entered_text for c in record.conditions] == ["major depressive disorder"]
    assert record.status == "active"
    assert signed_review is not None
    assert [(d.decision, d.note, d.note_for_patient) for d in signed_review.decisions] == [
        ("continue_with_monitoring", "Take no lorazepam on dosing days.", True)
    ]
    [dose_logged] = [item.entry for item in outcomes.dose_log]
    assert (dose_logged.dose_mg, dose_logged.bp_before_systolic,
            dose_logged.bp_before_diastolic, dose_logged.sitter_present) == (10, 124, 78, True)
    assert [c.notes for c in outcomes.checkins] == [
        "First week went well; sitter present each time."
    ]
    text = " ".join(extract_plan_text(next(folder.glob("*.pdf")).read_bytes()).split())
    assert "Note from your physician: Take no lorazepam on dosing days." in text
    assert {"login", "lock", "unlock", "logout", "plan_exported"} <= actions


# --------------------------------------------------------------------------- defects it found


def test_every_chart_section_opens_with_its_own_alt_letter(qtbot, demo_window) -> None:
    """Found by the walkthrough: Ctrl+Tab from a field outside the sections switched the
    window's tabs, so the chart's sections had no key. Each has an Alt+letter, unique, and
    none taken by the menu bar."""
    window = demo_window
    chart = screens.open_chart(qtbot, window, screens.FULL_CHART_PATIENT)
    activate(qtbot, window)
    menu_letters = {
        action.text()[action.text().index("&") + 1].upper()
        for action in window.menuBar().actions() if "&" in action.text()
    }
    letters = []
    for index in reversed(range(chart.tabs.count())):
        title = chart.tabs.tabText(index).replace("&&", "")
        assert "&" in title, title
        letters.append(title[title.index("&") + 1].upper())
        chart.tabs.widget(0 if index else 1).setFocus()
        press(qtbot, Key(ord(letters[-1])), Qt.KeyboardModifier.AltModifier)
        assert chart.tabs.currentIndex() == index, title
    assert len(set(letters)) == len(letters) and not set(letters) & menu_letters


def test_tab_leaves_every_multi_line_field(qtbot, demo_window) -> None:
    """Found by the walkthrough: Tab in the protocol's long-text fields (and the check-in
    note) typed a tab character and kept the focus, so Sign could not be reached by Tab."""
    window = demo_window
    chart = screens.open_chart(qtbot, window, screens.DRAFT_PROTOCOL_PATIENT)
    dialog = CheckInDialog("Dr. Test", chart)
    fields = chart.findChildren(QPlainTextEdit)
    assert len(fields) >= 3
    assert [f for f in fields if not f.tabChangesFocus()] == []
    assert dialog.notes_edit in fields
    dialog.deleteLater()


def test_a_review_asked_to_reload_while_loading_shows_the_newer_chart(qtbot, practice) -> None:
    """Found by the walkthrough: a change made while the review was still being checked was
    dropped, so the review showed the chart without the medication just added (no finding)."""
    from ketadesk.storage.patients.patient_medications import add_medication
    from ketadesk.ui.common.context import AppContext

    with practice.db.session() as session:
        set_practice_limits(session, practice.physician, generous_limits())
        draft = PatientDemographics(
            first_name="Wren", last_name=LAST_NAME, dob=date(1979, 6, 14), sex="female",
            state="FL", county="Pinellas",
        )
        pid = create_patient(session, practice.physician, draft,
                             today=datetime.now(UTC).date()).id
    context = AppContext(practice.db, practice.physician)
    review = ReviewScreen(context, pid)
    qtbot.addWidget(review)
    qtbot.waitUntil(lambda: review.is_loaded, timeout=10_000)
    assert review.flag_cards() == []
    review.reload()  # a check is running...
    with practice.db.session() as session:  # ...when a medication is added
        add_medication(session, practice.physician, pid, "Ativan 0.5 mg at bedtime")
    context.data_changed.emit(f"patient:{pid}")
    qtbot.waitUntil(lambda: review.is_loaded and len(review.flag_cards()) == 1, timeout=10_000)
    context.ops.wait_for_done(10_000)
