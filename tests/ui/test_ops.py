"""Work off the GUI thread: results come back on the GUI thread, or are dropped safely."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication, QLabel

from ketadesk.core.errors import UserFacingError
from ketadesk.ui.common.ops import OpRunner


def test_success_is_delivered_on_the_gui_thread_then_changes_announced(qtbot):
    runner = OpRunner()
    seen: list[tuple[str, bool]] = []
    gui_thread = QApplication.instance().thread()

    def work() -> str:
        assert QThread.currentThread() is not gui_thread
        return "done"

    with qtbot.waitSignal(runner.data_changed, timeout=5000) as changed:
        runner.run(work, lambda value: seen.append((value, QThread.currentThread() is gui_thread)),
                   changes="patients")
    assert seen == [("done", True)]
    assert changed.args == ["patients"]


def test_expected_failures_reach_on_failure(qtbot):
    runner = OpRunner()
    errors: list[BaseException] = []

    def work() -> None:
        raise UserFacingError("Nothing was saved.")

    runner.run(work, on_failure=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert str(errors[0]) == "Nothing was saved."


def test_a_result_for_a_closed_widget_is_dropped_not_raised(qtbot):
    runner = OpRunner()
    label = QLabel()
    release = threading.Event()
    runner.run(lambda: release.wait(5) and "late text", label.setText, changes="patients")
    shiboken6.delete(label)  # the screen was closed while the work ran
    with qtbot.waitSignal(runner.data_changed, timeout=5000):
        release.set()
    assert not shiboken6.isValid(label)
