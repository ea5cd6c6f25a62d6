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


def test_an_op_stopped_by_the_page_check_opens_no_dialog(qtbot, monkeypatch):
    """The main window answers a failed page check with one notice; views that were loading
    must not each open a modal dialog on top of it."""
    from PySide6.QtWidgets import QMessageBox

    from ketadesk.storage.security.database import DatabaseDamagedError

    dialogs: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: dialogs.append(args[2]))
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: dialogs.append(args[2]))
    runner = OpRunner()

    def damaged() -> None:
        raise DatabaseDamagedError("The practice database is damaged.")

    def refused() -> None:
        raise UserFacingError("Nothing was saved.")

    for work in (damaged, refused):
        runner.run(work)
    qtbot.waitUntil(lambda: runner.wait_for_done(0) and dialogs == ["Nothing was saved."],
                    timeout=5000)


def test_errors_arriving_while_an_error_dialog_is_open_do_not_stack(qtbot, monkeypatch):
    """A modal dialog keeps delivering other ops' results; each used to open a dialog on top."""
    from PySide6.QtWidgets import QMessageBox

    from ketadesk.ui.common.ops import show_error

    dialogs: list[str] = []

    def modal(_parent, _title, text):
        dialogs.append(text)
        show_error(None, UserFacingError("second, while the first is open"))

    monkeypatch.setattr(QMessageBox, "warning", modal)
    show_error(None, UserFacingError("first"))
    show_error(None, UserFacingError("after the first was closed"))
    assert dialogs == ["first", "after the first was closed"]


def test_after_the_practice_is_closed_for_damage_failing_reads_open_no_dialog(qtbot, monkeypatch):
    """Reads under way when the page check fails break on the damaged pages (disk I/O
    errors); the main window's one notice already says why."""
    from PySide6.QtWidgets import QMessageBox

    dialogs: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: dialogs.append(args[2]))
    runner = OpRunner()
    runner.closed_for_damage()

    def read_of_a_damaged_page() -> None:
        raise OSError("disk I/O error")

    runner.run(read_of_a_damaged_page)
    qtbot.waitUntil(lambda: runner.wait_for_done(0) and not runner._running, timeout=5000)
    assert dialogs == []
    fresh = OpRunner()
    fresh.run(read_of_a_damaged_page)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=5000)
