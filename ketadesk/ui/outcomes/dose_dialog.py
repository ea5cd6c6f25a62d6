"""The log-a-home-dose dialog: one session as the patient reported it."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QDateTime
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QWidget,
)

from ketadesk.core.dose_log import DoseLogEntry


class DoseDialog(QDialog):
    """One home session as the patient reported it. Empty readings mean "not measured"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Log a home dose")
        form = QFormLayout(self)
        self.taken_edit = QDateTimeEdit(QDateTime.currentDateTime(), self)
        self.taken_edit.setCalendarPopup(True)
        self.taken_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.dose_spin = QDoubleSpinBox(self)
        self.dose_spin.setRange(0, 2000)
        self.dose_spin.setDecimals(1)
        self.dose_spin.setSuffix(" mg")
        self.readings: dict[str, QLineEdit] = {}
        form.addRow("Taken at (local time):", self.taken_edit)
        form.addRow("Dose:", self.dose_spin)
        for key, label in (
            ("bp_before_systolic", "BP before, systolic (mmHg):"),
            ("bp_before_diastolic", "BP before, diastolic (mmHg):"),
            ("bp_after_systolic", "BP after, systolic (mmHg):"),
            ("bp_after_diastolic", "BP after, diastolic (mmHg):"),
            ("hr_before", "Heart rate before (beats/min):"),
            ("hr_after", "Heart rate after (beats/min):"),
        ):
            edit = QLineEdit(self)
            edit.setValidator(QIntValidator(0, 400, edit))
            edit.setPlaceholderText("not measured")
            self.readings[key] = edit
            form.addRow(label, edit)
        self.sitter_box = QComboBox(self)
        for text, value in (("Not asked", None), ("Yes", True), ("No", False)):
            self.sitter_box.addItem(text, value)
        self.effects_edit = QLineEdit(self)
        form.addRow("Sitter present:", self.sitter_box)
        form.addRow("Effects reported:", self.effects_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        form.addRow(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def entry(self) -> DoseLogEntry:
        def reading(key: str) -> int | None:
            text = self.readings[key].text().strip()
            return int(text) if text else None

        taken = self.taken_edit.dateTime().toPython()
        assert isinstance(taken, datetime)
        return DoseLogEntry(
            taken_at=taken.astimezone(),  # local wall-clock time, made aware
            dose_mg=self.dose_spin.value(),
            bp_before_systolic=reading("bp_before_systolic"),
            bp_before_diastolic=reading("bp_before_diastolic"),
            bp_after_systolic=reading("bp_after_systolic"),
            bp_after_diastolic=reading("bp_after_diastolic"),
            hr_before=reading("hr_before"),
            hr_after=reading("hr_after"),
            sitter_present=self.sitter_box.currentData(),
            effects=self.effects_edit.text(),
        )
