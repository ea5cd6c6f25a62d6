"""Log in: user name and password, then the database is unlocked off the GUI thread."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk import APP_NAME
from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.secret_store import SecretStore, device_secret_name
from ketadesk.ui.common.dialog_parts import make_enter_press
from ketadesk.ui.common.ops import OpRunner

if TYPE_CHECKING:
    from ketadesk.storage.security.database import PracticeDatabase, UnlockOutcome


class LoginDialog(QDialog):
    """Asks for a user name and password; on success ``database`` and ``outcome`` are set."""

    logged_in = Signal()
    unlock_started = Signal()  # the key is being derived: a moment to prepare the next screen

    def __init__(
        self, db_path: Path, secret_store: SecretStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} — log in")
        self.setMinimumWidth(420)
        self._db_path = db_path
        self._secrets = secret_store
        self._ops = OpRunner(self)
        self.database: PracticeDatabase | None = None
        self.outcome: UnlockOutcome | None = None

        title = QLabel(f"<h2>{APP_NAME}</h2>")
        where = QLabel(f"Practice database: {db_path.name}")
        where.setToolTip(str(db_path))
        where.setStyleSheet("color: palette(mid);")
        self.user_edit = QLineEdit()
        self.user_edit.setAccessibleName("User name")
        self.user_edit.setAutoFillBackground(True)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Password")
        self.remember_box = QCheckBox("Remember me on this computer")
        self.remember_box.setAccessibleName("Remember me on this computer")
        self.keyring_note = QLabel()
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setStyleSheet("color: palette(mid);")
        # Finding the OS keyring's backends takes a noticeable moment: the dialog shows at once
        # and the "remember me" option appears when the check is done.
        self.keyring_available: bool | None = None
        self.remember_box.hide()
        self.keyring_note.hide()
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Log-in problem")
        bold = QFont()
        bold.setBold(True)
        self.error_label.setFont(bold)
        self.error_label.setStyleSheet("color: #a40000;")
        self.error_label.hide()

        form = QFormLayout()
        form.addRow("&User name", self.user_edit)
        form.addRow("&Password", self.password_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.login_button = self.buttons.addButton("Log in", QDialogButtonBox.ButtonRole.AcceptRole)
        make_enter_press(self.login_button, self.buttons)  # Escape still cancels

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(where)
        layout.addLayout(form)
        layout.addWidget(self.remember_box)
        layout.addWidget(self.keyring_note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.try_login)
        self.buttons.rejected.connect(self.reject)
        self._ops.run(self._secrets.availability, self._keyring_checked)

    def _keyring_checked(self, result: tuple[bool, str]) -> None:
        available, reason = result
        self.keyring_available = available
        self.remember_box.setVisible(available)
        self.keyring_note.setText("" if available else f"“Remember me” is off: {reason}")
        self.keyring_note.setVisible(not available)

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def try_login(self) -> None:
        if not self.login_button.isEnabled():  # already unlocking: a second Enter does nothing
            return
        user_name = self.user_edit.text().strip().lower()
        password = self.password_edit.text()
        if not user_name:
            self.show_error("Enter your user name.")
            self.user_edit.setFocus()
            return
        remembered = None
        if not password:
            remembered = self._remembered_secret(user_name)
            if remembered is None:
                self.show_error("Enter your password.")
                self.password_edit.setFocus()
                return
        remember = self.remember_box.isVisible() and self.remember_box.isChecked()
        self.login_button.setEnabled(False)
        self.error_label.hide()
        self.setCursor(Qt.CursorShape.WaitCursor)
        path, secrets = self._db_path, self._secrets

        def unlock() -> tuple[PracticeDatabase, UnlockOutcome]:
            from ketadesk.storage.security.database import PracticeDatabase

            if remembered is not None:
                return PracticeDatabase.unlock_with_device_secret(
                    path, user_name, remembered, check_pages_later=True
                )
            # The page check runs beside the first paint; MainWindow shows its result.
            database, outcome = PracticeDatabase.unlock(
                path, user_name, password, check_pages_later=True
            )
            if remember:
                try:  # a write: it waits for the page check, and fails when pages are damaged
                    secret = database.remember_on_this_computer(outcome.actor)
                except BaseException:
                    database.close()
                    raise
                secrets.put(device_secret_name(database.database_id, user_name), secret)
            return database, outcome

        self._ops.run(unlock, self._unlocked, on_failure=self._failed)
        self.unlock_started.emit()

    def _remembered_secret(self, user_name: str) -> bytes | None:
        if not self.keyring_available:
            return None
        try:
            from ketadesk.storage.security.keyslots import KeySlotFile

            database_id = KeySlotFile.load(self._db_path).database_id
        except UserFacingError:
            return None
        return self._secrets.get(device_secret_name(database_id, user_name))

    def _unlocked(self, result: tuple[PracticeDatabase, UnlockOutcome]) -> None:
        self.unsetCursor()
        self.database, self.outcome = result
        self.password_edit.clear()
        self.logged_in.emit()
        self.accept()

    def _failed(self, error: BaseException) -> None:
        self.unsetCursor()
        self.login_button.setEnabled(True)
        self.password_edit.clear()
        self.password_edit.setFocus()
        if isinstance(error, UserFacingError):
            self.show_error(error.message)
        else:
            self.show_error(f"The database could not be opened ({type(error).__name__}).")
