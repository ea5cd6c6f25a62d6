"""The patient chart's "Check-ins & outcomes" tab.

Check-ins, PHQ-9/GAD-7 forms entered item by item, the home dose log with protocol flags,
the outcome charts, and urgent banners for an unacknowledged PHQ-9 item 9 (with the 988
crisis line) and for a home dose outside the protocol's safety limits. All reads and writes
go through ``ketadesk.storage.outcomes`` on the op runner; the widgets only ever hold frozen
dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.permissions import Permission
from ketadesk.core.questionnaires import load_instrument
from ketadesk.storage.outcomes.dose_alerts import acknowledge_dose_alert
from ketadesk.storage.outcomes.monitoring_plans import (
    PRACTICE_DEFAULT_SOURCE,
)
from ketadesk.storage.outcomes.outcome_records import (
    DoseAlertRecord,
    DoseLogItem,
    PatientOutcomes,
    QuestionnaireRecord,
)
from ketadesk.storage.outcomes.outcomes import (
    acknowledge_safety_alert,
    patient_outcomes,
    record_checkin,
    record_dose,
    record_questionnaire,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.date_entry import date_text
from ketadesk.ui.common.qdate_conversion import local_time_text, local_today
from ketadesk.ui.outcomes.acknowledgement_dialog import AcknowledgementDialog
from ketadesk.ui.outcomes.checkin_dialog import CheckInDialog
from ketadesk.ui.outcomes.dose_dialog import DoseDialog
from ketadesk.ui.outcomes.outcome_chart_inputs import outcome_chart_data
from ketadesk.ui.outcomes.outcome_charts import OutcomeChartsPanel
from ketadesk.ui.outcomes.questionnaire_dialog import QuestionnaireDialog
from ketadesk.ui.roster.safety_banner import BANNER_STYLE, CRISIS_LINE_TEXT


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    cell = QTableWidgetItem(text)
    cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        cell.setToolTip(tooltip)
    return cell


# A row shows at most this many lines; longer text ends in "…" and is whole in the tooltip
# (a 2,000-character telephone note made one row 400 px tall).
_MAX_ROW_LINES = 3


def _long_text_item(text: str) -> QTableWidgetItem:
    """A cell for free text of any length: the row stays short, the tooltip has it all."""
    cell = _item(text)
    if text.strip():  # the column may be too narrow for even a short text
        # Rich text wraps in the tooltip; plain text would be one line as wide as the screen.
        cell.setToolTip(f"<p style='white-space: pre-wrap'>{escape(text)}</p>")
    return cell


def _fit_rows(table: QTableWidget) -> None:
    """Rows as tall as their text, up to ``_MAX_ROW_LINES`` lines (the rest is elided)."""
    table.resizeRowsToContents()
    most = _MAX_ROW_LINES * table.fontMetrics().lineSpacing() + 8
    for row in range(table.rowCount()):
        if table.rowHeight(row) > most:
            table.setRowHeight(row, most)


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


class CheckInsTab(QWidget):
    """Check-ins & outcomes for one patient.

    Signals (all carry the saved record's id): ``checkin_saved``, ``questionnaire_saved``,
    ``dose_logged``, ``safety_alert_acknowledged``, ``dose_alert_acknowledged``;
    ``outcomes_loaded`` fires after each
    (re)load. Every save also emits ``data_changed("checkins")`` on the context, so the
    roster and the safety banner refresh.
    """

    checkin_saved = Signal(int)
    questionnaire_saved = Signal(int)
    dose_logged = Signal(int)
    safety_alert_acknowledged = Signal(int)
    dose_alert_acknowledged = Signal(int)
    outcomes_loaded = Signal()

    def __init__(self, context: AppContext, patient_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._context = context
        self._patient_id = patient_id
        self._outcomes: PatientOutcomes | None = None
        self.ack_dialog: AcknowledgementDialog | None = None
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

        self.dose_alert_banner = QFrame(self)
        self.dose_alert_banner.setObjectName("urgentBanner")
        self.dose_alert_banner.setStyleSheet(BANNER_STYLE)
        self.dose_alert_banner.setAccessibleName("Urgent home-dose safety alert")
        dose_banner_layout = QHBoxLayout(self.dose_alert_banner)
        dose_banner_layout.setContentsMargins(12, 8, 12, 8)
        self.dose_alert_label = QLabel(self.dose_alert_banner)
        self.dose_alert_label.setWordWrap(True)
        self.dose_alert_label.setTextFormat(Qt.TextFormat.RichText)
        # Room for three wrapped lines: the box layout does not grow rich text to its height.
        self.dose_alert_label.setMinimumHeight(3 * self.fontMetrics().lineSpacing() + 4)
        self.acknowledge_dose_button = QPushButton("Acknowledge…", self.dose_alert_banner)
        dose_banner_layout.addWidget(self.dose_alert_label, 1)
        dose_banner_layout.addWidget(self.acknowledge_dose_button)
        self.dose_alert_banner.setVisible(False)
        layout.addWidget(self.dose_alert_banner)

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
        # Free text wraps in the room there is (sized to its contents, a long note pushed the
        # Notes column off to the right of a 1,280 px screen).
        for column in (2, 4):
            self.checkin_table.horizontalHeader().setSectionResizeMode(
                column, QHeaderView.ResizeMode.Stretch
            )
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
        splitter.setSizes([600, 600])  # the dose log needs room for its "Check" words
        layout.addWidget(splitter, 1)

    def _connect_signals(self) -> None:
        self.acknowledge_button.clicked.connect(self._ask_acknowledgement)
        self.acknowledge_dose_button.clicked.connect(self._ask_dose_acknowledgement)
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
        self.acknowledge_dose_button.setEnabled(is_physician)
        self.acknowledge_dose_button.setToolTip(
            "Record that you have reviewed this dose and acted on it."
            if is_physician
            else "Only a physician can acknowledge this alert. Tell a physician now."
        )
        self.acknowledge_dose_button.setText(
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
                return patient_outcomes(session, patient_id, local_today())

        self._context.ops.run(load, self._show, parent_widget=self)

    def _on_data_changed(self, what: str) -> None:
        if what in ("checkins", "protocols", f"patient:{self._patient_id}"):
            self.reload()

    def _show(self, outcomes: PatientOutcomes) -> None:
        self._outcomes = outcomes
        self._show_banner(outcomes.open_alerts)
        self._show_dose_banner(outcomes.open_dose_alerts)
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
            f"on {date_text(q.taken_on)}"
            for q in alerts
        )
        self.urgent_label.setText(
            f"<b>URGENT — suicide-risk answer not yet acknowledged</b> ({answered}). "
            f"{safety.alert_message}<br><b>{CRISIS_LINE_TEXT}</b> (24 hours a day)."
        )

    def _show_dose_banner(self, alerts: Sequence[DoseAlertRecord]) -> None:
        self.dose_alert_banner.setVisible(bool(alerts))
        if not alerts:
            return
        doses = "; ".join(
            f"{alert.dose_mg:g} mg on {local_time_text(alert.taken_at)}: "
            f"{alert.breach_words()}"
            for alert in alerts
        )
        self.dose_alert_label.setText(
            "<b>URGENT — home dose outside the protocol's safety limits, not yet "
            f"acknowledged</b> ({escape(doses)}). Contact the patient before the next dose; "
            "the dose log says what was broken."
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
            parts = [f"check-in {date_text(due.next_checkin_due)}"] + [
                f"{name} {date_text(when)}" for name, when in due.questionnaires_due.items()
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
            table.setItem(row, 0, _item(date_text(form.taken_on)))
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
        _fit_rows(table)

    def _fill_checkins(self, outcomes: PatientOutcomes) -> None:
        table = self.checkin_table
        table.setRowCount(len(outcomes.checkins))
        for row, checkin in enumerate(outcomes.checkins):
            table.setItem(row, 0, _item(date_text(checkin.checked_on)))
            table.setItem(row, 1, _item(checkin.mode_label, f"Recorded by {checkin.recorded_by}"))
            table.setItem(row, 2, _long_text_item(checkin.symptoms_text()))
            table.setItem(row, 3, _item(checkin.adherence_label))
            table.setItem(row, 4, _long_text_item(checkin.notes))
        _fit_rows(table)

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
            table.setItem(row, 0, _item(local_time_text(entry.taken_at)))
            table.setItem(row, 1, _item(f"{entry.dose_mg:g} mg"))
            table.setItem(row, 2, _item(_bp(entry.bp_before_systolic, entry.bp_before_diastolic)))
            table.setItem(row, 3, _item(_bp(entry.bp_after_systolic, entry.bp_after_diastolic)))
            table.setItem(row, 4, _item(f"{_num(entry.hr_before)} → {_num(entry.hr_after)}"))
            sitter = {True: "Yes", False: "No", None: "Not asked"}[entry.sitter_present]
            table.setItem(row, 5, _item(sitter))
            table.setItem(row, 6, self._flag_cell(item, has_rules, icons))
        _fit_rows(table)

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
        context = None if self._outcomes is None else self._outcomes.dose_context
        dialog = DoseDialog(context, self)
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
        dialog = AcknowledgementDialog(
            "Acknowledge suicide-risk answer",
            "You are confirming that you have reviewed the PHQ-9 item 9 answer and acted on "
            "it (for example: spoke with the patient, assessed safety, shared the 988 "
            "Lifeline). This is recorded in the audit log.",
            self,
        )
        self.ack_dialog = dialog
        dialog.note_accepted.connect(self.acknowledge_open_alerts)
        dialog.open()

    def _ask_dose_acknowledgement(self) -> None:
        if self._outcomes is None or not self._outcomes.open_dose_alerts:
            return
        dialog = AcknowledgementDialog(
            "Acknowledge home-dose safety alert",
            "You are confirming that you have reviewed the home dose taken outside the "
            "protocol's safety limits and acted on it (for example: spoke with the patient, "
            "told them to hold the next dose, changed the protocol). This is recorded in the "
            "audit log.",
            self,
        )
        self.ack_dialog = dialog
        dialog.note_accepted.connect(self.acknowledge_dose_alerts)
        dialog.open()

    def acknowledge_dose_alerts(self, note: str) -> None:
        """Acknowledge every open home-dose alert of this patient as the logged-in physician."""
        if self._outcomes is None:
            return
        ids = [alert.id for alert in self._outcomes.open_dose_alerts]
        actor, db = self._context.actor, self._context.db

        def run() -> list[int]:
            with db.session() as session:
                for alert_id in ids:
                    acknowledge_dose_alert(session, actor, alert_id, note)
            return ids

        def done(acknowledged: list[int]) -> None:
            for alert_id in acknowledged:
                self.dose_alert_acknowledged.emit(alert_id)

        self._context.ops.run(run, done, changes="checkins", parent_widget=self)

    def acknowledge_open_alerts(self, note: str) -> None:
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
