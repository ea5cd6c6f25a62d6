"""The log-a-home-dose dialog: one session as the patient reported it.

Keyboard first: Tab moves field to field (never between the date's year/month/day parts), and
before saving the dose is compared with the protocol (``core.dose_log.dose_entry_concerns``):
what cannot be right is refused in words, what is odd (dated before the protocol's first
session, far from its calendar, above the maximum dose) is asked about first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtGui import QIntValidator, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from ketadesk.core.dose_log import (
    DoseCalendarContext,
    DoseLogEntry,
    dose_entry_concerns,
)
from ketadesk.ui.common.dialog_parts import ProblemLabel


class FieldByFieldDateTimeEdit(QDateTimeEdit):
    """A date-time field that Tab and Shift+Tab leave, instead of walking its sections.

    Typing moves through the sections on its own (a full year moves on to the month; a typed
    "-", " " or ":" moves to the next part), and the arrow keys still move between them; Tab
    is for going to the next field, as in every other field of the form. (Qt routes typed
    separators through ``focusNextPrevChild`` too, so only the Tab keys are changed here.)

    Plain Qt also skips a part when a separator is typed right after a part filled up and
    moved on by itself ("2025-11-25" became 2025-12-11): such a separator is swallowed, so
    typing the date as written lands each number in its own part.
    """

    _SEPARATORS = frozenset("-/.: ")

    def __init__(self, value: QDateTime, parent: QWidget | None = None) -> None:
        super().__init__(value, parent)
        self._moved_on_by_itself = False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            forward = event.key() == Qt.Key.Key_Tab and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            )
            event.accept()
            self._moved_on_by_itself = False
            QWidget.focusNextPrevChild(self, forward)
            return
        if event.text() and event.text() in self._SEPARATORS and self._moved_on_by_itself:
            event.accept()
            self._moved_on_by_itself = False
            return
        section = self.currentSectionIndex()
        super().keyPressEvent(event)
        self._moved_on_by_itself = (
            event.text().isdigit() and self.currentSectionIndex() != section
        )


class DoseDialog(QDialog):
    """One home session as the patient reported it. Empty readings mean "not measured".

    ``confirmation`` is the "check this dose" question while it is open (``None`` otherwise).
    """

    def __init__(
        self, context: DoseCalendarContext | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._context = context or DoseCalendarContext()
        self.confirmation: QMessageBox | None = None
        self.setWindowTitle("Log a home dose")
        form = QFormLayout(self)
        self.taken_edit = FieldByFieldDateTimeEdit(QDateTime.currentDateTime(), self)
        self.taken_edit.setCalendarPopup(True)
        self.taken_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.taken_edit.setAccessibleName("Taken at")
        self.dose_spin = QDoubleSpinBox(self)
        self.dose_spin.setRange(0, 2000)
        self.dose_spin.setDecimals(1)
        self.dose_spin.setSuffix(" mg")
        self.dose_spin.setAccessibleName("Dose")
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
            edit.setAccessibleName(label.rstrip(":"))
            self.readings[key] = edit
            form.addRow(label, edit)
        self.sitter_box = QComboBox(self)
        for text, value in (("Not asked", None), ("Yes", True), ("No", False)):
            self.sitter_box.addItem(text, value)
        self.effects_edit = QLineEdit(self)
        form.addRow("Sitter present:", self.sitter_box)
        form.addRow("Effects reported:", self.effects_edit)
        self.problem_label = ProblemLabel()
        form.addRow(self.problem_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        form.addRow(self.buttons)
        self.setMinimumWidth(480)
        self._connect_signals()
        self.taken_edit.setFocus()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.save_if_plausible)
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

    def save_if_plausible(self) -> None:
        """Refuse what cannot be right, ask about what is odd, else accept (Save / Enter)."""
        concerns = dose_entry_concerns(self.entry(), datetime.now(UTC), self._context)
        blocking = [c.message for c in concerns if c.blocks_saving]
        if blocking:
            self.problem_label.say(" ".join(blocking))
            self.adjustSize()  # room for the words, so none are cut off
            return
        self.problem_label.hide()
        questions = [c.message for c in concerns]
        if not questions:
            self.accept()
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Check this dose before saving")
        box.setText("Please check this dose with the patient's report before saving it:")
        box.setInformativeText("\n\n".join(f"• {message}" for message in questions))
        save_anyway = box.addButton("Save as entered", QMessageBox.ButtonRole.AcceptRole)
        go_back = box.addButton("Go back and correct", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(go_back)
        box.setEscapeButton(go_back)
        self.confirmation = box

        def answered(button: QPushButton) -> None:
            self.confirmation = None
            if button is save_anyway:
                self.accept()
            else:
                self.taken_edit.setFocus()

        box.buttonClicked.connect(answered)
        box.open()
