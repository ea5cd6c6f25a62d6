"""Export patients' records as FHIR R4 bundles (one JSON file per patient) into a folder.

Opened for the patient whose chart is showing, or for every patient from the Practice menu.
The export runs off the GUI thread through ``storage.interchange.fhir_export`` behind a
progress dialog with Cancel; a stopped export keeps the bundles already written (each one
complete) and says how many. The service audits the export with counts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.interchange.fhir_export import (
    FhirExportSummary,
    all_patient_ids,
    export_patient_bundles,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.ops import show_error


class _ProgressRelay(QObject):
    advanced = Signal(int, int)


class FhirExportDialog(QDialog):
    """Choose a folder and export ``patient_ids`` (``None`` = every patient)."""

    records_exported = Signal(object)  # FhirExportSummary

    def __init__(
        self, context: AppContext, patient_ids: Sequence[int] | None,
        parent: QWidget | None = None, *, scope: str = "",
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._patient_ids = list(patient_ids) if patient_ids is not None else None
        self._cancel = threading.Event()
        self._relay = _ProgressRelay(self)
        self._progress: QProgressDialog | None = None
        self.setWindowTitle("Export records (FHIR)")
        self.setMinimumWidth(560)
        everyone = self._patient_ids is None
        self.scope_label = QLabel(
            scope or ("Every patient in the practice" if everyone else
                      f"{len(self._patient_ids or ())} patient(s)")
        )
        explain = QLabel(
            "Each patient's record is written as one FHIR R4 (US Core) bundle, a JSON file "
            "named by the MRN, for another clinician or system to read. The files hold the "
            "whole chart: keep them as safe as the chart itself."
        )
        explain.setWordWrap(True)
        self.folder_edit = QLineEdit()
        self.folder_edit.setAccessibleName("Folder for the FHIR files")
        self.browse_button = QPushButton("Choose…")
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.browse_button)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.scope_label)
        layout.addWidget(explain)
        layout.addWidget(QLabel("Folder:"))
        layout.addLayout(row)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.browse_button.clicked.connect(self._choose_folder)
        self.export_button.clicked.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)
        self._relay.advanced.connect(self._show_progress)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the FHIR files")
        if folder:
            self.folder_edit.setText(folder)

    def start_export(self) -> None:
        text = self.folder_edit.text().strip()
        if not text:
            show_error(self, UserFacingError("Choose a folder for the FHIR files first."))
            return
        folder = Path(text).expanduser()
        if folder.exists() and not folder.is_dir():
            show_error(self, UserFacingError(f"{folder.name} is a file; choose a folder."))
            return
        self._cancel.clear()
        progress = QProgressDialog("Reading the charts…", "Cancel", 0, 0, self)
        progress.setWindowTitle("Exporting records (FHIR)")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(self.cancel_export)
        progress.show()
        self._progress = progress
        self.export_button.setEnabled(False)
        db, actor, ids = self.context.db, self.context.actor, self._patient_ids
        cancel, relay = self._cancel, self._relay

        def advanced(done: int, total: int) -> bool:
            relay.advanced.emit(done, total)
            return not cancel.is_set()

        def work() -> FhirExportSummary:
            with db.session() as session:
                chosen = ids if ids is not None else all_patient_ids(session)
                return export_patient_bundles(session, actor, chosen, folder, progress=advanced,
                                              workers=2)

        self.context.ops.run(work, self._finished, on_failure=self._failed)

    def cancel_export(self) -> None:
        """Stop after the bundle being written (as the progress dialog's Cancel does)."""
        self._cancel.set()
        if self._progress is not None:
            self._progress.setLabelText("Finishing the file being written, then stopping…")

    def _show_progress(self, done: int, total: int) -> None:
        progress = self._progress
        if progress is None:
            return
        # A modal progress dialog's setValue runs the event loop, which may deliver the end
        # of the export and close it: setValue comes last, on a reference held here.
        if not self._cancel.is_set():
            progress.setLabelText(f"Exported {done:,} of {total:,} patients…")
        progress.setMaximum(total)
        progress.setValue(done)

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.canceled.disconnect(self.cancel_export)
            self._progress.close()
            self._progress.deleteLater()
            self._progress = None
        self.export_button.setEnabled(True)

    def _failed(self, error: BaseException) -> None:
        self._close_progress()
        show_error(self, error)

    def _finished(self, summary: FhirExportSummary) -> None:
        self._close_progress()
        stopped = " Stopped before the end; every file written is complete." if (
            summary.stopped
        ) else ""
        self.result_label.setText(
            f"Exported {summary.patients:,} patient(s), {summary.resources:,} FHIR resources, "
            f"to {self.folder_edit.text().strip()}.{stopped}"
        )
        self.adjustSize()
        self.records_exported.emit(summary)
