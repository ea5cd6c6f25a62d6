"""Roster view and model against a real encrypted database and a real practice server."""

from __future__ import annotations

import sys
from datetime import date

import pytest
from PySide6.QtCore import Qt

from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.roster.roster_table_model import PatientIdRole, RosterColumn, RosterTableModel
from ketadesk.ui.roster.roster_view import RosterView


@pytest.fixture
def context(practice_on, qapp):
    practice = practice_on
    qapp.setOrganizationName("KetaDeskTests")
    with practice.db.session() as s:
        populate_demo_patients(
            s, 450, entered_by=practice.physician.user_name, today=date(2026, 3, 15)
        )
    context = AppContext(practice.db, practice.physician)
    yield context
    context.ops.wait_for_done()  # the roster's status computation, before the database closes


def test_model_passes_qtmodeltester(context, qtmodeltester) -> None:
    model = RosterTableModel(context.db, page_size=50)
    model.refresh()
    qtmodeltester.check(model)
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == 450 == model.total
    qtmodeltester.check(model)


def test_decoration_role_does_not_leak_none_references(context) -> None:
    model = RosterTableModel(context.db)
    model.refresh()
    index = model.index(3, RosterColumn.NAME)
    before = sys.getrefcount(None)
    for _ in range(10_000):
        index.data(Qt.ItemDataRole.DecorationRole)
    assert sys.getrefcount(None) - before < 10


def test_search_filters_count_and_open(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    assert view.count_label.text() == "450 patients"
    view.search.setText("zoe")
    qtbot.waitUntil(lambda: view.count_label.text() != "450 patients", timeout=2000)
    for row in range(view.model.rowCount()):
        assert "Zoë" in view.model.data(view.model.index(row, RosterColumn.NAME))
    view.search.clear()
    view.state_filter.setCurrentIndex(view.state_filter.findData("NJ"))
    view.status_filter.setCurrentIndex(view.status_filter.findData("paused"))
    states = {
        view.model.data(view.model.index(r, RosterColumn.STATE))
        for r in range(view.model.rowCount())
    }
    assert states == {"NJ"}
    with qtbot.waitSignal(view.patient_opened) as opened:
        view.table.setFocus()
        view.table.selectRow(0)
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == [view.model.data(view.model.index(0, 0), PatientIdRole)]


def test_sort_by_header_is_done_in_sql(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    view.table.sortByColumn(RosterColumn.DOB, Qt.SortOrder.DescendingOrder)
    model = view.model
    while model.canFetchMore():
        model.fetchMore()
    dobs = [model.row_at(r).dob for r in range(model.rowCount())]
    assert len(dobs) == 450 and dobs == sorted(dobs, reverse=True)


def test_shortcuts_and_accessible_names(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    from PySide6.QtGui import QKeySequence

    view.table.setFocus()
    assert view._find.key() == QKeySequence(QKeySequence.StandardKey.Find)
    view._find.activated.emit()
    assert view.focusWidget() is view.search
    # Ctrl+N belongs to the main window's File > New patient (one binding per window).
    assert not hasattr(view, "_new")
    for widget in (view.search, view.state_filter, view.status_filter, view.table):
        assert widget.accessibleName()


def test_refreshes_when_patients_change(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    with context.db.session() as s:
        populate_demo_patients(
            s, 5, entered_by=context.actor.user_name, today=date(2026, 3, 15), seed=1
        )
    context.data_changed.emit("patients")
    assert view.count_label.text() == "455 patients"


@pytest.fixture
def clinical_context(practice_on, qapp):
    practice = practice_on
    from datetime import UTC, datetime

    from ketadesk.storage.demo import demo_outcomes, demo_protocols, demo_reviews
    from ketadesk.storage.outcomes import outcomes

    qapp.setOrganizationName("KetaDeskTests")
    with practice.db.session() as s:
        populate_demo_patients(s, 120, entered_by=practice.physician.user_name)
    demo_reviews.populate(practice.db, practice.physician)
    demo_protocols.populate(practice.db, practice.physician)
    demo_outcomes.populate(practice.db, practice.physician)
    today = datetime.now(UTC).astimezone().date()
    with practice.db.session() as s:
        # Patient 5 answers item 9 with "several days": an unacknowledged alert.
        outcomes.record_questionnaire(
            s, practice.physician, 5, "PHQ-9", [1, 1, 1, 1, 1, 1, 1, 1, 1], today, today=today
        )
    context = AppContext(practice.db, practice.physician)
    yield context
    context.ops.wait_for_done()


def _cells(view, key):
    column = view.model.column_for_key(key)
    assert column is not None
    return [view.model.data(view.model.index(r, column)) for r in range(view.model.rowCount())]


def test_clinical_columns_are_shown_from_the_stored_status(clinical_context, qtbot) -> None:
    from ketadesk.storage.roster import roster_columns as rc
    from ketadesk.ui.roster.roster_table_model import PROTOCOL_LABELS, REVIEW_LABELS

    view = RosterView(clinical_context)
    qtbot.addWidget(view)
    headers = [
        view.model.headerData(c, Qt.Orientation.Horizontal) for c in range(view.model.columnCount())
    ]
    assert headers[-4:] == ["Safety", "Interaction review", "Protocol", "Next check-in"]
    reviews = _cells(view, rc.REVIEW_STATUS)
    assert set(reviews) <= set(REVIEW_LABELS.values())
    assert set(_cells(view, rc.PROTOCOL_STATUS)) <= set(PROTOCOL_LABELS.values())
    dues = _cells(view, rc.NEXT_CHECKIN_DUE)
    assert any(d.startswith("Overdue") for d in dues)
    assert any(d[:2].isdigit() for d in dues)

    view.flag_filters[rc.CHECKIN_OVERDUE].setChecked(True)
    assert view.model.total > 0
    assert all(d.startswith("Overdue") for d in _cells(view, rc.NEXT_CHECKIN_DUE))
    view.flag_filters[rc.CHECKIN_OVERDUE].setChecked(False)

    view.flag_filters[rc.SAFETY_ALERT_OPEN].setChecked(True)
    assert 5 in {view.model.patient_id_at(r) for r in range(view.model.rowCount())}
    column = view.model.column_for_key(rc.SAFETY_ALERT)
    for row in range(view.model.rowCount()):
        index = view.model.index(row, column)
        assert index.data() == "Safety alert"  # words, not colour alone
        assert not index.data(Qt.ItemDataRole.DecorationRole).isNull()
        assert "988" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_sorting_a_clinical_column_by_header(clinical_context, qtbot) -> None:
    from ketadesk.storage.roster import roster_columns as rc

    view = RosterView(clinical_context)
    qtbot.addWidget(view)
    column = view.model.column_for_key(rc.SAFETY_ALERT)
    view.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    assert view.model.patient_id_at(0) == 5 or _cells(view, rc.SAFETY_ALERT)[0] == "Safety alert"
    column = view.model.column_for_key(rc.REVIEW_STATUS)
    view.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    order = {"Stale": 0, "None": 1, "Current": 2}
    shown = [order[c] for c in _cells(view, rc.REVIEW_STATUS)]
    assert shown == sorted(shown)


def _shown_ids(view) -> set[int]:
    return {view.model.patient_id_at(r) for r in range(view.model.rowCount())}


def test_typed_mrn_endings_and_dates_of_birth_find_the_patient(context, qtbot) -> None:
    """Defect 18 of issue 13, typed key by key into the search box."""
    from ketadesk.core.mrn import format_mrn
    from ketadesk.models.patients import Patient

    with context.db.session() as s:
        patient = s.get(Patient, 123)
        dob, phone = patient.dob, patient.phone
    view = RosterView(context)
    qtbot.addWidget(view)
    view.show()
    ending = format_mrn(123)[-4:]  # e.g. "1235": the sequence number and its check digit
    for typed in (ending, f"KD{ending}", dob.strftime("%m%d%Y"), dob.strftime("%m/%d/%y")):
        view.search.clear()
        qtbot.keyClicks(view.search, typed)
        qtbot.waitUntil(lambda t=typed: view.model.roster_filter.search_text == t, timeout=2000)
        assert 123 in _shown_ids(view), typed
    # A phone search shows the phone: the reason a row matched is on screen.
    view.search.clear()
    qtbot.keyClicks(view.search, phone[-8:])
    qtbot.waitUntil(lambda: view.model.roster_filter.search_text == phone[-8:], timeout=2000)
    assert 123 in _shown_ids(view)
    for row in range(view.model.rowCount()):
        shown = view.model.data(view.model.index(row, RosterColumn.PHONE))
        assert phone[-8:] in shown
    assert not view.grab().isNull()


def test_broad_search_shows_a_lower_bound_count(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    view.model.count_cap = 250  # all 450 patients have a 555 phone
    qtbot.keyClicks(view.search, "555")
    qtbot.waitUntil(lambda: view.count_label.text() == "250+ patients", timeout=2000)
    while view.model.canFetchMore():
        view.model.fetchMore()
    assert view.model.rowCount() == 450


def _drag_column_border(header, column: int, by: int) -> None:
    """Press on the right border of ``column``'s header, move ``by`` pixels, release."""
    from PySide6.QtCore import QEvent, QPoint, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    x = header.sectionViewportPosition(column) + header.sectionSize(column) - 1
    start = QPoint(x, header.height() // 2)
    QTest.mousePress(header.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, by + 1, 5):
        here = QPointF(start.x() + step, start.y())
        move = QMouseEvent(
            QEvent.Type.MouseMove, here, header.viewport().mapToGlobal(here),
            Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
        )  # fmt: skip
        QApplication.sendEvent(header.viewport(), move)
    QTest.mouseRelease(
        header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(start.x() + by, start.y())
    )


def test_showing_the_roster_writes_no_widths_and_a_dragged_width_is_kept(context, qtbot) -> None:
    from PySide6.QtCore import QSettings

    from ketadesk.ui.roster.roster_view import SETTINGS_KEY

    QSettings().remove(SETTINGS_KEY)
    view = RosterView(context)
    qtbot.addWidget(view)
    view.resize(1280, 700)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)  # the first layout and paint, and the posted connection
    assert QSettings().value(SETTINGS_KEY) is None  # laying the columns out saved nothing
    header = view.table.horizontalHeader()
    before = header.sectionSize(RosterColumn.MRN)
    _drag_column_border(header, RosterColumn.MRN, 41)
    assert header.sectionSize(RosterColumn.MRN) > before
    saved = [int(w) for w in QSettings().value(SETTINGS_KEY)]
    assert saved[RosterColumn.MRN] == header.sectionSize(RosterColumn.MRN)
    again = RosterView(context)
    qtbot.addWidget(again)
    assert again.table.columnWidth(RosterColumn.MRN) == saved[RosterColumn.MRN]


def _post_key(widget, char: str) -> None:
    """A key as the window system delivers it: queued, handled at the next turn of the loop."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    key = Qt.Key(ord(char.upper()))
    for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
        QApplication.postEvent(widget, QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier, char))


def test_keys_queued_together_make_one_search_for_the_final_text(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    view.show()
    view.search.setFocus()
    searched: list[str] = []
    view.model.modelReset.connect(lambda: searched.append(view.model.roster_filter.search_text))
    for char in "zoe":  # typed while the GUI thread was busy: all three wait in the queue
        _post_key(view.search, char)
    qtbot.waitUntil(lambda: bool(searched), timeout=2000)
    qtbot.wait(100)
    assert view.search.text() == "zoe"
    assert searched == ["zoe"]
    names = [view.model.data(view.model.index(r, RosterColumn.NAME))
             for r in range(view.model.rowCount())]
    assert names and all("Zoë" in name for name in names)


def test_a_key_typed_while_a_search_runs_is_searched_for_next(context, qtbot) -> None:
    view = RosterView(context)
    qtbot.addWidget(view)
    view.show()
    view.search.setFocus()
    searched: list[str] = []

    def on_reset() -> None:
        searched.append(view.model.roster_filter.search_text)
        if len(searched) == 1:  # the search for "zo" is still on the GUI thread: "e" arrives
            _post_key(view.search, "e")

    view.model.modelReset.connect(on_reset)
    _post_key(view.search, "z")
    _post_key(view.search, "o")
    qtbot.waitUntil(lambda: len(searched) == 2, timeout=2000)
    qtbot.wait(100)
    assert searched == ["zo", "zoe"]  # nothing lost, nothing searched twice
    assert view.search.text() == "zoe"
    expected = RosterTableModel(context.db)
    expected.set_filter(view.current_filter())
    shown = [view.model.patient_id_at(r) for r in range(view.model.rowCount())]
    assert shown == [expected.patient_id_at(r) for r in range(expected.rowCount())]
    assert view.model.total == expected.total


def test_typing_a_search_keeps_the_search_box_and_filters_in_place(context, qtbot) -> None:
    """The count beside the filters changes with each key ("450 patients", "1 patient",
    "250+ patients"): the search box and the filters keep their place and size, so a key
    repaints the count and the rows, not the whole bar."""
    view = RosterView(context)
    qtbot.addWidget(view)
    view.resize(1280, 700)
    view.show()
    qtbot.waitExposed(view)
    view.search.setFocus()
    bar = [view.search, view.state_filter, view.status_filter, *view.flag_filters.values()]

    def places() -> list[object]:
        return [widget.geometry() for widget in bar]

    first = places()
    counts = {view.count_label.text()}
    view.model.count_cap = 250
    for char in "555":  # 450 -> 250+ patients
        qtbot.keyClick(view.search, char)
        qtbot.waitUntil(lambda: view.model.roster_filter.search_text == view.search.text())
        counts.add(view.count_label.text())
        assert places() == first
    view.search.clear()
    for char in "zoe":
        qtbot.keyClick(view.search, char)
        qtbot.waitUntil(lambda: view.model.roster_filter.search_text == view.search.text())
        counts.add(view.count_label.text())
        assert places() == first
    assert {"450 patients", "250+ patients"} <= counts and len(counts) >= 4
    assert view.count_label.width() >= view.count_label.sizeHint().width()  # never cut
