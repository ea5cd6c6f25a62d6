"""Log in: user name and password, then the database is unlocked off the GUI thread.

The practice is this computer's database file, or a practice server (PostgreSQL): the server's
address and the practice certificate it is checked with are remembered per workstation in
QSettings (never a password); logging in to a server is connecting as the user's own role.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ketadesk import APP_NAME
from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.secret_store import SecretStore, device_secret_name
from ketadesk.ui.common.dialog_parts import make_enter_press
from ketadesk.ui.common.ops import OpRunner

if TYPE_CHECKING:
    from ketadesk.core.audit_chain import ChainVerdict
    from ketadesk.core.permissions import Actor
    from ketadesk.storage.security.database import PracticeDatabase, UnlockOutcome
    from ketadesk.storage.server.server_engine import ServerAddress, WorkstationCertificate
    from ketadesk.storage.server.server_practice import ServerPractice

# QSettings keys of the practice server this workstation uses (never a password).
SERVER_SETTINGS = "practice_server"
DEFAULT_SERVER_PORT = 5432


class LoginDialog(QDialog):
    """Asks for a user name and password; on success ``database`` (the file or the server
    practice), ``actor`` and, on a file, ``outcome`` are set.

    ``server_url`` (``--db postgresql://…``) opens it with the practice server chosen and that
    address filled in."""

    logged_in = Signal()
    unlock_started = Signal()  # the key is being derived: a moment to prepare the next screen

    def __init__(
        self,
        db_path: Path,
        secret_store: SecretStore,
        parent: QWidget | None = None,
        *,
        server_url: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} — log in")
        self.setMinimumWidth(420)
        self._db_path = db_path
        self._secrets = secret_store
        self._ops = OpRunner(self)
        self.database: PracticeDatabase | ServerPractice | None = None
        self.outcome: UnlockOutcome | None = None
        self.actor: Actor | None = None
        self.recovery_dialog: QDialog | None = None

        title = QLabel(f"<h2>{APP_NAME}</h2>")
        self.file_choice = QRadioButton(f"This computer's practice file ({db_path.name})")
        self.file_choice.setToolTip(str(db_path))
        self.server_choice = QRadioButton("Practice server")
        self._choices = QButtonGroup(self)
        self._choices.addButton(self.file_choice)
        self._choices.addButton(self.server_choice)
        self._make_server_fields()
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
        # A user manager's way back, with the recovery key of the file or of the server.
        self.forgot_button = QPushButton("Forgot your password? Use the recovery key…")
        self.forgot_button.setFlat(True)
        self.forgot_button.setAutoDefault(False)
        self.forgot_button.setAccessibleName("Forgot your password? Use the recovery key")
        self.forgot_button.setStyleSheet("text-align: left; color: palette(link);")
        self.notice_label = QLabel()
        self.notice_label.setWordWrap(True)
        self.notice_label.hide()

        form = QFormLayout()
        self.form = form
        # The server's rows (hidden for a file) share the columns of the user's rows.
        self._server_rows = []
        for text, field in (
            ("&Server", self.host_edit),
            ("P&ort", self.port_spin),
            ("&Database", self.database_edit),
            ("&Certificate", self.certificate_row),
            ("&Workstation", self.workstation_row),
        ):
            label = QLabel(text)
            buddies = {
                self.certificate_row: self.ca_edit,
                self.workstation_row: self.workstation_edit,
            }
            label.setBuddy(buddies.get(field, field))
            form.addRow(label, field)
            self._server_rows.append(field)
        form.addRow("&User name", self.user_edit)
        form.addRow("&Password", self.password_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.login_button = self.buttons.addButton("Log in", QDialogButtonBox.ButtonRole.AcceptRole)
        make_enter_press(self.login_button, self.buttons)  # Escape still cancels

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.file_choice)
        layout.addWidget(self.server_choice)
        layout.addLayout(form)
        layout.addWidget(self.remember_box)
        layout.addWidget(self.keyring_note)
        layout.addWidget(self.forgot_button)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._load_server_settings(server_url)
        self.setTabOrder(self.file_choice, self.server_choice)
        self.setTabOrder(self.server_choice, self.host_edit)
        self.setTabOrder(self.host_edit, self.port_spin)
        self.setTabOrder(self.port_spin, self.database_edit)
        self.setTabOrder(self.database_edit, self.ca_edit)
        self.setTabOrder(self.ca_edit, self.ca_button)
        self.setTabOrder(self.ca_button, self.workstation_edit)
        self.setTabOrder(self.workstation_edit, self.workstation_button)
        self.setTabOrder(self.workstation_button, self.user_edit)
        self.setTabOrder(self.user_edit, self.password_edit)
        self.setTabOrder(self.password_edit, self.remember_box)
        self.setTabOrder(self.remember_box, self.login_button)
        self.setTabOrder(self.login_button, self.forgot_button)
        self._connect_signals()
        self.user_edit.setFocus()

    def _make_server_fields(self) -> None:
        self.host_edit = QLineEdit()
        self.host_edit.setAccessibleName("Server")
        self.host_edit.setPlaceholderText("server name or address")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(DEFAULT_SERVER_PORT)
        self.port_spin.setAccessibleName("Port")
        self.port_spin.setMaximumWidth(110)
        self.database_edit = QLineEdit("ketadesk")
        self.database_edit.setAccessibleName("Database")
        self.ca_edit = QLineEdit()
        self.ca_edit.setAccessibleName("Practice certificate")
        self.ca_edit.setPlaceholderText("the practice's ca.crt on this computer")
        self.ca_button = QPushButton("Choose…")
        self.ca_button.setAccessibleName("Choose the practice certificate")
        self.certificate_row = QWidget()
        certificate = QHBoxLayout(self.certificate_row)
        certificate.setContentsMargins(0, 0, 0, 0)
        certificate.addWidget(self.ca_edit, 1)
        certificate.addWidget(self.ca_button)
        # Only where the practice enrols workstations: this computer's own certificate
        # (NAME.crt from 'server enrol-workstation'), its key NAME.key beside it.
        self.workstation_edit = QLineEdit()
        self.workstation_edit.setAccessibleName("Workstation certificate")
        self.workstation_edit.setPlaceholderText("only where the practice requires one")
        self.workstation_button = QPushButton("Choose…")
        self.workstation_button.setAccessibleName("Choose this workstation's certificate")
        self.workstation_row = QWidget()
        workstation = QHBoxLayout(self.workstation_row)
        workstation.setContentsMargins(0, 0, 0, 0)
        workstation.addWidget(self.workstation_edit, 1)
        workstation.addWidget(self.workstation_button)

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.try_login)
        self.buttons.rejected.connect(self.reject)
        self.server_choice.toggled.connect(self._show_choice)
        self.ca_button.clicked.connect(self._choose_certificate)
        self.forgot_button.clicked.connect(self.open_recovery)
        self.workstation_button.clicked.connect(self._choose_workstation_certificate)
        for edit in (self.host_edit, self.database_edit, self.ca_edit, self.workstation_edit):
            edit.returnPressed.connect(self.try_login)
        self._ops.run(self._secrets.availability, self._keyring_checked)

    # --- the practice server -------------------------------------------------------------------
    @property
    def uses_server(self) -> bool:
        return self.server_choice.isChecked()

    def _load_server_settings(self, server_url: str | None) -> None:
        settings = QSettings()
        settings.beginGroup(SERVER_SETTINGS)
        self.host_edit.setText(str(settings.value("host", "") or ""))
        self.port_spin.setValue(int(settings.value("port", DEFAULT_SERVER_PORT) or 5432))
        self.database_edit.setText(str(settings.value("database", "ketadesk") or "ketadesk"))
        self.ca_edit.setText(str(settings.value("ca_certificate", "") or ""))
        self.workstation_edit.setText(str(settings.value("workstation_certificate", "") or ""))
        chosen = str(settings.value("chosen", "false")).lower() == "true"
        settings.endGroup()
        if server_url:
            chosen = True
            try:
                from ketadesk.storage.server.server_engine import parse_server_url

                address = parse_server_url(server_url)
            except UserFacingError as error:
                self.show_error(error.message)
            else:
                self.host_edit.setText(address.host)
                self.port_spin.setValue(address.port)
                self.database_edit.setText(address.database)
        (self.server_choice if chosen else self.file_choice).setChecked(True)
        self._show_choice()

    def _save_server_settings(self) -> None:
        settings = QSettings()
        settings.beginGroup(SERVER_SETTINGS)
        settings.setValue("chosen", self.uses_server)
        if self.uses_server:
            settings.setValue("host", self.host_edit.text().strip())
            settings.setValue("port", self.port_spin.value())
            settings.setValue("database", self.database_edit.text().strip())
            settings.setValue("ca_certificate", self.ca_edit.text().strip())
            settings.setValue("workstation_certificate", self.workstation_edit.text().strip())
        settings.endGroup()

    def _show_choice(self) -> None:
        server = self.uses_server
        for field in self._server_rows:
            self.form.setRowVisible(field, server)
        # "Remember me" keeps a key to this computer's file; a server checks every log-in.
        self.remember_box.setVisible(bool(self.keyring_available) and not server)
        if server:
            self.notice_label.hide()
        self.keyring_note.setVisible(self.keyring_available is False and not server)
        self.adjustSize()

    def _choose_certificate(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "The practice certificate", self.ca_edit.text(), "Certificates (*.crt *.pem)"
        )
        if path:
            self.ca_edit.setText(path)

    def _choose_workstation_certificate(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self,
            "This workstation's certificate",
            self.workstation_edit.text(),
            "Certificates (*.crt *.pem)",
        )
        if path:
            self.workstation_edit.setText(path)

    def _server_problem(self) -> tuple[str, QWidget] | None:
        """What is missing to reach the server, and the field to fix, or None."""
        if not self.host_edit.text().strip():
            return "Enter the practice server's name or address.", self.host_edit
        if not self.database_edit.text().strip():
            return "Enter the practice database's name on the server.", self.database_edit
        if not self.ca_edit.text().strip():
            return (
                "Choose the practice certificate (ca.crt) installed on this computer: it "
                "proves the server is the practice's.",
                self.ca_edit,
            )
        return None

    def open_recovery(self) -> None:
        """The recovery key dialog for the practice chosen (file or server); when it worked,
        the user name is filled in and the new password is asked for here."""
        from ketadesk.ui.session.recovery_dialog import RecoveryDialog, file_recovery

        if self.uses_server:
            problem = self._server_problem()
            if problem is not None:
                message, field = problem
                self.show_error(message)
                field.setFocus()
                return
        recover = self._server_recovery() if self.uses_server else file_recovery(self._db_path)
        dialog = RecoveryDialog(recover, self.user_edit.text().strip().lower(), self)
        self.recovery_dialog = dialog  # for tests, while it is open
        dialog.recovered.connect(self._recovered)
        dialog.exec()
        self.recovery_dialog = None

    def _recovered(self, user_name: str) -> None:
        self.error_label.hide()
        self.user_edit.setText(user_name)
        self.password_edit.clear()
        self.notice_label.setText(
            f"{user_name} has a new password, set with the recovery key. Log in with it. "
            "The recovery key still works: put it back somewhere safe."
        )
        self.notice_label.show()
        self.adjustSize()
        self.password_edit.setFocus()

    def _keyring_checked(self, result: tuple[bool, str]) -> None:
        available, reason = result
        self.keyring_available = available
        self.keyring_note.setText("" if available else f"“Remember me” is off: {reason}")
        self._show_choice()

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
        if self.uses_server:
            self._log_in_to_server(user_name, password)
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

    def _log_in_to_server(self, user_name: str, password: str) -> None:
        problem = self._server_problem()
        if problem is None and not password:
            problem = ("Enter your password.", self.password_edit)
        if problem is not None:
            message, field = problem
            self.show_error(message)
            field.setFocus()
            return
        address, certificate, workstation = self._server_target()
        self._save_server_settings()  # what was typed is kept even when the log-in fails
        self.login_button.setEnabled(False)
        self.error_label.hide()
        self.setCursor(Qt.CursorShape.WaitCursor)

        def connect() -> ServerPractice:
            from ketadesk.storage.server.server_practice import ServerPractice

            return ServerPractice.log_in(address, certificate, user_name, password, workstation)

        self._ops.run(connect, self._connected, on_failure=self._failed)
        self.unlock_started.emit()

    def _server_target(self) -> tuple[ServerAddress, Path, WorkstationCertificate | None]:
        """The server typed in: its address, the practice certificate and this workstation's
        own certificate (when one is given)."""
        from ketadesk.storage.server.server_engine import ServerAddress, WorkstationCertificate

        address = ServerAddress(
            self.host_edit.text().strip(),
            self.port_spin.value(),
            self.database_edit.text().strip(),
        )
        certificate = Path(self.ca_edit.text().strip()).expanduser()
        own = Path(self.workstation_edit.text().strip()).expanduser()
        workstation = (
            WorkstationCertificate(own, own.with_suffix(".key"))
            if self.workstation_edit.text().strip()
            else None
        )
        return address, certificate, workstation

    def _server_recovery(self) -> Callable[[str, str, str], object]:
        """The server's recovery, for the server typed in (its own recovery role checks the
        key; nothing of the practice is read)."""
        address, certificate, workstation = self._server_target()
        self._save_server_settings()

        def recover(user_name: str, recovery_key: str, password: str) -> object:
            from ketadesk.storage.server.server_recovery import recover_user_manager

            recover_user_manager(
                address, certificate, recovery_key, user_name, password, workstation
            )
            return None

        return recover

    def _connected(self, practice: ServerPractice) -> None:
        self.unsetCursor()
        self.database, self.actor = practice, practice.actor
        self.password_edit.clear()
        self.logged_in.emit()
        self.accept()

    @property
    def audit(self) -> ChainVerdict | None:
        """The audit check made while logging in to a file (a server's runs after)."""
        return None if self.outcome is None else self.outcome.audit

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
        self.actor = self.outcome.actor
        self._save_server_settings()
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
