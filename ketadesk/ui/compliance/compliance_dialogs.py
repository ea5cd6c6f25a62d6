"""The small dialogs of the compliance tab: a PDMP look-up, a signed consent, voiding a
prescription, a fill, the telemedicine basis. Each only gathers and checks what was typed;
the tab saves it through the storage services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.compliance_rules import STATES
from ketadesk.core.errors import UserFacingError
from ketadesk.core.prescription_checks import TelemedicineBasis
from ketadesk.storage.compliance.compliance_records import ConsentTemplateInfo
from ketadesk.ui.common.date_entry import DateEntry
from ketadesk.ui.common.dialog_parts import lay_out_dialog

BASIS_WORDS = {
    TelemedicineBasis.IN_PERSON_EVALUATION: "In-person medical evaluation on a date",
    TelemedicineBasis.DEA_FLEXIBILITIES: "DEA telemedicine flexibilities (temporary rule)",
    TelemedicineBasis.REGISTRATION_OR_EXCEPTION: "A special registration or exception",
}
METHOD_WORDS = {"paper": "Signed on paper", "on_screen": "Signed on screen"}


def _read_date(entry: DateEntry) -> date | None:
    try:
        return entry.date_value()
    except UserFacingError as error:
        raise ValueError(f"{entry.label}: {error.message}") from None


class PdmpDialog(QDialog):
    """A look-up: the state's system, and either the result in the practice's own words or
    why it could not be done. ``state``, ``result`` and ``reason`` hold the answer."""

    def __init__(self, patient_state: str, is_designee: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a PDMP look-up")
        self.setMinimumWidth(520)
        self.state = self.result = self.reason = ""
        self.state_combo = QComboBox()
        self.state_combo.setAccessibleName("State's PDMP")
        for code in sorted(STATES):
            self.state_combo.addItem({"FL": "Florida (E-FORCSE)", "NJ": "New Jersey (NJPMP)"}
                                     .get(code, code), code)
        if patient_state in STATES:
            self.state_combo.setCurrentIndex(self.state_combo.findData(patient_state))
        self.looked_up = QRadioButton("Looked up — result in our own words (no PDMP data)")
        self.not_checked = QRadioButton("Could not be looked up — the reason")
        group = QButtonGroup(self)
        group.addButton(self.looked_up)
        group.addButton(self.not_checked)
        self.looked_up.setChecked(True)
        self.text = QLineEdit()
        self.text.setAccessibleName("Result or reason")
        self.text.setMaxLength(1000)
        self.text.setPlaceholderText("e.g. No other controlled prescriptions found")
        self.looked_up.toggled.connect(self._placeholder)
        form = QFormLayout()
        form.addRow("System:", self.state_combo)
        form.addRow("", self.looked_up)
        form.addRow("", self.not_checked)
        form.addRow("Words:", self.text)
        body = QVBoxLayout()
        if is_designee:
            note = QLabel("You record this look-up as the physician's designee.")
            note.setWordWrap(True)
            body.addWidget(note)
        body.addLayout(form)
        self.problem = lay_out_dialog(self, body, self._accept_if_complete)
        self.text.setFocus()

    def _placeholder(self, looked_up: bool) -> None:
        self.text.setPlaceholderText(
            "e.g. No other controlled prescriptions found" if looked_up
            else "e.g. E-FORCSE was down for maintenance"
        )

    def _accept_if_complete(self) -> None:
        words = self.text.text().strip()
        if not words:
            self.problem.say("Write the result in your own words, or why it could not be done."
                             if self.looked_up.isChecked() else
                             "Write why the PDMP could not be looked up.")
            self.text.setFocus()
            return
        self.state = str(self.state_combo.currentData())
        self.result, self.reason = (words, "") if self.looked_up.isChecked() else ("", words)
        self.accept()


class ConsentDialog(QDialog):
    """A signed consent: the template version, the day and how it was signed."""

    def __init__(self, templates: tuple[ConsentTemplateInfo, ...], today: date,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a signed consent")
        self.setMinimumWidth(480)
        self.template_id = 0
        self.signed_on: date | None = None
        self.method = ""
        self.template_combo = QComboBox()
        self.template_combo.setAccessibleName("Consent version")
        for t in reversed(templates):  # newest (current) first
            note = " (example text)" if t.is_example else ""
            self.template_combo.addItem(f"Version {t.version}: {t.title}{note}", t.id)
        self.signed = DateEntry("Signed on", is_past=True)
        self.signed.set_date(today)
        self.method_combo = QComboBox()
        self.method_combo.setAccessibleName("How it was signed")
        for code, words in METHOD_WORDS.items():
            self.method_combo.addItem(words, code)
        form = QFormLayout()
        form.addRow("Consent version:", self.template_combo)
        form.addRow("Signed on:", self.signed)
        form.addRow("How:", self.method_combo)
        self.problem = lay_out_dialog(self, form, self._accept_if_complete)

    def _accept_if_complete(self) -> None:
        if self.template_combo.count() == 0:
            self.problem.say("The practice has no consent text yet.")
            return
        try:
            day = _read_date(self.signed)
        except ValueError as error:
            self.problem.say(str(error))
            return
        if day is None:
            self.problem.say("Enter the day the patient signed.")
            return
        self.template_id = int(self.template_combo.currentData())
        self.signed_on, self.method = day, str(self.method_combo.currentData())
        self.accept()


class ReasonDialog(QDialog):
    """Asks for a required reason (voiding a prescription)."""

    def __init__(self, title: str, question: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(480)
        self.reason = ""
        label = QLabel(question)
        label.setWordWrap(True)
        self.text = QLineEdit()
        self.text.setAccessibleName("Reason")
        self.text.setMaxLength(2000)
        body = QVBoxLayout()
        body.addWidget(label)
        body.addWidget(self.text)
        self.problem = lay_out_dialog(self, body, self._accept_if_complete)

    def _accept_if_complete(self) -> None:
        if not self.text.text().strip():
            self.problem.say("Write the reason; it is kept with the prescription.")
            self.text.setFocus()
            return
        self.reason = self.text.text().strip()
        self.accept()


@dataclass(frozen=True)
class FillAnswer:
    filled_on: date
    quantity: float | None
    pharmacy: str


class FillDialog(QDialog):
    """A dispensing the pharmacy reported: the day, and the quantity if it differs."""

    def __init__(self, today: date, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a fill")
        self.answer: FillAnswer | None = None
        self.filled = DateEntry("Dispensed on", is_past=True)
        self.filled.set_date(today)
        self.quantity = QLineEdit()
        self.quantity.setAccessibleName("Quantity dispensed")
        self.quantity.setPlaceholderText("As prescribed")
        self.pharmacy = QLineEdit()
        self.pharmacy.setAccessibleName("Pharmacy")
        self.pharmacy.setPlaceholderText("As prescribed")
        form = QFormLayout()
        form.addRow("Dispensed on:", self.filled)
        form.addRow("Quantity:", self.quantity)
        form.addRow("Pharmacy:", self.pharmacy)
        self.problem = lay_out_dialog(self, form, self._accept_if_complete)

    def _accept_if_complete(self) -> None:
        try:
            day = _read_date(self.filled)
            text = self.quantity.text().strip()
            amount = float(text) if text else None
        except ValueError as error:
            message = str(error)
            self.problem.say(message if ":" in message
                             else "The quantity must be a number, for example 30.")
            return
        if day is None:
            self.problem.say("Enter the day it was dispensed.")
            return
        self.answer = FillAnswer(day, amount, self.pharmacy.text().strip())
        self.accept()


@dataclass(frozen=True)
class TelemedicineAnswer:
    basis: TelemedicineBasis
    in_person_evaluation_on: date | None
    ends_on: date | None
    description: str


class TelemedicineDialog(QDialog):
    """The basis for prescribing after remote visits, with its dates."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record the telemedicine basis")
        self.setMinimumWidth(520)
        self.answer: TelemedicineAnswer | None = None
        self.basis_combo = QComboBox()
        self.basis_combo.setAccessibleName("Basis")
        for basis, words in BASIS_WORDS.items():
            self.basis_combo.addItem(words, basis.value)
        self.evaluated = DateEntry("In-person evaluation on", is_past=True)
        self.ends = DateEntry("Ends on")
        self.description = QLineEdit()
        self.description.setAccessibleName("Registration or exception relied on")
        self.description.setMaxLength(500)
        form = QFormLayout()
        form.addRow("Basis:", self.basis_combo)
        form.addRow("In-person evaluation:", self.evaluated)
        form.addRow("Ends on:", self.ends)
        form.addRow("Registration or exception:", self.description)
        self.problem = lay_out_dialog(self, form, self._accept_if_complete)

    def _accept_if_complete(self) -> None:
        basis = TelemedicineBasis(str(self.basis_combo.currentData()))
        try:
            evaluated, ends = _read_date(self.evaluated), _read_date(self.ends)
        except ValueError as error:
            self.problem.say(str(error))
            return
        if basis is TelemedicineBasis.IN_PERSON_EVALUATION and evaluated is None:
            self.problem.say("Enter the date of the in-person medical evaluation.")
            return
        text = self.description.text().strip()
        if basis is TelemedicineBasis.REGISTRATION_OR_EXCEPTION and not text:
            self.problem.say("Name the registration or exception relied on.")
            return
        self.answer = TelemedicineAnswer(basis, evaluated, ends, text)
        self.accept()
