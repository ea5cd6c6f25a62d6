"""The chart's Vitals tab: the history, newest first, and the line to add a measurement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import (
    kg_to_lb,
    parse_blood_pressure,
    parse_heart_rate,
    parse_weight,
)
from ketadesk.core.time_of_day import parse_time_of_day
from ketadesk.storage.patients.patient_records import (
    VitalsEntry,
)
from ketadesk.ui.chart.chart_record_table import fill_table, record_table
from ketadesk.ui.common.date_entry import DateEntry
from ketadesk.ui.common.qdate_conversion import local_time_text, local_today


@dataclass(frozen=True)
class VitalsTyped:
    """One measurement as typed, read into units: mmHg, beats/min, kg; time in UTC."""

    measured_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None


class VitalsTab(QWidget):
    """Widgets only; the chart saves what is typed here (each entry in its own transaction)."""

    #: Enter was pressed in the "measured at" field (the chart adds the row, as for the lines).
    enter_pressed_in_time = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.vitals_table = record_table(
            ("Measured", "BP (mmHg)", "Heart rate (/min)", "Weight", "Entered by"), "Vitals history"
        )
        # The shared date field (typed US or ISO, or picked) and the time beside it; an empty
        # time on today's date means "now".
        self.vitals_when = DateEntry("Measured on", is_past=True)
        self.vitals_when.set_date(local_today())
        self.vitals_time = QLineEdit()
        self.vitals_time.setPlaceholderText("now (HH:MM)")
        self.vitals_time.setAccessibleName("Measured at (time)")
        self.vitals_time.setMaxLength(10)
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
        self.vitals_when.installEventFilter(self)
        self.vitals_time.installEventFilter(self)
        row = QHBoxLayout()
        for widget in (
            self.vitals_when,
            self.vitals_time,
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

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched in (self.vitals_when, self.vitals_time)
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            self.enter_pressed_in_time.emit()
            return True
        return super().eventFilter(watched, event)

    def show_vitals(self, vitals_oldest_first: tuple[VitalsEntry, ...]) -> None:
        vitals = list(reversed(vitals_oldest_first))
        fill_table(
            self.vitals_table,
            [
                (
                    local_time_text(v.measured_at),
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

    def typed(self) -> VitalsTyped:
        """The measurement as typed; raises UserFacingError for a value that cannot be read."""
        systolic = diastolic = heart_rate = None
        if self.vitals_systolic.text().strip() or self.vitals_diastolic.text().strip():
            bp = parse_blood_pressure(self.vitals_systolic.text(), self.vitals_diastolic.text())
            systolic, diastolic = bp.systolic, bp.diastolic
        if self.vitals_heart_rate.text().strip():
            heart_rate = parse_heart_rate(self.vitals_heart_rate.text())
        weight = None
        if self.vitals_weight.text().strip():
            weight = parse_weight(self.vitals_weight.text(), self.vitals_weight_unit.currentText())
        return VitalsTyped(self.measured_at(), systolic, diastolic, heart_rate, weight)

    def measured_at(self) -> datetime:
        """The date and time typed (this computer's time zone), in UTC; an empty time on
        today's date is now."""
        try:
            day = self.vitals_when.date_value()
        except UserFacingError as error:
            raise UserFacingError(f"Measured on: {error.message}") from None
        if day is None:
            raise UserFacingError("Enter the date the vitals were measured (MM/DD/YYYY).")
        typed_time = self.vitals_time.text().strip()
        if not typed_time:
            if day == local_today():
                return datetime.now(UTC)
            raise UserFacingError(
                "Enter the time the vitals were measured on that day (HH:MM)."
            )
        try:
            at = parse_time_of_day(typed_time)
        except UserFacingError as error:
            raise UserFacingError(f"Measured at: {error.message}") from None
        return datetime.combine(day, at).astimezone().astimezone(UTC)

    def clear_entry(self) -> None:
        for line in (
            self.vitals_systolic,
            self.vitals_diastolic,
            self.vitals_heart_rate,
            self.vitals_weight,
            self.vitals_time,
        ):
            line.clear()
        self.vitals_when.set_date(local_today())
