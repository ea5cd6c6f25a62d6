"""The "Calendar" side of the protocol editor: every session of the protocol, one row each.

A note above the table says how many sessions over how many weeks, from which first session,
and which chart weight the mg/kg column uses (or why there is no calendar).
"""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.dosing_calendar import dosing_calendar
from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_validation import weight_basis_text
from ketadesk.core.protocols import Protocol, WeightReading, number_text

_HEADERS = ("#", "Date", "Phase", "Dose (mg)", "mg/kg", "Units", "Monitoring due")
_RIGHT_ALIGNED = (0, 3, 4, 5)


class ProtocolCalendarTable(QWidget):
    """A note and a read-only table of sessions: number, date, phase, dose (mg), mg/kg, units,
    monitoring due."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, len(_HEADERS))
        self.table.setHorizontalHeaderLabels(list(_HEADERS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.table, 1)

    def show_calendar(self, protocol: Protocol | None, weight: WeightReading | None,
                      start: date | None, today: date) -> None:
        """Fill the table with the sessions from ``start``; mg/kg from ``weight`` (its age
        in days counted to ``today``)."""
        self.table.setRowCount(0)
        if protocol is None or start is None:
            self.note.setText("The calendar needs readable values and a first-session date.")
            return
        try:
            sessions = dosing_calendar(protocol, start, weight.kg if weight else None)
        except (UserFacingError, ValueError, ZeroDivisionError) as error:
            text = error.message if isinstance(error, UserFacingError) else str(error)
            self.note.setText(f"No calendar: {text}")
            return
        mgkg = "mg/kg from " + (weight_basis_text(weight, today) if weight else
                                "no weight (not computed)")
        self.note.setText(
            f"{len(sessions)} sessions over {protocol.duration_weeks} weeks from "
            f"{start.isoformat()}; {mgkg}.")
        self.table.setRowCount(len(sessions))
        for row, s in enumerate(sessions):
            values = (str(s.number), s.date.isoformat(), s.phase, number_text(s.dose_mg),
                      f"{s.mg_per_kg:.2f}" if s.mg_per_kg is not None else "—",
                      number_text(s.units), ", ".join(s.events))
            for column, value in enumerate(values):
                cell = QTableWidgetItem(value)
                if column in _RIGHT_ALIGNED:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight |
                                          Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
