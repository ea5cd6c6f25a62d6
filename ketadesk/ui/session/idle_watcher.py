"""Notices when nobody has touched the keyboard or mouse for a while."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QWindow

_POINTER = {QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel}
_ACTIVITY = {
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
    QEvent.Type.InputMethod,
}


class IdleWatcher(QObject):
    """Emits ``idle_timed_out`` once after ``timeout_ms`` without user input.

    It watches the app's top-level windows (``QWindow``), not the application: the keyboard
    and the mouse reach every widget through its window, so an event filter there sees all
    the user's input, while one on the application would be called from Python for every
    event of every object (≈ 60 on each key typed in the roster's search: paints, timers,
    layout requests). A window made later is watched from when it takes the focus, or at the
    next poll (within a second) if it never does."""

    idle_timed_out = Signal()

    def __init__(self, timeout_ms: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timeout_ms = timeout_ms
        self._since_input = QElapsedTimer()
        self._since_input.start()
        self._since_pointer = QElapsedTimer()  # not valid until the pointer moves
        self._fired = False
        self._stopped = False
        self._poll = QTimer(self)
        self._poll.setInterval(min(1000, max(50, timeout_ms // 4)))
        self._poll.timeout.connect(self._check)
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            app.focusWindowChanged.connect(self._watch_windows)
        self._watch_windows()
        self._poll.start()

    def set_timeout_ms(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._poll.setInterval(min(1000, max(50, timeout_ms // 4)))

    def ms_since_pointer_used(self) -> int | None:
        """Milliseconds since the user last moved, clicked or wheeled the pointer in one of
        the app's windows (None: not since the watcher started)."""
        return int(self._since_pointer.elapsed()) if self._since_pointer.isValid() else None

    def reset(self) -> None:
        self._since_input.restart()
        self._fired = False

    def _watch_windows(self, _focused: QWindow | None = None) -> None:
        # Installing again on a window already watched does not add a second filter.
        for window in QGuiApplication.topLevelWindows():
            window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in _ACTIVITY and not self._fired:
            self._since_input.restart()
        if kind in _POINTER:
            self._since_pointer.start()
        return False

    def _check(self) -> None:
        self._watch_windows()
        if not self._fired and self._since_input.elapsed() >= self._timeout_ms:
            self._fired = True
            self.idle_timed_out.emit()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._poll.stop()
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            app.focusWindowChanged.disconnect(self._watch_windows)
        for window in QGuiApplication.topLevelWindows():
            window.removeEventFilter(self)
