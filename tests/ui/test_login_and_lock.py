"""Log-in, auto-lock, lock screen and switch user, on real widgets and a real database."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QLineEdit, QWidget

from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.session.login_dialog import LoginDialog
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice


@pytest.fixture
def db_path(prepared_practice, tmp_path):
    return copy_practice(prepared_practice, tmp_path / "db")


def _login(qtbot, dialog: LoginDialog, user: str, password: str) -> None:
    dialog.user_edit.setText(user)
    dialog.password_edit.setText(password)
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)


def test_login_with_wrong_then_right_password(qtbot, db_path):
    dialog = LoginDialog(db_path, MemorySecretStore(available=False))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.keyring_available is not None, timeout=5_000)
    assert not dialog.remember_box.isVisible()
    assert "No secure system keyring" in dialog.keyring_note.text()
    _login(qtbot, dialog, PHYSICIAN, "not my password")
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=10_000)
    assert dialog.error_label.text() == "Wrong user name or password."
    assert dialog.password_edit.text() == ""
    with qtbot.waitSignal(dialog.logged_in, timeout=10_000):
        _login(qtbot, dialog, PHYSICIAN, PASSWORD)
    assert dialog.outcome.actor.user_name == PHYSICIAN
    assert dialog.outcome.failed_attempts_since_last_login == 1
    dialog.database.close()


def test_remember_me_uses_the_keyring_and_skips_the_password(qtbot, db_path):
    store = MemorySecretStore(available=True)
    dialog = LoginDialog(db_path, store)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.remember_box.isVisible(), timeout=5_000)
    dialog.remember_box.setChecked(True)
    with qtbot.waitSignal(dialog.logged_in, timeout=10_000):
        _login(qtbot, dialog, ADMIN, PASSWORD)
    dialog.database.close()
    assert len(store.secrets) == 1
    second = LoginDialog(db_path, store)
    qtbot.addWidget(second)
    qtbot.waitUntil(lambda: second.keyring_available is not None, timeout=5_000)
    with qtbot.waitSignal(second.logged_in, timeout=10_000):
        _login(qtbot, second, ADMIN, "")
    assert second.outcome.actor.user_name == ADMIN
    second.database.close()
    # A different user name gets no free pass.
    third = LoginDialog(db_path, store)
    qtbot.addWidget(third)
    qtbot.waitUntil(lambda: third.keyring_available is not None, timeout=5_000)
    _login(qtbot, third, PHYSICIAN, "")
    assert third.error_label.text() == "Enter your password."


@pytest.fixture
def window(qtbot, db_path):
    db, outcome = PracticeDatabase.unlock(db_path, PHYSICIAN, PASSWORD)
    context = AppContext(db, outcome.actor)
    win = MainWindow(context, outcome.audit)
    qtbot.addWidget(win)
    win.show()
    yield win
    if not db.is_locked:
        db.close()


def _patient_data_visible(win: MainWindow) -> bool:
    return win.stack.currentWidget() is win.workspace and win.workspace.isVisible()


def test_idle_timeout_locks_and_hides_patient_data(qtbot, window):
    scratch = QLineEdit(window.tabs.widget(0))
    scratch.setText("unsaved words")
    window.idle.set_timeout_ms(200)
    window.idle.reset()
    with qtbot.waitSignal(window.locked, timeout=5_000):
        pass
    assert window.is_locked
    assert not _patient_data_visible(window)
    assert window.context.db.is_locked
    assert not window.menuBar().isEnabled()
    # Unlock with the same user: the unsaved text survives.
    window.lock_screen.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=10_000):
        qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    assert _patient_data_visible(window)
    assert scratch.text() == "unsaved words"
    with window.context.db.session() as session:
        actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert actions[-3:] == ["lock", "login", "unlock"]


def test_wrong_password_on_lock_screen_keeps_it_locked(qtbot, window):
    window.lock()
    window.lock_screen.password_edit.setText("not it at all")
    qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.lock_screen.error_label.isVisible(), timeout=10_000)
    assert "Wrong user name or password" in window.lock_screen.error_label.text()
    assert window.is_locked
    assert window.context.db.is_locked


def test_switch_user_from_the_lock_screen(qtbot, window):
    extra = QWidget()
    window.open_tab(extra, "Chart")
    window.lock()
    assert "1 open patient chart" in window.lock_screen.switch_note.text()
    qtbot.mouseClick(window.lock_screen.switch_button, Qt.MouseButton.LeftButton)
    window.lock_screen.user_edit.setText(ADMIN)
    window.lock_screen.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=10_000):
        qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    assert window.context.actor.user_name == ADMIN
    assert window.patient_tabs() == []
    assert not window.users_action.isVisible()  # admins without manage_users
    assert ADMIN not in window.windowTitle() or "Frontdesk" in window.windowTitle()


def test_manage_users_menu_only_for_managers(window):
    assert window.users_action.isVisible()
    assert window.audit_action.isVisible()


def test_roster_opens_a_chart_with_every_feature_tab(qtbot, window):
    from ketadesk.storage.demo.demo_data import populate_demo_patients

    with window.context.db.session() as session:
        populate_demo_patients(session, 3, entered_by=PHYSICIAN)
    window.context.data_changed.emit("patients")
    qtbot.waitUntil(lambda: window.roster.model.rowCount() == 3, timeout=10_000)
    patient_id = window.roster.model.patient_id_at(0)
    with qtbot.waitSignal(window.roster.patient_opened, timeout=5_000):
        window.roster.patient_opened.emit(patient_id)
    chart = window.patient_tabs()[0]
    titles = [chart.tabs.tabText(i) for i in range(chart.tabs.count())]
    assert titles[-4:] == [
        "Interaction &review", "Pro&tocol", "Chec&k-ins && outcomes",
        "Prescriptions && compliance (&X)",
    ]
    assert window.tabs.tabText(1) == chart.windowTitle()
    # Opening the same patient again brings the same tab forward.
    assert window.open_patient(patient_id) is chart
    assert len(window.patient_tabs()) == 1
    window.context.ops.wait_for_done()


def test_plan_actions_follow_the_open_tab_and_the_role(qtbot, window):
    from ketadesk.storage.demo.demo_data import populate_demo_patients

    assert not window.export_current_action.isEnabled()  # the roster tab is showing
    assert window.export_all_action.isEnabled()
    with window.context.db.session() as session:
        populate_demo_patients(session, 1, entered_by=PHYSICIAN)
    window.context.data_changed.emit("patients")
    qtbot.waitUntil(lambda: window.roster.model.rowCount() == 1, timeout=10_000)
    window.open_patient(window.roster.model.patient_id_at(0))
    assert window.export_current_action.isEnabled()
    assert window.preview_draft_action.isEnabled()
    window.context.ops.wait_for_done()


def _type_into_window(qtbot, window_handle, keys, every_ms: int) -> None:
    """Keys as the keyboard sends them: to the window, which hands them to its focus widget."""
    for key in keys:
        QTest.keyClick(window_handle, key)
        qtbot.wait(every_ms)


def test_typing_defers_the_idle_lock_which_fires_once_typing_stops(qtbot, window):
    window.activateWindow()
    window.roster.search.setFocus()
    qtbot.waitUntil(lambda: window.windowHandle() is not None and window.isActiveWindow())
    window.idle.set_timeout_ms(700)
    window.idle.reset()
    locked_at: list[float] = []
    window.locked.connect(lambda: locked_at.append(time.monotonic()))
    keys = [Qt.Key.Key_M, Qt.Key.Key_A, Qt.Key.Key_R, Qt.Key.Key_Backspace] * 4
    _type_into_window(qtbot, window.windowHandle(), keys, every_ms=150)  # 2.4 s > 700 ms
    last_key = time.monotonic()
    assert window.roster.search.text() == "ma" * 4  # each "r" was typed, then rubbed out
    assert locked_at == [] and not window.is_locked
    qtbot.waitUntil(lambda: bool(locked_at), timeout=5_000)
    assert locked_at[0] - last_key >= 0.5  # idle for the timeout, less the last key's wait
    assert window.is_locked and window.context.db.is_locked


def test_typing_in_a_dialog_opened_later_defers_the_idle_lock(qtbot, window):
    dialog = QDialog(window)
    field = QLineEdit(dialog)
    dialog.show()
    dialog.activateWindow()
    field.setFocus()
    qtbot.waitUntil(lambda: dialog.windowHandle() is not None and dialog.isActiveWindow())
    window.idle.set_timeout_ms(700)
    window.idle.reset()
    keys = [Qt.Key.Key_K, Qt.Key.Key_E, Qt.Key.Key_T, Qt.Key.Key_A] * 4
    _type_into_window(qtbot, dialog.windowHandle(), keys, every_ms=150)
    assert field.text() == "keta" * 4
    assert not window.is_locked
    with qtbot.waitSignal(window.locked, timeout=5_000):
        pass
