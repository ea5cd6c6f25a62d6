"""The roster as a lazy Qt table model over ``storage.roster.roster_query`` (SQL does the work).

Rows arrive in pages (``canFetchMore``/``fetchMore``); a new search, filter or sort resets
the model and asks SQL again. No proxy model ever sees all 50,000 patients.

The clinical columns (safety alert, interaction review, protocol, next check-in) come from
``storage.roster.roster_columns``; the model installs them and shows them after the built-in ones.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon
from PySide6.QtWidgets import QApplication, QStyle

from ketadesk.models.patients import STATUS_LABELS
from ketadesk.storage.roster import roster_columns as rc
from ketadesk.storage.roster.roster_query import (
    COUNT_CAP,
    DEFAULT_PAGE_SIZE,
    RosterFilter,
    RosterRow,
    RosterSort,
    fetch_roster_page,
    prepare_roster,
    query_roster,
    visible_columns,
    warm_up_roster_sql,
)
from ketadesk.storage.roster.roster_query import (
    RosterColumn as RegisteredColumn,
)
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.visits.visit_leases import VisitMarker
from ketadesk.ui.visits.visit_words import on_visit_words

PatientIdRole = Qt.ItemDataRole.UserRole + 1
SortKeyRole = Qt.ItemDataRole.UserRole + 2

_Index = QModelIndex | QPersistentModelIndex


class RosterColumn(IntEnum):
    NAME = 0
    DOB = 1
    MRN = 2
    PHONE = 3  # shows why a phone search matched
    STATE = 4
    STATUS = 5
    LAST_VISIT = 6


_HEADERS = {
    RosterColumn.NAME: "Name",
    RosterColumn.DOB: "Date of birth (age)",
    RosterColumn.MRN: "MRN",
    RosterColumn.PHONE: "Phone",
    RosterColumn.STATE: "State",
    RosterColumn.STATUS: "Status",
    RosterColumn.LAST_VISIT: "Last visit",
}
_SORTS = {
    RosterColumn.NAME: RosterSort.NAME,
    RosterColumn.DOB: RosterSort.DOB,
    RosterColumn.MRN: RosterSort.MRN,
    RosterColumn.PHONE: RosterSort.PHONE,
    RosterColumn.STATE: RosterSort.STATE,
    RosterColumn.STATUS: RosterSort.STATUS,
    RosterColumn.LAST_VISIT: RosterSort.LAST_VISIT,
}


REVIEW_LABELS = {"none": "None", "current": "Current", "stale": "Stale"}
PROTOCOL_LABELS = {
    "none": "None",
    "draft": "Draft",
    "signed": "Signed",
    "discontinued": "Discontinued",
}
SAFETY_ALERT_TEXT = "Safety alert"
NOT_MONITORED_TEXT = "Not monitored"
SAFETY_ALERT_TOOLTIP = (
    "Unacknowledged safety alert: a PHQ-9 item 9 answer (thoughts of self-harm) or a home dose "
    "outside the protocol's safety limits (blood pressure over the hold limit, dose over the "
    "maximum, doses too close together). Open the chart's check-ins, review and acknowledge. "
    "Crisis line: call or text 988."
)
ON_VISIT_TEXT = "On visit"  # the status in words is in the cell's tooltip
_ON_VISIT = QColor("#0063b1")
_URGENT = QColor("#b00020")
_ATTENTION = QColor("#8a4b00")


_BOLD: list[QFont] = []
# Plain ints: painting calls data() about 1,800 times a keystroke (seven roles for each of
# about 260 visible cells), and comparing with the enum members costs an enum lookup each time.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
_DECORATION = int(Qt.ItemDataRole.DecorationRole.value)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)
_FONT = int(Qt.ItemDataRole.FontRole.value)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
_ACCESSIBLE = int(Qt.ItemDataRole.AccessibleTextRole.value)
_PATIENT_ID = int(PatientIdRole)
_SORT_KEY = int(SortKeyRole)
# The roles a cell is painted with that the roster styles; the others painting asks for
# (alignment, background, check state) are answered None at once.
_PAINTED_ROLES = frozenset({_DISPLAY, _DECORATION, _FOREGROUND, _FONT, _TOOLTIP})
_ROLES_ANSWERED_INT = frozenset({_PATIENT_ID, _SORT_KEY, _ACCESSIBLE})
_NAME_COLUMN = int(RosterColumn.NAME)
_STATUS_COLUMN = int(RosterColumn.STATUS)
_BUILT_IN_COLUMNS = len(RosterColumn)
_HORIZONTAL = Qt.Orientation.Horizontal
_BUILT_IN_HEADERS = tuple(_HEADERS[column] for column in RosterColumn)
# One row's painted cells: by role, one value per table column; a role the row does not style
# is absent.
_RowCells = dict[int, tuple[Any, ...]]


def _with(cells: tuple[Any, ...], column: int, value: Any) -> tuple[Any, ...]:
    return (*cells[:column], value, *cells[column + 1 :])


def _us_date(day: date) -> str:
    """MM/DD/YYYY, as ``strftime("%m/%d/%Y")`` but without its per-call format parsing."""
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


def _bold_font() -> QFont:
    if not _BOLD:
        font = QFont()
        font.setBold(True)
        _BOLD.append(font)
    return _BOLD[0]


def _local_today() -> date:
    return datetime.now(UTC).astimezone().date()


def next_due_text(due: date | None, overdue_days: int | None) -> str:
    """The "Next check-in" cell: the chart's next check-in date, "Overdue" in words first when
    a check-in or questionnaire is past due, or "Not monitored" (patients not in active
    treatment have no check-in plan)."""
    if due is None:
        return NOT_MONITORED_TEXT
    if overdue_days:
        days = f"{overdue_days} day{'s' if overdue_days != 1 else ''}"
        return f"Overdue {days}; check-in {_us_date(due)}"
    return _us_date(due)


class RosterTableModel(QAbstractTableModel):
    """Pages of ``RosterRow`` for the current filter and sort. Extra registered columns follow
    the built-in ones. ``PatientIdRole`` gives the patient id; ``SortKeyRole`` a sortable value.
    """

    def __init__(
        self, db: PracticeDatabase | None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> None:
        """``db`` None: a model with no rows (built before unlock) until ``attach``."""
        super().__init__()
        self._db_or_none = db
        self._page_size = page_size
        self.count_cap: int | None = COUNT_CAP  # broad searches are counted up to this
        self._filter = RosterFilter()
        self._sort: str = RosterSort.NAME
        self._ascending = True
        self._rows: list[RosterRow] = []
        self._total = 0
        rc.install_roster_columns()
        self._extras: tuple[RegisteredColumn, ...] = ()
        self._today = _local_today()
        self._alert_icon: QIcon | None = None
        self._total_is_lower_bound = False
        self._strategy: str | None = None
        self._prepared_for: object = None
        self._column_keys: tuple[str | None, ...] = ()
        self._header_labels: tuple[str, ...] = ()
        self._set_extras(visible_columns())
        self._loaded = False  # sort() before the first refresh only records the order
        # By row: the painted cells, made the first time the row is painted (None until then;
        # a new page drops them).
        self._painted: list[_RowCells | None] = []
        self._fetching = False  # fetchMore re-entered from a rowsInserted slot must do nothing
        # Made once, with the model (built while the key is derived): the first paint of the
        # rows makes no brush, font or icon (and PySide6 sets up their types then, not now).
        self._on_visit_brush = QBrush(_ON_VISIT)
        self._urgent_brush = QBrush(_URGENT)
        self._attention_brush = QBrush(_ATTENTION)
        _bold_font()
        self._warning_icon()
        if db is None:  # built while the key is derived: the first page's SQL compiled once
            warm_up_roster_sql()

    # --- queries -----------------------------------------------------------------------
    @property
    def has_database(self) -> bool:
        return self._db_or_none is not None

    def attach(self, db: PracticeDatabase) -> None:
        """The database to read (a model made before unlock); ``refresh`` loads the rows."""
        self._db_or_none = db

    @property
    def _db(self) -> PracticeDatabase:
        if self._db_or_none is None:
            raise RuntimeError("the roster has no database yet")
        return self._db_or_none

    @property
    def roster_filter(self) -> RosterFilter:
        return self._filter

    @property
    def total(self) -> int:
        """How many patients match (not just the rows loaded so far); at least this many when
        ``total_is_lower_bound``."""
        return self._total

    @property
    def total_is_lower_bound(self) -> bool:
        """True when more patients match than were counted (a broad search: "2,500+")."""
        return self._total_is_lower_bound

    def set_filter(self, roster_filter: RosterFilter) -> None:
        self._filter = roster_filter
        self.refresh()

    def refresh(self) -> None:
        """Ask SQL again for the first page (after a search, filter, sort or data change)."""
        self._prepare()
        # No transaction around it on a server: a new search is one statement there (the
        # count and the first page), so BEGIN and ROLLBACK would be two round trips more.
        with self._db.read_session(snapshot=False) as session:
            result = query_roster(
                session,
                self._filter,
                sort=self._sort,
                ascending=self._ascending,
                limit=self._page_size,
                count_cap=self.count_cap,
            )
        self.beginResetModel()
        self._set_extras(visible_columns())
        self._today = _local_today()
        self._rows = list(result.rows)
        self._total = result.total
        self._total_is_lower_bound = result.total_is_lower_bound
        self._strategy = result.strategy
        self._painted = [None] * len(self._rows)
        self._loaded = True
        self.endResetModel()

    def _set_extras(self, extras: tuple[RegisteredColumn, ...]) -> None:
        self._extras = extras
        # Per table column: the registered key, None for built-ins (no enum work in data()).
        self._column_keys = (None,) * _BUILT_IN_COLUMNS + tuple(c.key for c in extras)
        self._header_labels = _BUILT_IN_HEADERS + tuple(c.label for c in extras)

    def _prepare(self) -> None:
        # Once per engine (a new one after each unlock): indexes and stored statuses in place,
        # in a session that may write; every query after that only reads.
        if self._prepared_for is not self._db.engine:
            with self._db.session() as session:
                prepare_roster(session)
            self._prepared_for = self._db.engine

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        if parent.isValid() or self._fetching:
            return False
        return len(self._rows) < self._total or self._total_is_lower_bound

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if not self.canFetchMore(parent):
            return
        self._prepare()
        with self._db.read_session() as session:
            more = fetch_roster_page(
                session,
                self._filter,
                sort=self._sort,
                ascending=self._ascending,
                offset=len(self._rows),
                limit=self._page_size,
                strategy=self._strategy,
            )
        if not more:
            self._total = len(self._rows)
            self._total_is_lower_bound = False
            return
        if self._total_is_lower_bound:
            self._total = max(self._total, len(self._rows) + len(more))
            self._total_is_lower_bound = len(more) == self._page_size
        first = len(self._rows)
        self._fetching = True
        try:
            self.beginInsertRows(QModelIndex(), first, first + len(more) - 1)
            self._rows.extend(more)
            self._painted.extend([None] * len(more))
            self.endInsertRows()
        finally:
            self._fetching = False

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if column < len(RosterColumn):
            key: str = _SORTS[RosterColumn(column)]
        elif column - len(RosterColumn) < len(self._extras):
            key = self._extras[column - len(RosterColumn)].key
        else:
            return
        ascending = order == Qt.SortOrder.AscendingOrder
        if key == self._sort and ascending == self._ascending and self._loaded:
            return  # e.g. setSortingEnabled re-applying the current order
        self._sort = key
        self._ascending = ascending
        if self._loaded:
            self.refresh()

    # --- model -------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        # Asked twice for every painted cell (Qt checks each index it makes): no enum work.
        return 0 if parent.isValid() else len(self._column_keys)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != _DISPLAY or orientation != _HORIZONTAL:
            return None
        labels = self._header_labels
        return labels[section] if 0 <= section < len(labels) else None

    def row_at(self, row: int) -> RosterRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def patient_id_at(self, row: int) -> int | None:
        found = self.row_at(row)
        return found.patient_id if found else None

    def extra_key(self, column: int) -> str | None:
        """The registered column key shown in table column ``column`` (None for built-ins)."""
        keys = self._column_keys
        return keys[column] if 0 <= column < len(keys) else None

    def column_for_key(self, key: str) -> int | None:
        for offset, extra in enumerate(self._extras):
            if extra.key == key:
                return len(RosterColumn) + offset
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Painting asks for seven roles of every visible cell at each keystroke: the painted
        # ones come from one small dict per row, made the first time the row is painted (and
        # dropped with the page); the others return None at once.
        if role in _PAINTED_ROLES:
            number = index.row()  # -1 for an invalid index
            painted = self._painted
            if not 0 <= number < len(painted):
                return None
            cells = painted[number] or self._paint_row(number)
            values = cells.get(role)
            return None if values is None else values[index.column()]
        if role not in _ROLES_ANSWERED_INT:
            return None
        number = index.row()
        if not 0 <= number < len(self._rows):
            return None
        row = self._rows[number]
        column = index.column()
        if role == _PATIENT_ID:
            return row.patient_id
        if role == _SORT_KEY:
            return self._sort_key(row, column)
        if column == _STATUS_COLUMN and row.on_visit is not None:
            return self._status_tooltip(row)
        if column == _NAME_COLUMN:
            return f"{row.first_name} {row.last_name}"
        if self.extra_key(column) == rc.SAFETY_ALERT:
            return SAFETY_ALERT_TOOLTIP if row.extras.get(rc.SAFETY_ALERT) else "No alert"
        return None

    def _paint_row(self, number: int) -> _RowCells:
        """Every painted role of row ``number``, kept until the next page."""
        row = self._rows[number]
        keys = self._column_keys
        display = self._display_row(row)
        cells: _RowCells = {_DISPLAY: display}
        alert = bool(row.extras.get(rc.SAFETY_ALERT))
        on_visit = row.on_visit is not None
        foreground = tuple(self._foreground(row, k) if k else None for k in keys)
        if on_visit:
            foreground = _with(foreground, _STATUS_COLUMN, self._on_visit_brush)
        if any(brush is not None for brush in foreground):
            cells[_FOREGROUND] = foreground
        # A column too narrow for its text elides it; the tooltip always has it whole.
        tooltip = display
        if alert:
            tooltip = tuple(
                SAFETY_ALERT_TOOLTIP if k == rc.SAFETY_ALERT else text
                for k, text in zip(keys, display, strict=True)
            )
            cells[_DECORATION] = tuple(
                self._warning_icon() if k == rc.SAFETY_ALERT else None for k in keys
            )
        if on_visit:
            tooltip = _with(tooltip, _STATUS_COLUMN, self._status_tooltip(row))
        cells[_TOOLTIP] = tooltip
        if alert or on_visit:
            fonts = tuple(_bold_font() if k == rc.SAFETY_ALERT and alert else None for k in keys)
            cells[_FONT] = _with(fonts, _STATUS_COLUMN, _bold_font()) if on_visit else fonts
        self._painted[number] = cells
        return cells

    def _status_tooltip(self, row: RosterRow) -> str:
        label = STATUS_LABELS.get(row.status, row.status)
        return label if row.on_visit is None else on_visit_words(label, row.on_visit)

    def visit_marker(self, row: int) -> VisitMarker | None:
        """The lease of the patient in ``row`` when they are on a visit laptop."""
        found = self.row_at(row)
        return None if found is None else found.on_visit

    def _warning_icon(self) -> QIcon:
        if self._alert_icon is None:
            style = QApplication.style()
            self._alert_icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        return self._alert_icon

    def _foreground(self, row: RosterRow, key: str) -> QBrush | None:
        # Colour repeats what the words say; it never carries the meaning alone.
        if key == rc.SAFETY_ALERT and row.extras.get(rc.SAFETY_ALERT):
            return self._urgent_brush
        if key == rc.NEXT_CHECKIN_DUE and row.extras.get(rc.OVERDUE_DAYS):
            return self._attention_brush
        if key == rc.REVIEW_STATUS and row.extras.get(rc.REVIEW_STATUS) == "stale":
            return self._attention_brush
        return None

    def _display_row(self, row: RosterRow) -> tuple[str, ...]:
        """The words of every column of ``row``, in table order."""
        middle = f" {row.middle_name}" if row.middle_name else ""
        label = STATUS_LABELS.get(row.status, row.status)
        built_in = (
            f"{row.last_name}, {row.first_name}{middle}",
            f"{_us_date(row.dob)} ({row.age_on(self._today)})",
            row.mrn,
            row.phone,
            row.state,
            label if row.on_visit is None else ON_VISIT_TEXT,
            _us_date(row.last_visit_on) if row.last_visit_on else "—",
        )
        extras = self._column_keys[_BUILT_IN_COLUMNS:]
        return built_in + tuple(self._extra_text(row, key or "") for key in extras)

    def _display(self, row: RosterRow, column: int) -> str | None:
        if not 0 <= column < len(self._column_keys):
            return None
        return self._display_row(row)[column]

    def _extra_text(self, row: RosterRow, key: str) -> str:
        value = row.extras.get(key)
        if key == rc.SAFETY_ALERT:
            return SAFETY_ALERT_TEXT if value else ""
        if key == rc.REVIEW_STATUS:
            return REVIEW_LABELS.get(str(value), "Not checked")
        if key == rc.PROTOCOL_STATUS:
            return PROTOCOL_LABELS.get(str(value), "Not checked")
        if key == rc.NEXT_CHECKIN_DUE:
            overdue = row.extras.get(rc.OVERDUE_DAYS)
            return next_due_text(value, int(overdue) if overdue is not None else None)
        return "" if value is None else str(value)

    def _sort_key(self, row: RosterRow, column: int) -> Any:
        if column == RosterColumn.NAME:
            return f"{row.last_name}\t{row.first_name}".casefold()
        if column == RosterColumn.DOB:
            return row.dob.isoformat()
        if column == RosterColumn.LAST_VISIT:
            return row.last_visit_on.isoformat() if row.last_visit_on else ""
        if self.extra_key(column) == rc.NEXT_CHECKIN_DUE:
            due = row.extras.get(rc.NEXT_CHECKIN_DUE)
            return due.isoformat() if isinstance(due, date) else "9999-12-31"
        return self._display(row, column)
