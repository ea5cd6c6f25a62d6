"""Forgot your password: a user who manages users sets a new one with the recovery key.

Reached from the log-in dialog, for a practice file or a practice server (each has its own
recovery key, printed once when it was made). The work (on a file two argon2id derivations and
a re-encryption of the database; on a server a log-in as the recovery role) runs off the GUI
thread; a wrong key, or a user the key may not recover, is said in words and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.ui.common.dialog_parts import ProblemLabel, make_enter_press, password_field
from ketadesk.ui.common.ops import OpRunner

# What sets the password: (user name, recovery key, new password) -> what the back end says.
Recover = Callable[[str, str, str], object]


def file_recovery(path: Path) -> Recover:
    """The recovery of the practice file at ``path`` (``storage.security.recovery``)."""

    def recover(user_name: str, recovery_key: str, password: str) -> object:
        from ketadesk.storage.security.recovery import recover_with_key

        return recover_with_key(path, recovery_key, user_name, password)

    return recover


class RecoveryDialog(QDialog):
    """User name, recovery key, new password twice; ``outcome`` is set when it worked (on a
    file the ``RecoveryOutcome``)."""

    recovered = Signal(str)  # the user name that has a new password

    def __init__(
        self, recover: Recover, user_name: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set a new password with the recovery key")
        self.setMinimumWidth(460)
        self._recover = recover
        self._ops = OpRunner(self)
        self.outcome: object | None = None
        intro = QLabel(
            "For a user who manages users (such as the first physician) who has forgotten "
            "their password. Type the recovery key printed when the practice was created; "
            "dashes and capitals do not matter. Other users ask a user manager to reset "
            "their password."
        )
        intro.setWordWrap(True)
        self.user_edit = QLineEdit(user_name)
        self.user_edit.setAccessibleName("User name")
        self.key_edit = QLineEdit()
        self.key_edit.setAccessibleName("Recovery key")
        self.key_edit.setPlaceholderText("XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX")
        mono = QFont("DejaVu Sans Mono")
        self.key_edit.setFont(mono)
        self.password_edit = password_field("New password")
        self.repeat_edit = password_field("Repeat the new password")
        form = QFormLayout()
        form.addRow("&User name", self.user_edit)
        form.addRow("Recovery &key", self.key_edit)
        form.addRow("&New password", self.password_edit)
        form.addRow("&Repeat it", self.repeat_edit)
        self.problem = ProblemLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.set_button = self.buttons.addButton(
            "Set new password", QDialogButtonBox.ButtonRole.AcceptRole
        )
        make_enter_press(self.set_button, self.buttons)  # Escape still cancels
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setTabOrder(self.user_edit, self.key_edit)
        self.setTabOrder(self.key_edit, self.password_edit)
        self.setTabOrder(self.password_edit, self.repeat_edit)
        self.setTabOrder(self.repeat_edit, self.set_button)
        self._connect_signals()
        (self.key_edit if user_name else self.user_edit).setFocus()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

    def submit(self) -> None:
        if not self.set_button.isEnabled():  # already working: a second Enter does nothing
            return
        user_name = self.user_edit.text().strip().lower()
        recovery_key = self.key_edit.text().strip()
        password = self.password_edit.text()
        missing = (
            ("Enter the user name of the user manager who forgot their password.",
             self.user_edit, not user_name),
            ("Enter the recovery key.", self.key_edit, not recovery_key),
            ("Enter the new password.", self.password_edit, not password),
        )
        for message, field, is_missing in missing:
            if is_missing:
                self._say(message, field)
                return
        if password != self.repeat_edit.text():
            self.repeat_edit.clear()
            self._say("The two passwords do not match; type the new password again.",
                      self.repeat_edit)
            return
        self.set_button.setEnabled(False)
        self.problem.hide()
        self.setCursor(Qt.CursorShape.WaitCursor)
        recover = self._recover

        def work() -> tuple[str, object]:
            return user_name, recover(user_name, recovery_key, password)

        self._ops.run(work, self._done, on_failure=self._failed)

    def _done(self, result: tuple[str, object]) -> None:
        user_name, self.outcome = result
        self.unsetCursor()
        self.key_edit.clear()
        self.password_edit.clear()
        self.repeat_edit.clear()
        self.recovered.emit(user_name)
        self.accept()

    def _failed(self, error: BaseException) -> None:
        self.unsetCursor()
        self.set_button.setEnabled(True)
        if isinstance(error, UserFacingError):
            message = error.message
        else:
            message = f"The new password could not be set ({type(error).__name__})."
        if "does not open" in message:
            field = self.key_edit
        elif "manage users" in message or "no active user" in message:
            field = self.user_edit
        else:
            field = self.password_edit
        self._say(message, field)

    def _say(self, message: str, field: QLineEdit) -> None:
        self.problem.say(message)
        field.setFocus()
        field.selectAll()

    def wait_for_done(self, msecs: int = 60000) -> bool:
        """For tests: wait until the recovery under way has finished."""
        return self._ops.wait_for_done(msecs)
