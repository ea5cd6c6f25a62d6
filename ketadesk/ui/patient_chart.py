"""One patient's chart: demographics, medications, conditions and allergies, vitals, status.

Later features add their own tabs with ``add_tab(title, widget)``. Demographics are edited in
place and saved with Ctrl+S; list entries (medications, conditions, vitals) are saved as soon
as they are added, each in its own transaction and audit event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.demographics import (
    SEX_LABELS,
    PatientDemographics,
    counties_for_state,
    parse_date_input,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import (
    cm_to_in,
    kg_to_lb,
    parse_heart_rate,
    parse_height,
    parse_weight,
)
from ketadesk.core.permissions import Permission
from ketadesk.storage import patients as service
from ketadesk.storage.patient_import import external_id_for
from ketadesk.storage.patients import SOURCE_LABELS, STATUS_LABELS, PatientRecord
from ketadesk.ui.context import AppContext
from ketadesk.ui.forms import FieldSpec, FormFields

PHYSICIANS_ONLY = "Only physicians may do this."
STATES = (("", "Choose…"), ("FL", "Florida"), ("NJ", "New Jersey"))

DEMOGRAPHIC_FIELDS = (
    FieldSpec("first_name", "First name", max_length=100),
    FieldSpec("middle_name", "Middle name", max_length=100),
    FieldSpec("last_name", "Last name", max_length=100),
    FieldSpec("dob", "Date of birth", placeholder="MM/DD/YYYY or YYYY-MM-DD", max_length=20),
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


def _table(headers: tuple[str, ...], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.setAccessibleName(name)
    table.setAlternatingRowColors(True)
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]], ids: list[int]) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setData(Qt.ItemDataRole.UserRole, ids[r])
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)


def _selected_id(table: QTableWidget) -> int | None:
    item = table.item(table.currentRow(), 0) if table.currentRow() >= 0 else None
    return int(item.data(Qt.ItemDataRole.UserRole)) if item else None


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%m/%d/%Y %H:%M")


class PatientChart(QWidget):
    """The chart of ``patient_id``, or an empty form for a new patient when it is None."""

    patient_saved = Signal(int)

    def __init__(
        self, context: AppContext, patient_id: int | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.patient_id = patient_id
        self.record: PatientRecord | None = None
        self._dirty = False
        self.setWindowTitle("New patient" if patient_id is None else "Patient chart")

        self.title = QLabel("New patient")
        self.title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self.title.setAccessibleName("Patient")
        self.external_id_label = QLabel()
        self.external_id_label.setAccessibleName("Record number in the previous system")
        self.external_id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.external_id_label.setVisible(False)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020;")
        self.banner.setVisible(False)
        self.save_button = QPushButton("Save (Ctrl+S)")
        self.save_button.setAccessibleName("Save patient details")
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Chart sections")

        self.form = FormFields(DEMOGRAPHIC_FIELDS)
        self.contacts = FormFields(CONTACT_FIELDS)
        self.body = FormFields(BODY_FIELDS)
        self._build_demographics_tab()
        self._build_medications_tab()
        self._build_conditions_tab()
        self._build_vitals_tab()

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.external_id_label)
        top.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self._save_shortcut = QShortcut(QKeySequence.StandardKey.Save, self)
        self._connect_signals()
        self._apply_permissions()
        if patient_id is not None:
            self.reload()
        self._set_dirty(False)

    # --- construction --------------------------------------------------------------------
    def _build_demographics_tab(self) -> None:
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
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        self.tabs.addTab(scroll, "Demographics")

    def _build_medications_tab(self) -> None:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.med_table = _table(
            (
                "Medication (as typed)",
                "Dose",
                "Frequency",
                "Source",
                "Started",
                "Entered by",
                "Status",
            ),
            "Medications",
        )
        self.med_text = QLineEdit()
        self.med_text.setPlaceholderText(
            "Type the line as the patient said it, e.g. Ativan 1 mg at bedtime"
        )
        self.med_text.setAccessibleName("Medication as typed")
        self.med_dose = QLineEdit()
        self.med_dose.setPlaceholderText("Dose (optional)")
        self.med_dose.setAccessibleName("Dose")
        self.med_frequency = QLineEdit()
        self.med_frequency.setPlaceholderText("Frequency (optional)")
        self.med_frequency.setAccessibleName("Frequency")
        self.med_start = QLineEdit()
        self.med_start.setPlaceholderText("Started (optional date)")
        self.med_start.setAccessibleName("Start date")
        self.med_source = QComboBox()
        self.med_source.setAccessibleName("Source")
        for value, label in SOURCE_LABELS.items():
            self.med_source.addItem(label, value)
        self.med_add = QPushButton("Add medication")
        self.med_stop = QPushButton("Stop selected")
        self.med_verify = QPushButton("Mark verified")
        entry = QHBoxLayout()
        entry.addWidget(self.med_text, 3)
        entry.addWidget(self.med_dose, 1)
        entry.addWidget(self.med_frequency, 1)
        entry.addWidget(self.med_start, 1)
        entry.addWidget(self.med_source)
        entry.addWidget(self.med_add)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.med_stop)
        actions.addWidget(self.med_verify)
        layout.addWidget(self.med_table, 1)
        layout.addLayout(actions)
        layout.addLayout(entry)
        self.tabs.addTab(page, "Medications")

    def _build_conditions_tab(self) -> None:
        page = QWidget()
        layout = QHBoxLayout(page)
        conditions = QGroupBox("Conditions")
        c_layout = QVBoxLayout(conditions)
        self.condition_table = _table(("Condition", "ICD-10", "Status", "Entered by"), "Conditions")
        self.condition_text = QLineEdit()
        self.condition_text.setPlaceholderText("Condition (suggestions appear as you type)")
        self.condition_text.setAccessibleName("Condition")
        self.condition_completer = QCompleter([], self)
        self.condition_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.condition_completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.condition_text.setCompleter(self.condition_completer)
        self.condition_add = QPushButton("Add condition")
        self.condition_resolve = QPushButton("Mark resolved")
        row = QHBoxLayout()
        row.addWidget(self.condition_text, 1)
        row.addWidget(self.condition_add)
        row.addWidget(self.condition_resolve)
        c_layout.addWidget(self.condition_table, 1)
        c_layout.addLayout(row)
        allergies = QGroupBox("Allergies")
        a_layout = QVBoxLayout(allergies)
        self.allergy_table = _table(("Substance", "Reaction"), "Allergies")
        self.allergy_substance = QLineEdit()
        self.allergy_substance.setPlaceholderText("Substance")
        self.allergy_substance.setAccessibleName("Allergy substance")
        self.allergy_reaction = QLineEdit()
        self.allergy_reaction.setPlaceholderText("Reaction (optional)")
        self.allergy_reaction.setAccessibleName("Allergy reaction")
        self.allergy_add = QPushButton("Add allergy")
        self.allergy_remove = QPushButton("Remove")
        row = QHBoxLayout()
        row.addWidget(self.allergy_substance, 1)
        row.addWidget(self.allergy_reaction, 1)
        row.addWidget(self.allergy_add)
        row.addWidget(self.allergy_remove)
        a_layout.addWidget(self.allergy_table, 1)
        a_layout.addLayout(row)
        layout.addWidget(conditions, 3)
        layout.addWidget(allergies, 2)
        self.tabs.addTab(page, "Conditions and allergies")

    def _build_vitals_tab(self) -> None:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.vitals_table = _table(
            ("Measured", "BP (mmHg)", "Heart rate (/min)", "Weight", "Entered by"), "Vitals history"
        )
        self.vitals_when = QDateTimeEdit(QDateTime.currentDateTime())
        self.vitals_when.setCalendarPopup(True)
        self.vitals_when.setDisplayFormat("MM/dd/yyyy HH:mm")
        self.vitals_when.setAccessibleName("Measured at")
        self.vitals_systolic = QLineEdit()
        self.vitals_systolic.setPlaceholderText("Systolic")
        self.vitals_systolic.setAccessibleName("Systolic blood pressure")
        self.vitals_diastolic = QLineEdit()
        self.vitals_diastolic.setPlaceholderText("Diastolic")
        self.vitals_diastolic.setAccessibleName("Diastolic blood pressure")
        self.vitals_heart_rate = QLineEdit()
        self.vitals_heart_rate.setPlaceholderText("Heart rate")
        self.vitals_heart_rate.setAccessibleName("Heart rate")
        self.vitals_weight = QLineEdit()
        self.vitals_weight.setPlaceholderText("Weight")
        self.vitals_weight.setAccessibleName("Weight")
        self.vitals_weight_unit = QComboBox()
        self.vitals_weight_unit.addItems(["kg", "lb"])
        self.vitals_weight_unit.setAccessibleName("Weight unit")
        self.vitals_add = QPushButton("Add vitals")
        row = QHBoxLayout()
        for widget in (
            self.vitals_when,
            self.vitals_systolic,
            QLabel("/"),
            self.vitals_diastolic,
            self.vitals_heart_rate,
            self.vitals_weight,
            self.vitals_weight_unit,
            self.vitals_add,
        ):
            row.addWidget(widget)
        layout.addWidget(self.vitals_table, 1)
        layout.addLayout(row)
        self.tabs.addTab(page, "Vitals")

    def _connect_signals(self) -> None:
        for form in (self.form, self.contacts, self.body):
            form.edited.connect(lambda: self._set_dirty(True))
        state = self.form.editors["state"]
        assert isinstance(state, QComboBox)
        state.currentIndexChanged.connect(self._state_changed)
        self.save_button.clicked.connect(self.save)
        self._save_shortcut.activated.connect(self.save)
        self.status_button.clicked.connect(self._change_status)
        self.med_add.clicked.connect(self._add_medication)
        self.med_text.returnPressed.connect(self._add_medication)
        self.med_stop.clicked.connect(self._stop_medication)
        self.med_verify.clicked.connect(self._verify_medication)
        self.condition_add.clicked.connect(self._add_condition)
        self.condition_resolve.clicked.connect(self._resolve_condition)
        self.allergy_add.clicked.connect(self._add_allergy)
        self.allergy_remove.clicked.connect(self._remove_allergy)
        self.vitals_add.clicked.connect(self._add_vitals)
        self._context.data_changed.connect(self._on_data_changed)

    def _apply_permissions(self) -> None:
        can = self._context.can
        exists = self.patient_id is not None
        clinical = can(Permission.EDIT_CLINICAL)
        for widget in (
            self.status_button,
            self.status_combo,
            self.status_reason,
            self.condition_add,
            self.condition_resolve,
            self.condition_text,
            self.allergy_add,
            self.allergy_remove,
            self.allergy_substance,
            self.allergy_reaction,
            self.vitals_add,
        ):
            widget.setEnabled(clinical and exists)
            widget.setToolTip("" if clinical else PHYSICIANS_ONLY)
        if not exists:
            for widget in (self.status_button, self.condition_add, self.vitals_add):
                widget.setToolTip("Save the new patient first.")
        verify = can(Permission.VERIFY_MEDICATION)
        self.med_verify.setEnabled(verify and exists)
        self.med_verify.setToolTip("" if verify else PHYSICIANS_ONLY)
        index = self.med_source.findData("verified")
        item = self.med_source.model().item(index)  # type: ignore[attr-defined]
        item.setEnabled(verify)
        item.setToolTip("" if verify else PHYSICIANS_ONLY)
        reported = can(Permission.RECORD_REPORTED_MEDICATION)
        for widget in (self.med_add, self.med_stop, self.med_text):
            widget.setEnabled(reported and exists)
        editable = can(Permission.EDIT_DEMOGRAPHICS)
        for form in (self.form, self.contacts, self.body):
            form.set_read_only(not editable, "You may not change patient details.")
        self.save_button.setEnabled(editable)

    # --- tabs for later features ---------------------------------------------------------
    def add_tab(self, title: str, widget: QWidget) -> int:
        """Add a feature's tab (interaction review, protocol, check-ins); returns its index."""
        return self.tabs.addTab(widget, title)

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the chart again (audited as a view) and show it; unsaved edits are replaced."""
        assert self.patient_id is not None
        with self._context.db.session() as session:
            self.record = service.get_patient_record(session, self._context.actor, self.patient_id)
            suggestions = service.condition_suggestions(session)
            external_id = external_id_for(session, self.patient_id)
        # Kept from a roster import, for reference only (KetaDesk's MRN is the record number).
        self.external_id_label.setText(
            f"Previous system's ID: {external_id}" if external_id else ""
        )
        self.external_id_label.setVisible(bool(external_id))
        self.condition_completer.setModel(None)
        from PySide6.QtCore import QStringListModel

        self.condition_completer.setModel(QStringListModel(suggestions, self.condition_completer))
        self._show_record(self.record)

    def _show_record(self, record: PatientRecord) -> None:
        d = record.demographics
        self.title.setText(f"{d.last_name}, {d.first_name}  ·  {record.mrn}")
        self.setWindowTitle(f"{d.last_name}, {d.first_name} — {record.mrn}")
        values = {
            "first_name": d.first_name,
            "middle_name": d.middle_name,
            "last_name": d.last_name,
            "dob": d.dob.strftime("%m/%d/%Y") if d.dob else "",
            "sex": d.sex,
            "phone": d.phone,
            "email": d.email,
            "address_line1": d.address_line1,
            "address_line2": d.address_line2,
            "city": d.city,
            "state": d.state,
            "zip": d.zip,
        }
        self.form.set_values(values)
        self._state_changed()
        self.form.set_value("county", d.county)
        self.contacts.set_values(
            {
                "emergency_contact_name": d.emergency_contact_name,
                "emergency_contact_phone": d.emergency_contact_phone,
                "sitter_name": d.sitter_name,
                "sitter_phone": d.sitter_phone,
            }
        )
        unit = self.body.value("height_unit")
        height = record.height_cm
        self.body.set_values(
            {
                "height": ""
                if height is None
                else f"{height:.1f}"
                if unit == "cm"
                else f"{cm_to_in(height):.1f}",
                "weight": "",
            }
        )
        weight = record.latest_weight_kg
        self.body.editors["weight"].setToolTip(
            "" if weight is None else f"Last recorded: {weight:.1f} kg ({kg_to_lb(weight):.0f} lb)"
        )
        self.status_label.setText(STATUS_LABELS.get(record.status, record.status))
        self.form.show_problems({})
        self.contacts.show_problems({})
        self.body.show_problems({})
        _fill(
            self.med_table,
            [
                (
                    m.entered_text,
                    m.dose_text,
                    m.frequency_text,
                    SOURCE_LABELS[m.source] + (f" by {m.verified_by}" if m.verified_by else ""),
                    m.start_date.strftime("%m/%d/%Y") if m.start_date else "",
                    m.entered_by,
                    "Current" if m.is_active else "Stopped",
                )
                for m in record.medications
            ],
            [m.id for m in record.medications],
        )
        _fill(
            self.condition_table,
            [
                (
                    c.entered_text,
                    c.icd10 or "",
                    "Current" if c.is_active else "Resolved",
                    c.entered_by,
                )
                for c in record.conditions
            ],
            [c.id for c in record.conditions],
        )
        _fill(
            self.allergy_table,
            [(a.substance, a.reaction) for a in record.allergies],
            [a.id for a in record.allergies],
        )
        vitals = list(reversed(record.vitals))
        _fill(
            self.vitals_table,
            [
                (
                    _local(v.measured_at),
                    f"{v.systolic}/{v.diastolic}" if v.systolic is not None else "",
                    "" if v.heart_rate is None else str(v.heart_rate),
                    ""
                    if v.weight_kg is None
                    else f"{v.weight_kg:.1f} kg ({kg_to_lb(v.weight_kg):.0f} lb)",
                    v.entered_by,
                )
                for v in vitals
            ],
            [v.id for v in vitals],
        )
        self._set_dirty(False)

    def _state_changed(self) -> None:
        state = self.form.value("state")
        counties = counties_for_state(state)
        choices = [("", "Choose the county…" if counties else "Choose the state first")]
        self.form.set_choices("county", choices + [(c, c) for c in counties])

    def _on_data_changed(self, what: str) -> None:
        if self.patient_id is not None and what == f"patient:{self.patient_id}" and not self._dirty:
            self.reload()

    # --- dirty state and closing ---------------------------------------------------------
    @property
    def is_dirty(self) -> bool:
        return self._dirty

    def _set_dirty(self, dirty: bool) -> None:
        self._dirty = dirty
        base = self.windowTitle().removesuffix(" *")
        self.setWindowTitle(base + (" *" if dirty else ""))
        self.save_button.setText("Save (Ctrl+S)" + (" •" if dirty else ""))

    def ask_unsaved_changes(self) -> QMessageBox.StandardButton:
        """Ask what to do with unsaved changes: Save, Discard or Cancel (tests replace this)."""
        return QMessageBox.question(
            self,
            "Unsaved changes",
            "This patient's details have unsaved changes. Save them before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )

    def ask_confirm_minor(self) -> bool:
        """Ask to confirm recording a patient under 18 (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Patient under 18",
            "This date of birth makes the patient younger than 18. KetaDesk treatment is for "
            "adults. Record this patient anyway?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_create_duplicate(self, error: service.PossibleDuplicateError) -> bool:
        """Ask whether a possible duplicate is really a different person (tests replace this)."""
        answer = QMessageBox.question(
            self, "Possible duplicate", error.message + "\n\nSave as a different person?"
        )
        return answer == QMessageBox.StandardButton.Yes

    def may_close(self) -> bool:
        """True when the chart may close: no unsaved changes, or saved/discarded on request."""
        if not self._dirty:
            return True
        answer = self.ask_unsaved_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.may_close():
            event.accept()
        else:
            event.ignore()

    # --- saving demographics -------------------------------------------------------------
    def draft(self) -> tuple[PatientDemographics, dict[str, str]]:
        """The demographics as typed, plus problems that stop them being read (dob)."""
        values = {**self.form.values(), **self.contacts.values()}
        problems: dict[str, str] = {}
        dob: date | None = None
        if values["dob"].strip():
            try:
                dob = parse_date_input(values["dob"])
            except UserFacingError as error:
                problems["dob"] = error.message
        fields = {k: v for k, v in values.items() if k != "dob"}
        return PatientDemographics(dob=dob, **fields), problems

    def _measurements(self) -> tuple[float | None, float | None, dict[str, str]]:
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

    def save(self) -> bool:
        """Validate and save the demographics; on any problem keep everything typed."""
        draft, read_problems = self.draft()
        height_cm, weight_kg, body_problems = self._measurements()
        today = datetime.now(UTC).astimezone().date()
        found = validate_demographics(draft, today)
        problems = {p.field: (p.message, p.level == "confirm") for p in reversed(found)}
        problems.update({k: (v, False) for k, v in read_problems.items()})
        self.form.show_problems(problems)
        self.contacts.show_problems(problems)
        self.body.show_problems({k: (v, False) for k, v in body_problems.items()})
        errors = [k for k, (_, confirm) in problems.items() if not confirm]
        if errors or body_problems:
            count = len(errors) + len(body_problems)
            self._show_banner(
                f"{count} field{'s' if count != 1 else ''} need{'s' if count == 1 else ''} "
                "attention; nothing was saved yet. See the messages under the fields."
            )
            return False
        confirmed_minor = False
        if problems:  # only "confirm" problems remain: the patient is under 18
            if not self.ask_confirm_minor():
                self._show_banner("Not saved: the patient is under 18 and was not confirmed.")
                return False
            confirmed_minor = True
        allow_duplicate = False
        while True:
            try:
                record = self._store(
                    draft, today, confirmed_minor, allow_duplicate, height_cm, weight_kg
                )
            except service.PossibleDuplicateError as error:
                if allow_duplicate or not self.ask_create_duplicate(error):
                    self._show_banner(error.message)
                    return False
                allow_duplicate = True
                continue
            except UserFacingError as error:
                self._show_banner(error.message)
                return False
            break
        self.banner.setVisible(False)
        created = self.patient_id is None
        self.patient_id = record.id
        self.record = record
        self._show_record(record)
        self._apply_permissions()
        self.patient_saved.emit(record.id)
        self._context.data_changed.emit("patients" if created else f"patient:{record.id}")
        return True

    def _store(
        self,
        draft: PatientDemographics,
        today: date,
        confirmed_minor: bool,
        allow_duplicate: bool,
        height_cm: float | None,
        weight_kg: float | None,
    ) -> PatientRecord:
        actor = self._context.actor
        with self._context.db.session() as session:
            if self.patient_id is None:
                return service.create_patient(
                    session,
                    actor,
                    draft,
                    today=today,
                    confirmed_minor=confirmed_minor,
                    allow_duplicate=allow_duplicate,
                    height_cm=height_cm,
                    weight_kg=weight_kg,
                )
            record = service.update_demographics(
                session,
                actor,
                self.patient_id,
                draft,
                today=today,
                confirmed_minor=confirmed_minor,
                allow_duplicate=allow_duplicate,
                height_cm=height_cm,
            )
            if weight_kg is not None:
                service.add_vitals(
                    session,
                    actor,
                    self.patient_id,
                    measured_at=datetime.now(UTC),
                    weight_kg=weight_kg,
                )
                session.expire_all()
                record = service.get_patient_record(session, actor, self.patient_id)
            return record

    def _show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner.setVisible(True)

    # --- list entries (saved at once) ----------------------------------------------------
    def _run(self, action: object) -> bool:
        """Run ``action(session)`` in one transaction; show a problem in the banner."""
        assert self.patient_id is not None and callable(action)
        try:
            with self._context.db.session() as session:
                action(session)
        except UserFacingError as error:
            self._show_banner(error.message)
            return False
        self.banner.setVisible(False)
        dirty = self._dirty
        keep = {**self.form.values(), **self.contacts.values(), **self.body.values()}
        self.reload()
        if dirty:  # adding a medication must not throw away demographics being edited
            self.form.set_values(keep)
            self.contacts.set_values(keep)
            self.body.set_values(keep)
            self._set_dirty(True)
        self._context.data_changed.emit(f"patient:{self.patient_id}")
        return True

    def _add_medication(self) -> None:
        text = self.med_text.text()
        start: date | None = None
        if self.med_start.text().strip():
            try:
                start = parse_date_input(self.med_start.text())
            except UserFacingError as error:
                self._show_banner("Start date: " + error.message)
                return
        pid = self.patient_id
        source = str(self.med_source.currentData())
        if self._run(
            lambda s: service.add_medication(
                s,
                self._context.actor,
                pid,
                text,
                dose_text=self.med_dose.text(),
                frequency_text=self.med_frequency.text(),
                start_date=start,
                source=source,
            )
        ):
            for line in (self.med_text, self.med_dose, self.med_frequency, self.med_start):
                line.clear()

    def _stop_medication(self) -> None:
        med_id = _selected_id(self.med_table)
        if med_id is None:
            self._show_banner("Select the medication to stop.")
            return
        self._run(lambda s: service.stop_medication(s, self._context.actor, med_id))

    def _verify_medication(self) -> None:
        med_id = _selected_id(self.med_table)
        if med_id is None:
            self._show_banner("Select the medication to mark verified.")
            return
        self._run(lambda s: service.verify_medication(s, self._context.actor, med_id))

    def _add_condition(self) -> None:
        text = self.condition_text.text()
        pid = self.patient_id
        if self._run(lambda s: service.add_condition(s, self._context.actor, pid, text)):
            self.condition_text.clear()

    def _resolve_condition(self) -> None:
        cid = _selected_id(self.condition_table)
        if cid is None:
            self._show_banner("Select the condition to mark resolved.")
            return
        self._run(lambda s: service.resolve_condition(s, self._context.actor, cid))

    def _add_allergy(self) -> None:
        substance, reaction = self.allergy_substance.text(), self.allergy_reaction.text()
        pid = self.patient_id
        if self._run(
            lambda s: service.add_allergy(s, self._context.actor, pid, substance, reaction)
        ):
            self.allergy_substance.clear()
            self.allergy_reaction.clear()

    def _remove_allergy(self) -> None:
        aid = _selected_id(self.allergy_table)
        if aid is None:
            self._show_banner("Select the allergy to remove.")
            return
        self._run(lambda s: service.remove_allergy(s, self._context.actor, aid))

    def _add_vitals(self) -> None:
        try:
            systolic = diastolic = heart_rate = None
            if self.vitals_systolic.text().strip() or self.vitals_diastolic.text().strip():
                from ketadesk.core.measurements import parse_blood_pressure

                bp = parse_blood_pressure(self.vitals_systolic.text(), self.vitals_diastolic.text())
                systolic, diastolic = bp.systolic, bp.diastolic
            if self.vitals_heart_rate.text().strip():
                heart_rate = parse_heart_rate(self.vitals_heart_rate.text())
            weight = None
            if self.vitals_weight.text().strip():
                weight = parse_weight(
                    self.vitals_weight.text(), self.vitals_weight_unit.currentText()
                )
        except UserFacingError as error:
            self._show_banner(error.message)
            return
        when = self.vitals_when.dateTime().toPython()
        assert isinstance(when, datetime)
        measured_at = when.astimezone(UTC) if when.tzinfo else when.astimezone().astimezone(UTC)
        pid = self.patient_id
        if self._run(
            lambda s: service.add_vitals(
                s,
                self._context.actor,
                pid,
                measured_at=measured_at,
                systolic=systolic,
                diastolic=diastolic,
                heart_rate=heart_rate,
                weight_kg=weight,
            )
        ):
            for line in (
                self.vitals_systolic,
                self.vitals_diastolic,
                self.vitals_heart_rate,
                self.vitals_weight,
            ):
                line.clear()

    def _change_status(self) -> None:
        new_status = str(self.status_combo.currentData())
        reason = self.status_reason.text()
        pid = self.patient_id
        if self._run(
            lambda s: service.change_status(s, self._context.actor, pid, new_status, reason)
        ):
            self.status_reason.clear()
