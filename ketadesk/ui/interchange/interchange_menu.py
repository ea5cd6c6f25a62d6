"""The FHIR actions of the main window's Practice menu, kept here so the window gains two lines.

"Export this patient's record (FHIR)…" acts on the chart showing; "Export all records
(FHIR)…" on every patient; "Import records (FHIR)…" opens the import wizard (physicians).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction

from ketadesk.core.permissions import Permission

if TYPE_CHECKING:  # the dialogs load reportlab and fhir.resources: only when first opened
    from ketadesk.ui.interchange.fhir_export_dialog import FhirExportDialog
    from ketadesk.ui.interchange.fhir_import_dialog import FhirImportDialog


class InterchangeActions:
    """Adds the three actions to ``window.practice_menu`` and keeps them enabled correctly."""

    def __init__(self, window: Any) -> None:
        self.window = window
        menu = window.practice_menu
        menu.addSeparator()
        self.export_patient_action = QAction("Export this patient's &record (FHIR)…", window)
        self.export_all_action = QAction("Export all &records (FHIR)…", window)
        self.import_action = QAction("&Import records (FHIR)…", window)
        for action in (self.export_patient_action, self.export_all_action, self.import_action):
            menu.addAction(action)
        self._connect_signals()
        if window.context.is_attached:  # else the window's ``load`` calls it
            self.update_enabled()

    def _connect_signals(self) -> None:
        self.export_patient_action.triggered.connect(self.export_current_patient)
        self.export_all_action.triggered.connect(self.export_all)
        self.import_action.triggered.connect(self.import_records)
        self.window.tabs.currentChanged.connect(self.update_enabled)
        self.window.context.actor_changed.connect(self.update_enabled)

    def _current_patient_id(self) -> int | None:
        chart = self.window.current_chart()
        return None if chart is None else chart.patient_id

    def update_enabled(self) -> None:
        self.export_patient_action.setEnabled(self._current_patient_id() is not None)
        self.import_action.setEnabled(self.window.context.can(Permission.EDIT_CLINICAL))

    def export_current_patient(self) -> FhirExportDialog | None:
        patient_id = self._current_patient_id()
        if patient_id is None:
            return None
        from ketadesk.ui.interchange.fhir_export_dialog import FhirExportDialog

        dialog = FhirExportDialog(self.window.context, [patient_id], self.window,
                                  scope="The patient whose chart is showing")
        dialog.open()
        return dialog

    def export_all(self) -> FhirExportDialog:
        from ketadesk.ui.interchange.fhir_export_dialog import FhirExportDialog

        dialog = FhirExportDialog(self.window.context, None, self.window)
        dialog.open()
        return dialog

    def import_records(self) -> FhirImportDialog:
        from ketadesk.ui.interchange.fhir_import_dialog import FhirImportDialog

        dialog = FhirImportDialog(self.window.context, self.window)
        dialog.open()
        return dialog
