"""Forgot your password: the log-in dialog's way to the recovery key, driven with real keys on a
real X server, on a real encrypted practice whose recovery key was printed at creation."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.ui.session.login_dialog import LoginDialog
from ketadesk.ui.session.recovery_dialog import RecoveryDialog, file_recovery
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.ui.layout_check import layout_problems

NEW_PASSWORD = "violet lantern orchard"
WRONG_KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH"


@dataclass(frozen=True)
class Practice:
    path: Path
    recovery_key: str


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Practice:
    path = tmp_path_factory.mktemp("recovery-ui") / "practice.db"
    db, _actor, recovery_key = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Rowan Quill", password=PASSWORD
    )
    db.close()
    return Practice(path, recovery_key)


@pytest.fixture
def practice(prepared: Practice, tmp_path: Path) -> Practice:
    return Practice(copy_practice(prepared.path, tmp_path / "db"), prepared.recovery_key)


def _hashes(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.parent.iterdir()) if p.is_file()}


def _screenshot(widget, name: str) -> None:
    folder = os.environ.get("KETADESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"{name}-1280x800.png"))


def _fill_with_keys(qtbot, dialog: RecoveryDialog, key: str, password: str) -> None:
    """As a person does: the user name is filled in; type the key, Tab, the password, Tab,
    the password again, Enter."""
    dialog.activateWindow()
    qtbot.waitUntil(lambda: dialog.focusWidget() is dialog.key_edit, timeout=5_000)
    qtbot.keyClicks(dialog.key_edit, key)
    qtbot.keyClick(dialog.key_edit, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.password_edit
    qtbot.keyClicks(dialog.password_edit, password)
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.repeat_edit
    qtbot.keyClicks(dialog.repeat_edit, password)
    qtbot.keyClick(dialog.repeat_edit, Qt.Key.Key_Return)


def test_a_wrong_key_is_said_in_words_and_changes_no_file_then_escape_cancels(
    qtbot, practice
):
    dialog = RecoveryDialog(file_recovery(practice.path), PHYSICIAN)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    before = _hashes(practice.path)
    _fill_with_keys(qtbot, dialog, WRONG_KEY, NEW_PASSWORD)
    qtbot.waitUntil(lambda: dialog.problem.isVisible(), timeout=30_000)
    assert "That recovery key does not open this practice database" in dialog.problem.text()
    assert dialog.focusWidget() is dialog.key_edit  # ready to type it again
    assert dialog.isVisible() and dialog.outcome is None
    assert _hashes(practice.path) == before
    dialog.resize(dialog.sizeHint())
    qtbot.wait(20)
    problems = layout_problems("Recovery key (wrong key)", dialog, dialog, (1280, 800))
    _screenshot(dialog, "recovery_dialog_wrong_key")
    assert not problems, "\n".join(problems)
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        qtbot.keyClick(dialog.key_edit, Qt.Key.Key_Escape)
    assert _hashes(practice.path) == before


def test_passwords_that_differ_are_caught_before_anything_runs(qtbot, practice):
    dialog = RecoveryDialog(file_recovery(practice.path), "")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.focusWidget() is dialog.user_edit  # no name given: start there
    before = _hashes(practice.path)
    qtbot.keyClicks(dialog.user_edit, PHYSICIAN)
    qtbot.keyClick(dialog.user_edit, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.key_edit
    qtbot.keyClicks(dialog.key_edit, practice.recovery_key)
    qtbot.keyClick(dialog.key_edit, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.password_edit, NEW_PASSWORD)
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.repeat_edit, NEW_PASSWORD + "x")
    qtbot.keyClick(dialog.repeat_edit, Qt.Key.Key_Return)
    assert dialog.problem.text() == "The two passwords do not match; type the new password again."
    assert dialog.focusWidget() is dialog.repeat_edit
    assert _hashes(practice.path) == before


def test_forgot_password_from_the_log_in_dialog_then_log_in_with_the_new_one(
    qtbot, practice
):
    login = LoginDialog(practice.path, MemorySecretStore(available=False))
    qtbot.addWidget(login)
    login.show()
    qtbot.waitExposed(login)
    assert login.forgot_button.isVisible()
    qtbot.keyClicks(login.user_edit, PHYSICIAN)
    seen: list[str] = []

    def recover(dialog: RecoveryDialog) -> None:
        seen.append(dialog.user_edit.text())
        typed = practice.recovery_key.lower().replace("-", "")  # as copied from paper
        _fill_with_keys(qtbot, dialog, typed, NEW_PASSWORD)

    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, RecoveryDialog):
            recover(widget)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)
    qtbot.mouseClick(login.forgot_button, Qt.MouseButton.LeftButton)  # returns when it closes
    assert seen == [PHYSICIAN]  # the name typed at log-in was carried over
    assert login.notice_label.isVisible()
    assert f"{PHYSICIAN} has a new password" in login.notice_label.text()
    assert login.user_edit.text() == PHYSICIAN
    assert login.focusWidget() is login.password_edit
    qtbot.wait(20)
    _screenshot(login, "log_in_after_recovery")
    problems = layout_problems("Log in (after recovery)", login, login, (1280, 800))
    assert not problems, "\n".join(problems)
    qtbot.keyClicks(login.password_edit, NEW_PASSWORD)
    with qtbot.waitSignal(login.logged_in, timeout=30_000):
        qtbot.keyClick(login.password_edit, Qt.Key.Key_Return)
    assert login.actor is not None and login.actor.user_name == PHYSICIAN
    database = login.database
    assert isinstance(database, PracticeDatabase)
    try:
        assert login.outcome is not None and login.outcome.audit.is_intact
        assert database.verify_audit_trail().is_intact
        assert database.audit_signatures().is_valid
    finally:
        database.close()


def _recover_through_the_link(qtbot, login: LoginDialog, key: str) -> list[str]:
    """Click the link; in the dialog it opens, type the key and the new password twice."""
    seen: list[str] = []

    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, RecoveryDialog):
            seen.append(widget.user_edit.text())
            _fill_with_keys(qtbot, widget, key, NEW_PASSWORD)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)
    qtbot.mouseClick(login.forgot_button, Qt.MouseButton.LeftButton)  # returns when it closes
    return seen


def test_on_a_practice_server_the_link_uses_the_servers_recovery_key(
    qtbot, tmp_path, practice_server
):
    """The server's own recovery key (printed by 'server init'), through the same link: the
    server's recovery role sets the password; then the user logs in to the server with it."""
    from ketadesk.storage.server.server_practice import ServerPractice
    from ketadesk.ui.session.login_dialog import SERVER_SETTINGS
    from tests.server_practice import drop_database, new_database

    manager = "drrecui"
    address = new_database(practice_server)
    ca = practice_server.ca_certificate
    QSettings().remove(SERVER_SETTINGS)
    try:
        made = ServerPractice.create(
            address, ca, owner_password=practice_server.owner_password(), user_name=manager,
            full_name="Dr Ria Cui", password=PASSWORD,
        )
        login = LoginDialog(tmp_path / "none.db", MemorySecretStore(available=False))
        qtbot.addWidget(login)
        login.show()
        qtbot.waitExposed(login)
        login.server_choice.setChecked(True)
        assert login.forgot_button.isVisible()  # a server has its own recovery key
        login.host_edit.setText(address.host)
        login.port_spin.setValue(address.port)
        login.database_edit.setText(address.database)
        login.ca_edit.setText(str(ca))
        qtbot.keyClicks(login.user_edit, manager)
        assert _recover_through_the_link(qtbot, login, made.recovery_key.lower()) == [manager]
        assert f"{manager} has a new password" in login.notice_label.text()
        assert login.focusWidget() is login.password_edit
        qtbot.keyClicks(login.password_edit, NEW_PASSWORD)
        with qtbot.waitSignal(login.logged_in, timeout=30_000):
            qtbot.keyClick(login.password_edit, Qt.Key.Key_Return)
        server = login.database
        assert isinstance(server, ServerPractice) and login.actor.user_name == manager
        try:
            assert server.verify_audit_trail().is_intact
            assert server.audit_signatures().is_valid
        finally:
            server.close()
    finally:
        QSettings().remove(SERVER_SETTINGS)
        drop_database(practice_server, address)


def test_tab_reaches_the_link_after_the_log_in_button(qtbot, practice):
    login = LoginDialog(practice.path, MemorySecretStore(available=False))
    qtbot.addWidget(login)
    login.show()
    qtbot.waitExposed(login)
    qtbot.waitUntil(lambda: login.keyring_available is not None, timeout=5_000)
    login.activateWindow()
    login.password_edit.setFocus()
    seen = []
    for _ in range(3):
        qtbot.keyClick(login.focusWidget(), Qt.Key.Key_Tab)
        seen.append(login.focusWidget())
    assert seen[0] is login.login_button  # "remember me" is hidden without a keyring
    assert login.forgot_button in seen
