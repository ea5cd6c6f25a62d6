"""The protocol tab of the patient chart: edit, check, sign and look back at a patient's protocol.

The physician picks a template, adjusts every value, and sees as they type: the sig, the doses
in mg and mg/kg (from the chart's latest weight, with its date), the dosing calendar, and every
validation message in words next to its field. Errors block signing; each warning needs a tick.
Sign is enabled only for physicians, only when nothing blocks it, and only over a current signed
interaction review; otherwise a line says why. Signed versions are read-only: "Edit" starts a
new draft. The History tab lists versions with signer and time and shows a diff of any two.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.dosing_calendar import dosing_calendar, units_per_30_days
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.core.practice_limits import PracticeLimits
from ketadesk.core.protocol_templates import ProtocolTemplate
from ketadesk.core.protocol_validation import (
    ValidationMessage,
    validate_protocol,
    weight_basis_text,
)
from ketadesk.core.protocols import (
    INDICATION_LABELS,
    KIND_LABELS,
    ROUTE_LABELS,
    STEP_UP_LABELS,
    FrequencyKind,
    Protocol,
    WeightReading,
    ladder_doses_mg,
    maintenance_dose_mg,
    number_text,
    protocol_from_dict,
    protocol_to_dict,
    sig_text,
)
from ketadesk.storage import protocols as store
from ketadesk.ui.context import AppContext
from ketadesk.ui.ops import show_error
from ketadesk.ui.protocol_form_fields import (
    ERROR_STYLE,
    WARNING_STYLE,
    FieldForm,
    FieldSpec,
)

_FREQUENCY_CHOICES = (
    (FrequencyKind.SESSIONS_PER_WEEK.value, "Sessions per week"),
    (FrequencyKind.EVERY_N_DAYS.value, "Every N days"),
    (FrequencyKind.DAILY.value, "Daily"),
)
_LADDER_MODE = "_ladder_mode"
_MAINT_MODE = "_maintenance_frequency_mode"
_START = "_start_date"
_FORM_ITEM = "The form (not saved)"
_FORM_ID = -1


def _choices(labels: Any) -> tuple[tuple[str, str], ...]:
    return tuple((key.value, words[0].upper() + words[1:]) for key, words in labels.items())


def _frequency_specs(prefix: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(f"{prefix}.kind", "Frequency", "choice", choices=_FREQUENCY_CHOICES),
        FieldSpec(f"{prefix}.sessions_per_week", "Sessions per week", "optional_integer",
                  "a week"),
        FieldSpec(f"{prefix}.every_n_days", "Every", "optional_integer", "days"),
        FieldSpec(f"{prefix}.min_hours_between_doses", "Minimum interval", "number",
                  "hours"),
    )


SECTIONS: tuple[tuple[str, tuple[FieldSpec, ...]], ...] = (
    ("Protocol", (
        FieldSpec("indication", "Indication", "choice", choices=_choices(INDICATION_LABELS)),
        FieldSpec("indication_other", "Indication (other)", "text",
                  placeholder="describe the indication"),
        FieldSpec("kind", "Kind", "choice", choices=_choices(KIND_LABELS)),
        FieldSpec("route", "Route", "choice", choices=_choices(ROUTE_LABELS)),
        FieldSpec("route_other", "Route (other)", "text", placeholder="describe the route"),
        FieldSpec("formulation", "Formulation", "text",
                  placeholder="e.g. rapid-dissolve tablet, troche, nasal spray"),
        FieldSpec("unit_name", "Unit", "text", placeholder="troche, tablet, spray, mL"),
        FieldSpec("strength_mg_per_unit", "Strength", "number", "mg per unit"),
    )),
    ("Titration ladder", (
        FieldSpec("ladder.start_dose_mg", "Start dose", "number", "mg"),
        FieldSpec(_LADDER_MODE, "Steps", "choice",
                  choices=(("increment", "Fixed increment"), ("list", "Explicit list"))),
        FieldSpec("ladder.increment_mg", "Increment", "optional_number", "mg"),
        FieldSpec("ladder.step_doses_mg", "Doses after start", "number_list", "mg",
                  placeholder="e.g. 15, 20, 25"),
        FieldSpec("ladder.max_dose_mg", "Maximum dose", "number", "mg"),
        FieldSpec("ladder.step_up_rule", "Step up", "choice",
                  choices=_choices(STEP_UP_LABELS)),
        FieldSpec("ladder.sessions_per_step", "Sessions per step", "integer", "at each dose"),
    )),
    ("Schedule", (
        FieldSpec(_START, "First session", "date"),
        *_frequency_specs("frequency"),
        FieldSpec("frequency.time_of_day_notes", "Time of day", "text",
                  placeholder="e.g. in the evening, seated"),
        FieldSpec("duration_weeks", "Duration", "integer", "weeks"),
        FieldSpec("review_date", "Review / end date", "optional_date"),
    )),
    ("Maintenance", (
        FieldSpec("maintenance.dose_mg", "Maintenance dose", "optional_number", "mg",
                  placeholder="blank = last ladder dose"),
        FieldSpec(_MAINT_MODE, "Frequency", "choice",
                  choices=(("same", "Same as titration"), ("own", "Its own frequency"))),
        *(replace(s, label=f"  {s.label}") for s in _frequency_specs("maintenance.frequency")
          if not s.path.endswith(".kind")),
        FieldSpec("maintenance.notes", "Notes", "text"),
    )),
    ("Monitoring", (
        FieldSpec("monitoring.bp_before_each_dose", "Blood pressure before each dose", "flag"),
        FieldSpec("monitoring.hold_systolic_above_mmhg", "Hold if systolic above",
                  "optional_integer", "mmHg"),
        FieldSpec("monitoring.hold_diastolic_above_mmhg", "Hold if diastolic above",
                  "optional_integer", "mmHg"),
        FieldSpec("monitoring.bp_after_dose", "Blood pressure after each dose", "flag"),
        FieldSpec("monitoring.bp_after_minutes", "After-dose reading at", "optional_integer",
                  "minutes"),
        FieldSpec("monitoring.phq9_every_weeks", "PHQ-9 every", "optional_integer", "weeks"),
        FieldSpec("monitoring.gad7_every_weeks", "GAD-7 every", "optional_integer", "weeks"),
        FieldSpec("monitoring.check_in_every_days", "Check-in every", "optional_integer",
                  "days"),
        FieldSpec("monitoring.sitter_required", "Sitter required during and after each dose",
                  "flag"),
        FieldSpec("monitoring.no_driving_until_next_day", "No driving until the next day",
                  "flag"),
        FieldSpec("monitoring.no_alcohol", "No alcohol", "flag"),
        FieldSpec("monitoring.missed_dose_instructions", "Missed dose", "long_text",
                  placeholder="what the patient does after a missed dose"),
    )),
    ("Supply and notes", (
        FieldSpec("supply.refills", "Refills", "integer"),
        FieldSpec("supply.notes", "Supply notes", "text"),
        FieldSpec("notes", "Protocol notes", "long_text"),
    )),
)
# The maintenance frequency kind is chosen with the others, shown under its mode row.
_MAINT_KIND = FieldSpec("maintenance.frequency.kind", "  Frequency", "choice",
                        choices=_FREQUENCY_CHOICES)

# Messages about something without a row of its own are shown next to the nearest field.
_MESSAGE_HOME = {
    "limits.max_single_dose_mg": "ladder.max_dose_mg",
    "limits.max_single_dose_mg_per_kg": "ladder.max_dose_mg",
    "limits.max_daily_mg": "ladder.max_dose_mg",
    "limits.min_interval_hours": "frequency.min_hours_between_doses",
    "limits.max_sessions_per_week": "frequency.kind",
    "frequency": "frequency.kind",
    "maintenance.frequency": "maintenance.frequency.kind",
}


@dataclass(frozen=True)
class _Loaded:
    course: store.PatientProtocolInfo | None
    last_course: store.PatientProtocolInfo | None
    limits: PracticeLimits
    weight: WeightReading | None
    review: store.ReviewGate
    templates: tuple[ProtocolTemplate, ...]


def _today() -> date:
    return datetime.now().astimezone().date()


class ProtocolEditor(QWidget):
    """The protocol tab for one patient. Takes the AppContext and the patient's id.

    Signals carry the patient id: ``protocol_saved`` after a draft is saved (or a new draft is
    started from a signed version), ``protocol_signed`` after signing, ``protocol_discontinued``
    after discontinuing; ``protocol_loaded`` each time the tab has (re)read the database.
    """

    protocol_saved = Signal(int)
    protocol_signed = Signal(int)
    protocol_discontinued = Signal(int)
    protocol_loaded = Signal(int)

    def __init__(self, context: AppContext, patient_id: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.patient_id = patient_id
        self._loaded: _Loaded | None = None
        self._base: dict[str, Any] = {}
        self._template_name = ""
        self._editing: store.ProtocolVersionInfo | None = None  # draft in the form
        self._shown: store.ProtocolVersionInfo | None = None  # version in the form
        self._editable = False
        self._dirty = False
        self._messages: list[ValidationMessage] = []
        self._parse_problems: list[tuple[str, str]] = []
        self._protocol: Protocol | None = None
        self._start: date | None = None
        self._acknowledged: set[str] = set()
        self._updating_list = False
        self._edits = 0  # counts edits, so a reload never overwrites newer typing
        self._own_reloads = 0
        self._revalidate_timer = QTimer(self)
        self._revalidate_timer.setSingleShot(True)
        self._revalidate_timer.setInterval(120)
        self._build()
        self._connect_signals()
        self.reload()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addLayout(self._build_header())
        self.example_banner = QFrame()
        self.example_banner.setObjectName("exampleBanner")
        self.example_banner.setStyleSheet(
            "#exampleBanner { background: #fff4d6; border: 1px solid #e0b84c; border-radius: 4px; }"
        )
        banner = QHBoxLayout(self.example_banner)
        text = QLabel("These values are a template's <b>examples</b>. Review every value; "
                      "the protocol cannot be signed until you confirm them.")
        text.setWordWrap(True)
        banner.addWidget(text, 1)
        self.confirm_examples_button = QPushButton("I have reviewed every value")
        banner.addWidget(self.confirm_examples_button)
        self.example_banner.hide()
        outer.addWidget(self.example_banner)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_form())
        splitter.addWidget(self._build_side())
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([620, 640])
        outer.addWidget(splitter, 1)

    def _build_header(self) -> QVBoxLayout:
        box = QVBoxLayout()
        top = QHBoxLayout()
        self.status_label = QLabel("Loading…")
        self.status_label.setObjectName("protocolStatus")
        self.status_label.setStyleSheet("font-weight: 600;")
        self.status_label.setWordWrap(True)
        top.addWidget(self.status_label, 1)
        self.edit_button = QPushButton("Edit (new draft)")
        self.discontinue_button = QPushButton("Discontinue…")
        top.addWidget(self.edit_button)
        top.addWidget(self.discontinue_button)
        box.addLayout(top)
        second = QHBoxLayout()
        self.review_label = QLabel()
        self.review_label.setWordWrap(True)
        second.addWidget(self.review_label, 1)
        second.addWidget(QLabel("Template:"))
        self.template_combo = QComboBox()
        self.template_combo.setMinimumWidth(260)
        second.addWidget(self.template_combo)
        self.use_template_button = QPushButton("Use template")
        second.addWidget(self.use_template_button)
        box.addLayout(second)
        return box

    def _build_form(self) -> QWidget:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 6, 0)
        self.forms: list[FieldForm] = []
        for title, specs in SECTIONS:
            if title == "Maintenance":
                specs = (*specs[:2], _MAINT_KIND, *specs[2:])
            group = QGroupBox(title)
            group_layout = QVBoxLayout(group)
            group_layout.setContentsMargins(6, 4, 6, 6)
            form = FieldForm(specs)
            group_layout.addWidget(form)
            layout.addWidget(group)
            self.forms.append(form)
        layout.addStretch(1)
        scroll.setWidget(inner)
        scroll.setMinimumWidth(460)
        return scroll

    def _build_side(self) -> QWidget:
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self._build_check_tab(), "Check && sign")
        self.side_tabs.addTab(self._build_calendar_tab(), "Calendar")
        self.side_tabs.addTab(self._build_history_tab(), "History")
        return self.side_tabs

    def _build_check_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        dose_box = QGroupBox("Doses")
        dose_layout = QVBoxLayout(dose_box)
        self.dose_label = QLabel()
        self.dose_label.setWordWrap(True)
        self.dose_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weight_label = QLabel()
        self.weight_label.setWordWrap(True)
        self.supply_label = QLabel()
        self.supply_label.setWordWrap(True)
        dose_layout.addWidget(self.dose_label)
        dose_layout.addWidget(self.weight_label)
        dose_layout.addWidget(self.supply_label)
        layout.addWidget(dose_box)

        sig_box = QGroupBox("Sig (as the patient will read it)")
        sig_layout = QVBoxLayout(sig_box)
        self.sig_label = QLabel()
        self.sig_label.setWordWrap(True)
        self.sig_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sig_layout.addWidget(self.sig_label)
        layout.addWidget(sig_box)

        messages_box = QGroupBox("Checks (errors block signing; tick each warning to "
                                 "acknowledge it)")
        messages_layout = QVBoxLayout(messages_box)
        self.message_list = QListWidget()
        self.message_list.setWordWrap(True)
        self.message_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.message_list.setMinimumHeight(150)
        self.message_list.setSpacing(2)
        messages_layout.addWidget(self.message_list)
        layout.addWidget(messages_box, 1)

        self.sign_reason_label = QLabel()
        self.sign_reason_label.setObjectName("signReason")
        self.sign_reason_label.setWordWrap(True)
        layout.addWidget(self.sign_reason_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.save_button = QPushButton("Save draft")
        self.sign_button = QPushButton("Sign protocol")
        self.sign_button.setStyleSheet("font-weight: 600;")
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.sign_button)
        layout.addLayout(buttons)
        return page

    def _build_calendar_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.calendar_note = QLabel()
        self.calendar_note.setWordWrap(True)
        layout.addWidget(self.calendar_note)
        self.calendar_table = QTableWidget(0, 7)
        self.calendar_table.setHorizontalHeaderLabels(
            ["#", "Date", "Phase", "Dose (mg)", "mg/kg", "Units", "Monitoring due"])
        self.calendar_table.verticalHeader().hide()
        self.calendar_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.calendar_table.setAlternatingRowColors(True)
        header = self.calendar_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.calendar_table, 1)
        return page

    def _build_history_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Versions (newest last):"))
        self.history_list = QListWidget()
        self.history_list.setMaximumHeight(170)
        layout.addWidget(self.history_list)
        self.course_label = QLabel()
        self.course_label.setWordWrap(True)
        layout.addWidget(self.course_label)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Compare"))
        self.diff_from = QComboBox()
        self.diff_to = QComboBox()
        pick.addWidget(self.diff_from, 1)
        pick.addWidget(QLabel("with"))
        pick.addWidget(self.diff_to, 1)
        layout.addLayout(pick)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setReadOnly(True)
        layout.addWidget(self.diff_view, 1)
        return page

    def _connect_signals(self) -> None:
        for form in self.forms:
            form.changed.connect(self._on_edited)
        self._revalidate_timer.timeout.connect(self.revalidate)
        self.confirm_examples_button.clicked.connect(self.confirm_example_values)
        self.use_template_button.clicked.connect(self._use_selected_template)
        self.save_button.clicked.connect(self.save_draft)
        self.sign_button.clicked.connect(self.sign)
        self.edit_button.clicked.connect(self.start_new_draft)
        self.discontinue_button.clicked.connect(self._ask_discontinue)
        self.message_list.itemChanged.connect(self._on_message_ticked)
        self.diff_from.currentIndexChanged.connect(self._show_diff)
        self.diff_to.currentIndexChanged.connect(self._show_diff)
        self.context.data_changed.connect(self._on_data_changed)
        self.context.actor_changed.connect(self.reload)

    # ------------------------------------------------------------------ loading

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def can_edit(self) -> bool:
        return self.context.can(Permission.EDIT_CLINICAL)

    def reload(self) -> None:
        """Read the patient's protocols, limits, weight, review and templates again."""
        patient_id = self.patient_id

        def work() -> _Loaded:
            with self.context.db.session() as session:
                courses = store.patient_protocols(session, patient_id)
                active = next((c for c in courses if c.is_active), None)
                return _Loaded(
                    course=active,
                    last_course=courses[0] if courses else None,
                    limits=store.get_practice_limits(session),
                    weight=store.chart_weight(session, patient_id),
                    review=store.review_gate(session, patient_id),
                    templates=store.all_templates(session),
                )

        started_at = self._edits
        self._own_reloads += 1

        def done(loaded: _Loaded) -> None:
            self._own_reloads -= 1
            if self._dirty and self._edits != started_at:
                # The physician typed while this was loading: keep their edits.
                self._loaded = replace(loaded, course=self._loaded.course if self._loaded
                                       else loaded.course)
                self.revalidate()
                return
            self._show_loaded(loaded)

        self.context.ops.run(work, done, parent_widget=self)

    def _on_data_changed(self, what: str) -> None:
        if what == "protocols" and self._own_reloads:
            return  # this tab's own change; its reload is already on the way
        if what in ("settings", "reviews", "protocols", f"patient:{self.patient_id}"):
            if not self._dirty:
                self.reload()
            elif self._loaded is not None and what != "protocols":
                self._refresh_context_only()

    def _refresh_context_only(self) -> None:
        """Reload limits, weight and review without replacing the physician's unsaved edits."""
        patient_id = self.patient_id

        def work() -> tuple[PracticeLimits, WeightReading | None, store.ReviewGate]:
            with self.context.db.session() as session:
                return (store.get_practice_limits(session),
                        store.chart_weight(session, patient_id),
                        store.review_gate(session, patient_id))

        def done(result: tuple[PracticeLimits, WeightReading | None, store.ReviewGate]) -> None:
            if self._loaded is not None:
                limits, weight, review = result
                self._loaded = replace(self._loaded, limits=limits, weight=weight, review=review)
                self.revalidate()

        self.context.ops.run(work, done, parent_widget=self)

    def _show_loaded(self, loaded: _Loaded) -> None:
        self._loaded = loaded
        self._fill_templates(loaded.templates)
        course = loaded.course
        self._acknowledged = set()
        if course is not None and course.draft is not None and course.latest == course.draft:
            self._show_version(course.draft, editable=self.can_edit)
        elif course is not None and course.latest is not None:
            self._show_version(course.latest, editable=False)
        else:
            self._editing = None
            self._shown = None
            first = loaded.templates[0] if loaded.templates else None
            if first is not None:
                self._load_protocol(first.protocol, _today(), first.name)
            self._editable = self.can_edit
        self._dirty = False
        self._apply_state()
        self._fill_history()
        self.revalidate()
        self.protocol_loaded.emit(self.patient_id)

    def _fill_templates(self, templates: tuple[ProtocolTemplate, ...]) -> None:
        current = self.template_combo.currentText()
        self.template_combo.clear()
        for template in templates:
            words = template.name + (" (example values)" if template.example_values else "")
            self.template_combo.addItem(words, template.name)
        index = self.template_combo.findText(current)
        if index >= 0:
            self.template_combo.setCurrentIndex(index)

    def _show_version(self, version: store.ProtocolVersionInfo, *, editable: bool) -> None:
        self._shown = version
        self._editing = version if not version.is_signed else None
        self._load_protocol(version.protocol, version.start_date, version.template_name)
        self._editable = editable and not version.is_signed

    def _load_protocol(self, protocol: Protocol, start: date, template_name: str) -> None:
        data = protocol_to_dict(protocol)
        data[_START] = start.isoformat()
        data[_LADDER_MODE] = "list" if protocol.ladder.step_doses_mg else "increment"
        data[_MAINT_MODE] = "own" if protocol.maintenance.frequency is not None else "same"
        if protocol.maintenance.frequency is None:
            data["maintenance"]["frequency"] = dict(data["frequency"])
        self._base = data
        self._template_name = template_name
        index = self.template_combo.findData(template_name)
        if index >= 0:
            self.template_combo.setCurrentIndex(index)
        for form in self.forms:
            form.load(data)
        self._update_row_visibility()

    # ------------------------------------------------------------------ state

    def _apply_state(self) -> None:
        loaded = self._loaded
        course = loaded.course if loaded else None
        for form in self.forms:
            form.set_read_only(not self._editable)
        can_edit = self.can_edit
        self.use_template_button.setEnabled(self._editable)
        self.template_combo.setEnabled(self._editable)
        self.save_button.setEnabled(self._editable)
        shown_signed = self._shown is not None and self._shown.is_signed
        self.edit_button.setVisible(can_edit and course is not None and shown_signed)
        self.discontinue_button.setVisible(can_edit and course is not None)
        if loaded is not None:
            self.review_label.setText(self._review_words(loaded.review))
        self.status_label.setText(self._status_words())

    def _review_words(self, review: store.ReviewGate) -> str:
        if review.allows_signing:
            return "Interaction review: current and signed."
        if review.state == "stale":
            return "Interaction review: stale — review interactions again before signing."
        return "Interaction review: none signed yet."

    def _status_words(self) -> str:
        loaded = self._loaded
        if loaded is None:
            return "Loading…"
        prefix = "" if self.can_edit else "Read-only (only physicians change protocols). "
        course = loaded.course
        if course is None:
            last = loaded.last_course
            if last is not None and last.discontinued_at is not None:
                return (f"{prefix}No active protocol: the last one was discontinued on "
                        f"{last.discontinued_at:%Y-%m-%d} by {last.discontinued_by}. "
                        + ("Start a new one from a template." if self.can_edit else ""))
            if not self.can_edit:
                return f"{prefix}This patient has no protocol yet."
            return ("New protocol (not saved yet): choose a template, review every value, "
                    "save a draft, then sign.")
        shown = self._shown
        if shown is None:
            return prefix
        if shown.is_signed:
            return f"{prefix}{shown.label}. Signed versions cannot be changed."
        signed = course.latest_signed
        in_force = f" In force: version {signed.number}." if signed is not None else ""
        verb = "Editing" if self._editable else "Showing"
        return f"{prefix}{verb} {shown.label[0].lower()}{shown.label[1:]}.{in_force}"

    # ------------------------------------------------------------------ editing

    def _on_edited(self) -> None:
        self._edits += 1
        self._dirty = True
        self._update_row_visibility()
        self._revalidate_timer.start()

    def _form_value(self, path: str) -> Any:
        for form in self.forms:
            if path in form.paths():
                data: dict[str, Any] = {}
                form.read_into(data)
                node: Any = data
                for part in path.split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                return node
        return None

    def _update_row_visibility(self) -> None:
        ladder_list = self._form_value(_LADDER_MODE) == "list"
        own = self._form_value(_MAINT_MODE) == "own"
        for form in self.forms:
            paths = form.paths()
            if "ladder.increment_mg" in paths:
                form.set_row_visible("ladder.increment_mg", not ladder_list)
                form.set_row_visible("ladder.step_doses_mg", ladder_list)
            if "indication_other" in paths:
                form.set_row_visible("indication_other", self._form_value("indication") == "other")
                form.set_row_visible("route_other", self._form_value("route") == "other")
            for prefix, visible in (("frequency", True), ("maintenance.frequency", own)):
                if f"{prefix}.kind" not in paths:
                    continue
                kind = self._form_value(f"{prefix}.kind")
                form.set_row_visible(f"{prefix}.kind", visible)
                form.set_row_visible(f"{prefix}.sessions_per_week",
                                     visible and kind == FrequencyKind.SESSIONS_PER_WEEK.value)
                form.set_row_visible(f"{prefix}.every_n_days",
                                     visible and kind == FrequencyKind.EVERY_N_DAYS.value)
                form.set_row_visible(f"{prefix}.min_hours_between_doses", visible)

    def _read_form(self) -> tuple[Protocol | None, date | None, list[tuple[str, str]]]:
        """The protocol in the form, its start date, and (path, message) for unreadable fields."""
        data: dict[str, Any] = _deep_copy(self._base)
        problems: list[tuple[str, str]] = []
        for form in self.forms:
            problems.extend((p.path, p.message) for p in form.read_into(data))
        start_text = data.pop(_START, None)
        ladder_mode = data.pop(_LADDER_MODE, "increment")
        maint_mode = data.pop(_MAINT_MODE, "same")
        ladder = data["ladder"]
        if ladder_mode == "list":
            ladder["increment_mg"] = None
        else:
            ladder["step_doses_mg"] = []
        for group in (data["frequency"], data["maintenance"].get("frequency") or {}):
            kind = group.get("kind")
            if kind != FrequencyKind.SESSIONS_PER_WEEK.value:
                group["sessions_per_week"] = None
            if kind != FrequencyKind.EVERY_N_DAYS.value:
                group["every_n_days"] = None
        if maint_mode == "same":
            data["maintenance"]["frequency"] = None
        else:
            data["maintenance"]["frequency"].setdefault("time_of_day_notes", "")
        start: date | None = None
        try:
            start = date.fromisoformat(start_text) if start_text else None
        except ValueError:
            start = None
        if problems:
            return None, start, problems
        try:
            return protocol_from_dict(data), start, []
        except UserFacingError as error:
            return None, start, [("", error.message)]

    def revalidate(self) -> None:
        """Read the form, validate it against the practice limits and the chart weight, and
        refresh messages, sig, doses, calendar and the Sign button."""
        self._revalidate_timer.stop()
        loaded = self._loaded
        if loaded is None:
            return
        protocol, start, problems = self._read_form()
        self._protocol = protocol
        self._start = start
        self._parse_problems = problems
        today = _today()
        self._messages = (
            validate_protocol(protocol, loaded.limits, loaded.weight, today)
            if protocol is not None else []
        )
        self.example_banner.setVisible(protocol is not None and protocol.example_values)
        self.confirm_examples_button.setEnabled(self._editable)
        self._show_field_messages()
        self._fill_message_list()
        self._show_doses(protocol, loaded.weight, start, today)
        self._fill_calendar(protocol, loaded.weight, start)
        self._update_sign_state()
        if self.diff_to.currentData() == _FORM_ID:
            self._show_diff()

    def _show_field_messages(self) -> None:
        placed: list[tuple[str, str, str]] = [(p, "error", m) for p, m in self._parse_problems]
        for message in self._messages:
            path = message.field or ""
            path = _MESSAGE_HOME.get(path, path)
            if path == "ladder":
                ladder_list = self._form_value(_LADDER_MODE) == "list"
                path = "ladder.step_doses_mg" if ladder_list else "ladder.increment_mg"
            if path.startswith("maintenance.frequency") and \
                    self._form_value(_MAINT_MODE) != "own":
                path = path.replace("maintenance.frequency", "frequency")
            placed.append((path, message.level, message.message))
        for form in self.forms:
            form.show_messages(placed)

    def _fill_message_list(self) -> None:
        self._updating_list = True
        try:
            self.message_list.clear()
            for _path, text in self._parse_problems:
                self._add_message_item("error", "unreadable", text)
            for message in self._messages:
                self._add_message_item(message.level, message.code, message.message,
                                       message.source)
            if not self._parse_problems and not self._messages:
                item = QListWidgetItem("No problems found.")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.message_list.addItem(item)
        finally:
            self._updating_list = False

    def _add_message_item(self, level: str, code: str, text: str,
                          source: str | None = None) -> None:
        words = ("Error: " if level == "error" else "Warning: ") + text
        item = QListWidgetItem(words)
        item.setData(Qt.ItemDataRole.UserRole, code)
        if source:
            item.setToolTip(f"Source of this limit: {source}")
        if level == "error":
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(QBrush(QColor("#a4161a")))
        else:
            flags = Qt.ItemFlag.ItemIsEnabled
            if self._editable and self.context.can(Permission.SIGN):
                flags |= Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags)
            item.setForeground(QBrush(QColor("#7a4f00")))
            item.setCheckState(Qt.CheckState.Checked if code in self._acknowledged
                               else Qt.CheckState.Unchecked)
        self.message_list.addItem(item)

    def _on_message_ticked(self, item: QListWidgetItem) -> None:
        if self._updating_list:
            return
        code = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self._acknowledged.add(code)
        else:
            self._acknowledged.discard(code)
        self._updating_list = True
        try:  # one tick acknowledges every message with the same code
            for row in range(self.message_list.count()):
                other = self.message_list.item(row)
                if other.data(Qt.ItemDataRole.UserRole) == code and other is not item and \
                        other.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                    other.setCheckState(item.checkState())
        finally:
            self._updating_list = False
        self._update_sign_state()

    def acknowledge_all_warnings(self) -> None:
        """Tick every warning (the physician's acknowledgement)."""
        self._acknowledged |= {m.code for m in self._messages if m.level == "warning"}
        self._fill_message_list()
        self._update_sign_state()

    def _show_doses(self, protocol: Protocol | None, weight: WeightReading | None,
                    start: date | None, today: date) -> None:
        self.weight_label.setText(
            f"mg/kg uses the chart weight: {weight_basis_text(weight, today)}.")
        if protocol is None:
            self.dose_label.setText("Fix the fields marked in red to see the doses.")
            self.sig_label.setText("—")
            self.supply_label.setText("")
            return

        def both(mg: float) -> str:
            if weight is None or weight.kg <= 0:
                return f"{number_text(mg)} mg"
            return f"{number_text(mg)} mg ({round(mg / weight.kg, 2):.2f} mg/kg)"

        try:
            doses = ladder_doses_mg(protocol.ladder)
            lines = ["Ladder: " + " → ".join(both(d) for d in doses),
                     f"Maximum: {both(protocol.ladder.max_dose_mg)}",
                     f"Maintenance: {both(maintenance_dose_mg(protocol))}"]
            self.dose_label.setText("\n".join(lines))
            self.sig_label.setText(sig_text(protocol))
        except (ValueError, ZeroDivisionError, UserFacingError):
            self.dose_label.setText("The ladder cannot be worked out from these values.")
            self.sig_label.setText("—")
        try:
            units = units_per_30_days(protocol, start or today)
            refills = protocol.supply.refills
            self.supply_label.setText(
                f"Supply: {units} {_plural(protocol.unit_name or 'unit', units)} per 30 days "
                f"(from the calendar); {refills} refill{'s' if refills != 1 else ''}.")
        except (UserFacingError, ValueError, ZeroDivisionError):
            self.supply_label.setText("Supply: cannot be computed from these values.")

    def _fill_calendar(self, protocol: Protocol | None, weight: WeightReading | None,
                       start: date | None) -> None:
        self.calendar_table.setRowCount(0)
        if protocol is None or start is None:
            self.calendar_note.setText("The calendar needs readable values and a first-session "
                                       "date.")
            return
        try:
            sessions = dosing_calendar(protocol, start, weight.kg if weight else None)
        except (UserFacingError, ValueError, ZeroDivisionError) as error:
            text = error.message if isinstance(error, UserFacingError) else str(error)
            self.calendar_note.setText(f"No calendar: {text}")
            return
        mgkg = "mg/kg from " + (weight_basis_text(weight, _today()) if weight else
                                "no weight (not computed)")
        self.calendar_note.setText(
            f"{len(sessions)} sessions over {protocol.duration_weeks} weeks from "
            f"{start.isoformat()}; {mgkg}.")
        self.calendar_table.setRowCount(len(sessions))
        for row, s in enumerate(sessions):
            values = (str(s.number), s.date.isoformat(), s.phase, number_text(s.dose_mg),
                      f"{s.mg_per_kg:.2f}" if s.mg_per_kg is not None else "—",
                      number_text(s.units), ", ".join(s.events))
            for column, value in enumerate(values):
                cell = QTableWidgetItem(value)
                if column in (0, 3, 4, 5):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight |
                                          Qt.AlignmentFlag.AlignVCenter)
                self.calendar_table.setItem(row, column, cell)

    def sign_blockers(self) -> list[str]:
        """Sentences saying why Sign is disabled (empty when it is enabled)."""
        loaded = self._loaded
        if loaded is None:
            return ["Loading…"]
        reasons: list[str] = []
        if not self.context.can(Permission.SIGN):
            return ["Only physicians may sign a protocol."]
        if not self._editable:
            if self._shown is not None and self._shown.is_signed:
                return ["This version is signed; choose \"Edit (new draft)\" to change it."]
            return ["This protocol cannot be edited."]
        if self._parse_problems:
            reasons.append("Fix the fields marked in red.")
        check = store.SigningCheck(tuple(self._messages), loaded.weight, loaded.review,
                                   may_sign=True)
        reasons.extend(check.blockers(self._acknowledged))
        return reasons

    def _update_sign_state(self) -> None:
        reasons = self.sign_blockers()
        self.sign_button.setEnabled(not reasons)
        if reasons:
            self.sign_reason_label.setStyleSheet(ERROR_STYLE if self._editable
                                                 else WARNING_STYLE)
            self.sign_reason_label.setText("Cannot sign yet: " + " ".join(reasons))
        else:
            self.sign_reason_label.setStyleSheet("color: #1b5e20;")
            self.sign_reason_label.setText("Ready to sign: every check passed and the "
                                           "interaction review is current.")

    # ------------------------------------------------------------------ actions

    def confirm_example_values(self) -> None:
        """The physician confirms they reviewed a template's example values."""
        if not self._editable:
            return
        self._base["example_values"] = False
        self._edits += 1
        self._dirty = True
        self.revalidate()

    def use_template(self, name: str) -> None:
        """Fill the form with the named template (not saved until "Save draft")."""
        if self._loaded is None or not self._editable:
            return
        template = next((t for t in self._loaded.templates if t.name == name), None)
        if template is None:
            return
        _protocol, start, _problems = self._read_form()
        self._load_protocol(template.protocol, start or _today(), template.name)
        self._edits += 1
        self._dirty = True
        self.revalidate()

    def _use_selected_template(self) -> None:
        name = self.template_combo.currentData()
        if isinstance(name, str):
            self.use_template(name)

    def save_draft(self) -> None:
        protocol, start = self._readable_or_warn()
        if protocol is None or start is None:
            return
        patient_id, template_name, actor = self.patient_id, self._template_name, \
            self.context.actor

        def work() -> store.ProtocolVersionInfo:
            with self.context.db.session() as session:
                return store.save_draft(session, actor, patient_id, protocol, start,
                                        template_name=template_name)

        def done(_version: store.ProtocolVersionInfo) -> None:
            self._dirty = False
            self.protocol_saved.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def sign(self) -> None:
        """Save the form as the draft and sign it, in one step (refused with a dialog when a
        rule is not met; the storage layer checks every rule again)."""
        if self.sign_blockers():
            return
        protocol, start = self._readable_or_warn()
        if protocol is None or start is None:
            return
        patient_id, template_name, actor = self.patient_id, self._template_name, \
            self.context.actor
        acknowledged = set(self._acknowledged)
        today = _today()
        if not self._confirm_interruptive_flags():
            return

        def work() -> store.ProtocolVersionInfo:
            with self.context.db.session() as session:
                draft = store.save_draft(session, actor, patient_id, protocol, start,
                                         template_name=template_name)
                return store.sign_version(session, actor, draft.version_id,
                                          acknowledged_warnings=acknowledged, today=today)

        def done(_version: store.ProtocolVersionInfo) -> None:
            self._dirty = False
            self.protocol_signed.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def _confirm_interruptive_flags(self) -> bool:
        """The practice's interruptive alert: flags of the signed review at or above the
        threshold are shown in a modal that must be confirmed before signing."""
        from ketadesk.storage.interaction_reviews import interrupt_threshold, latest_signed_review
        from ketadesk.ui.interruptive_alert import confirm_interruptive_flags

        with self.context.db.session() as session:
            review = latest_signed_review(session, self.patient_id)
            threshold = interrupt_threshold(session)
        if review is None:
            return True  # signing is refused later, with the reason, by the review gate
        return confirm_interruptive_flags(self, review.flags, str(threshold))

    def start_new_draft(self) -> None:
        """Edit a signed protocol: a new draft copied from it (the signed version stays)."""
        patient_id, actor = self.patient_id, self.context.actor

        def work() -> store.ProtocolVersionInfo:
            with self.context.db.session() as session:
                return store.create_draft_from_previous(session, actor, patient_id,
                                                        start_date=None)

        def done(_version: store.ProtocolVersionInfo) -> None:
            self._dirty = False
            self.protocol_saved.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def _ask_discontinue(self) -> None:
        reason, ok = QInputDialog.getMultiLineText(
            self, "Discontinue protocol",
            "Why is this protocol being discontinued? (kept with the protocol)")
        if ok:
            self.discontinue(reason)

    def discontinue(self, reason: str) -> None:
        loaded = self._loaded
        if loaded is None or loaded.course is None:
            return
        protocol_id, patient_id, actor = loaded.course.protocol_id, self.patient_id, \
            self.context.actor

        def work() -> store.PatientProtocolInfo:
            with self.context.db.session() as session:
                return store.discontinue_protocol(session, actor, protocol_id, reason)

        def done(_course: store.PatientProtocolInfo) -> None:
            self._dirty = False
            self.protocol_discontinued.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def _readable_or_warn(self) -> tuple[Protocol | None, date | None]:
        self.revalidate()
        if self._protocol is None or self._start is None:
            show_error(self, UserFacingError("Some values cannot be read; fix the fields "
                                             "marked in red first."))
            return None, None
        return self._protocol, self._start

    # ------------------------------------------------------------------ history

    def _versions(self) -> list[store.ProtocolVersionInfo]:
        loaded = self._loaded
        course = (loaded.course or loaded.last_course) if loaded else None
        return list(course.versions) if course is not None else []

    def _fill_history(self) -> None:
        versions = self._versions()
        self.history_list.clear()
        for version in versions:
            item = QListWidgetItem(version.label)
            item.setToolTip(f"Content hash {version.content_hash[:16]}…; first session "
                            f"{version.start_date.isoformat()}")
            self.history_list.addItem(item)
        if not versions:
            self.history_list.addItem("No saved versions yet.")
        loaded = self._loaded
        course = (loaded.course or loaded.last_course) if loaded else None
        if course is not None and not course.is_active and course.discontinued_at:
            self.course_label.setText(
                f"Discontinued on {course.discontinued_at:%Y-%m-%d %H:%M} UTC by "
                f"{course.discontinued_by}. Reason: {course.discontinued_reason}")
        else:
            self.course_label.setText("")
        for combo in (self.diff_from, self.diff_to):
            combo.blockSignals(True)
            combo.clear()
            for version in versions:
                combo.addItem(f"Version {version.number} ({version.status})", version.version_id)
            combo.blockSignals(False)
        if versions and self._editable:
            self.diff_to.addItem(_FORM_ITEM, _FORM_ID)
        if len(versions) >= 2:
            self.diff_from.setCurrentIndex(len(versions) - 2)
            self.diff_to.setCurrentIndex(len(versions) - 1)
        elif versions and self.diff_to.count() > 1:
            self.diff_to.setCurrentIndex(self.diff_to.count() - 1)  # the unsaved form
        self._show_diff()

    def show_diff(self, from_number: int, to_number: int) -> str:
        """Select two versions by number and return the diff text shown."""
        for combo, number in ((self.diff_from, from_number), (self.diff_to, to_number)):
            for index in range(combo.count()):
                if combo.itemText(index).startswith(f"Version {number} "):
                    combo.setCurrentIndex(index)
        self._show_diff()
        return self.diff_view.toPlainText()

    def _show_diff(self) -> None:
        listed = self._versions()
        versions = {v.version_id: v for v in listed}
        a = versions.get(self.diff_from.currentData())
        b = versions.get(self.diff_to.currentData())
        to_words = f"version {b.number}" if b is not None else ""
        if self.diff_to.currentData() == _FORM_ID and listed and self._protocol is not None:
            loaded = self._loaded
            b = replace(listed[-1], protocol=self._protocol,
                        start_date=self._start or listed[-1].start_date,
                        weight=loaded.weight if loaded else None)
            to_words = "the form as it is now (not saved)"
        if a is None or b is None:
            self.diff_view.setPlainText("Save at least two versions to compare them.")
            return
        lines = store.version_diff(a, b)
        header = f"Changes from version {a.number} to {to_words}:"
        self.diff_view.setPlainText(
            header + "\n" + ("\n".join(f"• {line}" for line in lines) if lines
                             else "No differences."))


def _plural(unit: str, count: int) -> str:
    if count == 1 or unit.endswith("s") or unit.lower() == "ml":
        return unit
    return unit + "s"


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else
            list(v) if isinstance(v, list) else v for k, v in data.items()}
