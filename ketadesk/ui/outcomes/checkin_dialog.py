"""The new check-in dialog: date, how, side effects with severity, adherence, notes."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.checkins import (
    LABELS,
    Adherence,
    CheckInDraft,
    CheckInMode,
    Severity,
    Symptom,
    SymptomReport,
    validate_checkin,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.ui.common.date_entry import DateEntry
from ketadesk.ui.common.qdate_conversion import local_today


class CheckInDialog(QDialog):
    """A new check-in: date, how it was done, side effects with severity, adherence, notes."""

    def __init__(self, recorded_by: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New check-in")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.date_edit = DateEntry("Check-in date", is_past=True, parent=self)
        self.date_edit.set_date(local_today())
        self.mode_box = QComboBox(self)
        for mode in CheckInMode:
            self.mode_box.addItem(LABELS[mode], mode.value)
        self.recorded_by_edit = QLineEdit(recorded_by, self)
        self.adherence_box = QComboBox(self)
        for adherence in Adherence:
            self.adherence_box.addItem(LABELS[adherence], adherence.value)
        form.addRow("Date:", self.date_edit)
        form.addRow("How:", self.mode_box)
        form.addRow("Recorded by:", self.recorded_by_edit)
        form.addRow("Adherence:", self.adherence_box)
        layout.addLayout(form)

        symptoms_box = QFrame(self)
        symptoms_box.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(symptoms_box)
        grid.addWidget(QLabel("<b>Side effects since the last contact</b>"), 0, 0, 1, 3)
        self.severity_boxes: dict[str, QComboBox] = {}
        self.symptom_notes: dict[str, QLineEdit] = {}
        for row, symptom in enumerate(Symptom, start=1):
            severity = QComboBox(symptoms_box)
            for level in Severity:
                severity.addItem(level.value.capitalize(), level.value)
            severity.setAccessibleName(f"{LABELS[symptom]} severity")
            note = QLineEdit(symptoms_box)
            note.setPlaceholderText(
                "Describe (required)" if symptom is Symptom.OTHER else "Note (optional)"
            )
            grid.addWidget(QLabel(LABELS[symptom], symptoms_box), row, 0)
            grid.addWidget(severity, row, 1)
            grid.addWidget(note, row, 2)
            self.severity_boxes[symptom.value] = severity
            self.symptom_notes[symptom.value] = note
        layout.addWidget(symptoms_box)
        layout.addWidget(QLabel("Notes:", self))
        self.notes_edit = QPlainTextEdit(self)
        self.notes_edit.setTabChangesFocus(True)  # Tab goes on to Save, not into the note
        self.notes_edit.setFixedHeight(80)
        layout.addWidget(self.notes_edit)
        self.problems_label = QLabel(self)
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #B00020;")
        layout.addWidget(self.problems_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        layout.addWidget(self.buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self._try_accept)
        self.buttons.rejected.connect(self.reject)

    def draft(self) -> CheckInDraft:
        """The check-in as filled in; UserFacingError when the date cannot be read."""
        symptoms = tuple(
            SymptomReport(symptom, box.currentData(), self.symptom_notes[symptom].text().strip())
            for symptom, box in self.severity_boxes.items()
            if box.currentData() != Severity.NONE.value
        )
        return CheckInDraft(
            date=self.date_edit.date_value() or local_today(),
            mode=self.mode_box.currentData(),
            recorded_by=self.recorded_by_edit.text(),
            symptoms=symptoms,
            adherence=self.adherence_box.currentData(),
            notes=self.notes_edit.toPlainText(),
        )

    def _try_accept(self) -> None:
        try:
            if self.date_edit.date_value() is None:
                raise UserFacingError("Enter the date of the check-in (MM/DD/YYYY).")
            draft = self.draft()
        except UserFacingError as error:
            self.problems_label.setText(f"Date: {error.message}")
            self.date_edit.setFocus()
            return
        problems = validate_checkin(draft, local_today())
        if problems:
            self.problems_label.setText("\n".join(p.message for p in problems))
            return
        self.accept()
