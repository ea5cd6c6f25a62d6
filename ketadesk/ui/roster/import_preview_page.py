"""The preview step of the roster CSV import: what the check found, before anything is written.

A summary, the problems by row, possible duplicates (within the file and against the patients
already stored), the first rows ready to import, and the two choices that widen the import.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.patient_csv import IMPORT_FIELD_LABELS, CsvImportPlan
from ketadesk.storage.patients.patient_import import ExistingDuplicate

MAX_PROBLEMS_SHOWN = 2000
PREVIEW_ROWS = 25


@dataclass(frozen=True)
class ImportPreview:
    """A checked file: the plan plus rows matching patients already stored."""

    plan: CsvImportPlan
    existing_duplicates: tuple[ExistingDuplicate, ...]


class ImportPreviewPage(QWidget):
    """The import wizard's preview page (its widgets are read by the dialog and by tests)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview_summary = QLabel()
        self.preview_summary.setWordWrap(True)
        self.preview_summary.setAccessibleName("Check result")
        self.problems_table = QTableWidget(0, 3)
        self.problems_table.setHorizontalHeaderLabels(["Row", "Field", "Problem"])
        self.problems_table.setAccessibleName("Problems by row")
        self.problems_table.verticalHeader().setVisible(False)
        self.problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems_table.setWordWrap(True)
        header = self.problems_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.duplicates_list = QListWidget()
        self.duplicates_list.setAccessibleName("Possible duplicates")
        self.duplicates_list.setMaximumHeight(72)
        self.rows_table = QTableWidget(0, 5)
        self.rows_table.setHorizontalHeaderLabels(
            ["Row", "Name", "Date of birth", "State", "County"]
        )
        self.rows_table.setAccessibleName("Rows ready to import")
        self.rows_table.verticalHeader().setVisible(False)
        self.rows_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows_table.horizontalHeader().setStretchLastSection(True)
        self.only_valid_checkbox = QCheckBox("Import only the valid rows (skip the rows above)")
        self.only_valid_checkbox.setAccessibleName("Import only the valid rows")
        self.include_duplicates_checkbox = QCheckBox(
            "Also import rows that match a patient already in KetaDesk (nothing is merged)"
        )
        self.include_duplicates_checkbox.setAccessibleName("Also import possible duplicates")
        self.problems_title = QLabel("<b>Problems</b> (row as the spreadsheet numbers it)")
        self.duplicates_title = QLabel("<b>Possible duplicates</b> (same name and date of birth)")
        self.rows_title = QLabel("<b>First rows ready to import</b>")
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview_summary)
        layout.addWidget(self.problems_title)
        layout.addWidget(self.problems_table, 2)
        layout.addWidget(self.duplicates_title)
        layout.addWidget(self.duplicates_list)
        layout.addWidget(self.rows_title)
        layout.addWidget(self.rows_table, 2)
        layout.addWidget(self.only_valid_checkbox)
        layout.addWidget(self.include_duplicates_checkbox)

    def show_preview(self, preview: ImportPreview) -> None:
        """Fill the page from a checked file: summary, problems, duplicates, first rows."""
        plan = preview.plan
        bad = len(plan.invalid_row_numbers)
        lines = [
            f"{plan.data_row_count} patient row{'s' if plan.data_row_count != 1 else ''} read: "
            f"{len(plan.rows)} ready to import, {bad} with problems."
        ]
        if bad:
            lines.append(
                "A file with problems imports nothing, unless you choose to import only the "
                "valid rows. Or fix the rows in your spreadsheet and choose the file again."
            )
        lines.extend(plan.notices)
        if plan.ignored_columns:
            lines.append("Columns not imported: " + ", ".join(plan.ignored_columns) + ".")
        self.preview_summary.setText("\n".join(lines))

        problems = plan.problems[:MAX_PROBLEMS_SHOWN]
        self.problems_table.setRowCount(len(problems))
        for row, problem in enumerate(problems):
            where = IMPORT_FIELD_LABELS.get(problem.field, problem.field) or "Whole row"
            if problem.column:
                where = f'{where} (column "{problem.column}")'
            for column, value in enumerate((str(problem.row_number), where, problem.message)):
                self.problems_table.setItem(row, column, QTableWidgetItem(value))
        self.problems_table.resizeRowsToContents()
        self.problems_table.setCurrentItem(None)
        if len(plan.problems) > MAX_PROBLEMS_SHOWN:
            more = len(plan.problems) - MAX_PROBLEMS_SHOWN
            self.problems_title.setText(
                f"<b>Problems</b> (the first {MAX_PROBLEMS_SHOWN}; {more} more)"
            )
        else:
            self.problems_title.setText("<b>Problems</b> (row as the spreadsheet numbers it)")
        self.problems_table.setVisible(bool(problems))
        self.problems_title.setVisible(bool(problems))
        self.only_valid_checkbox.setVisible(plan.has_problems)
        self.only_valid_checkbox.setChecked(False)

        self.duplicates_list.clear()
        for group in plan.duplicates_in_file:
            rows = ", ".join(str(n) for n in group.row_numbers)
            self.duplicates_list.addItem(f"Rows {rows} of the file look like the same person")
        for duplicate in preview.existing_duplicates:
            self.duplicates_list.addItem(
                f"Row {duplicate.row_number} looks like {duplicate.existing_mrn}, already in "
                "KetaDesk (skipped unless you tick the box below)"
            )
        has_duplicates = self.duplicates_list.count() > 0
        self.duplicates_list.setVisible(has_duplicates)
        self.duplicates_title.setVisible(has_duplicates)
        self.include_duplicates_checkbox.setVisible(bool(preview.existing_duplicates))
        self.include_duplicates_checkbox.setChecked(False)

        shown = plan.rows[:PREVIEW_ROWS]
        self.rows_table.setRowCount(len(shown))
        for row, entry in enumerate(shown):
            d = entry.demographics
            values = (
                str(entry.row_number),
                f"{d.last_name}, {d.first_name}",
                d.dob.strftime("%m/%d/%Y") if d.dob else "",
                d.state,
                d.county,
            )
            for column, value in enumerate(values):
                self.rows_table.setItem(row, column, QTableWidgetItem(value))
        self.rows_table.resizeColumnsToContents()
        self.rows_table.setCurrentItem(None)
        self.rows_table.setVisible(bool(shown))
        self.rows_title.setVisible(bool(shown))
