"""Roster view and model against a real encrypted database, offscreen."""

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
def context(practice, qapp):
    qapp.setOrganizationName("KetaDeskTests")
    with practice.db.session() as s:
        populate_demo_patients(s, 450, entered_by="drquill", today=date(2026, 3, 15))
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
        populate_demo_patients(s, 5, entered_by="drquill", today=date(2026, 3, 15), seed=1)
    context.data_changed.emit("patients")
    assert view.count_label.text() == "455 patients"


@pytest.fixture
def clinical_context(practice, qapp):
    from datetime import UTC, datetime

    from ketadesk.storage.demo import demo_outcomes, demo_protocols, demo_reviews
    from ketadesk.storage.outcomes import outcomes

    qapp.setOrganizationName("KetaDeskTests")
    with practice.db.session() as s:
        populate_demo_patients(s, 120, entered_by="drquill")
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


def test_clinical_columns_are_computed_off_the_gui_thread_then_shown(
    clinical_context, qtbot
) -> None:
    from ketadesk.storage.roster import roster_columns as rc
    from ketadesk.ui.roster.roster_table_model import CHECKING_TEXT, PROTOCOL_LABELS, REVIEW_LABELS

    view = RosterView(clinical_context)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view.model.status_pending, timeout=60_000)
    headers = [
        view.model.headerData(c, Qt.Orientation.Horizontal) for c in range(view.model.columnCount())
    ]
    assert headers[-4:] == ["Safety", "Interaction review", "Protocol", "Next check-in"]
    reviews = _cells(view, rc.REVIEW_STATUS)
    assert CHECKING_TEXT not in reviews
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
    qtbot.waitUntil(lambda: not view.model.status_pending, timeout=60_000)
    column = view.model.column_for_key(rc.SAFETY_ALERT)
    view.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    assert view.model.patient_id_at(0) == 5 or _cells(view, rc.SAFETY_ALERT)[0] == "Safety alert"
    column = view.model.column_for_key(rc.REVIEW_STATUS)
    view.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    order = {"Stale": 0, "None": 1, "Current": 2}
    shown = [order[c] for c in _cells(view, rc.REVIEW_STATUS)]
    assert shown == sorted(shown)
