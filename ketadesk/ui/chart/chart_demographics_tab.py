"""The chart's Demographics tab: patient details, contacts, height and weight, and status."""

from __future__ import annotations

from datetime import date

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.demographics import (
    RELATIONSHIP_SUGGESTIONS,
    SEX_LABELS,
    PatientDemographics,
    counties_for_state,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import cm_to_in, kg_to_lb, parse_height, parse_weight
from ketadesk.models.patients import STATUS_LABELS
from ketadesk.storage.patients.patient_records import (
    PatientRecord,
)
from ketadesk.ui.common.date_entry import DateEntry, date_text
from ketadesk.ui.common.forms import FieldSpec, FormFields

STATES = (("", "Choose…"), ("FL", "Florida"), ("NJ", "New Jersey"))

DEMOGRAPHIC_FIELDS = (
    FieldSpec("first_name", "First name", max_length=100),
    FieldSpec("middle_name", "Middle name", max_length=100),
    FieldSpec("last_name", "Last name", max_length=100),
    FieldSpec("dob", "Date of birth", date_kind="past"),
    FieldSpec("sex", "Sex", choices=(("", "Choose…"), *SEX_LABELS.items())),
    FieldSpec("phone", "Phone", placeholder="(305) 555-0142", max_length=40),
    FieldSpec("email", "Email", placeholder="name@example.com", max_length=254),
    FieldSpec("address_line1", "Address"),
    FieldSpec("address_line2", "Address line 2"),
    FieldSpec("city", "City", max_length=100),
    FieldSpec("state", "State", choices=STATES),
    FieldSpec("county", "County", choices=(("", "Choose the state first"),)),
    FieldSpec("zip", "ZIP code", max_length=10),
)
CONTACT_FIELDS = (
    FieldSpec("emergency_contact_name", "Emergency contact"),
    # A suggestion list, and any other word may be typed ("godmother", "case worker").
    FieldSpec(
        "emergency_contact_relationship",
        "Relationship to the patient",
        choices=(("", ""), *((word, word) for word in RELATIONSHIP_SUGGESTIONS)),
        editable_combo=True,
    ),
    FieldSpec("emergency_contact_phone", "Emergency contact phone", max_length=40),
    FieldSpec("sitter_name", "At-home sitter"),
    FieldSpec("sitter_phone", "Sitter phone", max_length=40),
)
BODY_FIELDS = (
    FieldSpec("height", "Height", placeholder="e.g. 170 or 5'7\"", max_length=20),
    FieldSpec("height_unit", "Height unit", choices=(("cm", "cm"), ("in", "in"))),
    FieldSpec("weight", "Weight (new entry)", placeholder="e.g. 72.5", max_length=20),
    FieldSpec("weight_unit", "Weight unit", choices=(("kg", "kg"), ("lb", "lb"))),
)


class DemographicsTab(QScrollArea):
    """The three forms and the status box; reads what was typed, shows a saved record."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = FormFields(DEMOGRAPHIC_FIELDS)
        self.contacts = FormFields(CONTACT_FIELDS)
        self.body = FormFields(BODY_FIELDS)
        page = QWidget()
        columns = QHBoxLayout(page)
        left = QGroupBox("Patient")
        QVBoxLayout(left).addWidget(self.form)
        right = QVBoxLayout()
        contacts = QGroupBox("Emergency contact and at-home sitter")
        QVBoxLayout(contacts).addWidget(self.contacts)
        body = QGroupBox("Height and weight")
        QVBoxLayout(body).addWidget(self.body)
        self.status_box = QGroupBox("Treatment status")
        status_form = QFormLayout(self.status_box)
        self.status_label = QLabel("Screening (new patients start here)")
        self.status_combo = QComboBox()
        self.status_combo.setAccessibleName("New status")
        for value, label in STATUS_LABELS.items():
            self.status_combo.addItem(label, value)
        self.status_reason = QLineEdit()
        self.status_reason.setAccessibleName("Reason for the status change")
        self.status_reason.setPlaceholderText("Reason (required)")
        self.status_button = QPushButton("Change status")
        status_form.addRow("Current:", self.status_label)
        status_form.addRow("New status:", self.status_combo)
        status_form.addRow("Reason:", self.status_reason)
        status_form.addRow("", self.status_button)
        right.addWidget(contacts)
        right.addWidget(body)
        right.addWidget(self.status_box)
        right.addStretch(1)
        columns.addWidget(left, 3)
        columns.addLayout(right, 2)
        self.setWidgetResizable(True)
        self.setWidget(page)

    def state_changed(self) -> None:
        """Offer the counties of the chosen state."""
        state = self.form.value("state")
        counties = counties_for_state(state)
        choices = [("", "Choose the county…" if counties else "Choose the state first")]
        self.form.set_choices("county", choices + [(c, c) for c in counties])

    def typed_values(self) -> dict[str, str]:
        """Every field of the three forms as typed (to keep edits across a reload)."""
        return {**self.form.values(), **self.contacts.values(), **self.body.values()}

    def restore_values(self, values: dict[str, str]) -> None:
        self.form.set_values(values)
        self.contacts.set_values(values)
        self.body.set_values(values)

    def draft(self) -> tuple[PatientDemographics, dict[str, str]]:
        """The demographics as typed, plus problems that stop them being read (dob)."""
        values = {**self.form.values(), **self.contacts.values()}
        problems: dict[str, str] = {}
        dob: date | None = None
        dob_entry = self.form.editors["dob"]
        assert isinstance(dob_entry, DateEntry)
        try:
            dob = dob_entry.date_value()
        except UserFacingError as error:
            problems["dob"] = error.message
        fields = {k: v for k, v in values.items() if k != "dob"}
        return PatientDemographics(dob=dob, **fields), problems

    def measurements(self) -> tuple[float | None, float | None, dict[str, str]]:
        """Height (cm) and new weight (kg) as typed, plus problems reading them."""
        problems: dict[str, str] = {}
        height_cm = weight_kg = None
        if self.body.value("height").strip():
            try:
                height_cm = parse_height(self.body.value("height"), self.body.value("height_unit"))
            except UserFacingError as error:
                problems["height"] = error.message
        if self.body.value("weight").strip():
            try:
                weight_kg = parse_weight(self.body.value("weight"), self.body.value("weight_unit"))
            except UserFacingError as error:
                problems["weight"] = error.message
        return height_cm, weight_kg, problems

    def record_values(self, record: PatientRecord) -> dict[str, str]:
        """The text each compared field shows for ``record`` (height in the unit chosen now)."""
        d = record.demographics
        unit = self.body.value("height_unit")
        height = record.height_cm
        return {
            "first_name": d.first_name,
            "middle_name": d.middle_name,
            "last_name": d.last_name,
            "dob": date_text(d.dob),
            "sex": d.sex,
            "phone": d.phone,
            "email": d.email,
            "address_line1": d.address_line1,
            "address_line2": d.address_line2,
            "city": d.city,
            "state": d.state,
            "county": d.county,
            "zip": d.zip,
            "emergency_contact_name": d.emergency_contact_name,
            "emergency_contact_relationship": d.emergency_contact_relationship,
            "emergency_contact_phone": d.emergency_contact_phone,
            "sitter_name": d.sitter_name,
            "sitter_phone": d.sitter_phone,
            "height": ""
            if height is None
            else f"{height:.1f}"
            if unit == "cm"
            else f"{cm_to_in(height):.1f}",
        }

    def compared_fields(self) -> list[tuple[str, str]]:
        """(name, label) of every stored field, in form order: what two saves can differ in
        (the new weight is an entry of its own, and the units are this screen's choice)."""
        height = f"Height ({self.body.value('height_unit')})"
        return [
            *((f.name, f.label) for f in DEMOGRAPHIC_FIELDS + CONTACT_FIELDS),
            ("height", height),
        ]

    def shown_words(self) -> dict[str, dict[str, str]]:
        """The words shown for stored codes of choice fields ("FL" -> "Florida")."""
        return {
            f.name: {value: label for value, label in f.choices if value}
            for f in DEMOGRAPHIC_FIELDS
            if f.choices and f.name != "county"
        }

    def compared_values(self) -> dict[str, str]:
        """What is typed now in each compared field."""
        typed = self.typed_values()
        return {name: typed.get(name, "") for name, _ in self.compared_fields()}

    def show_record(self, record: PatientRecord) -> None:
        """Replace the forms' contents with the saved ``record`` and clear any problems."""
        values = self.record_values(record)
        county = values.pop("county")
        self.form.set_values(values)
        self.state_changed()
        self.form.set_value("county", county)
        self.contacts.set_values(values)
        self.body.set_values({"height": values["height"], "weight": ""})
        weight = record.latest_weight_kg
        self.body.editors["weight"].setToolTip(
            "" if weight is None else f"Last recorded: {weight:.1f} kg ({kg_to_lb(weight):.0f} lb)"
        )
        self.status_label.setText(STATUS_LABELS.get(record.status, record.status))
        # The choice starts on the current status, so what is shown is never a change by itself.
        self.status_combo.setCurrentIndex(max(0, self.status_combo.findData(record.status)))
        self.form.show_problems({})
        self.contacts.show_problems({})
        self.body.show_problems({})
