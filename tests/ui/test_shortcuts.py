"""Defect 10: no key sequence is bound twice in a window, and every shortcut works when pressed.

Qt answers an ambiguous binding with "Ambiguous shortcut overload" on stderr and does nothing:
Ctrl+N, shown in the File menu, did nothing because the roster bound it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.main_window import MainWindow
from tests.ui.conftest import DEMO_PASSWORD
from tests.ui.screens import DRAFT_PROTOCOL_PATIENT, FULL_CHART_PATIENT, open_chart


def active_bindings(window: QWidget) -> list[tuple[str, QAction | QShortcut]]:
    """Key sequences that would fire now: enabled actions of the window, and enabled
    shortcuts whose widget is on screen (a hidden tab's shortcuts sleep)."""
    found: list[tuple[str, QAction | QShortcut]] = []
    for action in window.findChildren(QAction):
        if action.isEnabled() and action.isVisible():
            found += [(seq.toString(), action) for seq in action.shortcuts() if not seq.isEmpty()]
    for shortcut in window.findChildren(QShortcut):
        owner = shortcut.parent()
        if shortcut.isEnabled() and isinstance(owner, QWidget) and owner.isVisible():
            found += [(s.toString(), shortcut) for s in shortcut.keys() if not s.isEmpty()]
    return found


def assert_unique(window: QWidget, where: str) -> None:
    counts = Counter(key for key, _ in active_bindings(window))
    twice = {key: n for key, n in counts.items() if n > 1}
    assert not twice, f"{where}: bound more than once: {twice}"


def press(qtbot, window: QWidget, sequence: str) -> None:
    combination = QKeySequence(sequence)[0]
    target = QApplication.focusWidget() or window
    qtbot.keyClick(target, combination.key(), combination.keyboardModifiers())


# Bumped after each test: a poller left waiting (most keys open no dialog) stops, instead of
# rejecting the next dialog a later test opens.
_TEST_GENERATION = [0]


@pytest.fixture(autouse=True)
def _stop_pollers_after_the_test() -> Iterator[None]:
    yield
    _TEST_GENERATION[0] += 1


def close_next_dialog() -> None:
    generation = _TEST_GENERATION[0]

    def attempt() -> None:
        if _TEST_GENERATION[0] != generation:
            return
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QDialog):
            dialog.reject()
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


def test_no_key_sequence_is_bound_twice_and_each_one_works(qtbot, demo_window: MainWindow):
    window = demo_window
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    assert_unique(window, "roster")
    roster_keys = {key for key, _ in active_bindings(window)}
    assert {"Ctrl+N", "Ctrl+F", "Ctrl+L", "Ctrl+Q"} <= roster_keys

    # Ctrl+F on the roster: the cursor goes to the search box.
    window.roster.table.setFocus()
    press(qtbot, window, "Ctrl+F")
    assert window.focusWidget() is window.roster.search

    # Ctrl+N: File > New patient opens an empty chart.
    tabs_before = window.tabs.count()
    press(qtbot, window, "Ctrl+N")
    assert window.tabs.count() == tabs_before + 1
    new_chart = window.tabs.currentWidget()
    assert isinstance(new_chart, PatientChart) and new_chart.patient_id is None
    window._close_tab(window.tabs.indexOf(new_chart))

    # Two charts open: only the showing one's Ctrl+S is awake.
    open_chart(qtbot, window, DRAFT_PROTOCOL_PATIENT)
    chart = open_chart(qtbot, window, FULL_CHART_PATIENT)
    for index in range(chart.tabs.count()):
        chart.tabs.setCurrentIndex(index)
        assert_unique(window, f"chart tab {chart.tabs.tabText(index)}")
    chart.tabs.setCurrentIndex(0)
    fired: list[str] = []
    for key, owner in active_bindings(window):
        if key in ("Ctrl+L", "Ctrl+Q", "Ctrl+N"):
            continue  # below, and Ctrl+N above
        signal = owner.triggered if isinstance(owner, QAction) else owner.activated
        # After a dialog closes, the window is active again (Xvfb runs no window manager to
        # hand activation back, so the test does what the window manager would).
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
        close_next_dialog()  # Ctrl+P opens the export dialog
        with qtbot.waitSignal(signal, timeout=10_000):
            press(qtbot, window, key)
        fired.append(key)
    assert {"Ctrl+S", "Ctrl+P"} <= set(fired)

    # Ctrl+L locks; typing the password and Enter unlocks (no mouse).
    press(qtbot, window, "Ctrl+L")
    assert window.is_locked
    window.lock_screen.password_edit.setFocus()
    qtbot.keyClicks(window.lock_screen.password_edit, DEMO_PASSWORD)
    with qtbot.waitSignal(window.unlocked, timeout=20_000):
        qtbot.keyClick(window.lock_screen.password_edit, Qt.Key.Key_Return)

    # Ctrl+Q quits: the window closes.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    with qtbot.waitSignal(window.logged_out, timeout=5_000):
        press(qtbot, window, "Ctrl+Q")
