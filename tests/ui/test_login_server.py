"""The log-in dialog on a practice server: the choice, the address remembered per workstation
(never a password), real keys (Tab order, Enter logs in) and refusals in words, on the real
test cluster."""

from __future__ import annotations

import socket

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.storage.server.certificates import new_practice_ca
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.session.login_dialog import SERVER_SETTINGS, LoginDialog
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of, drop_copy
from tests.conftest import PASSWORD

Key = Qt.Key


@pytest.fixture(scope="module")
def server_copy(practice_server, server_template):
    address = copy_of(practice_server, server_template[0])
    yield practice_server, address
    drop_copy(practice_server, address)


@pytest.fixture(autouse=True)
def no_server_remembered():
    """Each test starts as a workstation that never used a server."""
    QSettings().remove(SERVER_SETTINGS)
    yield
    QSettings().remove(SERVER_SETTINGS)


def _remember(address, ca) -> None:
    settings = QSettings()
    settings.beginGroup(SERVER_SETTINGS)
    settings.setValue("chosen", True)
    settings.setValue("host", address.host)
    settings.setValue("port", address.port)
    settings.setValue("database", address.database)
    settings.setValue("ca_certificate", str(ca))
    settings.endGroup()


def _dialog(qtbot, tmp_path, **kw) -> LoginDialog:
    dialog = LoginDialog(tmp_path / "practice.db", MemorySecretStore(available=True), **kw)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(lambda: dialog.keyring_available is not None, timeout=5_000)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.user_edit, timeout=5_000)
    return dialog


def _type(qtbot, widget, text: str) -> None:
    widget.selectAll()
    qtbot.keyClicks(widget, text)


def test_the_server_is_remembered_and_enter_logs_in(qtbot, tmp_path, server_copy):
    cluster, address = server_copy
    _remember(address, cluster.ca_certificate)
    dialog = _dialog(qtbot, tmp_path)
    assert dialog.server_choice.isChecked() and dialog.host_edit.isVisible()
    assert dialog.host_edit.text() == address.host
    assert dialog.port_spin.value() == address.port
    assert dialog.database_edit.text() == address.database
    assert not dialog.remember_box.isVisible()  # a server checks every log-in
    qtbot.keyClicks(dialog.user_edit, SERVER_PHYSICIAN)
    qtbot.keyClick(dialog.user_edit, Key.Key_Tab)
    assert QApplication.focusWidget() is dialog.password_edit
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    with qtbot.waitSignal(dialog.logged_in, timeout=20_000):
        qtbot.keyClick(dialog.password_edit, Key.Key_Return)
    assert isinstance(dialog.database, ServerPractice)
    assert dialog.actor.user_name == SERVER_PHYSICIAN
    assert dialog.audit is None  # the audit walk runs after the roster is shown
    dialog.database.close()
    settings = QSettings()
    stored = {key: str(settings.value(key)) for key in settings.allKeys()}
    assert stored[f"{SERVER_SETTINGS}/database"] == address.database
    assert not any(PASSWORD in value for value in stored.values())


def test_tab_walks_the_server_fields_then_the_user(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path)
    assert dialog.file_choice.isChecked() and not dialog.host_edit.isVisible()
    dialog.server_choice.setFocus()
    qtbot.keyClick(dialog.server_choice, Key.Key_Space)
    assert dialog.host_edit.isVisible()
    order = [dialog.host_edit, dialog.port_spin, dialog.database_edit, dialog.ca_edit,
             dialog.ca_button, dialog.workstation_edit, dialog.workstation_button,
             dialog.user_edit, dialog.password_edit]
    for expected in order:
        qtbot.keyClick(QApplication.focusWidget(), Key.Key_Tab)
        focused = QApplication.focusWidget()
        assert focused is expected or focused.parent() is expected, focused


def test_a_wrong_password_is_refused_and_nothing_typed_is_lost(qtbot, tmp_path, server_copy):
    cluster, address = server_copy
    dialog = _dialog(qtbot, tmp_path, server_url=address.url)
    assert dialog.server_choice.isChecked()
    _type(qtbot, dialog.ca_edit, str(cluster.ca_certificate))
    qtbot.keyClicks(dialog.user_edit, SERVER_ADMIN)
    qtbot.keyClicks(dialog.password_edit, "not my password")
    qtbot.keyClick(dialog.password_edit, Key.Key_Return)
    qtbot.waitUntil(dialog.error_label.isVisible, timeout=20_000)
    assert dialog.error_label.text() == "Wrong user name or password."
    assert dialog.database is None and dialog.login_button.isEnabled()
    assert dialog.password_edit.text() == ""
    assert dialog.user_edit.text() == SERVER_ADMIN
    assert dialog.host_edit.text() == address.host
    assert dialog.ca_edit.text() == str(cluster.ca_certificate)
    assert QApplication.focusWidget() is dialog.password_edit
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    with qtbot.waitSignal(dialog.logged_in, timeout=20_000):
        qtbot.keyClick(dialog.password_edit, Key.Key_Enter)
    assert dialog.actor.user_name == SERVER_ADMIN
    dialog.database.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_and_a_stranger_certificate_are_refused_in_words(
    qtbot, tmp_path, server_copy
):
    cluster, address = server_copy
    stranger = tmp_path / "other-practice.crt"
    stranger.write_bytes(new_practice_ca("Another practice").certificate_pem)
    dialog = _dialog(qtbot, tmp_path, server_url=f"postgresql://127.0.0.1:{_free_port()}/x")
    _type(qtbot, dialog.ca_edit, str(cluster.ca_certificate))
    qtbot.keyClicks(dialog.user_edit, SERVER_PHYSICIAN)
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    qtbot.keyClick(dialog.password_edit, Key.Key_Return)
    qtbot.waitUntil(dialog.error_label.isVisible, timeout=20_000)
    assert "does not answer" in dialog.error_label.text()
    assert "Check that it is running" in dialog.error_label.text()

    _type(qtbot, dialog.port_spin.lineEdit(), str(address.port))
    _type(qtbot, dialog.database_edit, address.database)
    _type(qtbot, dialog.ca_edit, str(stranger))
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    qtbot.keyClick(dialog.password_edit, Key.Key_Return)
    qtbot.waitUntil(
        lambda: "could not be verified" in dialog.error_label.text(), timeout=20_000
    )
    assert "may not be the practice's server" in dialog.error_label.text()
    assert dialog.database is None


def test_missing_server_fields_are_asked_for(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path)
    dialog.server_choice.setChecked(True)
    _type(qtbot, dialog.host_edit, "")
    qtbot.keyClicks(dialog.user_edit, SERVER_PHYSICIAN)
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    qtbot.keyClick(dialog.password_edit, Key.Key_Return)
    assert dialog.error_label.text() == "Enter the practice server's name or address."
    assert QApplication.focusWidget() is dialog.host_edit
    qtbot.keyClicks(dialog.host_edit, "server.practice.example")
    qtbot.keyClick(dialog.host_edit, Key.Key_Return)
    assert "practice certificate" in dialog.error_label.text()
    assert QApplication.focusWidget() is dialog.ca_edit
