"""The app's flow as a user meets it: first-run set-up, log-in, log-out, log-in again."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication

from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.ui.app import SessionFlow
from ketadesk.ui.session.login_dialog import LoginDialog
from ketadesk.ui.session.setup_dialog import RecoveryKeyDialog, SetupDialog
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.ui.conftest import DEMO_PASSWORD, DEMO_PHYSICIAN


def _when_modal(kind, act, qtbot):
    """Act on the next modal dialog of ``kind`` once it is shown."""

    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind):
            act(widget)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


def test_first_run_creates_the_database_and_shows_the_recovery_key_once(qtbot, tmp_path):
    path = tmp_path / "new" / "practice.db"
    shown_keys: list[str] = []

    def fill_setup(dialog: SetupDialog) -> None:
        dialog.user_edit.setText("drfirst")
        dialog.name_edit.setText("Dr. First Physician")
        dialog.password_edit.setText(PASSWORD)
        dialog.repeat_edit.setText("not the same one")
        dialog.create()
        assert dialog.error_label.text() == "The two passwords do not match."
        dialog.repeat_edit.setText(PASSWORD)
        _when_modal(RecoveryKeyDialog, confirm_key, qtbot)
        dialog.create()

    def confirm_key(dialog: RecoveryKeyDialog) -> None:
        assert not dialog.ok_button.isEnabled()  # must confirm it was stored
        shown_keys.append(dialog.findChildren(type(dialog.stored_box))[0].text())
        dialog.stored_box.setChecked(True)
        dialog.ok_button.click()

    flow = SessionFlow(path, MemorySecretStore(available=False))
    _when_modal(SetupDialog, fill_setup, qtbot)
    assert flow.start()
    window = flow.window
    assert window is not None
    qtbot.addWidget(window)
    assert window.context.actor.user_name == "drfirst"
    assert shown_keys, "the recovery key dialog was shown"
    assert path.exists() and KeySlotFile.path_for(path).exists()
    window.context.ops.wait_for_done()
    window.context.db.close()


def test_log_in_then_log_out_returns_to_the_log_in_dialog(qtbot, prepared_practice, tmp_path,
                                                         monkeypatch):
    path = copy_practice(prepared_practice, tmp_path / "db")
    quits: list[bool] = []
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append(True)))

    def log_in(dialog: LoginDialog) -> None:
        dialog.user_edit.setText(PHYSICIAN)
        dialog.password_edit.setText(PASSWORD)
        dialog.try_login()

    flow = SessionFlow(path, MemorySecretStore(available=False))
    _when_modal(LoginDialog, log_in, qtbot)
    assert flow.start()
    window = flow.window
    assert window is not None and window.isVisible()
    assert window.context.actor.user_name == PHYSICIAN
    window.context.ops.wait_for_done()

    _when_modal(LoginDialog, lambda dialog: dialog.reject(), qtbot)  # then cancel the log-in
    window.log_out()
    assert flow.window is None
    assert quits == [True]  # cancelling the log-in after log-out quits the app
    assert window.context.db.is_locked
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        from ketadesk.models.audit import AuditEvent

        actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    db.close()
    assert "logout" in actions


def _type_and_press_enter(dialog: LoginDialog, qtbot, user: str, password: str) -> None:
    """What everyone does: type the name, Tab, type the password, press Enter."""
    dialog.activateWindow()
    dialog.user_edit.setFocus()
    qtbot.keyClicks(dialog.user_edit, user)
    qtbot.keyClick(dialog.user_edit, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.password_edit
    qtbot.keyClicks(dialog.password_edit, password)
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)


def test_enter_in_the_password_field_logs_in(qtbot, prepared_practice, tmp_path, monkeypatch):
    path = copy_practice(prepared_practice, tmp_path / "db")
    quits: list[bool] = []
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append(True)))
    seen: list[str] = []

    def wrong_then_right(dialog: LoginDialog) -> None:
        _type_and_press_enter(dialog, qtbot, PHYSICIAN, "not my password")
        # A wrong password keeps the dialog open with the reason, ready for another try.
        qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=20_000)
        assert dialog.isVisible()
        seen.append(dialog.error_label.text())
        assert dialog.focusWidget() is dialog.password_edit
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Enter)  # the keypad's Enter too

    flow = SessionFlow(path, MemorySecretStore(available=False))
    _when_modal(LoginDialog, wrong_then_right, qtbot)
    assert flow.start(), "Enter in the password field cancelled the log-in"
    window = flow.window
    assert window is not None and window.isVisible()
    qtbot.addWidget(window)
    assert window.context.actor.user_name == PHYSICIAN
    assert seen and seen[0]
    assert quits == []
    window.context.ops.wait_for_done()
    window.context.db.close()


def test_escape_in_the_log_in_dialog_cancels(qtbot, prepared_practice, tmp_path):
    path = copy_practice(prepared_practice, tmp_path / "db")

    def press_escape(dialog: LoginDialog) -> None:
        dialog.activateWindow()
        qtbot.keyClicks(dialog.user_edit, PHYSICIAN)
        qtbot.keyClick(dialog.user_edit, Qt.Key.Key_Escape)

    flow = SessionFlow(path, MemorySecretStore(available=False))
    _when_modal(LoginDialog, press_escape, qtbot)
    assert not flow.start()
    assert flow.window is None


def test_the_main_window_is_built_while_the_key_is_derived_and_loaded_after(
    qtbot, prepared_practice, tmp_path, monkeypatch
):
    """Log in builds the main window (no database, no rows, no user) while the key is
    derived; a wrong password keeps it for the next try; after unlock the same window gets
    the database, the roster's rows and the user's name."""
    path = copy_practice(prepared_practice, tmp_path / "db")
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: None))
    built: list[object] = []
    flow = SessionFlow(path, MemorySecretStore(available=False))

    def wrong_then_right(dialog: LoginDialog) -> None:
        _type_and_press_enter(dialog, qtbot, PHYSICIAN, "not my password")
        window = flow.prepared_window
        assert window is not None and not window.isVisible()
        assert not window.context.is_attached
        assert window.roster.model.rowCount() == 0
        assert window.roster.count_label.text() == ""  # no query yet
        assert PHYSICIAN not in window.windowTitle()
        built.append(window)
        qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=20_000)
        assert flow.prepared_window is window  # kept for the next try
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)

    _when_modal(LoginDialog, wrong_then_right, qtbot)
    assert flow.start()
    window = flow.window
    assert window is not None and window.isVisible()
    qtbot.addWidget(window)
    assert built == [window] and flow.prepared_window is None
    assert window.context.actor.user_name == PHYSICIAN
    assert window.context.actor.full_name in window.windowTitle()
    assert window.roster.model.has_database
    assert window.roster.count_label.text() == "0 patients"  # asked SQL (an empty practice)
    qtbot.waitUntil(lambda: window.safety_banner.alerts_seen is not None, timeout=5_000)
    window.context.ops.wait_for_done()
    window.context.db.close()


class _FirstOnScreenPaint(QObject):
    """What the window looked like at the roster's first paint on screen (the paint of the
    off-screen grab while the key is derived does not count): was the safety banner shown,
    and where were the roster's rows (y in the window)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.seen: tuple[bool, int] | None = None
        window.roster.table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.seen is None and self.window.isVisible():
            self.seen = _banner_and_rows(self.window)
        return False


def _banner_and_rows(window) -> tuple[bool, int]:
    viewport = window.roster.table.viewport()
    return window.safety_banner.isVisible(), viewport.mapTo(window, QPoint(0, 0)).y()


@pytest.mark.parametrize("with_alert", [True, False], ids=["open alert", "no alert"])
def test_the_safety_banner_is_in_the_first_frame_and_the_rows_never_move(
    qtbot, prepared_demo_practice, prepared_practice, tmp_path, monkeypatch, with_alert
):
    """Log in with real keys and type a search at once: an open safety alert is on screen in
    the roster's first frame (not dropped in a moment later, pushing the row under the mouse
    down), and the rows stay where they were painted first while the user types."""
    if with_alert:
        path = copy_practice(prepared_demo_practice, tmp_path / "demo")
        user, password = DEMO_PHYSICIAN, DEMO_PASSWORD
    else:
        path = copy_practice(prepared_practice, tmp_path / "db")
        user, password = PHYSICIAN, PASSWORD
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: None))
    flow = SessionFlow(path, MemorySecretStore(available=False))
    watches: list[_FirstOnScreenPaint] = []

    def log_in(dialog: LoginDialog) -> None:
        _type_and_press_enter(dialog, qtbot, user, password)
        assert flow.prepared_window is not None  # built while the key is derived
        flow.prepared_window.resize(1280, 800)
        watches.append(_FirstOnScreenPaint(flow.prepared_window))

    _when_modal(LoginDialog, log_in, qtbot)
    assert flow.start()
    window = flow.window
    assert window is not None and watches
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: watches[0].seen is not None, timeout=10_000)
    first = watches[0].seen
    assert first is not None and first[0] is with_alert
    window.roster.search.setFocus()
    for key in "ma":
        qtbot.keyClick(window.roster.search, key)
        assert _banner_and_rows(window) == first
    qtbot.wait(600)  # longer than the banner's read used to take to arrive
    window.context.ops.wait_for_done()
    QApplication.processEvents()
    assert _banner_and_rows(window) == first
    assert bool(window.safety_banner.patient_ids()) is with_alert
    window.context.ops.wait_for_done()
    window.context.db.close()
