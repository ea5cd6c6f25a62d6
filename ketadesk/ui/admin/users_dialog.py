"""Managing users (manage_users only) and changing one's own password.

On a practice server the same dialogs act on the server's login roles through
``ServerPractice`` (its own functions check who may do what); a practice file's key slots and
signed grants go through ``storage.security.users``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.security import users as user_service
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel, form_of, lay_out_dialog, password_field

if TYPE_CHECKING:
    from ketadesk.storage.server.server_practice import ServerPractice


def practice_server_of(context: AppContext) -> ServerPractice | None:
    """The open practice server, or None for a practice file."""
    from ketadesk.storage.server.server_practice import ServerPractice

    db = context.db
    return db if isinstance(db, ServerPractice) else None


class UserFormDialog(QDialog):
    """Add a user: user name, full name, role, initial password, credentials."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Add a user")
        self.user_edit = QLineEdit()
        self.user_edit.setAccessibleName("User name")
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Full name")
        self.role_combo = QComboBox()
        self.role_combo.addItem("Physician", Role.PHYSICIAN)
        self.role_combo.addItem("Admin (roster and plans; cannot sign)", Role.ADMIN)
        self.role_combo.setAccessibleName("Role")
        self.manage_box = QCheckBox("May add users, reset passwords and change roles")
        self.password_edit = password_field("Initial password")
        self.npi_edit = QLineEdit()
        self.npi_edit.setAccessibleName("NPI")
        self.dea_edit = QLineEdit()
        self.dea_edit.setAccessibleName("DEA number")
        self.fl_box = QCheckBox("FL")
        self.nj_box = QCheckBox("NJ")
        states = QHBoxLayout()
        states.addWidget(self.fl_box)
        states.addWidget(self.nj_box)
        states.addStretch()
        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Full name", self.name_edit)
        form.addRow("Role", self.role_combo)
        form.addRow("", self.manage_box)
        form.addRow("Initial password", self.password_edit)
        form.addRow("NPI (physicians)", self.npi_edit)
        form.addRow("DEA number (physicians)", self.dea_edit)
        form.addRow("Licensed in", states)
        self.server = practice_server_of(context)
        self.error = lay_out_dialog(self, form, self.save)

    def save(self) -> None:
        states = tuple(
            s for s, box in (("FL", self.fl_box), ("NJ", self.nj_box)) if box.isChecked()
        )
        try:
            if self.server is not None:
                self.server.add_user(
                    self.user_edit.text().strip().lower(),
                    self.name_edit.text(),
                    Role(self.role_combo.currentData()),
                    self.password_edit.text(),
                    manage_users=self.manage_box.isChecked(),
                    npi=self.npi_edit.text().strip() or None,
                    dea_number=self.dea_edit.text().strip().upper() or None,
                    licence_states=states,
                )
                self.context.data_changed.emit("users")
                self.accept()
                return
            user_service.add_user(
                self.context.db,
                self.context.actor,
                user_name=self.user_edit.text().strip().lower(),
                full_name=self.name_edit.text(),
                role=self.role_combo.currentData(),
                password=self.password_edit.text(),
                can_manage_users=self.manage_box.isChecked(),
                npi=self.npi_edit.text().strip() or None,
                dea_number=self.dea_edit.text().strip().upper() or None,
                licence_states=states,
            )
        except UserFacingError as error:
            self.error.say(error.message)
            return
        self.context.data_changed.emit("users")
        self.accept()


class UsersDialog(QDialog):
    """The list of users with add, reset password, change role and remove."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Users")
        self.resize(820, 420)
        self.list = QListWidget()
        self.list.setAccessibleName("Users")
        self.add_button = QPushButton("Add user…")
        self.reset_button = QPushButton("Reset password…")
        self.role_button = QPushButton("Change role…")
        self.remove_button = QPushButton("Remove user")
        self.error = ProblemLabel()
        side = QVBoxLayout()
        for button in (self.add_button, self.reset_button, self.role_button, self.remove_button):
            side.addWidget(button)
        side.addStretch()
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(close)
        self._connect_signals()
        self.refresh()

    def _connect_signals(self) -> None:
        self.add_button.clicked.connect(self._add)
        self.reset_button.clicked.connect(self._reset)
        self.role_button.clicked.connect(self._role)
        self.remove_button.clicked.connect(self._remove)

    def refresh(self) -> None:
        self.list.clear()
        for info in user_service.list_users(self.context.db):
            extras = []
            if info.can_manage_users:
                extras.append("manages users")
            if info.licence_states:
                extras.append("licensed " + "/".join(info.licence_states))
            if not info.is_active:
                extras.append("removed")
            if info.is_row_unsigned:
                extras.append("record changed outside KetaDesk")
            role = "Physician" if info.role is Role.PHYSICIAN else "Admin"
            text = f"{info.full_name}   ·   {role}   ·   user name “{info.user_name}”"
            if extras:
                text += f" ({', '.join(extras)})"
            item = QListWidgetItem(text)
            item.setData(256, info.user_name)
            self.list.addItem(item)

    def selected_user(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(256))

    def _run(self, action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except UserFacingError as error:
            self.error.say(error.message)
            return
        self.error.hide()
        self.context.data_changed.emit("users")
        self.refresh()

    def _add(self) -> None:
        if UserFormDialog(self.context, self).exec():
            self.refresh()

    def _reset(self) -> None:
        user_name = self.selected_user()
        if user_name is None:
            self.error.say("Choose a user first.")
            return
        dialog = _NewPasswordDialog(f"New password for {user_name}", self)
        if not dialog.exec():
            return
        server = practice_server_of(self.context)
        if server is not None:
            self._run(lambda: server.reset_password(user_name, dialog.password()))
            return
        self._run(
            lambda: user_service.reset_password(
                self.context.db, self.context.actor, user_name, dialog.password()
            )
        )

    def _role(self) -> None:
        user_name = self.selected_user()
        if user_name is None:
            self.error.say("Choose a user first.")
            return
        info = user_service.get_user(self.context.db, user_name)
        dialog = _RoleDialog(info.role, info.can_manage_users, self)
        if not dialog.exec():
            return
        server = practice_server_of(self.context)
        if server is not None:
            self._run(
                lambda: server.set_role(user_name, dialog.role(), manage_users=dialog.manages())
            )
            return
        self._run(
            lambda: user_service.set_role(
                self.context.db, self.context.actor, user_name, dialog.role(), dialog.manages()
            )
        )

    def _remove(self) -> None:
        user_name = self.selected_user()
        if user_name is None:
            self.error.say("Choose a user first.")
            return
        answer = QMessageBox.question(
            self,
            "Remove user",
            f"Remove {user_name}? They will no longer be able to log in; "
            "their history in the audit trail stays.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        server = practice_server_of(self.context)
        if server is not None:
            self._run(lambda: server.remove_user(user_name))
            return
        self._run(lambda: user_service.remove_user(self.context.db, self.context.actor, user_name))


class _NewPasswordDialog(QDialog):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.first = password_field("New password")
        self.second = password_field("Repeat new password")
        form = form_of([("New password", self.first), ("Repeat it", self.second)])
        self.error = lay_out_dialog(self, form, self._check)

    def _check(self) -> None:
        if self.first.text() != self.second.text():
            self.error.say("The two passwords do not match.")
            return
        self.accept()

    def password(self) -> str:
        return self.first.text()


class _RoleDialog(QDialog):
    def __init__(self, role: Role, manages: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Change role")
        self.combo = QComboBox()
        self.combo.addItem("Physician", Role.PHYSICIAN)
        self.combo.addItem("Admin", Role.ADMIN)
        self.combo.setCurrentIndex(0 if role is Role.PHYSICIAN else 1)
        self.manage_box = QCheckBox("May manage users")
        self.manage_box.setChecked(manages)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        layout.addWidget(self.manage_box)
        layout.addWidget(buttons)

    def role(self) -> Role:
        return Role(self.combo.currentData())

    def manages(self) -> bool:
        return self.manage_box.isChecked()


class ChangePasswordDialog(QDialog):
    """Change one's own password (rewraps only this user's key slot, or on a server the
    signing key kept there, and sets the login role's password)."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Change my password")
        self.old = password_field("Current password")
        self.new = password_field("New password")
        self.repeat = password_field("Repeat new password")
        form = form_of(
            [
                ("Current password", self.old),
                ("New password", self.new),
                ("Repeat new password", self.repeat),
            ]
        )
        self.error = lay_out_dialog(self, form, self.save)

    def save(self) -> None:
        if self.new.text() != self.repeat.text():
            self.error.say("The two new passwords do not match.")
            return
        server = practice_server_of(self.context)
        try:
            if server is not None:  # the server checks the current password
                server.change_own_password(self.old.text(), self.new.text())
            else:
                user_service.change_own_password(
                    self.context.db, self.context.actor, self.old.text(), self.new.text()
                )
        except UserFacingError as error:
            self.error.say(error.message)
            return
        self.accept()
