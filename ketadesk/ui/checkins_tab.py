"""The patient chart's "Check-ins & outcomes" tab.

Check-ins, PHQ-9/GAD-7 forms entered item by item, the home dose log with protocol flags,
the outcome charts, and an urgent banner for an unacknowledged PHQ-9 item 9 (with the 988
crisis line). All reads and writes go through ``ketadesk.storage.outcomes`` on the op
runner; the widgets only ever hold frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from PySide6.QtCore import QDate, QDateTime, Qt, Signal
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.checkins import (
    LABELS,
    Adherence,
    CheckInDraft,
    CheckInMode,
    Severity,
    Symptom,
    SymptomReport,
    validate_checkin,
)
from ketadesk.core.dose_log import DoseLogEntry
from ketadesk.core.permissions import Permission
from ketadesk.core.questionnaires import Instrument, load_instrument, score_questionnaire
from ketadesk.storage.outcomes import (
    PRACTICE_DEFAULT_SOURCE,
    DoseLogItem,
    PatientOutcomes,
    QuestionnaireRecord,
    acknowledge_safety_alert,
    patient_outcomes,
    record_checkin,
    record_dose,
    record_questionnaire,
)
from ketadesk.ui.blood_pressure_chart import BpChartData, BpReading
from ketadesk.ui.context import AppContext
from ketadesk.ui.outcome_chart_base import ChartMarker, MarkerKind
from ketadesk.ui.outcome_charts import OutcomeChartsPanel
from ketadesk.ui.questionnaire_chart import OutcomeChartData, ScorePoint
from ketadesk.ui.safety_banner import BANNER_STYLE, CRISIS_LINE_TEXT

BLANK_ANSWER = "— not answered —"


def _today() -> date:
    return datetime.now(UTC).date()


def _qdate(value: date) -> QDate:
    return QDate(value.year, value.month, value.day)


def _pydate(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    cell = QTableWidgetItem(text)
    cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        cell.setToolTip(tooltip)
    return cell


def _table(headers: Sequence[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(True)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


# --------------------------------------------------------------------------- chart data


def outcome_chart_data(outcomes: PatientOutcomes) -> tuple[OutcomeChartData, BpChartData]:
    """Chart inputs from saved records: complete forms only, dose changes and protocol
    versions as markers, pre-dose blood pressure (mmHg) with the protocol hold lines."""
    phq9 = tuple(
        ScorePoint(q.taken_on, q.total, q.safety_alert)
        for q in reversed(outcomes.questionnaires)
        if q.instrument_id == "phq9" and q.complete and q.total is not None
    )
    gad7 = tuple(
        ScorePoint(q.taken_on, q.total, q.safety_alert)
        for q in reversed(outcomes.questionnaires)
        if q.instrument_id == "gad7" and q.complete and q.total is not None
    )
    markers: list[ChartMarker] = []
    previous: float | None = None
    for item in sorted(outcomes.dose_log, key=lambda d: d.entry.taken_at):
        dose = item.entry.dose_mg
        if previous is not None and dose != previous:
            markers.append(ChartMarker(item.entry.taken_at.date(), f"{previous:g}→{dose:g} mg"))
        previous = dose
    seen_versions: set[int] = set()
    for checkin in reversed(outcomes.checkins):
        version = checkin.protocol_version_id
        if version is not None and version not in seen_versions:
            seen_versions.add(version)
            markers.append(
                ChartMarker(checkin.checked_on, f"v{version}", MarkerKind.PROTOCOL_VERSION)
            )
    readings = tuple(
        BpReading(
            item.entry.taken_at.date(),
            item.entry.bp_before_systolic,
            item.entry.bp_before_diastolic,
        )
        for item in sorted(outcomes.dose_log, key=lambda d: d.entry.taken_at)
        if item.entry.bp_before_systolic is not None and item.entry.bp_before_diastolic is not None
    )
    rules = outcomes.monitoring.dose_rules
    return (
        OutcomeChartData(phq9=phq9, gad7=gad7, markers=tuple(markers)),
        BpChartData(
            readings=readings,
            hold_systolic_above=rules.hold_systolic_above,
            hold_diastolic_above=rules.hold_diastolic_above,
            markers=tuple(m for m in markers if m.kind is MarkerKind.PROTOCOL_VERSION),
        ),
    )


# --------------------------------------------------------------------------- dialogs


class QuestionnaireDialog(QDialog):
    """Item-by-item entry of one questionnaire, built from the instrument's data file.

    A question left on "not answered" is saved as blank and the form as incomplete. The
    running total, band and any item-9 warning are shown while typing.
    """

    def __init__(self, instrument: Instrument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.instrument = instrument
        self.setWindowTitle(f"Enter {instrument.name}")
        self.setMinimumWidth(720)
        layout = QVBoxLayout(self)
        intro = QLabel(f"<b>{instrument.title}</b><br>{instrument.instructions}", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        top = QFormLayout()
        self.date_edit = QDateEdit(_qdate(_today()), self)
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.date_edit.setMaximumDate(_qdate(_today()))
        top.addRow("Date taken:", self.date_edit)
        layout.addLayout(top)

        grid_holder = QWidget(self)
        grid = QGridLayout(grid_holder)
        grid.setColumnStretch(0, 1)
        self.answer_boxes: list[QComboBox] = []
        for item in instrument.items:
            prompt = QLabel(f"{item.number}. {item.prompt}", grid_holder)
            prompt.setWordWrap(True)
            box = QComboBox(grid_holder)
            box.addItem(BLANK_ANSWER, None)
            for option in instrument.response_options:
                box.addItem(f"{option.value} — {option.label}", option.value)
            box.setAccessibleName(f"{instrument.name} question {item.number}")
            grid.addWidget(prompt, item.number, 0)
            grid.addWidget(box, item.number, 1)
            self.answer_boxes.append(box)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_holder)
        layout.addWidget(scroll, 1)

        self.total_label = QLabel(self)
        self.total_label.setWordWrap(True)
        self.alert_label = QLabel(self)
        self.alert_label.setWordWrap(True)
        self.alert_label.setStyleSheet("color: #B00020; font-weight: bold;")
        layout.addWidget(self.total_label)
        layout.addWidget(self.alert_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        layout.addWidget(self.buttons)
        self._connect_signals()
        self._update_total()

    def _connect_signals(self) -> None:
        for box in self.answer_boxes:
            box.currentIndexChanged.connect(self._update_total)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def set_answers(self, answers: Sequence[int | None]) -> None:
        """Fill in the answers (points per item, ``None`` = not answered)."""
        for box, answer in zip(self.answer_boxes, answers, strict=True):
            box.setCurrentIndex(box.findData(answer) if answer is not None else 0)

    def answers(self) -> list[int | None]:
        return [box.currentData() for box in self.answer_boxes]

    def taken_on(self) -> date:
        return _pydate(self.date_edit.date())

    def _update_total(self) -> None:
        score = score_questionnaire(self.instrument, self.answers())
        if score.is_complete:
            self.total_label.setText(f"Total: <b>{score.total}</b> ({score.band})")
        else:
            missing = ", ".join(str(n) for n in score.missing_items)
            self.total_label.setText(
                f"Incomplete: question(s) {missing} not answered. It will be saved as "
                "incomplete, with no total or severity."
            )
        self.alert_label.setText(
            f"⚠ {score.safety_message} {CRISIS_LINE_TEXT}." if score.safety_alert else ""
        )
        self.alert_label.setVisible(score.safety_alert)


class CheckInDialog(QDialog):
    """A new check-in: date, how it was done, side effects with severity, adherence, notes."""

    def __init__(self, recorded_by: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New check-in")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.date_edit = QDateEdit(_qdate(_today()), self)
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.mode_box = QComboBox(self)
        for mode in CheckInMode:
            self.mode_box.addItem(LABELS[mode], mode.value)
        self.recorded_by_edit = QLineEdit(recorded_by, self)
        self.adherence_box = QComboBox(self)
        for adherence in Adherence:
            self.adherence_box.addItem(LABELS[adherence], adherence.value)
        form.addRow("Date:", self.date_edit)
        form.addRow("How:", self.mode_box)
        form.addRow("Recorded by:", self.recorded_by_edit)
        form.addRow("Adherence:", self.adherence_box)
        layout.addLayout(form)

        symptoms_box = QFrame(self)
        symptoms_box.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(symptoms_box)
        grid.addWidget(QLabel("<b>Side effects since the last contact</b>"), 0, 0, 1, 3)
        self.severity_boxes: dict[str, QComboBox] = {}
        self.symptom_notes: dict[str, QLineEdit] = {}
        for row, symptom in enumerate(Symptom, start=1):
            severity = QComboBox(symptoms_box)
            for level in Severity:
                severity.addItem(level.value.capitalize(), level.value)
            severity.setAccessibleName(f"{LABELS[symptom]} severity")
            note = QLineEdit(symptoms_box)
            note.setPlaceholderText(
                "Describe (required)" if symptom is Symptom.OTHER else "Note (optional)"
            )
            grid.addWidget(QLabel(LABELS[symptom], symptoms_box), row, 0)
            grid.addWidget(severity, row, 1)
            grid.addWidget(note, row, 2)
            self.severity_boxes[symptom.value] = severity
            self.symptom_notes[symptom.value] = note
        layout.addWidget(symptoms_box)
        layout.addWidget(QLabel("Notes:", self))
        self.notes_edit = QPlainTextEdit(self)
        self.notes_edit.setFixedHeight(80)
        layout.addWidget(self.notes_edit)
        self.problems_label = QLabel(self)
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #B00020;")
        layout.addWidget(self.problems_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        layout.addWidget(self.buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self._try_accept)
        self.buttons.rejected.connect(self.reject)

    def draft(self) -> CheckInDraft:
        symptoms = tuple(
            SymptomReport(symptom, box.currentData(), self.symptom_notes[symptom].text().strip())
            for symptom, box in self.severity_boxes.items()
            if box.currentData() != Severity.NONE.value
        )
        return CheckInDraft(
            date=_pydate(self.date_edit.date()),
            mode=self.mode_box.currentData(),
            recorded_by=self.recorded_by_edit.text(),
            symptoms=symptoms,
            adherence=self.adherence_box.currentData(),
            notes=self.notes_edit.toPlainText(),
        )

    def _try_accept(self) -> None:
        problems = validate_checkin(self.draft(), _today())
        if problems:
            self.problems_label.setText("\n".join(p.message for p in problems))
            return
        self.accept()


class DoseDialog(QDialog):
    """One home session as the patient reported it. Empty readings mean "not measured"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Log a home dose")
        form = QFormLayout(self)
        self.taken_edit = QDateTimeEdit(QDateTime.currentDateTime(), self)
        self.taken_edit.setCalendarPopup(True)
        self.taken_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.dose_spin = QDoubleSpinBox(self)
        self.dose_spin.setRange(0, 2000)
        self.dose_spin.setDecimals(1)
        self.dose_spin.setSuffix(" mg")
        self.readings: dict[str, QLineEdit] = {}
        form.addRow("Taken at (local time):", self.taken_edit)
        form.addRow("Dose:", self.dose_spin)
        for key, label in (
            ("bp_before_systolic", "BP before, systolic (mmHg):"),
            ("bp_before_diastolic", "BP before, diastolic (mmHg):"),
            ("bp_after_systolic", "BP after, systolic (mmHg):"),
            ("bp_after_diastolic", "BP after, diastolic (mmHg):"),
            ("hr_before", "Heart rate before (beats/min):"),
            ("hr_after", "Heart rate after (beats/min):"),
        ):
            edit = QLineEdit(self)
            edit.setValidator(QIntValidator(0, 400, edit))
            edit.setPlaceholderText("not measured")
            self.readings[key] = edit
            form.addRow(label, edit)
        self.sitter_box = QComboBox(self)
        for text, value in (("Not asked", None), ("Yes", True), ("No", False)):
            self.sitter_box.addItem(text, value)
        self.effects_edit = QLineEdit(self)
        form.addRow("Sitter present:", self.sitter_box)
        form.addRow("Effects reported:", self.effects_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        form.addRow(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def entry(self) -> DoseLogEntry:
        def reading(key: str) -> int | None:
            text = self.readings[key].text().strip()
            return int(text) if text else None

        taken = self.taken_edit.dateTime().toPython()
        assert isinstance(taken, datetime)
        return DoseLogEntry(
            taken_at=taken.astimezone(),  # local wall-clock time, made aware
            dose_mg=self.dose_spin.value(),
            bp_before_systolic=reading("bp_before_systolic"),
            bp_before_diastolic=reading("bp_before_diastolic"),
            bp_after_systolic=reading("bp_after_systolic"),
            bp_after_diastolic=reading("bp_after_diastolic"),
            hr_before=reading("hr_before"),
            hr_after=reading("hr_after"),
            sitter_present=self.sitter_box.currentData(),
            effects=self.effects_edit.text(),
        )


# --------------------------------------------------------------------------- the tab


class CheckInsTab(QWidget):
    """Check-ins & outcomes for one patient.

    Signals (all carry the saved record's id): ``checkin_saved``, ``questionnaire_saved``,
    ``dose_logged``, ``safety_alert_acknowledged``; ``outcomes_loaded`` fires after each
    (re)load. Every save also emits ``data_changed("checkins")`` on the context, so the
    roster and the safety banner refresh.
    """

    checkin_saved = Signal(int)
    questionnaire_saved = Signal(int)
    dose_logged = Signal(int)
    safety_alert_acknowledged = Signal(int)
    outcomes_loaded = Signal()

    def __init__(self, context: AppContext, patient_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._context = context
        self._patient_id = patient_id
        self._outcomes: PatientOutcomes | None = None
        self.ack_dialog: QInputDialog | None = None
        self.open_dialog: QDialog | None = None
        self._build()
        self._connect_signals()
        self._apply_permissions()
        self.reload()

    # --- building --------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)

        self.urgent_banner = QFrame(self)
        self.urgent_banner.setObjectName("urgentBanner")
        self.urgent_banner.setStyleSheet(BANNER_STYLE)
        self.urgent_banner.setAccessibleName("Urgent suicide-risk alert")
        banner_layout = QHBoxLayout(self.urgent_banner)
        banner_layout.setContentsMargins(12, 8, 12, 8)
        self.urgent_label = QLabel(self.urgent_banner)
        self.urgent_label.setWordWrap(True)
        self.urgent_label.setTextFormat(Qt.TextFormat.RichText)
        self.acknowledge_button = QPushButton("Acknowledge…", self.urgent_banner)
        banner_layout.addWidget(self.urgent_label, 1)
        banner_layout.addWidget(self.acknowledge_button)
        self.urgent_banner.setVisible(False)
        layout.addWidget(self.urgent_banner)

        self.monitoring_label = QLabel("Loading…", self)
        self.monitoring_label.setWordWrap(True)
        self.monitoring_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.monitoring_label)

        buttons = QHBoxLayout()
        self.new_checkin_button = QPushButton("New check-in…", self)
        self.phq9_button = QPushButton("Enter PHQ-9…", self)
        self.gad7_button = QPushButton("Enter GAD-7…", self)
        self.dose_button = QPushButton("Log home dose…", self)
        for button in (
            self.new_checkin_button,
            self.phq9_button,
            self.gad7_button,
            self.dose_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.lists = QTabWidget(splitter)
        self.questionnaire_table = _table(
            ("Date", "Form", "Total", "Severity", "Item 9 (suicide risk)")
        )
        self.checkin_table = _table(("Date", "How", "Side effects", "Adherence", "Notes"))
        self.dose_table = _table(
            ("Taken", "Dose", "BP before", "BP after", "HR", "Sitter", "Check")
        )
        self.dose_note = QLabel(self)
        self.dose_note.setWordWrap(True)
        dose_page = QWidget(self)
        dose_layout = QVBoxLayout(dose_page)
        dose_layout.setContentsMargins(0, 4, 0, 0)
        dose_layout.addWidget(self.dose_note)
        dose_layout.addWidget(self.dose_table, 1)
        self.lists.addTab(self.questionnaire_table, "Questionnaires")
        self.lists.addTab(self.checkin_table, "Check-ins")
        self.lists.addTab(dose_page, "Dose log")
        self.charts = OutcomeChartsPanel(splitter)
        splitter.addWidget(self.lists)
        splitter.addWidget(self.charts)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 700])
        layout.addWidget(splitter, 1)

    def _connect_signals(self) -> None:
        self.acknowledge_button.clicked.connect(self._ask_acknowledgement)
        self.new_checkin_button.clicked.connect(self._new_checkin)
        self.phq9_button.clicked.connect(lambda: self._new_questionnaire("PHQ-9"))
        self.gad7_button.clicked.connect(lambda: self._new_questionnaire("GAD-7"))
        self.dose_button.clicked.connect(self._new_dose)
        self._context.data_changed.connect(self._on_data_changed)
        self._context.actor_changed.connect(self._apply_permissions)

    def _apply_permissions(self) -> None:
        is_physician = self._context.can(Permission.EDIT_CLINICAL)
        self.new_checkin_button.setEnabled(is_physician)
        self.new_checkin_button.setToolTip(
            "" if is_physician else "Only physicians record check-ins."
        )
        self.acknowledge_button.setEnabled(is_physician)
        self.acknowledge_button.setToolTip(
            "Record that you have reviewed this answer and acted on it."
            if is_physician
            else "Only a physician can acknowledge this alert. Tell a physician now."
        )
        self.acknowledge_button.setText(
            "Acknowledge…" if is_physician else "Physician must acknowledge"
        )

    # --- loading ---------------------------------------------------------------------------

    @property
    def patient_id(self) -> int:
        return self._patient_id

    def outcomes(self) -> PatientOutcomes | None:
        """What is shown now (``None`` until the first load finishes)."""
        return self._outcomes

    def reload(self) -> None:
        db, patient_id = self._context.db, self._patient_id

        def load() -> PatientOutcomes:
            with db.session() as session:
                return patient_outcomes(session, patient_id, _today())

        self._context.ops.run(load, self._show, parent_widget=self)

    def _on_data_changed(self, what: str) -> None:
        if what in ("checkins", "protocols", f"patient:{self._patient_id}"):
            self.reload()

    def _show(self, outcomes: PatientOutcomes) -> None:
        self._outcomes = outcomes
        self._show_banner(outcomes.open_alerts)
        self._show_monitoring(outcomes)
        self._fill_questionnaires(outcomes.questionnaires)
        self._fill_checkins(outcomes)
        self._fill_doses(outcomes)
        self.charts.set_data(*outcome_chart_data(outcomes))
        self.outcomes_loaded.emit()

    def _show_banner(self, alerts: Sequence[QuestionnaireRecord]) -> None:
        self.urgent_banner.setVisible(bool(alerts))
        if not alerts:
            return
        instrument = load_instrument("PHQ-9")
        safety = instrument.safety_item
        assert safety is not None
        labels = {o.value: o.label for o in instrument.response_options}
        answered = "; ".join(
            f"item {safety.number}: “{labels.get(q.answers[safety.number - 1] or 0, '?')}” "
            f"on {q.taken_on.isoformat()}"
            for q in alerts
        )
        self.urgent_label.setText(
            f"<b>URGENT — suicide-risk answer not yet acknowledged</b> ({answered}). "
            f"{safety.alert_message}<br><b>{CRISIS_LINE_TEXT}</b> (24 hours a day)."
        )

    def _show_monitoring(self, outcomes: PatientOutcomes) -> None:
        plan = outcomes.monitoring
        source = (
            "practice default — the practice can change it in Settings"
            if plan.source == PRACTICE_DEFAULT_SOURCE
            else plan.source
        )
        text = (
            f"<b>Monitoring</b> ({source}): check-in every {plan.cadence.checkin_every_days} "
            f"days; {', '.join(plan.cadence.instruments)} every "
            f"{plan.cadence.questionnaire_every_weeks} weeks."
        )
        due = outcomes.due
        if due is None:
            text += " Not in active treatment, so nothing is due."
        else:
            parts = [f"check-in {due.next_checkin_due.isoformat()}"] + [
                f"{name} {when.isoformat()}" for name, when in due.questionnaires_due.items()
            ]
            text += " Next due: " + ", ".join(parts) + "."
            if due.is_overdue:
                text += (
                    f" <span style='color:#B00020'><b>⚠ OVERDUE: {', '.join(due.overdue)}</b>"
                    f" ({due.days_overdue} days)</span>"
                )
        self.monitoring_label.setText(text)

    def _fill_questionnaires(self, forms: Sequence[QuestionnaireRecord]) -> None:
        table = self.questionnaire_table
        table.setRowCount(len(forms))
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for row, form in enumerate(forms):
            table.setItem(row, 0, _item(form.taken_on.isoformat()))
            table.setItem(row, 1, _item(form.instrument))
            if form.complete:
                table.setItem(row, 2, _item(str(form.total)))
                table.setItem(row, 3, _item(form.band or ""))
            else:
                missing = ", ".join(
                    str(n) for n, a in enumerate(form.answers, start=1) if a is None
                )
                table.setItem(row, 2, _item("—", "Incomplete forms are not scored"))
                table.setItem(row, 3, _item(f"Incomplete (q. {missing} blank): not scored"))
            if form.instrument_id != "phq9":
                table.setItem(row, 4, _item(""))
                continue
            answer = form.answers[8]
            if not form.safety_alert:
                table.setItem(row, 4, _item("—" if answer is None else f"{answer}"))
                continue
            ack = form.acknowledgement
            text = (
                f"{answer}: NOT acknowledged"
                if ack is None
                else f"{answer}: acknowledged by {ack.acknowledged_by}"
            )
            cell = _item(text, "" if ack is None else ack.note)
            cell.setIcon(warning)
            table.setItem(row, 4, cell)
        table.resizeRowsToContents()

    def _fill_checkins(self, outcomes: PatientOutcomes) -> None:
        table = self.checkin_table
        table.setRowCount(len(outcomes.checkins))
        for row, checkin in enumerate(outcomes.checkins):
            table.setItem(row, 0, _item(checkin.checked_on.isoformat()))
            table.setItem(row, 1, _item(checkin.mode_label, f"Recorded by {checkin.recorded_by}"))
            table.setItem(row, 2, _item(checkin.symptoms_text()))
            table.setItem(row, 3, _item(checkin.adherence_label))
            table.setItem(row, 4, _item(checkin.notes))
        table.resizeRowsToContents()

    def _fill_doses(self, outcomes: PatientOutcomes) -> None:
        rules = outcomes.monitoring.dose_rules
        has_rules = any(
            value not in (None, False)
            for value in (
                rules.min_hours_between_doses,
                rules.max_single_dose_mg,
                rules.hold_systolic_above,
                rules.hold_diastolic_above,
                rules.sitter_required,
            )
        )
        self.dose_note.setText(
            ""
            if has_rules
            else "Not checked: this patient has no protocol with dose rules yet, so doses "
            "are not checked for timing, maximum dose or blood-pressure holds."
        )
        self.dose_note.setVisible(not has_rules)
        table = self.dose_table
        table.setRowCount(len(outcomes.dose_log))
        style = self.style()
        icons = {
            "breach": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical),
            "unknown": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxQuestion),
            "ok": style.standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton),
        }
        for row, item in enumerate(outcomes.dose_log):
            entry = item.entry
            table.setItem(row, 0, _item(entry.taken_at.astimezone().strftime("%Y-%m-%d %H:%M")))
            table.setItem(row, 1, _item(f"{entry.dose_mg:g} mg"))
            table.setItem(row, 2, _item(_bp(entry.bp_before_systolic, entry.bp_before_diastolic)))
            table.setItem(row, 3, _item(_bp(entry.bp_after_systolic, entry.bp_after_diastolic)))
            table.setItem(row, 4, _item(f"{_num(entry.hr_before)} → {_num(entry.hr_after)}"))
            sitter = {True: "Yes", False: "No", None: "Not asked"}[entry.sitter_present]
            table.setItem(row, 5, _item(sitter))
            table.setItem(row, 6, self._flag_cell(item, has_rules, icons))
        table.resizeRowsToContents()

    @staticmethod
    def _flag_cell(item: DoseLogItem, has_rules: bool, icons: dict[str, Any]) -> QTableWidgetItem:
        if not has_rules:
            cell = _item("Not checked", "No protocol dose rules for this patient yet")
            cell.setIcon(icons["unknown"])
            return cell
        if not item.flags:
            cell = _item("Within protocol")
            cell.setIcon(icons["ok"])
            return cell
        text = "\n".join(
            ("BREACH: " if flag.is_breach else "") + flag.message for flag in item.flags
        )
        cell = _item(text)
        cell.setIcon(icons["breach" if item.has_breach else "unknown"])
        return cell

    # --- actions ---------------------------------------------------------------------------

    def _save(self, work: Callable[[Any], Any], signal: Any) -> None:
        db = self._context.db

        def run() -> int:
            with db.session() as session:
                saved = work(session)
                return int(saved.id)

        self._context.ops.run(
            run, lambda saved_id: signal.emit(saved_id), changes="checkins", parent_widget=self
        )

    def _new_checkin(self) -> None:
        dialog = CheckInDialog(self._context.actor.full_name, self)
        self.open_dialog = dialog
        actor, patient_id = self._context.actor, self._patient_id

        def accepted() -> None:
            draft = dialog.draft()
            self._save(lambda s: record_checkin(s, actor, patient_id, draft), self.checkin_saved)

        dialog.accepted.connect(accepted)
        dialog.open()

    def _new_questionnaire(self, instrument_name: str) -> None:
        dialog = QuestionnaireDialog(load_instrument(instrument_name), self)
        self.open_dialog = dialog
        actor, patient_id = self._context.actor, self._patient_id

        def accepted() -> None:
            answers, taken_on = dialog.answers(), dialog.taken_on()
            self._save(
                lambda s: record_questionnaire(
                    s, actor, patient_id, instrument_name, answers, taken_on
                ),
                self.questionnaire_saved,
            )

        dialog.accepted.connect(accepted)
        dialog.open()

    def _new_dose(self) -> None:
        dialog = DoseDialog(self)
        self.open_dialog = dialog
        actor, patient_id = self._context.actor, self._patient_id

        def accepted() -> None:
            entry = dialog.entry()
            self._save(lambda s: record_dose(s, actor, patient_id, entry), self.dose_logged)

        dialog.accepted.connect(accepted)
        dialog.open()

    def _ask_acknowledgement(self) -> None:
        if self._outcomes is None or not self._outcomes.open_alerts:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Acknowledge suicide-risk answer")
        dialog.setLabelText(
            "You are confirming that you have reviewed the PHQ-9 item 9 answer and acted on "
            "it (for example: spoke with the patient, assessed safety, shared the 988 "
            "Lifeline). This is recorded in the audit log.\n\nShort note (what was done):"
        )
        dialog.setTextValue("")
        self.ack_dialog = dialog
        dialog.textValueSelected.connect(self.acknowledge_open_alerts)
        dialog.open()

    def acknowledge_open_alerts(self, note: str = "") -> None:
        """Acknowledge every open item-9 alert of this patient as the logged-in physician."""
        if self._outcomes is None:
            return
        ids = [form.id for form in self._outcomes.open_alerts]
        actor, db = self._context.actor, self._context.db

        def run() -> list[int]:
            with db.session() as session:
                for response_id in ids:
                    acknowledge_safety_alert(session, actor, response_id, note)
            return ids

        def done(acknowledged: list[int]) -> None:
            for response_id in acknowledged:
                self.safety_alert_acknowledged.emit(response_id)

        self._context.ops.run(run, done, changes="checkins", parent_widget=self)


def _bp(systolic: int | None, diastolic: int | None) -> str:
    if systolic is None and diastolic is None:
        return "not measured"
    return f"{_num(systolic)}/{_num(diastolic)}"


def _num(value: int | None) -> str:
    return "?" if value is None else str(value)
