"""The chart's Conditions and allergies tab: two lists side by side, each with its entry line."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import (
    QCompleter,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.storage.patients.patient_records import (
    AllergyEntry,
    ConditionEntry,
)
from ketadesk.ui.chart.chart_record_table import fill_table, record_table


class ConditionsTab(QWidget):
    """Widgets only; the chart saves what is typed here (each entry in its own transaction)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        conditions = QGroupBox("Conditions")
        c_layout = QVBoxLayout(conditions)
        self.condition_table = record_table(
            ("Condition", "ICD-10", "Status", "Entered by"), "Conditions"
        )
        self.condition_text = QLineEdit()
        self.condition_text.setPlaceholderText("Condition (suggestions appear as you type)")
        self.condition_text.setAccessibleName("Condition")
        self.condition_completer = QCompleter([], self)
        self.condition_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.condition_completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.condition_text.setCompleter(self.condition_completer)
        self.condition_add = QPushButton("Add condition")
        self.condition_resolve = QPushButton("Mark resolved")
        row = QHBoxLayout()
        row.addWidget(self.condition_text, 1)
        row.addWidget(self.condition_add)
        row.addWidget(self.condition_resolve)
        c_layout.addWidget(self.condition_table, 1)
        c_layout.addLayout(row)
        allergies = QGroupBox("Allergies")
        a_layout = QVBoxLayout(allergies)
        self.allergy_table = record_table(("Substance", "Reaction"), "Allergies")
        self.allergy_substance = QLineEdit()
        self.allergy_substance.setPlaceholderText("Substance")
        self.allergy_substance.setAccessibleName("Allergy substance")
        self.allergy_reaction = QLineEdit()
        self.allergy_reaction.setPlaceholderText("Reaction (optional)")
        self.allergy_reaction.setAccessibleName("Allergy reaction")
        self.allergy_add = QPushButton("Add allergy")
        self.allergy_remove = QPushButton("Remove")
        row = QHBoxLayout()
        row.addWidget(self.allergy_substance, 1)
        row.addWidget(self.allergy_reaction, 1)
        row.addWidget(self.allergy_add)
        row.addWidget(self.allergy_remove)
        a_layout.addWidget(self.allergy_table, 1)
        a_layout.addLayout(row)
        layout.addWidget(conditions, 3)
        layout.addWidget(allergies, 2)

    def set_condition_suggestions(self, suggestions: list[str]) -> None:
        self.condition_completer.setModel(None)
        self.condition_completer.setModel(QStringListModel(suggestions, self.condition_completer))

    def show_entries(
        self, conditions: tuple[ConditionEntry, ...], allergies: tuple[AllergyEntry, ...]
    ) -> None:
        fill_table(
            self.condition_table,
            [
                (
                    c.entered_text,
                    c.icd10 or "",
                    "Current" if c.is_active else "Resolved",
                    c.entered_by,
                )
                for c in conditions
            ],
            [c.id for c in conditions],
        )
        fill_table(
            self.allergy_table,
            [(a.substance, a.reaction) for a in allergies],
            [a.id for a in allergies],
        )
