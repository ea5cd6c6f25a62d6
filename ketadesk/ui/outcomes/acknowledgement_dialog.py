"""The physician's acknowledgement of a safety alert, with a required note of what was done."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

NOTE_LIMIT_CHARS = 500
NOTE_REQUIRED_TEXT = (
    "Write what was done before saving (for example: phoned the patient and what was "
    "agreed)."
)


class AcknowledgementDialog(QDialog):
    """An explanation, a "what was done" note, and OK only once the note has words in it.

    ``note_accepted(str)`` carries the stripped note when OK is pressed. The storage layer
    refuses an empty note too; this dialog just says so before anyone presses OK.
    """

    note_accepted = Signal(str)

    def __init__(self, title: str, explanation: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        self.explanation_label = QLabel(explanation, self)
        self.explanation_label.setWordWrap(True)
        layout.addWidget(self.explanation_label)
        layout.addWidget(QLabel("What was done (required):", self))
        self.note_edit = QPlainTextEdit(self)
        self.note_edit.setAccessibleName("What was done")
        self.note_edit.setTabChangesFocus(True)
        self.note_edit.setFixedHeight(90)
        layout.addWidget(self.note_edit)
        self.hint_label = QLabel(NOTE_REQUIRED_TEXT, self)
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("color: #a40000;")
        layout.addWidget(self.hint_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())
        self._connect_signals()
        self._update_ok()

    def _connect_signals(self) -> None:
        self.note_edit.textChanged.connect(self._update_ok)
        self.buttons.accepted.connect(self._accept_if_noted)
        self.buttons.rejected.connect(self.reject)

    def note(self) -> str:
        return self.note_edit.toPlainText().strip()

    def ok_button(self) -> QWidget:
        button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert button is not None
        return button

    def _problem(self) -> str:
        note = self.note()
        if not note:
            return NOTE_REQUIRED_TEXT
        if len(note) > NOTE_LIMIT_CHARS:
            return f"The note is limited to {NOTE_LIMIT_CHARS} characters ({len(note)} now)."
        return ""

    def _update_ok(self) -> None:
        problem = self._problem()
        self.ok_button().setEnabled(not problem)
        self.ok_button().setToolTip(problem)
        self.hint_label.setText(problem)
        self.hint_label.setVisible(bool(problem))

    def _accept_if_noted(self) -> None:
        if self._problem():
            self._update_ok()
            return
        self.note_accepted.emit(self.note())
        self.accept()
