"""One way to enter a date everywhere: type it (MM/DD/YYYY, M/D/YY or YYYY-MM-DD) or pick it.

``DateEntry`` is a line edit, so it reads, clears and tabs like every other field; a calendar
button at its end (or Alt+Down / F4 in the field) opens a month to pick the day from. Reading
it goes through ``ketadesk.core.demographics.parse_date_input``, so every date field accepts
the same forms and refuses the same mistakes with the same words.
"""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QCalendarWidget,
    QLineEdit,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.demographics import parse_date_input
from ketadesk.core.errors import UserFacingError
from ketadesk.ui.common.qdate_conversion import from_qdate, local_today, to_qdate

DATE_PLACEHOLDER = "MM/DD/YYYY"
DATE_FORMAT = "%m/%d/%Y"


def date_text(value: date | None) -> str:
    """``value`` as a date field shows it (MM/DD/YYYY), or "" for no date."""
    return "" if value is None else value.strftime(DATE_FORMAT)


class _CalendarPopup(QWidget):
    """The month shown under a date field; Enter or a click picks the day, Escape closes."""

    picked = Signal(QDate)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.calendar = QCalendarWidget(self)
        self.calendar.setAccessibleName("Pick a date")
        self.calendar.setGridVisible(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.calendar)
        self.calendar.activated.connect(self._pick)
        self.calendar.clicked.connect(self._pick)

    def _pick(self, day: QDate) -> None:
        self.picked.emit(day)
        self.close()


class DateEntry(QLineEdit):
    """A date field: type the date or pick it from the calendar button at its end.

    ``is_past`` says the date cannot be in the future (a date of birth): a two-digit year is
    then read as the latest such date. ``label`` names the field in messages.
    """

    def __init__(
        self,
        label: str = "Date",
        *,
        is_past: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._label = label
        self._is_past = is_past
        self.setPlaceholderText(DATE_PLACEHOLDER)
        self.setAccessibleName(label)
        self.setMaxLength(20)
        self.setToolTip("Type MM/DD/YYYY (or M/D/YY, or YYYY-MM-DD), or pick from the calendar.")
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView)
        self.calendar_action = QAction(icon, "Pick from the calendar", self)
        self.calendar_action.setToolTip("Pick from the calendar (Alt+Down)")
        self.addAction(self.calendar_action, QLineEdit.ActionPosition.TrailingPosition)
        self.calendar_action.triggered.connect(self.open_calendar)
        self.popup: _CalendarPopup | None = None

    # --- reading and showing -------------------------------------------------------------
    def date_value(self) -> date | None:
        """The date typed, or None when the field is empty; UserFacingError when unreadable
        (the message is for showing beside the field; ``label`` names it elsewhere)."""
        text = self.text().strip()
        if not text:
            return None
        return parse_date_input(text, today=local_today(), is_past=self._is_past)

    @property
    def label(self) -> str:
        return self._label

    def set_date(self, value: date | None) -> None:
        """Show ``value`` as MM/DD/YYYY (empty for None)."""
        self.setText(date_text(value))

    # --- picking -------------------------------------------------------------------------
    def open_calendar(self) -> None:
        """Show the month of the typed date (or today) under the field to pick a day from."""
        if self.isReadOnly() or not self.isEnabled():
            return
        try:
            shown = self.date_value() or local_today()
        except UserFacingError:
            shown = local_today()
        self.popup = _CalendarPopup(self)
        self.popup.calendar.setSelectedDate(to_qdate(shown))
        self.popup.picked.connect(self._picked)
        self.popup.move(self.mapToGlobal(QPoint(0, self.height())))
        self.popup.show()
        self.popup.calendar.setFocus()

    def _picked(self, day: QDate) -> None:
        self.set_date(from_qdate(day))
        self.textEdited.emit(self.text())
        self.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        opens = event.key() == Qt.Key.Key_F4 or (
            event.key() == Qt.Key.Key_Down
            and event.modifiers() & Qt.KeyboardModifier.AltModifier
        )
        if opens:
            self.open_calendar()
            return
        super().keyPressEvent(event)
