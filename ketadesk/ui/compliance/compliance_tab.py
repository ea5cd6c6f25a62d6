"""The chart's "Prescriptions & compliance" tab.

Prescriptions (issued and voided, fills and refills left, days left of the six-month window),
PDMP look-ups, consents and telemedicine records, with the actions the logged-in role may take.
All reads and writes go through ``ketadesk.storage.compliance`` on the op runner; the widgets
hold frozen dataclasses only. Printouts are saved where the user chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.compliance_rules import last_fill_day, load_compliance_rules
from ketadesk.core.permissions import Permission
from ketadesk.core.private_files import write_private_bytes
from ketadesk.storage.compliance.compliance_input import require_patient
from ketadesk.storage.compliance.compliance_records import (
    ConsentRecordInfo,
    ConsentTemplateInfo,
    PdmpCheckInfo,
    PrescriptionInfo,
    TelemedicineInfo,
)
from ketadesk.storage.compliance.compliance_worklist import worklist_pdf
from ketadesk.storage.compliance.consent import (
    consent_templates,
    consents_of,
    ensure_consent_template,
    record_consent,
)
from ketadesk.storage.compliance.pdmp_checks import pdmp_checks_of, record_pdmp_check
from ketadesk.storage.compliance.prescriptions import (
    prescriptions_of,
    record_fill,
    void_prescription,
)
from ketadesk.storage.compliance.telemedicine import record_telemedicine, telemedicine_records
from ketadesk.ui.chart.chart_record_table import (
    fill_table,
    record_table,
    selected_entry_id,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.date_entry import date_text
from ketadesk.ui.common.qdate_conversion import local_time_text, local_today
from ketadesk.ui.compliance.compliance_dialogs import (
    BASIS_WORDS,
    METHOD_WORDS,
    ConsentDialog,
    FillDialog,
    PdmpDialog,
    ReasonDialog,
    TelemedicineDialog,
)
from ketadesk.ui.compliance.prescription_dialog import PrescriptionDialog

PHYSICIANS_ONLY = "Only physicians issue or void prescriptions."
CHOOSE_ONE = "Choose a prescription in the list first."


@dataclass(frozen=True)
class ComplianceView:
    """Everything the tab shows, read in one session."""

    patient_state: str
    prescriptions: tuple[PrescriptionInfo, ...]
    pdmp_checks: tuple[PdmpCheckInfo, ...]
    consents: tuple[ConsentRecordInfo, ...]
    templates: tuple[ConsentTemplateInfo, ...]
    telemedicine: tuple[TelemedicineInfo, ...]


def ask_pdf_path(parent: QWidget, suggested: str) -> Path | None:
    """Where to save a printout (the system's save dialog); None when cancelled."""
    chosen, _ = QFileDialog.getSaveFileName(parent, "Save the PDF", suggested, "PDF (*.pdf)")
    return Path(chosen) if chosen else None


def save_worklist_pdf(context: AppContext, target: Path, parent: QWidget) -> None:
    """Write the practice's compliance worklist (today) to ``target``, off the GUI thread."""
    actor = context.actor

    def work() -> str:
        with context.db.session() as s:
            data = worklist_pdf(s, actor, local_today())
        write_private_bytes(target, data)
        return str(target)

    context.ops.run(work, None, changes="worklist_saved", parent_widget=parent)


class ComplianceTab(QWidget):
    """Prescriptions & compliance for one patient. ``loaded`` fires after each (re)load;
    ``prescription_issued`` carries the new prescription's id, ``pdf_saved`` the file."""

    loaded = Signal()
    prescription_issued = Signal(int)
    pdf_saved = Signal(str)

    def __init__(self, context: AppContext, patient_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._context = context
        self._patient_id = patient_id
        self.view: ComplianceView | None = None
        self.open_dialog: QDialog | None = None
        #: Asks where to save a PDF; replaceable so tests can name the file.
        self.choose_pdf_path: Callable[[QWidget, str], Path | None] = ask_pdf_path
        self._build()
        self._connect_signals()
        self._apply_permissions()
        self.reload()

    # --- building --------------------------------------------------------------------------
    def _build(self) -> None:
        self.role_note = QLabel()
        self.role_note.setWordWrap(True)
        self.role_note.setAccessibleName("What your role may do here")
        self.role_note.setStyleSheet("color: #5c4200;")
        self.sections = QTabWidget()
        self.sections.setAccessibleName("Compliance sections")

        self.rx_table = record_table(
            ("Issued", "Product and strength", "Quantity", "Refills left", "Window",
             "Pharmacy", "Prescriber", "Status"), "Prescriptions")
        self.issue_button = QPushButton("Issue prescription…")
        self.void_button = QPushButton("Void…")
        self.fill_button = QPushButton("Record fill…")
        self.print_rx_button = QPushButton("Print prescription…")
        self.sections.addTab(self._section(self.rx_table, self.issue_button, self.void_button,
                                           self.fill_button, self.print_rx_button),
                             "Prescriptions")
        self.pdmp_table = record_table(("When", "State", "Recorded by", "Result or reason"),
                                       "PDMP look-ups")
        self.pdmp_button = QPushButton("Record PDMP look-up…")
        self.sections.addTab(self._section(self.pdmp_table, self.pdmp_button), "PDMP look-ups")
        self.consent_table = record_table(("Signed on", "Consent version", "How", "Recorded by"),
                                          "Consents")
        self.print_consent_button = QPushButton("Print consent form…")
        self.consent_button = QPushButton("Record signed consent…")
        self.sections.addTab(self._section(self.consent_table, self.print_consent_button,
                                           self.consent_button), "Consent")
        self.tele_table = record_table(
            ("Basis", "In-person evaluation", "Ends on", "Registration or exception",
             "Recorded by"), "Telemedicine records")
        self.tele_button = QPushButton("Record telemedicine basis…")
        self.sections.addTab(self._section(self.tele_table, self.tele_button), "Telemedicine")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.role_note)
        layout.addWidget(self.sections, 1)

    @staticmethod
    def _section(table: QTableWidget, *buttons: QPushButton) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(table, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        for button in buttons:
            row.addWidget(button)
        layout.addLayout(row)
        return page

    def _connect_signals(self) -> None:
        self.issue_button.clicked.connect(self.open_issue_dialog)
        self.void_button.clicked.connect(self.open_void_dialog)
        self.fill_button.clicked.connect(self.open_fill_dialog)
        self.print_rx_button.clicked.connect(self.print_prescription)
        self.pdmp_button.clicked.connect(self.open_pdmp_dialog)
        self.print_consent_button.clicked.connect(self.print_consent_form)
        self.consent_button.clicked.connect(self.open_consent_dialog)
        self.tele_button.clicked.connect(self.open_telemedicine_dialog)
        self._context.data_changed.connect(self._on_data_changed)
        self._context.actor_changed.connect(self._apply_permissions)

    def _apply_permissions(self) -> None:
        may_issue = self._context.can(Permission.ISSUE_PRESCRIPTION)
        for button in (self.issue_button, self.void_button):
            button.setEnabled(may_issue)
            button.setToolTip("" if may_issue else PHYSICIANS_ONLY)
        self.tele_button.setEnabled(self._context.can(Permission.EDIT_CLINICAL))
        self.tele_button.setToolTip("" if self.tele_button.isEnabled()
                                    else "Only physicians record the telemedicine basis.")
        for button, permission in (
            (self.fill_button, Permission.RECORD_DISPENSING),
            (self.print_rx_button, Permission.EXPORT_PLANS),
            (self.pdmp_button, Permission.RECORD_PDMP_CHECK),
            (self.print_consent_button, Permission.PRINT_CONSENT_FORM),
            (self.consent_button, Permission.RECORD_CONSENT),
        ):
            button.setEnabled(self._context.can(permission))
        self.role_note.setText(
            "" if may_issue else PHYSICIANS_ONLY + " You may record PDMP look-ups as the "
            "physician's designee, record consents and fills, and print."
        )
        self.role_note.setVisible(not may_issue)

    # --- loading ---------------------------------------------------------------------------
    def reload(self) -> None:
        context, pid, actor = self._context, self._patient_id, self._context.actor

        def load() -> ComplianceView:
            with context.db.session() as s:
                if context.can(Permission.PRINT_CONSENT_FORM):
                    ensure_consent_template(s, actor)  # the example text, once per practice
                return ComplianceView(
                    require_patient(s, pid).state, prescriptions_of(s, pid),
                    tuple(reversed(pdmp_checks_of(s, pid))), consents_of(s, pid),
                    consent_templates(s), tuple(reversed(telemedicine_records(s, pid))),
                )

        context.ops.run(load, self._show, parent_widget=self)

    def _on_data_changed(self, what: str) -> None:
        if what in (f"patient:{self._patient_id}", "settings", "protocols", "reviews"):
            self.reload()

    def _show(self, view: ComplianceView) -> None:
        self.view = view
        today = local_today()
        rules = load_compliance_rules()
        rows = []
        for rx in view.prescriptions:
            days_left = (last_fill_day(rules, rx.issued_on) - today).days
            window = (f"{days_left} days left" if days_left >= 0
                      else f"ended {-days_left} days ago")
            status = (f"Void: {rx.void_reason}" if rx.is_void
                      else f"Issued; {len(rx.fills)} fill(s)")
            rows.append((
                date_text(rx.issued_on), f"{rx.product}, {rx.strength_text}",
                f"{rx.quantity:g} {rx.unit_name}", f"{rx.refills_left} of {rx.refills}",
                "—" if rx.is_void else window, rx.pharmacy, rx.prescriber_full_name, status,
            ))
        fill_table(self.rx_table, rows, [rx.id for rx in view.prescriptions])
        header = self.rx_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        fill_table(self.pdmp_table, [
            (local_time_text(c.checked_at), c.state,
             c.checked_by + (" (designee)" if c.is_designee else ""),
             c.result if c.consulted else f"Not checked: {c.not_checked_reason}")
            for c in view.pdmp_checks], [c.id for c in view.pdmp_checks])
        fill_table(self.consent_table, [
            (date_text(c.signed_on), f"Version {c.template_version}",
             METHOD_WORDS.get(c.method, c.method), c.recorded_by)
            for c in view.consents], [c.id for c in view.consents])
        fill_table(self.tele_table, [
            (BASIS_WORDS[t.basis], date_text(t.in_person_evaluation_on), date_text(t.ends_on),
             t.description, t.recorded_by)
            for t in view.telemedicine], [t.id for t in view.telemedicine])
        self.loaded.emit()

    # --- actions ---------------------------------------------------------------------------
    def _save(self, work: Callable[[], object], after: Callable[[object], None] | None = None,
              ) -> None:
        self._context.ops.run(work, after, changes=f"patient:{self._patient_id}",
                              parent_widget=self)

    def _open(self, dialog: QDialog, on_accept: Callable[[], None]) -> None:
        self.open_dialog = dialog
        dialog.accepted.connect(on_accept)
        dialog.open()

    def _selected_prescription(self) -> PrescriptionInfo | None:
        chosen = selected_entry_id(self.rx_table)
        found = [rx for rx in (self.view.prescriptions if self.view else ()) if rx.id == chosen]
        if not found:
            self.sections.setCurrentIndex(0)
            self._say(CHOOSE_ONE)
        return found[0] if found else None

    def _say(self, message: str) -> None:
        self.role_note.setText(message)
        self.role_note.show()

    def open_issue_dialog(self) -> PrescriptionDialog:
        dialog = PrescriptionDialog(self._context, self._patient_id, self)
        dialog.prescription_issued.connect(self.prescription_issued)
        self.open_dialog = dialog
        dialog.open()
        return dialog

    def open_void_dialog(self) -> None:
        rx = self._selected_prescription()
        if rx is None:
            return
        dialog = ReasonDialog("Void this prescription?",
                              f"Void the prescription issued on {date_text(rx.issued_on)}? It "
                              "stays in the chart marked VOID, with your name and the reason.",
                              self)
        context, actor = self._context, self._context.actor

        def work() -> object:
            with context.db.session() as s:
                return void_prescription(s, actor, rx.id, dialog.reason)

        self._open(dialog, lambda: self._save(work))

    def open_fill_dialog(self) -> None:
        rx = self._selected_prescription()
        if rx is None:
            return
        dialog = FillDialog(local_today(), self)
        context, actor = self._context, self._context.actor

        def work() -> object:
            answer = dialog.answer
            assert answer is not None
            with context.db.session() as s:
                return record_fill(s, actor, rx.id, filled_on=answer.filled_on,
                                   today=local_today(), quantity=answer.quantity,
                                   pharmacy=answer.pharmacy)

        self._open(dialog, lambda: self._save(work))

    def open_pdmp_dialog(self) -> None:
        state = self.view.patient_state if self.view else ""
        dialog = PdmpDialog(state, not self._context.actor.is_physician, self)
        context, actor, pid = self._context, self._context.actor, self._patient_id

        def work() -> object:
            with context.db.session() as s:
                return record_pdmp_check(s, actor, pid, state=dialog.state,
                                         result=dialog.result or None,
                                         not_checked_reason=dialog.reason or None)

        self._open(dialog, lambda: self._save(work))

    def open_consent_dialog(self) -> None:
        dialog = ConsentDialog(self.view.templates if self.view else (), local_today(), self)
        context, actor, pid = self._context, self._context.actor, self._patient_id

        def work() -> object:
            assert dialog.signed_on is not None
            with context.db.session() as s:
                return record_consent(s, actor, pid, template_id=dialog.template_id,
                                      signed_on=dialog.signed_on, method=dialog.method,
                                      today=local_today())

        self._open(dialog, lambda: self._save(work))

    def open_telemedicine_dialog(self) -> None:
        dialog = TelemedicineDialog(self)
        context, actor, pid = self._context, self._context.actor, self._patient_id

        def work() -> object:
            a = dialog.answer
            assert a is not None
            with context.db.session() as s:
                return record_telemedicine(s, actor, pid, basis=a.basis, today=local_today(),
                                           in_person_evaluation_on=a.in_person_evaluation_on,
                                           ends_on=a.ends_on, description=a.description)

        self._open(dialog, lambda: self._save(work))

    # --- printouts -------------------------------------------------------------------------
    def print_prescription(self) -> None:
        rx = self._selected_prescription()
        if rx is None:
            return
        context, actor = self._context, self._context.actor

        def render() -> bytes:
            from ketadesk.storage.compliance.compliance_printouts import prescription_pdf

            with context.db.session() as s:
                return prescription_pdf(s, actor, rx.id)

        self._save_pdf(render, f"prescription-{rx.id}.pdf")

    def print_consent_form(self) -> None:
        context, actor, pid = self._context, self._context.actor, self._patient_id

        def render() -> bytes:
            from ketadesk.storage.compliance.compliance_printouts import consent_form_pdf

            with context.db.session() as s:
                return consent_form_pdf(s, actor, pid, today=local_today())

        self._save_pdf(render, "consent-form.pdf")

    def _save_pdf(self, render: Callable[[], bytes], suggested: str) -> None:
        target = self.choose_pdf_path(self, suggested)
        if target is None:
            return

        def work() -> str:
            write_private_bytes(target, render())
            return str(target)

        self._context.ops.run(work, self._pdf_written, parent_widget=self)

    def _pdf_written(self, path: str) -> None:
        self._say(f"Saved {Path(path).name}.")
        self.pdf_saved.emit(path)
