"""The desktop app on a practice server, as a user meets it: ``--db postgresql://…`` opens the
log-in dialog with the server chosen, Enter logs in, the roster and the audit check run on the
server, the screen locks and unlocks (the server checks the password again), another user takes
over from the lock screen, and logging out returns to the log-in dialog."""

from __future__ import annotations

from datetime import date

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLineEdit

from ketadesk.models.audit import AuditEvent
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.app import SessionFlow
from ketadesk.ui.session.login_dialog import SERVER_SETTINGS, LoginDialog
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of, drop_copy
from tests.conftest import PASSWORD

Key = Qt.Key


@pytest.fixture
def server_practice(practice_server, server_template):
    """A copy of the template practice with 40 patients, its CA installed on this computer."""
    address = copy_of(practice_server, server_template[0])
    ca = practice_server.ca_certificate
    QSettings().remove(SERVER_SETTINGS)
    QSettings().setValue(f"{SERVER_SETTINGS}/ca_certificate", str(ca))
    practice = ServerPractice.log_in(address, ca, SERVER_PHYSICIAN, PASSWORD)
    with practice.session() as session:
        populate_demo_patients(session, 40, entered_by=SERVER_PHYSICIAN, today=date(2026, 3, 15))
    practice.close()
    yield address
    QSettings().remove(SERVER_SETTINGS)
    drop_copy(practice_server, address)


def _when_login_dialog(act) -> None:
    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, LoginDialog):
            act(widget)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


def _log_in_with_keys(qtbot, user: str):
    def act(dialog: LoginDialog) -> None:
        assert dialog.server_choice.isChecked()
        dialog.activateWindow()
        dialog.user_edit.setFocus()
        qtbot.keyClicks(dialog.user_edit, user)
        qtbot.keyClick(dialog.user_edit, Key.Key_Tab)
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        qtbot.keyClick(dialog.password_edit, Key.Key_Return)

    return act


def _actions(address, ca) -> list[str]:
    practice = ServerPractice.log_in(address, ca, SERVER_PHYSICIAN, PASSWORD)
    try:
        with practice.read_session() as session:
            return [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    finally:
        practice.close()


def test_the_app_runs_on_the_server_and_locks_and_unlocks(
    qtbot, tmp_path, practice_server, server_practice, monkeypatch
):
    quits: list[bool] = []
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: quits.append(True)))
    flow = SessionFlow(
        tmp_path / "no-file-here.db", MemorySecretStore(available=True), server_practice.url
    )
    _when_login_dialog(_log_in_with_keys(qtbot, SERVER_PHYSICIAN))
    assert flow.start()
    window = flow.window
    assert window is not None and window.isVisible()
    qtbot.addWidget(window)
    assert isinstance(window.context.db, ServerPractice)
    assert window.context.actor.user_name == SERVER_PHYSICIAN
    qtbot.waitUntil(lambda: "Audit trail intact" in window.audit_status.text(), timeout=20_000)
    roster = window.roster
    qtbot.waitUntil(lambda: roster.count_label.text() == "40 patients", timeout=10_000)
    # Visit packs, users and passwords (the server's login roles) are offered on a server.
    assert window.context.db.path is None  # no practice file on this computer
    for action in (window.visit_checkout_action, window.visit_return_action,
                   window.visit_leases_action, window.visit_conflicts_action):
        assert action.isVisible(), action.text()
    assert window.users_action.isVisible() and window.password_action.isVisible()
    assert window.audit_action.isVisible() and window.settings_action.isVisible()

    scratch = QLineEdit(window.tabs.widget(0))
    scratch.setText("unsaved words")
    window.lock()
    assert window.is_locked and window.context.db.is_locked
    window.lock_screen.password_edit.setText("not it at all")
    qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.lock_screen.error_label.isVisible, timeout=20_000)
    assert "Wrong user name or password" in window.lock_screen.error_label.text()
    assert window.context.db.is_locked
    window.lock_screen.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=20_000):
        qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    assert scratch.text() == "unsaved words"

    window.lock()
    qtbot.mouseClick(window.lock_screen.switch_button, Qt.MouseButton.LeftButton)
    window.lock_screen.user_edit.setText(SERVER_ADMIN)
    window.lock_screen.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=20_000):
        qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    assert window.context.actor.user_name == SERVER_ADMIN
    assert not window.users_action.isVisible()
    with window.context.db.session() as session:  # the admin's own role on the server now
        assert session.connection().exec_driver_sql("SELECT current_user").scalar() == (
            SERVER_ADMIN
        )

    window.context.ops.wait_for_done()
    _when_login_dialog(lambda dialog: dialog.reject())
    window.log_out()
    assert quits == [True] and window.context.db.is_locked
    actions = _actions(server_practice, practice_server.ca_certificate)
    assert actions.count("login") >= 2  # the template's, then this log-in
    # ... then this test's own log-in to read them; the admin's first log-in (switching user
    # at the lock screen) made their signing key on the server.
    assert actions[-7:] == [
        "lock", "unlock", "lock", "signing_key_granted", "unlock", "logout", "login"
    ]
