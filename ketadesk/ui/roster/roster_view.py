"""The roster screen: search as you type, state/status filters, the "Review stale", "Check-in
overdue" and "Safety alert open" filters, a row count and the table."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QModelIndex, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import STATUS_LABELS
from ketadesk.storage.roster import roster_columns as rc
from ketadesk.storage.roster.roster_query import RosterFilter
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.roster.roster_table_model import PatientIdRole, RosterColumn, RosterTableModel

SETTINGS_KEY = "roster/column_widths_v3"  # v3: the phone column was added
# A search runs at the next turn of the event loop after a key, with no pause: Qt fires a
# zero timer only once the key events already queued are handled, so keys typed while a
# search runs (it runs on the GUI thread) each restart the timer and are answered by one
# search for the text as it then stands. Waiting for a pause in typing only adds its length
# to every keystroke (the search itself is 5-30 ms at 50,000 patients).
SEARCH_DELAY_MS = 0
# Name, DOB (age), MRN, phone, state, status, last visit, safety, review, protocol, next check-in.
DEFAULT_WIDTHS = (176, 130, 100, 106, 44, 84, 86, 112, 132, 76, 190)  # fits 1,280 px
WIDEST_COUNT = "888,888+ patients"  # the count label keeps this width (see its set-up)
FLAG_FILTERS = (
    (rc.REVIEW_STALE, "Review stale"),
    (rc.CHECKIN_OVERDUE, "Check-in overdue"),
    (rc.SAFETY_ALERT_OPEN, "Safety alert open"),
    (rc.COMPLIANCE_DUE, "Compliance due"),
)


class _Table(QTableView):
    """The roster table; Enter opens the selected patient."""

    activated_row = Signal(int)

    def keyPressEvent(self, event: object) -> None:  # type: ignore[override]
        key = event.key()  # type: ignore[attr-defined]
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_row.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)  # type: ignore[arg-type]


class RosterView(QWidget):
    """Find a patient. Emits ``patient_opened(patient_id)`` and ``new_patient_requested()``."""

    patient_opened = Signal(int)
    new_patient_requested = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.model = RosterTableModel(None)  # rows after ``load`` (or below)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name, MRN, phone or date of birth (Ctrl+F)")
        self.search.setAccessibleName("Search patients")
        self.search.setClearButtonEnabled(True)
        self.state_filter = QComboBox()
        self.state_filter.setAccessibleName("State filter")
        for value, label in (("", "All states"), ("FL", "Florida"), ("NJ", "New Jersey")):
            self.state_filter.addItem(label, value)
        self.status_filter = QComboBox()
        self.status_filter.setAccessibleName("Status filter")
        self.status_filter.addItem("All statuses", "")
        for value, label in STATUS_LABELS.items():
            self.status_filter.addItem(label, value)
        self.flag_filters: dict[str, QCheckBox] = {}
        for key, label in FLAG_FILTERS:
            box = QCheckBox(label)
            box.setAccessibleName(f"Show only: {label}")
            self.flag_filters[key] = box
        self.count_label = QLabel()
        self.count_label.setAccessibleName("Number of patients shown")
        # As wide as the widest count from the first paint on: a count that changes width
        # with a key ("50,000 patients" -> "12 patients") would move the search box, the
        # filters beside it and re-lay out and repaint the whole bar on that key.
        self.count_label.setMinimumWidth(
            self.count_label.fontMetrics().horizontalAdvance(WIDEST_COUNT)
        )
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #b00020;")
        self.problem_label.setVisible(False)

        self.table = _Table()
        self.table.setAccessibleName("Patient roster")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Shift/Ctrl pick several patients (checking out a home visit's patients); Enter and a
        # double click still open the current one.
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(RosterColumn.NAME, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)

        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.state_filter)
        bar.addWidget(self.status_filter)
        for box in self.flag_filters.values():
            bar.addWidget(box)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.table, 1)

        # "Overdue" is the stored due date against today's date: re-ask SQL when the day turns.
        self._midnight_timer = QTimer(self)
        self._midnight_timer.setSingleShot(True)
        self._find = QShortcut(QKeySequence.StandardKey.Find, self)
        self._saving_widths = False
        self._restore_widths()
        self._connect_signals()
        if context.is_attached:
            self.model.attach(context.db)
            self.apply_filter()

    def load(self) -> None:
        """The first page of rows (a roster built before unlock has none until then); once."""
        if self.model.has_database:
            return
        self.model.attach(self._context.db)
        self.apply_filter()

    def _connect_signals(self) -> None:
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.search.returnPressed.connect(self._open_first_if_single)
        self._search_timer.timeout.connect(self.apply_filter)
        self.state_filter.currentIndexChanged.connect(self.apply_filter)
        self.status_filter.currentIndexChanged.connect(self.apply_filter)
        for box in self.flag_filters.values():
            box.toggled.connect(self.apply_filter)
        self.table.doubleClicked.connect(lambda index: self._open_row(index.row()))
        self.table.activated_row.connect(self._open_row)
        self._midnight_timer.timeout.connect(self._on_new_day)
        self._find.activated.connect(self.focus_search)
        self._context.data_changed.connect(self._on_data_changed)

    # --- behaviour -----------------------------------------------------------------------
    def current_filter(self) -> RosterFilter:
        state = str(self.state_filter.currentData() or "")
        status = str(self.status_filter.currentData() or "")
        return RosterFilter(
            search_text=self.search.text(),
            states=frozenset({state} if state else ()),
            statuses=frozenset({status} if status else ()),
            flags=frozenset(k for k, box in self.flag_filters.items() if box.isChecked()),
        )

    def apply_filter(self) -> None:
        """Query SQL for the current search and filters now (the search box calls it)."""
        self._search_timer.stop()
        try:
            self.model.set_filter(self.current_filter())
        except UserFacingError as error:
            self.problem_label.setText(error.message)
            self.problem_label.setVisible(True)
            return
        self.problem_label.setVisible(False)
        self._update_count()
        self._arm_midnight_timer()

    def _arm_midnight_timer(self) -> None:
        now = datetime.now().astimezone()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0)
        self._midnight_timer.start(max(1000, int((midnight - now).total_seconds() * 1000)))

    def _on_new_day(self) -> None:
        if not self._context.db.is_locked:
            self.refresh_keeping_selection()
        self._arm_midnight_timer()

    def _update_count(self) -> None:
        total = self.model.total
        if self.model.total_is_lower_bound:
            self.count_label.setText(f"{total:,}+ patients")
            self.count_label.setToolTip(
                f"More than {total:,} patients match; type more to narrow the search."
            )
        else:
            self.count_label.setText(f"{total:,} patient{'s' if total != 1 else ''}")
            self.count_label.setToolTip("")
        if total and not self.table.currentIndex().isValid():
            self.table.selectRow(0)

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _open_row(self, row: int) -> None:
        patient_id = self.model.data(self.model.index(row, 0), PatientIdRole)
        if patient_id is not None:
            self.patient_opened.emit(int(patient_id))

    def _open_first_if_single(self) -> None:
        self.apply_filter()
        if self.model.rowCount() >= 1:
            index = self.table.currentIndex()
            self._open_row(index.row() if index.isValid() else 0)

    def _on_data_changed(self, what: str) -> None:
        refreshing = ("patients", "reviews", "protocols", "checkins", "settings", "visits")
        if what in refreshing or what.startswith("patient:"):
            self.refresh_keeping_selection()

    def refresh_keeping_selection(self) -> None:
        """Ask SQL again for the current filter, keeping the selected patient selected."""
        selected = self.selected_patient_id()
        self.model.refresh()
        self._update_count()
        self._select_patient(selected)

    def selected_patient_id(self) -> int | None:
        index: QModelIndex = self.table.currentIndex()
        return self.model.patient_id_at(index.row()) if index.isValid() else None

    def selected_patient_ids(self) -> list[int]:
        """The patients of the selected rows, top to bottom (the current one if none)."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        if not rows and self.table.currentIndex().isValid():
            rows = [self.table.currentIndex().row()]
        found = (self.model.patient_id_at(row) for row in rows)
        return [pid for pid in found if pid is not None]

    def _select_patient(self, patient_id: int | None) -> None:
        if patient_id is None:
            return
        for row in range(self.model.rowCount()):
            if self.model.patient_id_at(row) == patient_id:
                self.table.selectRow(row)
                return

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._saving_widths:
            # After the first show has laid the columns out (the stretched last column is
            # resized then): only the user's own resizing is remembered, and showing the
            # roster writes no settings.
            self._saving_widths = True
            QTimer.singleShot(0, self, self._start_saving_widths)

    def _start_saving_widths(self) -> None:
        self.table.horizontalHeader().sectionResized.connect(self._save_widths)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._midnight_timer.stop()
        super().closeEvent(event)

    # --- remembered column widths ---------------------------------------------------------
    def _restore_widths(self) -> None:
        saved = QSettings().value(SETTINGS_KEY, [])
        widths = [int(w) for w in saved] if isinstance(saved, list) else []
        for column, width in enumerate(widths or DEFAULT_WIDTHS):
            if column < self.model.columnCount() and width > 20:
                self.table.setColumnWidth(column, width)

    def _save_widths(self) -> None:
        header = self.table.horizontalHeader()
        QSettings().setValue(SETTINGS_KEY, [header.sectionSize(i) for i in range(header.count())])
