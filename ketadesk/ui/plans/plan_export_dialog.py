"""Export treatment-plan PDFs from the chart (one patient) or the roster (selected or all).

The dialog asks for a folder, a file-name pattern and an optional password (typed twice, never
stored), then renders the plans off the GUI thread through
``storage.plans.plan_export.export_plans`` (which uses ``reports/plan_batch`` worker processes)
behind a progress dialog with Cancel. At the end it shows what was written and what was skipped,
with the reason. Each written plan is audited by the service. A plan whose interaction review
is out of date or missing is refused for staff and asked about for physicians (audited).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.storage.plans.plan_export import (
    DEFAULT_FILE_PATTERN,
    FILE_PATTERN_FIELDS,
    ExportSummary,
    check_file_pattern,
    check_pdf_password,
    export_plans,
)
from ketadesk.storage.plans.plan_review_gate import StaleReviewPlan, stale_review_plans
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.ops import show_error
from ketadesk.ui.plans.plan_preview import open_in_system_viewer


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    advanced = Signal(int, int)


class PlanExportDialog(QDialog):
    """Export plans for ``patient_ids`` (``None`` = every patient with a signed active protocol).

    Use :meth:`for_patient` from the chart, :meth:`for_patients` for a roster selection and
    :meth:`for_all_signed` for the whole roster. ``plans_exported`` carries the
    :class:`~ketadesk.storage.plans.plan_export.ExportSummary` when a batch ends.
    """

    plans_exported = Signal(object)

    def __init__(
        self,
        context: AppContext,
        patient_ids: Sequence[int] | None,
        parent: QWidget | None = None,
        *,
        folder: Path | None = None,
        workers: int = 2,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self._patient_ids = list(patient_ids) if patient_ids is not None else None
        self._workers = workers
        self._cancel = threading.Event()
        self._relay = _ProgressRelay(self)
        self._progress: QProgressDialog | None = None
        self.last_summary: ExportSummary | None = None
        self.stale_question: QMessageBox | None = None
        self.setWindowTitle("Export treatment plans")
        self.setMinimumWidth(560)

        self.scope_label = QLabel(self._scope_text())
        self.folder_edit = QLineEdit(str(folder) if folder else "")
        self.folder_edit.setPlaceholderText("Choose the folder the PDFs are written to")
        self.browse_button = QPushButton("Browse…")
        self.pattern_edit = QLineEdit(DEFAULT_FILE_PATTERN)
        self.pattern_edit.setToolTip(
            "Fields: " + ", ".join("{" + name + "}" for name in FILE_PATTERN_FIELDS)
        )
        self.pattern_problem = QLabel("")
        self.pattern_problem.setStyleSheet("color: #a33a2c;")
        self.pattern_problem.setWordWrap(True)
        self.encrypt_check = QCheckBox("Protect each PDF with a password (AES-256)")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("Password (not stored)")
        self.repeat_edit = QLineEdit()
        self.repeat_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat_edit.setPlaceholderText("Repeat the password")
        self.overwrite_check = QCheckBox("Replace files that already exist")
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_list = QListWidget()
        self.details_list.setVisible(False)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setVisible(False)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Plans for", self.scope_label)
        form.addRow("Folder", folder_row)
        form.addRow("File names", self.pattern_edit)
        form.addRow("", self.pattern_problem)
        form.addRow("", self.encrypt_check)
        form.addRow("Password", self.password_edit)
        form.addRow("Repeat", self.repeat_edit)
        form.addRow("", self.overwrite_check)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.details_list)
        layout.addWidget(self.open_folder_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.buttons)
        self._set_password_enabled(False)
        self._update_pattern_problem()
        self._connect_signals()
        if not context.can(Permission.EXPORT_PLANS):
            self.export_button.setEnabled(False)
            self.summary_label.setText("You do not have permission to export treatment plans.")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def for_patient(
        cls, context: AppContext, patient_id: int, parent: QWidget | None = None
    ) -> PlanExportDialog:
        """One patient's plan, from the chart."""
        return cls(context, [patient_id], parent)

    @classmethod
    def for_patients(
        cls, context: AppContext, patient_ids: Sequence[int], parent: QWidget | None = None
    ) -> PlanExportDialog:
        """The patients selected on the roster (those without a signed protocol are skipped)."""
        return cls(context, patient_ids, parent)

    @classmethod
    def for_all_signed(
        cls, context: AppContext, parent: QWidget | None = None
    ) -> PlanExportDialog:
        """Every patient with a signed active protocol."""
        return cls(context, None, parent)

    # ------------------------------------------------------------------ wiring

    def _connect_signals(self) -> None:
        self.browse_button.clicked.connect(self._choose_folder)
        self.pattern_edit.textChanged.connect(self._update_pattern_problem)
        self.encrypt_check.toggled.connect(self._set_password_enabled)
        self.export_button.clicked.connect(self.start_export)
        self.close_button.clicked.connect(self.reject)
        self.open_folder_button.clicked.connect(self._open_folder)
        self._relay.advanced.connect(self._show_progress)

    def _scope_text(self) -> str:
        if self._patient_ids is None:
            return "All patients with a signed active protocol"
        count = len(self._patient_ids)
        return "This patient" if count == 1 else f"{count} selected patients"

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(
            self, "Folder for the plans", self.folder_edit.text()
        )
        if chosen:
            self.folder_edit.setText(chosen)

    def _set_password_enabled(self, enabled: bool) -> None:
        self.password_edit.setEnabled(enabled)
        self.repeat_edit.setEnabled(enabled)
        if not enabled:
            self.password_edit.clear()
            self.repeat_edit.clear()

    def _update_pattern_problem(self) -> None:
        try:
            check_file_pattern(self.pattern_edit.text())
        except UserFacingError as error:
            self.pattern_problem.setText(error.message)
        else:
            self.pattern_problem.setText("")

    def _open_folder(self) -> None:
        open_in_system_viewer(Path(self.folder_edit.text()))

    # ------------------------------------------------------------------ export

    def _checked_inputs(self) -> tuple[Path, str, str | None]:
        text = self.folder_edit.text().strip()
        if not text:
            raise UserFacingError("Choose the folder the plans are written to.")
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise UserFacingError("That folder does not exist; choose another one.")
        pattern = self.pattern_edit.text().strip()
        check_file_pattern(pattern)
        password: str | None = None
        if self.encrypt_check.isChecked():
            password = self.password_edit.text()
            if not password:
                raise UserFacingError("Enter a password for the PDFs, or untick the box.")
            if password != self.repeat_edit.text():
                raise UserFacingError("The two passwords do not match; type them again.")
            check_pdf_password(self._context.db, self._context.actor, password)
        return folder, pattern, password

    def start_export(self) -> None:
        """Check the inputs and the patients' interaction reviews, then export.

        A plan whose review is out of date or missing is refused for staff (with the reason)
        and, for a physician, asked about first (``stale_question``); going on is audited.
        """
        try:
            folder, pattern, password = self._checked_inputs()
        except UserFacingError as error:
            show_error(self, error)
            return
        # The password lives only in the job from here on; the fields are cleared at once.
        self.password_edit.clear()
        self.repeat_edit.clear()
        self._cancel.clear()  # from here on, Cancel stops the batch (even before it starts)
        db, ids = self._context.db, self._patient_ids

        def load() -> tuple[StaleReviewPlan, ...]:
            with db.session() as session:
                return stale_review_plans(session, ids)

        self.export_button.setEnabled(False)
        self._context.ops.run(
            load,
            lambda stale: self._decide_on_stale_reviews(stale, folder, pattern, password),
            on_failure=self._failed,
            changes=None,
            parent_widget=self,
        )

    def _decide_on_stale_reviews(
        self,
        stale: tuple[StaleReviewPlan, ...],
        folder: Path,
        pattern: str,
        password: str | None,
    ) -> None:
        if not stale:
            self._run_export(folder, pattern, password, allow_stale_review=False)
            return
        listed = "\n".join(f"• {item.mrn}: {item.problem}" for item in stale)
        only_these = self._patient_ids is not None and len(self._patient_ids) == len(stale)
        if not self._context.can(Permission.SIGN):
            if only_these:
                self.export_button.setEnabled(True)
                self.summary_label.setText(
                    "Not exported: the interaction review must be current before a plan is "
                    f"printed. A physician must run and sign it again.\n{listed}"
                )
                return
            self._run_export(folder, pattern, password, allow_stale_review=False)
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Interaction review out of date")
        box.setText(
            "The plan would carry an interaction review that no longer matches the chart:"
        )
        box.setInformativeText(
            f"{listed}\n\nRun and sign the review again first, or export anyway (your "
            "choice is recorded in the audit log)."
        )
        export_anyway = box.addButton("Export anyway", QMessageBox.ButtonRole.AcceptRole)
        skip = None if only_these else box.addButton(
            "Skip these patients", QMessageBox.ButtonRole.ActionRole
        )
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        self.stale_question = box

        def answered(button: QAbstractButton) -> None:
            self.stale_question = None
            if button is export_anyway:
                self._run_export(folder, pattern, password, allow_stale_review=True)
            elif skip is not None and button is skip:
                self._run_export(folder, pattern, password, allow_stale_review=False)
            else:
                self.export_button.setEnabled(True)
                self.summary_label.setText("Not exported.")

        box.buttonClicked.connect(answered)
        box.open()

    def _run_export(
        self, folder: Path, pattern: str, password: str | None, *, allow_stale_review: bool
    ) -> None:
        """Start the batch on a worker thread, behind a progress dialog."""
        self.export_button.setEnabled(False)
        self.summary_label.setText("Exporting…")
        self.details_list.clear()
        self.details_list.setVisible(False)
        progress = QProgressDialog("Preparing the plans…", "Cancel", 0, 0, self)
        progress.setWindowTitle("Exporting treatment plans")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(self._request_cancel)
        progress.show()
        self._progress = progress

        db, actor, ids = self._context.db, self._context.actor, self._patient_ids
        cancel, relay, workers = self._cancel, self._relay, self._workers
        overwrite = self.overwrite_check.isChecked()

        def work() -> ExportSummary:
            return export_plans(
                db, actor, ids, folder, pattern=pattern, password=password,
                workers=workers, cancel=cancel, progress=relay.advanced.emit,
                overwrite=overwrite, allow_stale_review=allow_stale_review,
            )

        self._context.ops.run(
            work, self._finished, on_failure=self._failed, changes=None,
            parent_widget=self,
        )

    def _request_cancel(self) -> None:
        self._cancel.set()
        if self._progress is not None:
            self._progress.setLabelText("Cancelling… plans already rendering will finish.")

    def cancel_export(self) -> None:
        """Stop the running batch (as the progress dialog's Cancel button does)."""
        self._request_cancel()

    def _show_progress(self, done: int, total: int) -> None:
        if self._progress is None:
            return
        self._progress.setMaximum(total)
        self._progress.setValue(done)
        if not self._cancel.is_set():
            self._progress.setLabelText(f"Exported {done} of {total} plans…")

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.canceled.disconnect(self._request_cancel)
            self._progress.close()
            self._progress.deleteLater()
            self._progress = None

    def _failed(self, error: BaseException) -> None:
        self._close_progress()
        self.export_button.setEnabled(True)
        self.summary_label.setText("No plans were exported.")
        show_error(self, error)

    def _finished(self, summary: ExportSummary) -> None:
        self._close_progress()
        self.last_summary = summary
        self.export_button.setEnabled(True)
        self.summary_label.setText(summary.describe())
        self.details_list.clear()
        for outcome in summary.outcomes:
            if outcome.is_written:
                name = outcome.path.name if outcome.path else ""
                self.details_list.addItem(f"Written: {name}")
            else:
                who = outcome.mrn or f"patient {outcome.patient_id}"
                self.details_list.addItem(f"{outcome.status.capitalize()}: {who} — "
                                          f"{outcome.reason}")
        self.details_list.setVisible(bool(summary.outcomes))
        self.open_folder_button.setVisible(bool(summary.written))
        self.plans_exported.emit(summary)
