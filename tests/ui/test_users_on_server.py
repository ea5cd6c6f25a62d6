"""The users dialog and "Change my password" on a practice server, driven as a manager and a
user meet them: the same screens act on the server's login roles (add, reset a password,
change a role, remove) and the server checks the current password."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.security import users as user_service
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.admin.users_dialog import (
    ChangePasswordDialog,
    UserFormDialog,
    UsersDialog,
    _NewPasswordDialog,
    _RoleDialog,
)
from ketadesk.ui.common.context import AppContext
from tests.both_back_ends import SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD
from tests.server_practice import owner_connection

Key = Qt.Key


@pytest.fixture
def on_server(practice_server, server_template):
    """A copy of the template practice open as its physician (who manages users), and a
    unique user name for this test (login roles belong to the whole cluster: dropped after)."""
    template, dropper = server_template
    address = copy_of(practice_server, template)
    name = f"lark{uuid.uuid4().hex[:6]}.pg"
    practice = ServerPractice.log_in(
        address, practice_server.ca_certificate, SERVER_PHYSICIAN, PASSWORD
    )
    try:
        yield practice, name
    finally:
        practice.close()
        with owner_connection(practice_server) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        dropper.drop_later(address)


def _log_in(practice: ServerPractice, user: str, password: str) -> ServerPractice:
    return ServerPractice.log_in(practice.address, practice.ca_certificate, user, password)


def _when_modal(kind, act) -> None:
    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind) and widget.isVisible():
            act(widget)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


def _select(dialog: UsersDialog, user_name: str) -> None:
    for row in range(dialog.list.count()):
        if f"“{user_name}”" in dialog.list.item(row).text():
            dialog.list.setCurrentRow(row)
            return
    listed = [dialog.list.item(row).text() for row in range(dialog.list.count())]
    raise AssertionError(f"{user_name} is not listed: {listed}")


def test_a_manager_adds_resets_re_roles_and_removes_a_user_on_the_server(
    qtbot, on_server, monkeypatch
):
    practice, name = on_server
    context = AppContext(practice, practice.actor)
    dialog = UsersDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert any(SERVER_PHYSICIAN in t and "manages users" in t for t in texts)

    def fill_form(form: UserFormDialog) -> None:
        # Credentials are recorded on a server too (through its own function).
        assert form.npi_edit.isVisible() and form.fl_box.isVisible()
        form.user_edit.setFocus()
        qtbot.keyClicks(form.user_edit, name)
        qtbot.keyClick(form.user_edit, Key.Key_Tab)
        qtbot.keyClicks(form.name_edit, "Dr. Ida Lark")
        qtbot.keyClicks(form.npi_edit, "1234567893")
        qtbot.keyClicks(form.dea_edit, "al1234563")
        qtbot.mouseClick(form.nj_box, Qt.MouseButton.LeftButton)
        form.password_edit.setFocus()
        qtbot.keyClicks(form.password_edit, "lark meadow lantern")
        if os.environ.get("KETADESK_SCREENSHOTS"):
            form.grab().save(str(Path(os.environ["KETADESK_SCREENSHOTS"]) / "add-user-server.png"))
        qtbot.keyClick(form.password_edit, Key.Key_Return)
        if form.isVisible():  # refused: say why instead of waiting on the open form
            problems.append(form.error.text())
            form.reject()
        elif form.result() != form.DialogCode.Accepted:
            problems.append(f"closed without saving: {form.user_edit.text()!r}")

    problems: list[str] = []
    _when_modal(UserFormDialog, fill_form)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert not problems
    _select(dialog, name)
    assert "Admin" not in dialog.list.currentItem().text()  # the form's first role: physician
    assert "licensed NJ" in dialog.list.currentItem().text()
    stored = user_service.get_user(practice, name)
    assert (stored.npi, stored.dea_number, stored.licence_states) == (
        "1234567893", "AL1234563", ("NJ",)
    )
    _log_in(practice, name, "lark meadow lantern").close()  # a login role of its own
    if os.environ.get("KETADESK_SCREENSHOTS"):
        dialog.grab().save(str(Path(os.environ["KETADESK_SCREENSHOTS"]) / "users-server.png"))

    def new_password(window) -> None:
        window.first.setText("owl sparrow kestrel")
        window.second.setText("owl sparrow kestrel")
        qtbot.keyClick(window.second, Key.Key_Return)

    _when_modal(_NewPasswordDialog, new_password)
    qtbot.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    assert not dialog.error.isVisible(), dialog.error.text()
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        _log_in(practice, name, "lark meadow lantern")
    reset = _log_in(practice, name, "owl sparrow kestrel")
    assert reset.actor.role is Role.PHYSICIAN
    reset.close()

    def to_admin(window) -> None:
        window.combo.setCurrentIndex(1)
        window.accept()

    _select(dialog, name)
    _when_modal(_RoleDialog, to_admin)
    qtbot.mouseClick(dialog.role_button, Qt.MouseButton.LeftButton)
    _select(dialog, name)
    assert "Admin" in dialog.list.currentItem().text()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    _select(dialog, name)
    assert "removed" in dialog.list.currentItem().text()
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        _log_in(practice, name, "owl sparrow kestrel")
    assert practice.verify_audit_trail().is_intact


def test_change_my_password_on_the_server(qtbot, on_server):
    manager, name = on_server
    manager.add_user(name, "Dr. Ida Lark", Role.PHYSICIAN, "lark meadow lantern")
    practice = _log_in(manager, name, "lark meadow lantern")
    try:
        dialog = ChangePasswordDialog(AppContext(practice, practice.actor))
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.keyClicks(dialog.old, "not my password")
        qtbot.keyClicks(dialog.new, "heron willow compass")
        qtbot.keyClicks(dialog.repeat, "heron willow compass")
        qtbot.keyClick(dialog.repeat, Key.Key_Return)
        assert dialog.error.text() == "Wrong user name or password."
        assert dialog.isVisible()  # nothing typed is lost: the dialog stays open
        dialog.old.clear()
        qtbot.keyClicks(dialog.old, "lark meadow lantern")
        qtbot.keyClick(dialog.repeat, Key.Key_Return)
        assert dialog.result() == dialog.DialogCode.Accepted
        # The open practice keeps working: its new connections use the new password.
        practice.engine.dispose()
        verdict = practice.verify_audit_trail()
        assert verdict.is_intact, verdict.describe()
    finally:
        practice.close()
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        _log_in(manager, name, "lark meadow lantern")
    again = _log_in(manager, name, "heron willow compass")
    try:
        report = again.audit_signatures()
    finally:
        again.close()
    # The same key wrapped again: the log-ins before and after the change verify with it.
    assert report.is_valid and report.signed_by[name] == 4
