"""The protocol form: every value of a protocol as rows in titled sections.

The sections are a field description (``SECTIONS``), built into ``FieldForm``s. The form loads a
protocol and its first-session date, reads them back (with the fields that cannot be read),
hides rows that do not apply (the other ladder mode, "other" descriptions, the frequency rows
of another kind), and shows validation messages next to the field they concern.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QScrollArea, QVBoxLayout, QWidget

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_serialization import protocol_from_dict, protocol_to_dict
from ketadesk.core.protocol_validation import ValidationMessage
from ketadesk.core.protocols import (
    INDICATION_LABELS,
    KIND_LABELS,
    ROUTE_LABELS,
    STEP_UP_LABELS,
    FrequencyKind,
    Protocol,
)
from ketadesk.ui.protocol.protocol_form_fields import FieldForm, FieldSpec, get_path

_FREQUENCY_CHOICES = (
    (FrequencyKind.SESSIONS_PER_WEEK.value, "Sessions per week"),
    (FrequencyKind.EVERY_N_DAYS.value, "Every N days"),
    (FrequencyKind.DAILY.value, "Daily"),
)
_LADDER_MODE = "_ladder_mode"
_MAINT_MODE = "_maintenance_frequency_mode"
_START = "_start_date"


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


class ProtocolForm(QScrollArea):
    """The sections of protocol fields in a scroll area. ``changed`` fires on any edit, after
    the rows that apply have been shown."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base: dict[str, Any] = {}
        self.setWidgetResizable(True)
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
        self.setWidget(inner)
        self.setMinimumWidth(460)
        self._connect_signals()

    def _connect_signals(self) -> None:
        for form in self.forms:
            form.changed.connect(self._on_edited)

    def _on_edited(self) -> None:
        self._update_row_visibility()
        self.changed.emit()

    # ------------------------------------------------------------------ values

    def load(self, protocol: Protocol, start: date) -> None:
        """Show ``protocol`` and its first-session date (no ``changed`` signal)."""
        data = protocol_to_dict(protocol)
        data[_START] = start.isoformat()
        data[_LADDER_MODE] = "list" if protocol.ladder.step_doses_mg else "increment"
        data[_MAINT_MODE] = "own" if protocol.maintenance.frequency is not None else "same"
        if protocol.maintenance.frequency is None:
            data["maintenance"]["frequency"] = dict(data["frequency"])
        self._base = data
        for form in self.forms:
            form.load(data)
        self._update_row_visibility()

    def mark_example_values_reviewed(self) -> None:
        """The physician reviewed a template's example values: the protocol read back from
        now on no longer carries the example flag."""
        self._base["example_values"] = False

    def read(self) -> tuple[Protocol | None, date | None, list[tuple[str, str]]]:
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

    def texts(self) -> dict[str, str]:
        """Every field as text (``FieldForm.texts``), to compare with someone else's save."""
        return {path: text for form in self.forms for path, text in form.texts().items()}

    def set_texts(self, texts: dict[str, str]) -> None:
        """Put back texts from ``texts()``: merged values after someone else's save."""
        for form in self.forms:
            form.set_texts(texts)
        self._update_row_visibility()

    def labels(self) -> list[tuple[str, str]]:
        """(path, "Section: label") of each field, in the form's order."""
        return [
            (path, f"{title}: {label}")
            for (title, _), form in zip(SECTIONS, self.forms, strict=True)
            for path, label in form.labels()
        ]

    def shown_words(self) -> dict[str, dict[str, str]]:
        return {path: w for form in self.forms for path, w in form.shown_words().items()}

    def set_read_only(self, read_only: bool) -> None:
        for form in self.forms:
            form.set_read_only(read_only)

    def _value(self, path: str) -> Any:
        for form in self.forms:
            if path in form.paths():
                data: dict[str, Any] = {}
                form.read_into(data)
                return get_path(data, path)
        return None

    # ------------------------------------------------------------------ showing

    def _update_row_visibility(self) -> None:
        ladder_list = self._value(_LADDER_MODE) == "list"
        own = self._value(_MAINT_MODE) == "own"
        for form in self.forms:
            paths = form.paths()
            if "ladder.increment_mg" in paths:
                form.set_row_visible("ladder.increment_mg", not ladder_list)
                form.set_row_visible("ladder.step_doses_mg", ladder_list)
            if "indication_other" in paths:
                form.set_row_visible("indication_other", self._value("indication") == "other")
                form.set_row_visible("route_other", self._value("route") == "other")
            for prefix, visible in (("frequency", True), ("maintenance.frequency", own)):
                if f"{prefix}.kind" not in paths:
                    continue
                kind = self._value(f"{prefix}.kind")
                form.set_row_visible(f"{prefix}.kind", visible)
                form.set_row_visible(f"{prefix}.sessions_per_week",
                                     visible and kind == FrequencyKind.SESSIONS_PER_WEEK.value)
                form.set_row_visible(f"{prefix}.every_n_days",
                                     visible and kind == FrequencyKind.EVERY_N_DAYS.value)
                form.set_row_visible(f"{prefix}.min_hours_between_doses", visible)

    def show_messages(self, parse_problems: list[tuple[str, str]],
                      messages: list[ValidationMessage]) -> None:
        """Show unreadable-field problems and validation messages under their fields."""
        placed: list[tuple[str, str, str]] = [(p, "error", m) for p, m in parse_problems]
        for message in messages:
            path = message.field or ""
            path = _MESSAGE_HOME.get(path, path)
            if path == "ladder":
                ladder_list = self._value(_LADDER_MODE) == "list"
                path = "ladder.step_doses_mg" if ladder_list else "ladder.increment_mg"
            if path.startswith("maintenance.frequency") and \
                    self._value(_MAINT_MODE) != "own":
                path = path.replace("maintenance.frequency", "frequency")
            placed.append((path, message.level, message.message))
        for form in self.forms:
            form.show_messages(placed)


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else
            list(v) if isinstance(v, list) else v for k, v in data.items()}
