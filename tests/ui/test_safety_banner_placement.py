"""A safety alert that arrives while the main window is open does not move the rows under the
user's pointer: while the user works with the pointer on the open screen, the banner waits
until the pointer leaves or rests (at most ``HOLD_AT_MOST_MS``), then appears. Real window,
real database, real mouse moves."""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtTest import QTest

from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes.outcomes import record_questionnaire
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.roster import safety_banner
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice

PHQ9_ITEM9_ONE = [1, 2, 1, 0, 1, 0, 1, 0, 1]


@pytest.fixture
def window(qtbot, prepared_practice, tmp_path):
    path = copy_practice(prepared_practice, tmp_path / "db")
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        session.add(Patient(mrn="KD-00000018", first_name="Zoë", last_name="Example",
                            dob=date(1988, 3, 4), state="FL", status="active"))
    win = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()  # the user's window: its input is watched from when it has focus
    qtbot.waitUntil(win.isActiveWindow, timeout=5_000)
    yield win
    win.context.ops.wait_for_done()
    if not db.is_locked:
        db.close()


def _an_item9_answer_arrives(window: MainWindow) -> None:
    """A PHQ-9 with item 9 answered is saved (a colleague at the front desk), and the window
    is told check-ins changed, as a save in any of its screens tells it."""
    context = window.context
    with context.db.session() as session:
        patient_id = session.query(Patient.id).one()[0]
        record_questionnaire(session, context.actor, patient_id, "phq9", PHQ9_ITEM9_ONE,
                             datetime.now().astimezone().date())
    context.data_changed.emit("checkins")


def _rows_y(window: MainWindow) -> int:
    return window.roster.table.viewport().mapTo(window, QPoint(0, 0)).y()


def test_an_alert_arriving_under_the_pointer_waits_until_the_pointer_leaves(qtbot, window):
    rows = window.roster.table.viewport()
    QTest.mouseMove(rows, QPoint(240, 12))
    QTest.mouseMove(rows, QPoint(120, 10))  # on the first row, about to click it
    qtbot.waitUntil(window.tabs.underMouse, timeout=2_000)
    before = _rows_y(window)
    assert window.safety_banner.isHidden()
    _an_item9_answer_arrives(window)
    window.context.ops.wait_for_done()
    for x in (130, 120, 130, 120):  # the read is back; the user points on: the banner holds
        QTest.mouseMove(rows, QPoint(x, 10))
        qtbot.wait(100)
        assert window.safety_banner.isHidden() and _rows_y(window) == before
    QTest.mouseMove(window.menuBar(), QPoint(5, 5))  # the pointer leaves the roster
    qtbot.waitUntil(window.safety_banner.isVisible, timeout=2_000)
    assert window.safety_banner.patient_ids() and "1 patient has" in (
        window.safety_banner.message_label.text()
    )
    assert _rows_y(window) > before


def test_an_alert_waits_for_the_pointer_at_most_so_long(qtbot, window, monkeypatch):
    monkeypatch.setattr(safety_banner, "HOLD_AT_MOST_MS", 800)
    rows = window.roster.table.viewport()
    QTest.mouseMove(rows, QPoint(120, 10))
    qtbot.waitUntil(window.tabs.underMouse, timeout=2_000)
    arrived = time.monotonic()
    _an_item9_answer_arrives(window)
    deadline = arrived + 5
    x = 120
    while not window.safety_banner.isVisible() and time.monotonic() < deadline:
        x = 240 if x == 120 else 120
        QTest.mouseMove(rows, QPoint(x, 10))  # the user keeps working on the rows
        qtbot.wait(100)
    assert window.safety_banner.isVisible()
    assert time.monotonic() - arrived >= 0.8
    assert window.tabs.underMouse()  # shown although the pointer never left


def test_a_pointer_resting_on_the_rows_does_not_keep_an_alert_back(qtbot, window, monkeypatch):
    from ketadesk.ui import main_window

    monkeypatch.setattr(main_window, "USER_AT_WORK_MS", 300)
    QTest.mouseMove(window.roster.table.viewport(), QPoint(120, 10))
    qtbot.waitUntil(window.tabs.underMouse, timeout=2_000)
    qtbot.wait(400)  # the pointer not moved or clicked since
    _an_item9_answer_arrives(window)
    window.context.ops.wait_for_done()
    qtbot.waitUntil(window.safety_banner.isVisible, timeout=1_000)
    assert window.tabs.underMouse()


def test_an_alert_arriving_with_the_pointer_elsewhere_shows_at_once(qtbot, window):
    QTest.mouseMove(window.menuBar(), QPoint(5, 5))
    _an_item9_answer_arrives(window)
    qtbot.waitUntil(window.safety_banner.isVisible, timeout=5_000)
