"""Long work off the GUI thread.

``OpRunner.run(fn, on_success, changes="patients")`` runs ``fn`` on a worker thread, calls
``on_success(result)`` back on the GUI thread, routes errors to one dialog, then emits one
``data_changed`` signal that views subscribe to. Never touch a widget from ``fn``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.database import DatabaseDamagedError

log = logging.getLogger(__name__)

# An error dialog is modal: while one is open, Qt keeps delivering the results of other ops, and
# each failure would open another dialog on top (and, at shutdown, recurse until Qt aborts). The
# first dialog is shown; the ones that arrive while it is open are logged and dropped.
_dialog_open = False


class _Relay(QObject):
    finished = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as error:  # delivered to the GUI thread, shown there
            self._deliver(self._relay.failed, error)
        else:
            self._deliver(self._relay.finished, result)

    @staticmethod
    def _deliver(signal: Any, value: object) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the widget that asked was closed meanwhile: nobody to tell
            log.debug("op finished after its receiver was deleted")


def show_error(parent: QWidget | None, error: BaseException) -> None:
    """The one place errors become a dialog. Unexpected errors never show patient data."""
    global _dialog_open
    if _dialog_open:
        log.warning("%s while an error dialog was open: not shown", type(error).__name__)
        return
    _dialog_open = True
    try:
        _show_error_dialog(parent, error)
    finally:
        _dialog_open = False


def _show_error_dialog(parent: QWidget | None, error: BaseException) -> None:
    if isinstance(error, UserFacingError):
        QMessageBox.warning(parent, "KetaDesk", error.message)
        return
    # The message of an unexpected error may hold patient data: log its type and where only.
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    log.error("unexpected %s at %s", type(error).__name__,
              [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in where])
    QMessageBox.critical(
        parent, "KetaDesk",
        "Something went wrong and this action was not completed. Nothing already saved was "
        f"lost.\n\n(Technical: {type(error).__name__})",
    )


def _call_if_receiver_alive(callback: Callable[[Any], None], value: Any) -> None:
    """Call back the widget that started an op, unless it was closed while the op ran."""
    receiver = getattr(callback, "__self__", None)
    if isinstance(receiver, QObject) and not shiboken6.isValid(receiver):
        log.debug("op result dropped: its widget was closed")
        return
    try:
        callback(value)
    except RuntimeError as error:
        if "already deleted" not in str(error):
            raise
        log.debug("op result dropped: a widget it updates was closed")


class OpRunner(QObject):
    data_changed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool.globalInstance()
        self._running: set[_Relay] = set()
        self._closed_for_damage = False

    def run(
        self,
        fn: Callable[[], Any],
        on_success: Callable[[Any], None] | None = None,
        *,
        on_failure: Callable[[BaseException], None] | None = None,
        changes: str | None = None,
        parent_widget: QWidget | None = None,
    ) -> None:
        relay = _Relay()
        self._running.add(relay)
        self.busy_changed.emit(True)

        def done(result: Any) -> None:
            self._finish(relay)
            if on_success is not None:
                _call_if_receiver_alive(on_success, result)
            if changes:
                self.data_changed.emit(changes)

        def failed(error: BaseException) -> None:
            self._finish(relay)
            if on_failure is not None:
                _call_if_receiver_alive(on_failure, error)
            elif self._closed_for_damage or isinstance(error, DatabaseDamagedError):
                # Only the page check raises this to an op, and the main window answers that
                # check by hiding the data behind one notice; a dialog for every view that was
                # loading would bury it.
                # Once the practice is closed for damage, reads that were under way fail on the
                # damaged pages (disk I/O errors): the same notice already says why.
                log.warning("an op stopped: the database failed its page check (%s)",
                            type(error).__name__)
            else:
                show_error(parent_widget or QApplication.activeWindow(), error)

        relay.finished.connect(done)
        relay.failed.connect(failed)
        self._pool.start(_Job(fn, relay))

    def closed_for_damage(self) -> None:
        """The practice was closed because its pages failed the check: ops still under way
        fail without a dialog of their own (the main window shows one notice)."""
        self._closed_for_damage = True

    def _finish(self, relay: _Relay) -> None:
        self._running.discard(relay)
        if not self._running:
            self.busy_changed.emit(False)

    def wait_for_done(self, msecs: int = 30000) -> bool:
        """For tests and shutdown: wait until every queued op has finished."""
        return bool(self._pool.waitForDone(msecs))
