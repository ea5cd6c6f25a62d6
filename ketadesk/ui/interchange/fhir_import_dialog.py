"""Import patients' records from FHIR R4 files: choose, check (a preview), then import.

The preview is what the import would do, worked out off the GUI thread by a dry run of
``storage.interchange.fhir_import``: how many patients and records, every resource that
cannot be read (then nothing can be imported), possible duplicates (skipped unless the box
is ticked; never merged), the lines the readers could not read ("not checked") and what is
skipped on purpose. Import writes everything in one transaction, or nothing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_reading import FhirReading, load_fhir_paths, read_fhir_files
from ketadesk.core.permissions import Permission
from ketadesk.storage.interchange.fhir_import import FhirImportResult, import_fhir_reading
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.ops import show_error

_PROBLEM = QColor("#a40000")


def _counts(result: FhirImportResult) -> str:
    return (
        f"{result.patients} patient(s) with {result.medications} medications, "
        f"{result.conditions} conditions, {result.vitals} sets of vitals and "
        f"{result.questionnaires} questionnaires"
    ) + (
        f"; {result.prescriptions_not_imported} prescription(s) not imported (prescriptions "
        "are issued and signed in KetaDesk)" if result.prescriptions_not_imported else ""
    )


class FhirImportDialog(QDialog):
    """Choose FHIR files (a Bundle, NDJSON or a folder), see the preview, import."""

    records_imported = Signal(object)  # FhirImportResult

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._reading: FhirReading | None = None
        self.setWindowTitle("Import records (FHIR)")
        self.resize(760, 520)
        explain = QLabel(
            "Choose a FHIR R4 file from another system (a Bundle or NDJSON) or a folder of "
            "them. KetaDesk checks everything first and shows what it would import; nothing "
            "is written until you choose Import, and then all of it or none of it."
        )
        explain.setWordWrap(True)
        self.path_edit = QLineEdit()
        self.path_edit.setAccessibleName("FHIR file or folder")
        self.file_button = QPushButton("File…")
        self.folder_button = QPushButton("Folder…")
        self.check_button = QPushButton("Check the files")
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        for button in (self.file_button, self.folder_button, self.check_button):
            row.addWidget(button)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.preview = QListWidget()
        self.preview.setAccessibleName("What the import would do")
        self.preview.setWordWrap(True)
        self.duplicates_box = QCheckBox(
            "Also import possible duplicates as separate patients (nothing is merged)"
        )
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.import_button = self.buttons.addButton(
            "Import", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.import_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addLayout(row)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.duplicates_box)
        layout.addWidget(self.buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.file_button.clicked.connect(self._choose_file)
        self.folder_button.clicked.connect(self._choose_folder)
        self.check_button.clicked.connect(self.check_files)
        self.path_edit.returnPressed.connect(self.check_files)
        self.path_edit.textChanged.connect(self._forget_preview)
        self.duplicates_box.toggled.connect(self._forget_preview)
        self.import_button.clicked.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "FHIR file", "", "FHIR JSON (*.json *.ndjson);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)
            self.check_files()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of FHIR files")
        if folder:
            self.path_edit.setText(folder)
            self.check_files()

    def _forget_preview(self) -> None:
        self._reading = None
        self.import_button.setEnabled(False)

    def check_files(self) -> None:
        """Read and check the files, then show the dry run as the preview."""
        text = self.path_edit.text().strip()
        if not text:
            show_error(self, UserFacingError("Choose a FHIR file or folder first."))
            return
        if not self.context.can(Permission.EDIT_CLINICAL):
            show_error(self, UserFacingError("Only physicians may import patient records."))
            return
        self._forget_preview()
        self.summary_label.setText("Checking the files…")
        self.preview.clear()
        self.check_button.setEnabled(False)
        db, actor = self.context.db, self.context.actor
        paths, with_duplicates = [Path(text)], self.duplicates_box.isChecked()

        def work() -> tuple[FhirReading, FhirImportResult | None]:
            today = datetime.now(UTC).astimezone().date()
            reading = read_fhir_files(load_fhir_paths(paths), today=today)
            if reading.has_problems:
                return reading, None
            with db.session() as session:
                result = import_fhir_reading(
                    session, actor, reading, import_duplicates=with_duplicates, dry_run=True
                )
                session.rollback()
            return reading, result

        self.context.ops.run(work, self._show_preview, on_failure=self._check_failed)

    def _check_failed(self, error: BaseException) -> None:
        self.check_button.setEnabled(True)
        self.summary_label.setText("The files could not be checked.")
        show_error(self, error)

    def _add(self, text: str, *, problem: bool = False) -> None:
        item = QListWidgetItem(text)
        if problem:
            item.setForeground(QBrush(_PROBLEM))
        self.preview.addItem(item)

    def _show_preview(self, found: tuple[FhirReading, FhirImportResult | None]) -> None:
        reading, result = found
        self.check_button.setEnabled(True)
        for problem in reading.problems:
            self._add(f"Cannot be read — {problem.describe()}", problem=True)
        if result is None:
            count = len(reading.problems)
            self.summary_label.setText(
                f"{count} resource(s) cannot be read, so nothing can be imported. Fix them in "
                "the other system and export again."
            )
            return
        with_duplicates = self.duplicates_box.isChecked()
        for duplicate in result.duplicates:
            like = duplicate.existing_mrn or "an earlier patient in the file"
            action = "imported as a separate patient" if with_duplicates else "skipped"
            self._add(f"Possible duplicate of {like} (same name and date of birth) — "
                      f"{duplicate.where}; {action}")
        for line in result.not_checked:
            self._add(f"Not checked: {line.kind} \"{line.entered_text}\" ({line.mrn}) was not "
                      "recognised; the interaction review will show it as not checked")
        for reason, count in Counter(p.reason for p in reading.skipped).most_common():
            self._add(f"{count} resource(s) {reason}")
        self.summary_label.setText(f"Ready to import {_counts(result)}.")
        self._reading = reading
        self.import_button.setEnabled(result.patients > 0)

    def start_import(self) -> None:
        reading = self._reading
        if reading is None:
            return
        self.import_button.setEnabled(False)
        self.check_button.setEnabled(False)
        db, actor = self.context.db, self.context.actor
        with_duplicates = self.duplicates_box.isChecked()

        def work() -> FhirImportResult:
            with db.session() as session:
                return import_fhir_reading(
                    session, actor, reading, import_duplicates=with_duplicates
                )

        self.context.ops.run(work, self._imported, on_failure=self._import_failed,
                             changes="patients")

    def _import_failed(self, error: BaseException) -> None:
        self.check_button.setEnabled(True)
        show_error(self, error)

    def _imported(self, result: FhirImportResult) -> None:
        self._reading = None
        self.check_button.setEnabled(True)
        self.summary_label.setText(f"Imported {_counts(result)}.")
        self.records_imported.emit(result)
