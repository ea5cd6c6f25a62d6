"""Asks why a medication line is being stopped before it is stopped (a reason is required)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.storage.patients.patient_medications import STOP_REASONS
from ketadesk.storage.patients.patient_records import MedicationEntry
from ketadesk.ui.common.dialog_parts import lay_out_dialog


class StopMedicationDialog(QDialog):
    """The line to be stopped, the reason (chosen, never preset) and an optional note.

    Accepted only with a reason, and with a note when the reason is "other"; ``reason`` and
    ``note`` then hold what was chosen and typed.
    """

    def __init__(self, medication: MedicationEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Stop this medication?")
        self.setMinimumWidth(480)
        self.reason = ""
        self.note = ""
        self.line_label = line = QLabel(
            f"Stop <b>{_escaped(medication.entered_text)}</b> (entered by "
            f"{medication.entered_by})? It stays in the history as stopped, with your name, "
            "the time and the reason."
        )
        line.setWordWrap(True)
        line.setAccessibleName("Medication to stop")
        self.reason_combo = QComboBox()
        self.reason_combo.setAccessibleName("Why it is stopped")
        self.reason_combo.addItem("Choose a reason…", "")
        for code, words in STOP_REASONS.items():
            self.reason_combo.addItem(words, code)
        self.note_edit = QLineEdit()
        self.note_edit.setAccessibleName("Note on stopping")
        self.note_edit.setMaxLength(300)
        self.note_edit.setPlaceholderText("Needed for Other; optional otherwise")
        self.note_edit.setToolTip("Kept in the chart only (never in the audit trail).")
        form = QFormLayout()
        form.addRow("Reason:", self.reason_combo)
        form.addRow("Note:", self.note_edit)
        body = QVBoxLayout()
        body.addWidget(line)
        body.addLayout(form)
        self.problem = lay_out_dialog(self, body, self._accept_if_complete)
        buttons = self.findChild(QDialogButtonBox)
        assert buttons is not None
        self.stop_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.stop_button.setText("Stop medication")
        self.reason_combo.setFocus()

    def show_typed(self, reason: str, note: str) -> None:
        """Put back a reason and note typed before (a stop that was not saved)."""
        self.reason_combo.setCurrentIndex(max(self.reason_combo.findData(reason), 0))
        self.note_edit.setText(note)

    def _accept_if_complete(self) -> None:
        reason = str(self.reason_combo.currentData() or "")
        note = self.note_edit.text().strip()
        if not reason:
            self.problem.say("Choose why the medication is being stopped.")
            self.reason_combo.setFocus()
            return
        if reason == "other" and not note:
            self.problem.say("Write a short note saying why it is being stopped.")
            self.note_edit.setFocus()
            return
        self.reason, self.note = reason, note
        self.accept()


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
