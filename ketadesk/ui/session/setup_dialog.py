"""First run: create the practice database and its first physician, then show the recovery key."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk import APP_NAME
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.ui.common.dialog_parts import make_enter_press


class SetupDialog(QDialog):
    """Creates the encrypted practice database; ``database``/``actor``/``recovery_key`` set."""

    def __init__(self, db_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} — create the practice database")
        self.setMinimumWidth(480)
        self._db_path = db_path
        self.database: PracticeDatabase | None = None
        self.actor: Actor | None = None
        self.recovery_key = ""
        # A zero-width space after each separator lets a long path wrap instead of being cut.
        shown_path = str(db_path).replace(os.sep, os.sep + "\u200b")
        intro = QLabel(
            f"No practice database was found at {shown_path}. Create one now: the first user is "
            "a physician who can add other users. Everything is encrypted with a key that only "
            "your users' passwords (and a recovery key) can open."
        )
        intro.setWordWrap(True)
        self.user_edit = QLineEdit()
        self.user_edit.setAccessibleName("User name")
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Full name")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Password")
        self.repeat_edit = QLineEdit()
        self.repeat_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat_edit.setAccessibleName("Repeat password")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a40000; font-weight: bold;")
        self.error_label.hide()
        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Full name (as on plans)", self.name_edit)
        form.addRow("Password (10+ characters)", self.password_edit)
        form.addRow("Repeat password", self.repeat_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = self.buttons.addButton(
            "Create", QDialogButtonBox.ButtonRole.AcceptRole
        )
        make_enter_press(self.create_button, self.buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.create)
        self.buttons.rejected.connect(self.reject)

    def create(self) -> None:
        if self.password_edit.text() != self.repeat_edit.text():
            self._error("The two passwords do not match.")
            return
        try:
            self.database, self.actor, self.recovery_key = PracticeDatabase.create(
                self._db_path,
                user_name=self.user_edit.text().strip().lower(),
                full_name=self.name_edit.text(),
                password=self.password_edit.text(),
            )
        except UserFacingError as error:
            self._error(error.message)
            return
        self.password_edit.clear()
        self.repeat_edit.clear()
        RecoveryKeyDialog(self.recovery_key, self).exec()
        self.accept()

    def _error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()


class RecoveryKeyDialog(QDialog):
    """Shows the recovery key once; the user must confirm they have stored it offline."""

    def __init__(self, recovery_key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Your recovery key")
        text = QLabel(
            "This recovery key opens the practice database if every password is forgotten. "
            "It is shown only now. Write it down or print it and keep it offline, somewhere "
            "safe — anyone with it and the database file can read your records."
        )
        text.setWordWrap(True)
        key = QLabel(recovery_key)
        font = QFont("DejaVu Sans Mono")
        font.setPointSize(15)
        key.setFont(font)
        key.setTextInteractionFlags(
            key.textInteractionFlags() | key.textInteractionFlags().TextSelectableByMouse
        )
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(recovery_key))
        self.stored_box = QCheckBox("I have stored the recovery key somewhere safe")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(False)
        self.stored_box.toggled.connect(self.ok_button.setEnabled)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(key)
        layout.addWidget(copy)
        layout.addWidget(self.stored_box)
        layout.addWidget(buttons)
