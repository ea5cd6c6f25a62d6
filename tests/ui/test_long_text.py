"""Defect 11: a very long name shortens with "…" (whole name in the tooltip); the window never
grows past the screen and Save stays on it."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication

from ketadesk.models.patients import Patient
from tests.ui.screens import FULL_CHART_PATIENT, open_chart

LONG_LAST_NAME = ("Featherstonehaugh-Cholmondeley-" * 6)[:150]


def test_a_150_character_name_elides_and_the_window_stays_on_screen(qtbot, demo_window):
    window = demo_window
    with window.context.db.session() as session:
        session.get(Patient, FULL_CHART_PATIENT).last_name = LONG_LAST_NAME
    screen = QGuiApplication.primaryScreen().availableGeometry()
    chart = open_chart(qtbot, window, FULL_CHART_PATIENT)
    qtbot.wait(50)
    assert LONG_LAST_NAME in chart.title.full_text()
    assert chart.title.is_elided()
    assert chart.title.text().endswith("…")
    assert LONG_LAST_NAME in chart.title.toolTip()
    assert window.width() <= 1280 and window.frameGeometry().width() <= screen.width()
    assert window.minimumSizeHint().width() <= screen.width()
    # Save is wholly inside the window.
    save = chart.save_button
    top_left = save.mapTo(window, QPoint(0, 0))
    assert window.rect().contains(QRect(top_left, save.size())), (top_left, window.size())
    assert window.tabs.tabText(window.tabs.currentIndex()).endswith("…")
    window.grab().save(str(qtbot_screenshot_path()))


def qtbot_screenshot_path():
    from pathlib import Path

    folder = Path("/tmp/ketadesk-screens")
    folder.mkdir(exist_ok=True)
    return folder / "long-name-1280x800.png"
