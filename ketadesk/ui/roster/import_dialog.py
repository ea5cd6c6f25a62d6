"""The in-app roster CSV import: file, column mapping, preview, import with progress, summary.

Reading the file, checking every row and writing the patients all run on a worker thread
(``context.ops``); the dialog only shows results. The import is all or nothing (one
transaction, see ``storage.patients.patient_import``): Cancel during the import rolls it back.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.csv_encoding import MAX_FILE_BYTES
from ketadesk.core.errors import UserFacingError
from ketadesk.core.patient_csv import (
    IMPORT_FIELD_LABELS,
    IMPORT_FIELDS,
    REQUIRED_FIELDS,
    CsvFileInfo,
    inspect_patient_csv,
    read_patient_csv,
)
from ketadesk.core.permissions import Permission
from ketadesk.storage.patients.patient_import import (
    ImportCancelledError,
    ImportResult,
    duplicates_of_existing,
    import_patients,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.roster.import_preview_page import ImportPreview, ImportPreviewPage

NOT_IN_FILE = "(not in the file)"


class Step:
    """Page indexes of the dialog's stack."""

    FILE = 0
    MAPPING = 1
    PREVIEW = 2
    IMPORTING = 3
    SUMMARY = 4


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    advanced = Signal(int, int)


def _local_today() -> datetime:
    return datetime.now(UTC).astimezone()


class ImportDialog(QDialog):
    """Import patients from a roster CSV exported from another system.

    Signals: ``file_inspected(CsvFileInfo)`` once a file is read, ``preview_ready(ImportPreview)``
    after every row was checked, ``patients_imported(ImportResult)`` after a successful import
    (the context then emits ``data_changed("patients")``), ``import_failed(str)`` with the
    message when the import was refused or cancelled (nothing was written then).
    """

    file_inspected = Signal(object)
    preview_ready = Signal(object)
    patients_imported = Signal(object)
    import_failed = Signal(str)

    def __init__(
        self, context: AppContext, parent: QWidget | None = None, *, path: Path | None = None
    ) -> None:
        super().__init__(parent)
        self._context = context
        self._data: bytes | None = None
        self._info: CsvFileInfo | None = None
        self._preview: ImportPreview | None = None
        self._cancel = threading.Event()
        self._relay = _ProgressRelay(self)
        self._busy = False
        self.setWindowTitle("Import patients from a CSV file")
        self.resize(900, 640)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_file_page())
        self.pages.addWidget(self._build_mapping_page())
        self.pages.addWidget(self._build_preview_page())
        self.pages.addWidget(self._build_importing_page())
        self.pages.addWidget(self._build_summary_page())

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        self.message.setAccessibleName("Problem")
        self.message.setVisible(False)
        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.next_button.setDefault(True)
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._connect_signals()
        self._show_step(Step.FILE)
        if not context.can(Permission.EDIT_DEMOGRAPHICS):
            self._show_message("Your role may not add patients, so it may not import them.")
            self.browse_button.setEnabled(False)
        elif path is not None:
            self.open_file(path)

    # --- pages ---------------------------------------------------------------------------
    def _build_file_page(self) -> QWidget:
        page = QWidget()
        intro = QLabel(
            "Choose a CSV file exported from another system, with a header row (for example "
            "first_name, last_name, dob, sex, state, county). Nothing is written until you "
            "confirm on the last step."
        )
        intro.setWordWrap(True)
        self.path_edit = QLineEdit()
        self.path_edit.setReadOnly(True)
        self.path_edit.setAccessibleName("Chosen file")
        self.browse_button = QPushButton("Choose file…")
        self.browse_button.setAccessibleName("Choose a CSV file")
        self.file_details = QLabel()
        self.file_details.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.file_details)
        layout.addStretch(1)
        return page

    def _build_mapping_page(self) -> QWidget:
        page = QWidget()
        intro = QLabel(
            "Which column of the file holds each detail? Suggestions come from the column "
            "names; fields marked * are needed."
        )
        intro.setWordWrap(True)
        self.mapping_notices = QLabel()
        self.mapping_notices.setWordWrap(True)
        form_host = QWidget()
        form = QFormLayout(form_host)
        self.mapping_boxes: dict[str, QComboBox] = {}
        for name in IMPORT_FIELDS:
            box = QComboBox()
            label = IMPORT_FIELD_LABELS.get(name, name)
            box.setAccessibleName(f"Column for {label}")
            self.mapping_boxes[name] = box
            form.addRow(f"{label}{' *' if name in REQUIRED_FIELDS else ''}", box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_host)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addWidget(self.mapping_notices)
        layout.addWidget(scroll, 1)
        return page

    def _build_preview_page(self) -> QWidget:
        self.preview_page = ImportPreviewPage()
        return self.preview_page

    def _build_importing_page(self) -> QWidget:
        page = QWidget()
        self.progress_label = QLabel("Importing…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Import progress")
        self.cancel_button = QPushButton("Cancel import")
        self.cancel_button.setAccessibleName("Cancel the import")
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return page

    def _build_summary_page(self) -> QWidget:
        page = QWidget()
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setAccessibleName("Import summary")
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(page)
        layout.addWidget(self.summary_label)
        layout.addStretch(1)
        return page

    def _connect_signals(self) -> None:
        self.browse_button.clicked.connect(self._choose_file)
        self.next_button.clicked.connect(self._next)
        self.back_button.clicked.connect(self._back)
        self.close_button.clicked.connect(self.reject)
        self.cancel_button.clicked.connect(self.cancel_import)
        self.preview_page.only_valid_checkbox.toggled.connect(self._update_buttons)
        self.preview_page.include_duplicates_checkbox.toggled.connect(self._update_buttons)
        self._relay.advanced.connect(self._show_progress)

    # --- navigation ----------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.pages.currentIndex()

    def _show_step(self, step: int) -> None:
        self.pages.setCurrentIndex(step)
        self._update_buttons()

    def _update_buttons(self) -> None:
        step = self.step
        self.back_button.setVisible(step in (Step.MAPPING, Step.PREVIEW))
        self.back_button.setEnabled(not self._busy)
        self.next_button.setVisible(step in (Step.FILE, Step.MAPPING, Step.PREVIEW))
        labels = {Step.FILE: "Next", Step.MAPPING: "Check the rows", Step.PREVIEW: "Import"}
        self.next_button.setText(labels.get(step, "Next"))
        ready = not self._busy
        if step == Step.FILE:
            ready = ready and self._info is not None
        elif step == Step.PREVIEW:
            ready = ready and self._can_import()
        self.next_button.setEnabled(ready)
        self.close_button.setText("Done" if step == Step.SUMMARY else "Close")
        self.close_button.setEnabled(step != Step.IMPORTING)

    def _can_import(self) -> bool:
        preview = self._preview
        if preview is None:
            return False
        if preview.plan.has_problems and not self.preview_page.only_valid_checkbox.isChecked():
            return False
        return self._rows_to_import() > 0

    def _rows_to_import(self) -> int:
        if self._preview is None:
            return 0
        duplicate_rows = {d.row_number for d in self._preview.existing_duplicates}
        if self.preview_page.include_duplicates_checkbox.isChecked():
            return len(self._preview.plan.rows)
        return sum(1 for r in self._preview.plan.rows if r.row_number not in duplicate_rows)

    def _next(self) -> None:
        if self.step == Step.FILE:
            self._show_step(Step.MAPPING)
        elif self.step == Step.MAPPING:
            self.check_rows()
        elif self.step == Step.PREVIEW:
            self.start_import()

    def _back(self) -> None:
        self._clear_message()
        if self.step == Step.PREVIEW:
            self._show_step(Step.MAPPING)
        elif self.step == Step.MAPPING:
            self._show_step(Step.FILE)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(True)

    def _clear_message(self) -> None:
        self.message.clear()
        self.message.setVisible(False)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.browse_button.setEnabled(not busy)
        self._update_buttons()

    # --- step 1: the file ----------------------------------------------------------------
    def _choose_file(self) -> None:
        name, _filter = QFileDialog.getOpenFileName(
            self, "Choose a patient list", "", "CSV files (*.csv *.txt);;All files (*)"
        )
        if name:
            self.open_file(Path(name))

    def open_file(self, path: Path) -> None:
        """Read and inspect ``path`` on a worker; then suggest a column mapping."""
        self._clear_message()
        self._info = None
        self._preview = None
        self.path_edit.setText(str(path))
        self.file_details.setText("Reading the file…")
        self._set_busy(True)

        def read() -> tuple[bytes, CsvFileInfo]:
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise UserFacingError(
                        "The file is larger than 50 MB; this does not look like a patient list."
                    )
                data = path.read_bytes()
            except FileNotFoundError:
                raise UserFacingError(f"There is no file {path.name} there.") from None
            except OSError:
                raise UserFacingError(f"The file {path.name} could not be read.") from None
            return data, inspect_patient_csv(data)

        self._context.ops.run(read, self._file_read, on_failure=self._file_failed)

    def _file_read(self, result: tuple[bytes, CsvFileInfo]) -> None:
        data, info = result
        self._data, self._info = data, info
        self._set_busy(False)
        delimiter = {",": "comma", ";": "semicolon", "\t": "tab"}.get(info.delimiter, "comma")
        self.file_details.setText(
            f"{len(info.headers)} columns, separated by {delimiter}; text read as {info.encoding}."
        )
        for name, box in self.mapping_boxes.items():
            box.blockSignals(True)
            box.clear()
            box.addItem(NOT_IN_FILE, "")
            for header in info.headers:
                if header:
                    box.addItem(header, header)
            suggested = info.suggested_mapping.get(name, "")
            box.setCurrentIndex(max(0, box.findData(suggested)))
            box.blockSignals(False)
        self.mapping_notices.setText("\n".join(info.notices))
        self.mapping_notices.setVisible(bool(info.notices))
        self._update_buttons()
        self.file_inspected.emit(info)

    def _file_failed(self, error: BaseException) -> None:
        self._set_busy(False)
        self.file_details.clear()
        self._show_message(_message_of(error))

    # --- step 2: mapping -----------------------------------------------------------------
    def column_mapping(self) -> dict[str, str]:
        """{field: header} as chosen (fields set to "not in the file" are left out)."""
        return {
            name: str(box.currentData())
            for name, box in self.mapping_boxes.items()
            if box.currentData()
        }

    def set_mapping(self, field_name: str, header: str) -> None:
        """Choose the column for a field ("" = not in the file), as the drop-down does."""
        box = self.mapping_boxes[field_name]
        index = box.findData(header)
        if index < 0:
            raise ValueError(f"no column {header!r} in the file")
        box.setCurrentIndex(index)

    # --- step 3: preview -----------------------------------------------------------------
    def check_rows(self) -> None:
        """Check every row with the chosen mapping on a worker, then show the preview."""
        if self._data is None:
            return
        self._clear_message()
        data, mapping = self._data, self.column_mapping()
        database, relay = self._context.db, self._relay
        today = _local_today().date()
        self._set_busy(True)
        self.file_details.setText("Checking the rows…")

        def check() -> ImportPreview:
            plan = read_patient_csv(
                data, today=today, column_mapping=mapping, progress=relay.advanced.emit
            )
            with database.session() as session:
                existing = duplicates_of_existing(session, plan)
            return ImportPreview(plan, tuple(existing))

        self._context.ops.run(check, self._preview_checked, on_failure=self._preview_failed)

    def _preview_checked(self, preview: ImportPreview) -> None:
        self._preview = preview
        self._set_busy(False)
        self.preview_page.show_preview(preview)
        self._show_step(Step.PREVIEW)
        self.preview_ready.emit(preview)

    def _preview_failed(self, error: BaseException) -> None:
        self._set_busy(False)
        self._show_message(_message_of(error))

    # --- step 4: import ------------------------------------------------------------------
    def start_import(self) -> None:
        """Write the checked patients on a worker (all or nothing), with progress."""
        preview = self._preview
        if preview is None or not self._can_import():
            return
        self._clear_message()
        self._cancel.clear()
        self.progress_bar.setRange(0, max(1, self._rows_to_import()))
        self.progress_bar.setValue(0)
        self.progress_label.setText("Importing…")
        self.cancel_button.setEnabled(True)
        self._set_busy(True)
        self._show_step(Step.IMPORTING)
        database, actor = self._context.db, self._context.actor
        skip_invalid = self.preview_page.only_valid_checkbox.isChecked()
        with_duplicates = self.preview_page.include_duplicates_checkbox.isChecked()
        cancel, relay = self._cancel, self._relay

        def progress(done: int, total: int) -> bool:
            relay.advanced.emit(done, total)
            return not cancel.is_set()

        def write() -> ImportResult:
            if cancel.is_set():
                raise ImportCancelledError()
            with database.session() as session:
                return import_patients(
                    session,
                    actor,
                    preview.plan,
                    skip_invalid=skip_invalid,
                    import_duplicates=with_duplicates,
                    progress=progress,
                )

        self._context.ops.run(
            write, self._imported, on_failure=self._import_refused, changes="patients"
        )

    def cancel_import(self) -> None:
        """Stop the running import; the database stays as it was before it started."""
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.progress_label.setText("Cancelling… nothing will be added.")

    def _show_progress(self, done: int, total: int) -> None:
        if self.step == Step.IMPORTING and not self._cancel.is_set():
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(done)
            self.progress_label.setText(f"Imported {done} of {total} patients…")

    def _imported(self, result: ImportResult) -> None:
        self._set_busy(False)
        lines = [
            f"Imported {result.imported} patient{'s' if result.imported != 1 else ''}; "
            "each has a new KetaDesk MRN and the status Screening."
        ]
        if result.skipped_invalid_rows:
            rows = ", ".join(str(n) for n in result.skipped_invalid_rows[:30])
            more = len(result.skipped_invalid_rows) - 30
            lines.append(
                f"Skipped {len(result.skipped_invalid_rows)} row(s) with problems: {rows}"
                + (f" and {more} more" if more > 0 else "")
                + "."
            )
        if result.skipped_duplicate_rows:
            rows = ", ".join(str(n) for n in result.skipped_duplicate_rows[:30])
            lines.append(
                f"Skipped {len(result.skipped_duplicate_rows)} possible duplicate(s) of patients "
                f"already in KetaDesk: rows {rows}."
            )
        elif result.duplicates_of_existing:
            lines.append(
                f"Imported {len(result.duplicates_of_existing)} row(s) that match patients "
                "already in KetaDesk, as you chose; check them in the roster."
            )
        if result.new_mrns:
            lines.append(f"New MRNs: {result.new_mrns[0]} to {result.new_mrns[-1]}.")
        self.summary_label.setText("\n\n".join(lines))
        self._show_step(Step.SUMMARY)
        self.patients_imported.emit(result)

    def _import_refused(self, error: BaseException) -> None:
        self._set_busy(False)
        message = _message_of(error)
        self.summary_label.setText(f"{message}\n\nThe database is as it was before the import.")
        self._show_step(Step.SUMMARY)
        self.import_failed.emit(message)


def _message_of(error: BaseException) -> str:
    if isinstance(error, UserFacingError):
        return error.message
    # Unexpected errors may carry patient data in their text: name the kind only.
    return f"Something went wrong and nothing was imported. (Technical: {type(error).__name__})"
