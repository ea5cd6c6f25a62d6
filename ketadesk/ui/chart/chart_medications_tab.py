"""The chart's Medications tab: the list as entered, and the line to add one."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ketadesk.storage.patients.patient_medications import STOP_REASONS
from ketadesk.storage.patients.patient_records import (
    MedicationEntry,
)
from ketadesk.storage.patients.patients import (
    SOURCE_LABELS,
)
from ketadesk.ui.chart.chart_record_table import fill_table, record_table
from ketadesk.ui.common.date_entry import DateEntry, date_text
from ketadesk.ui.common.qdate_conversion import local_time_text


def stopped_text(medication: MedicationEntry) -> str:
    """When (local time), by whom and why a line was stopped; "" for a current line (and for a
    line stopped before KetaDesk recorded who stopped it, only "not recorded")."""
    if medication.is_active:
        return ""
    if medication.stopped_at is None:
        return "not recorded"
    reason = STOP_REASONS.get(medication.stop_reason or "", "")
    note = f": {medication.stop_note}" if medication.stop_note else ""
    return (
        f"{local_time_text(medication.stopped_at)} by {medication.stopped_by} · {reason}{note}"
    )


class MedicationsTab(QWidget):
    """Widgets only; the chart saves what is typed here (each entry in its own transaction)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.med_table = record_table(
            (
                "Medication (as typed)",
                "Dose",
                "Frequency",
                "Source",
                "Started",
                "Entered by",
                "Status",
                "Stopped (when, by whom, why)",
            ),
            "Medications",
        )
        self.med_text = QLineEdit()
        self.med_text.setPlaceholderText(
            "Type the line as the patient said it, e.g. Ativan 1 mg at bedtime"
        )
        self.med_text.setAccessibleName("Medication as typed")
        self.med_dose = QLineEdit()
        self.med_dose.setPlaceholderText("Dose (optional)")
        self.med_dose.setAccessibleName("Dose")
        self.med_frequency = QLineEdit()
        self.med_frequency.setPlaceholderText("Frequency (optional)")
        self.med_frequency.setAccessibleName("Frequency")
        self.med_start = DateEntry("Start date", is_past=True)
        self.med_start.setPlaceholderText("Started (optional)")
        self.med_source = QComboBox()
        self.med_source.setAccessibleName("Source")
        for value, label in SOURCE_LABELS.items():
            self.med_source.addItem(label, value)
        self.med_add = QPushButton("Add medication")
        self.med_stop = QPushButton("Stop selected")
        self.med_verify = QPushButton("Mark verified")
        entry = QHBoxLayout()
        entry.addWidget(self.med_text, 3)
        entry.addWidget(self.med_dose, 1)
        entry.addWidget(self.med_frequency, 1)
        entry.addWidget(self.med_start, 1)
        entry.addWidget(self.med_source)
        entry.addWidget(self.med_add)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.med_stop)
        actions.addWidget(self.med_verify)
        layout.addWidget(self.med_table, 1)
        layout.addLayout(actions)
        layout.addLayout(entry)

    def show_medications(self, medications: tuple[MedicationEntry, ...]) -> None:
        fill_table(
            self.med_table,
            [
                (
                    m.entered_text,
                    m.dose_text,
                    m.frequency_text,
                    SOURCE_LABELS[m.source] + (f" by {m.verified_by}" if m.verified_by else ""),
                    date_text(m.start_date),
                    m.entered_by,
                    "Current" if m.is_active else "Stopped",
                    stopped_text(m),
                )
                for m in medications
            ],
            [m.id for m in medications],
        )
        stopped_column = self.med_table.columnCount() - 1
        for row, m in enumerate(medications):
            if m.stop_note:
                self.med_table.item(row, stopped_column).setToolTip(f"Note: {m.stop_note}")

    def clear_entry(self) -> None:
        for line in (self.med_text, self.med_dose, self.med_frequency, self.med_start):
            line.clear()
