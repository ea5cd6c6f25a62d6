"""The mouse wheel never changes a clinical choice by accident.

A combo box, spin box or date/time field takes the wheel only after the user clicked it and
while it keeps the keyboard focus. Otherwise the wheel scrolls the page under the pointer, as
it would over a label. One filter on the application covers every such widget, including the
ones dialogs and forms create later.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QFocusEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QWidget,
)

_ARMED = "_ketadesk_wheel_armed"
_GUARD_NAME = "ketadesk_wheel_guard"
_GUARDED_TYPES = (QComboBox, QAbstractSpinBox)  # QAbstractSpinBox covers date and time edits


def guarded_widget(obj: QObject | None) -> QWidget | None:
    """The combo, spin or date/time widget ``obj`` belongs to (a spin box's inner line edit
    belongs to the spin box), or None. A combo box's open list is a window of its own."""
    widget = obj if isinstance(obj, QWidget) else None
    while widget is not None:
        if isinstance(widget, _GUARDED_TYPES):
            return widget
        if widget.isWindow():
            return None
        widget = widget.parentWidget()
    return None


def takes_the_wheel(widget: QWidget) -> bool:
    """True when the user clicked ``widget`` and it still has the keyboard focus."""
    return bool(widget.property(_ARMED)) and widget.hasFocus()


def _enclosing_scroll_area(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return parent
        if parent.isWindow():
            return None
        parent = parent.parentWidget()
    return None


def _keeps_focus_within(widget: QWidget, reason: Qt.FocusReason) -> bool:
    """True while the focus is on ``widget``, inside it, or in its own pop-up (a combo box's
    list, a date field's calendar), or when the user only switched to another window."""
    if reason in (Qt.FocusReason.ActiveWindowFocusReason, Qt.FocusReason.PopupFocusReason):
        return True
    focus = QApplication.focusWidget()
    while focus is not None:
        if focus is widget:
            return True
        focus = focus.parentWidget()  # through pop-up windows too: they are the widget's children
    return False


class WheelGuard(QObject):
    """Application-wide event filter: see the module docstring."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(_GUARD_NAME)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel:
            widget = guarded_widget(watched)
            if widget is None or takes_the_wheel(widget):
                return False
            assert isinstance(event, QWheelEvent)
            self._scroll_page_instead(widget, event)
            return True
        if kind == QEvent.Type.MouseButtonPress:
            widget = guarded_widget(watched)
            if widget is not None:
                widget.setProperty(_ARMED, True)
        elif kind == QEvent.Type.FocusOut:
            assert isinstance(event, QFocusEvent)
            widget = guarded_widget(watched)
            if widget is not None and not _keeps_focus_within(widget, event.reason()):
                widget.setProperty(_ARMED, False)
        return False

    @staticmethod
    def _scroll_page_instead(widget: QWidget, event: QWheelEvent) -> None:
        area = _enclosing_scroll_area(widget)
        event.accept()
        if area is None:
            return
        viewport = area.viewport()
        position = QPointF(viewport.mapFromGlobal(event.globalPosition().toPoint()))
        forwarded = QWheelEvent(
            position,
            event.globalPosition(),
            event.pixelDelta(),
            event.angleDelta(),
            event.buttons(),
            event.modifiers(),
            event.phase(),
            event.inverted(),
            event.source(),
            event.pointingDevice(),
        )
        QApplication.sendEvent(viewport, forwarded)


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the guard on ``app`` once (app start-up); returns the installed guard."""
    existing = app.findChild(WheelGuard, _GUARD_NAME)
    if existing is not None:
        return existing
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard


def wheel_guard_of(app: QApplication) -> WheelGuard | None:
    """The guard installed on ``app``, if any."""
    return app.findChild(WheelGuard, _GUARD_NAME)
