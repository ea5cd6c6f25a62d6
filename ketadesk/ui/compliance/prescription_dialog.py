"""The checklist before issuing a prescription, and the prescription's details.

Every check shows its level (OK, warning, error), its message and its source. An error keeps
the Issue button disabled and the reason is written under it; each warning needs its own
acknowledgement tick, and the ticked codes go to the storage service, which audits them.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.prescription_checks import CheckLevel, CheckResult
from ketadesk.core.protocols import number_text, sig_text
from ketadesk.storage.compliance.prescriptions import (
    PHARMACY_MAX,
    PrescriptionChecklist,
    PrescriptionInfo,
    PrescriptionRefused,
    PrescriptionRequest,
    issue_prescription_recording_refusal,
    prescription_checklist_for,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel
from ketadesk.ui.common.ops import show_error

LEVEL_WORDS = {CheckLevel.OK: "OK", CheckLevel.WARNING: "Warning", CheckLevel.ERROR: "Error"}
LEVEL_COLOURS = {CheckLevel.OK: "#1b5e20", CheckLevel.WARNING: "#8a5a00",
                 CheckLevel.ERROR: "#a40000"}
MAX_REFILLS_FIELD = 12  # above the federal limit on purpose: the refill check explains it


def quantity_value(text: str) -> float:
    """The quantity typed, in units; ValueError with a sentence when it is not usable."""
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        raise ValueError("Enter the quantity to dispense.")
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError("The quantity must be a number, for example 30.") from None
    if value <= 0:
        raise ValueError("The quantity must be above 0.")
    if value > 10000:
        raise ValueError("The quantity looks too large; check it.")
    return value


class PrescriptionDialog(QDialog):
    """Issue a prescription for one patient from their signed protocol (physicians only)."""

    prescription_issued = Signal(int)
    checklist_shown = Signal()

    def __init__(self, context: AppContext, patient_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._context = context
        self._patient_id = patient_id
        self.checklist: PrescriptionChecklist | None = None
        self.warning_ticks: dict[str, QCheckBox] = {}
        self.issued: PrescriptionInfo | None = None
        self._loading = False
        self._again = False
        self.setWindowTitle("Issue a prescription")
        self.setMinimumWidth(640)
        self._build()
        self._connect_signals()
        self.refresh_checklist()

    def _build(self) -> None:
        self.protocol_label = QLabel("Reading the signed protocol…")
        self.protocol_label.setWordWrap(True)
        self.protocol_label.setAccessibleName("Product, strength and directions")
        self.quantity = QLineEdit()
        self.quantity.setAccessibleName("Quantity")
        self.quantity.setPlaceholderText("Number of units, e.g. 30")
        self.refills = QSpinBox()
        self.refills.setAccessibleName("Refills")
        self.refills.setRange(0, MAX_REFILLS_FIELD)
        self.pharmacy = QLineEdit()
        self.pharmacy.setAccessibleName("Pharmacy")
        self.pharmacy.setMaxLength(PHARMACY_MAX)
        self.pharmacy.setPlaceholderText("Compounding pharmacy (optional)")
        self.remote = QCheckBox("The visit for this prescription was remote (telemedicine)")
        self.misuse = QCheckBox("I suspect misuse, abuse or diversion (New Jersey look-up rule)")
        form = QFormLayout()
        form.addRow("Quantity:", self.quantity)
        form.addRow("Refills:", self.refills)
        form.addRow("Pharmacy:", self.pharmacy)
        form.addRow("", self.remote)
        form.addRow("", self.misuse)
        details = QGroupBox("Prescription")
        details_layout = QVBoxLayout(details)
        details_layout.addWidget(self.protocol_label)
        details_layout.addLayout(form)
        self.field_problem = ProblemLabel()
        details_layout.addWidget(self.field_problem)

        self.checks_box = QWidget()
        self.checks_layout = QVBoxLayout(self.checks_box)
        self.checks_layout.setContentsMargins(4, 4, 4, 4)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.checks_box)
        checks = QGroupBox("Checks before issuing")
        QVBoxLayout(checks).addWidget(scroll)

        self.blocked_label = QLabel()
        self.blocked_label.setWordWrap(True)
        self.blocked_label.setAccessibleName("Why the prescription cannot be issued yet")
        self.blocked_label.setStyleSheet("color: #a40000; font-weight: bold;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.issue_button = QPushButton("Issue prescription")
        self.issue_button.setEnabled(False)
        self.buttons.addButton(self.issue_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.issue_button.setAutoDefault(False)
        layout = QVBoxLayout(self)
        layout.addWidget(details)
        layout.addWidget(checks, 1)
        layout.addWidget(self.blocked_label)
        layout.addWidget(self.buttons)
        self._recheck = QTimer(self)
        self._recheck.setSingleShot(True)
        self._recheck.setInterval(250)

    def _connect_signals(self) -> None:
        self.buttons.rejected.connect(self.reject)
        self.issue_button.clicked.connect(self.issue)
        self.quantity.textChanged.connect(self._inputs_changed)
        self.refills.valueChanged.connect(self._inputs_changed)
        self.remote.toggled.connect(self._inputs_changed)
        self.misuse.toggled.connect(self._inputs_changed)
        self._recheck.timeout.connect(self.refresh_checklist)

    # --- inputs ----------------------------------------------------------------------------
    def _inputs_changed(self) -> None:
        self._update_issue_button()
        self._recheck.start()

    def request(self) -> PrescriptionRequest:
        """What the form asks for; ValueError with a sentence when the quantity is unusable."""
        return PrescriptionRequest(
            quantity=quantity_value(self.quantity.text()), refills=self.refills.value(),
            pharmacy=self.pharmacy.text(), remote=self.remote.isChecked(),
            misuse_concern=self.misuse.isChecked(),
        )

    def _checking_request(self) -> PrescriptionRequest:
        try:
            return self.request()
        except ValueError:  # the checklist still runs; the quantity problem shows by the field
            return PrescriptionRequest(quantity=1, refills=self.refills.value(),
                                       remote=self.remote.isChecked(),
                                       misuse_concern=self.misuse.isChecked())

    # --- the checklist ---------------------------------------------------------------------
    def refresh_checklist(self) -> None:
        if self._loading:
            self._again = True
            return
        self._loading = True
        context, actor, pid = self._context, self._context.actor, self._patient_id
        request = self._checking_request()

        def load() -> PrescriptionChecklist:
            with context.db.session() as s:
                return prescription_checklist_for(s, actor, pid, request)

        context.ops.run(load, self._show_checklist, on_failure=self._failed, parent_widget=self)

    def _failed(self, error: BaseException) -> None:
        self._loading = False
        if not self.isVisible():
            # Closed while its checklist was read (nothing was issued): no box for a screen
            # that is gone, which would also be parented to a dialog being deleted.
            return
        show_error(self, error)

    def _show_checklist(self, checklist: PrescriptionChecklist) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.refresh_checklist()
            return
        ticked = {code for code, box in self.warning_ticks.items() if box.isChecked()}
        self.checklist = checklist
        self.warning_ticks = {}
        while self.checks_layout.count():
            item = self.checks_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for result in checklist.results:
            self.checks_layout.addWidget(self._check_row(result, ticked))
        self.checks_layout.addStretch(1)
        version = checklist.protocol
        if version is None:
            self.protocol_label.setText("No signed protocol: sign the protocol first.")
        else:
            p = version.protocol
            self.protocol_label.setText(
                f"<b>{escape(p.formulation, quote=False)}</b>, "
                f"{number_text(p.strength_mg_per_unit)} mg per {escape(p.unit_name, quote=False)}"
                f"<br>Directions: {escape(sig_text(p), quote=False)}"
            )
        self._update_issue_button()
        self.checklist_shown.emit()

    def _check_row(self, result: CheckResult, ticked: set[str]) -> QWidget:
        row = QFrame()
        row.setObjectName(f"check_{result.code}")
        row.setAccessibleName(f"Check: {result.code}")
        layout = QVBoxLayout(row)
        layout.setContentsMargins(2, 2, 2, 6)
        colour = LEVEL_COLOURS[result.level]
        text = QLabel(
            f"<span style='color:{colour}; font-weight:bold'>{LEVEL_WORDS[result.level]}</span>"
            f" — {escape(result.message, quote=False)}"
        )
        text.setWordWrap(True)
        layout.addWidget(text)
        if result.source:
            source = QLabel(f"Source: {result.source}")
            source.setTextFormat(Qt.TextFormat.PlainText)
            source.setWordWrap(True)
            source.setStyleSheet("color: #555; font-size: 9pt;")
            layout.addWidget(source)
        if result.level is CheckLevel.WARNING:
            box = QCheckBox("I have read this warning and prescribe anyway")
            box.setAccessibleName(f"Acknowledge warning: {result.code}")
            box.setChecked(str(result.code) in ticked)
            box.toggled.connect(self._update_issue_button)
            self.warning_ticks[str(result.code)] = box
            layout.addWidget(box)
        return row

    def blocking_reasons(self) -> list[str]:
        """Why Issue is disabled, in words (empty when it may be pressed)."""
        reasons: list[str] = []
        try:
            self.request()
        except ValueError as problem:
            reasons.append(str(problem))
        if self.checklist is None:
            return [*reasons, "The checks are still being read."]
        reasons += [f"{LEVEL_WORDS[r.level]}: {r.message}" for r in self.checklist.errors]
        unticked = [code for code, box in self.warning_ticks.items() if not box.isChecked()]
        if unticked:
            reasons.append(f"Acknowledge each warning ({', '.join(unticked)}) to go on.")
        return reasons

    def _update_issue_button(self) -> None:
        try:
            self.request()
            self.field_problem.hide()
        except ValueError as problem:
            if self.quantity.text().strip() or self.checklist is not None:
                self.field_problem.say(str(problem))
        reasons = self.blocking_reasons()
        self.issue_button.setEnabled(not reasons)
        self.blocked_label.setText(
            "" if not reasons else "Cannot issue yet:\n• " + "\n• ".join(reasons)
        )
        self.blocked_label.setVisible(bool(reasons))

    # --- issuing ---------------------------------------------------------------------------
    def issue(self) -> None:
        if self.blocking_reasons():
            return
        context, actor, pid = self._context, self._context.actor, self._patient_id
        request = self.request()
        acknowledged = [code for code, box in self.warning_ticks.items() if box.isChecked()]
        self.issue_button.setEnabled(False)

        def work() -> PrescriptionInfo:
            return issue_prescription_recording_refusal(
                context.db.session, actor, pid, request, acknowledged=acknowledged
            )

        context.ops.run(work, self._issued, on_failure=self._refused,
                        changes=f"patient:{pid}", parent_widget=self)

    def _issued(self, info: PrescriptionInfo) -> None:
        self.issued = info
        self.prescription_issued.emit(info.id)
        self.accept()

    def _refused(self, error: BaseException) -> None:
        if isinstance(error, PrescriptionRefused):  # the chart changed since the checks ran
            self.blocked_label.setText("Not issued:\n• " + "\n• ".join(error.reasons))
            self.blocked_label.show()
            self.refresh_checklist()
            return
        self._update_issue_button()
        show_error(self, error)
