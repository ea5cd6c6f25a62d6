"""The lock screen: covers every patient screen until someone re-authenticates."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class LockScreen(QWidget):
    """Asks the locked user for their password, or lets another user switch in.

    Emits ``unlock_requested(user_name, password)``; the window does the unlocking and calls
    ``show_error`` when it fails.
    """

    unlock_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self._locked_user = ""
        panel = QFrame()
        panel.setFrameShape(QFrame.Shape.StyledPanel)
        panel.setMaximumWidth(460)
        self.title = QLabel("<h2>KetaDesk is locked</h2>")
        self.who = QLabel()
        self.who.setWordWrap(True)
        self.user_edit = QLineEdit()
        self.user_edit.setAccessibleName("User name")
        self.user_edit.setReadOnly(True)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Password")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a40000; font-weight: bold;")
        self.error_label.hide()
        self.switch_note = QLabel()
        self.switch_note.setWordWrap(True)
        self.switch_note.hide()
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setDefault(True)
        self.switch_button = QPushButton("Switch user…")
        self.switch_button.setAccessibleName("Switch user")

        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Password", self.password_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.switch_button)
        buttons.addStretch()
        buttons.addWidget(self.unlock_button)
        inner = QVBoxLayout(panel)
        inner.addWidget(self.title)
        inner.addWidget(self.who)
        inner.addLayout(form)
        inner.addWidget(self.switch_note)
        inner.addWidget(self.error_label)
        inner.addLayout(buttons)
        outer = QVBoxLayout(self)
        outer.addStretch()
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(panel)
        row.addStretch()
        outer.addLayout(row)
        outer.addStretch()
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.unlock_button.clicked.connect(self._request)
        self.password_edit.returnPressed.connect(self._request)
        self.switch_button.clicked.connect(self.start_switch_user)

    def show_locked(
        self, user_name: str, full_name: str, at_text: str, open_charts: int = 0
    ) -> None:
        self._locked_user = user_name
        self.who.setText(
            f"Locked at {at_text} for {full_name} ({user_name}). Patient data is "
            "hidden until you log in again; unsaved work is kept."
        )
        self.user_edit.setText(user_name)
        self.user_edit.setReadOnly(True)
        self.password_edit.clear()
        self.error_label.hide()
        self.switch_note.setText(
            f"Switching user closes the {open_charts} open patient chart(s); changes not yet "
            "saved in them will be lost."
            if open_charts
            else ""
        )
        self.switch_note.hide()
        self.password_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def start_switch_user(self) -> None:
        self.user_edit.setReadOnly(False)
        self.user_edit.clear()
        self.user_edit.setFocus()
        self.switch_note.setVisible(bool(self.switch_note.text()))

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.password_edit.clear()
        self.password_edit.setFocus()

    def _request(self) -> None:
        user_name = self.user_edit.text().strip().lower()
        if not user_name or not self.password_edit.text():
            self.show_error("Enter the user name and password.")
            return
        self.unlock_requested.emit(user_name, self.password_edit.text())
