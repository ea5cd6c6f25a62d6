"""Notices when nobody has touched the keyboard or mouse for a while."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

_ACTIVITY = {
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
    QEvent.Type.InputMethod,
}


class IdleWatcher(QObject):
    """Emits ``idle_timed_out`` once after ``timeout_ms`` without user input."""

    idle_timed_out = Signal()

    def __init__(self, timeout_ms: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timeout_ms = timeout_ms
        self._since_input = QElapsedTimer()
        self._since_input.start()
        self._fired = False
        self._poll = QTimer(self)
        self._poll.setInterval(min(1000, max(50, timeout_ms // 4)))
        self._poll.timeout.connect(self._check)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._poll.start()

    def set_timeout_ms(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._poll.setInterval(min(1000, max(50, timeout_ms // 4)))

    def reset(self) -> None:
        self._since_input.restart()
        self._fired = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY and not self._fired:
            self._since_input.restart()
        return False

    def _check(self) -> None:
        if not self._fired and self._since_input.elapsed() >= self._timeout_ms:
            self._fired = True
            self.idle_timed_out.emit()

    def stop(self) -> None:
        self._poll.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
