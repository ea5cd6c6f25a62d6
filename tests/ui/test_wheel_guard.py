"""Defect 2: the mouse wheel never changes a clinical choice by accident.

Real QWheelEvents go over every combo box, spin box and date/time field of every screen. The
value must stay; the page under it scrolls instead. After a click (which also gives the
keyboard focus) the wheel works on the field, as people expect.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollArea,
    QWidget,
)

from ketadesk.ui.common.wheel_guard import wheel_guard_of
from tests.ui.screens import all_screens

DOWN, UP = -120, 120


def value_of(widget: QWidget) -> str:
    if isinstance(widget, QComboBox):
        return f"{widget.currentIndex()}:{widget.currentText()}"
    assert isinstance(widget, QAbstractSpinBox)
    return widget.text()


def turn_wheel(widget: QWidget, delta: int) -> None:
    """One wheel notch over the middle of ``widget``, delivered as Qt delivers the mouse's: to
    the child under the pointer first, then up to its parents until one accepts it."""
    centre = widget.rect().center()
    target = widget.childAt(centre) or widget
    local = target.mapFrom(widget, centre)
    while target is not None:
        event = QWheelEvent(
            QPointF(local),
            QPointF(target.mapToGlobal(local)),
            QPoint(0, 0),
            QPoint(0, delta),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        event.setAccepted(True)  # handlers that do not want it ignore it
        QApplication.sendEvent(target, event)
        if event.isAccepted() or target.isWindow():
            return
        local = target.mapToParent(local)
        target = target.parentWidget()


def enclosing_scroll_area(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not parent.isWindow():
        if isinstance(parent, QAbstractScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def guarded_widgets(root: QWidget, window: QWidget) -> list[QWidget]:
    found = root.findChildren(QComboBox) + root.findChildren(QAbstractSpinBox)
    return [w for w in found if w.isVisibleTo(window) and w.isEnabled()]


def close_popup(qtbot) -> None:
    popup = QApplication.activePopupWidget()
    if popup is not None:
        qtbot.keyClick(popup, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=2_000)


def check_wheel_leaves_value_and_scrolls_page(qtbot, widget: QWidget, where: str) -> bool:
    """True when a scroll area around ``widget`` could scroll (and did)."""
    area = enclosing_scroll_area(widget)
    if isinstance(area, QScrollArea):
        area.ensureWidgetVisible(widget)
        qtbot.wait(1)
    bar = area.verticalScrollBar() if area is not None else None
    can_scroll = bar is not None and bar.maximum() > bar.minimum()
    delta = DOWN if bar is None or bar.value() < bar.maximum() else UP
    before, bar_before = value_of(widget), bar.value() if bar is not None else 0
    turn_wheel(widget, delta)
    assert value_of(widget) == before, f"{where}: the wheel changed {before!r}"
    if can_scroll:
        assert bar.value() != bar_before, f"{where}: the page did not scroll"
    return can_scroll


def test_the_wheel_changes_no_field_on_any_screen_and_scrolls_the_page(
    qtbot, demo_window, tmp_path
):
    assert wheel_guard_of(QApplication.instance()) is not None
    checked: dict[str, int] = {}
    scrolled = 0
    for screen in all_screens(qtbot, demo_window, tmp_path):
        widgets = guarded_widgets(screen.root, screen.window)
        for number, widget in enumerate(widgets):
            where = f"{screen.name}, {type(widget).__name__} #{number}"
            # Tabbed to (focus without a click) is not enough either.
            if number == 0:
                widget.setFocus(Qt.FocusReason.TabFocusReason)
            scrolled += check_wheel_leaves_value_and_scrolls_page(qtbot, widget, where)
        checked[screen.name] = len(widgets)
    # The walk reached the screens where the wheel did harm, and many fields in all.
    assert checked["Chart / Interaction review"] >= 1  # the decision boxes
    assert checked["Chart with a draft / Protocol"] >= 5  # frequency, route ...
    assert checked["Log home dose"] >= 2 and checked["Practice settings"] >= 4
    assert sum(checked.values()) >= 80, checked
    assert scrolled >= 10


def test_after_a_click_the_wheel_works_on_the_field(qtbot, demo_window, tmp_path):
    changed: list[str] = []
    for screen in all_screens(qtbot, demo_window, tmp_path):
        for widget in guarded_widgets(screen.root, screen.window)[:2]:
            where = f"{screen.name}, {type(widget).__name__}"
            area = enclosing_scroll_area(widget)
            if isinstance(area, QScrollArea):
                area.ensureWidgetVisible(widget)
            qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(8, widget.height() // 2))
            close_popup(qtbot)
            qtbot.waitUntil(widget.hasFocus, timeout=2_000)
            before = value_of(widget)
            turn_wheel(widget, DOWN)
            if value_of(widget) == before:  # already the last choice: go the other way
                turn_wheel(widget, UP)
            assert value_of(widget) != before, f"{where}: a clicked field ignores the wheel"
            changed.append(where)
            # Leaving the field (Tab) disarms it again.
            widget.clearFocus()
            after = value_of(widget)
            turn_wheel(widget, DOWN)
            assert value_of(widget) == after, f"{where}: the wheel still works after leaving"
    assert len(changed) >= 20


def test_app_start_up_installs_the_guard_once(qapp):
    from ketadesk.ui.app import create_application

    names = qapp.applicationName(), qapp.organizationName()
    try:
        guard = wheel_guard_of(qapp)
        assert create_application() is qapp
        assert wheel_guard_of(qapp) is guard is not None
        assert len(qapp.findChildren(type(guard))) == 1
    finally:
        qapp.setApplicationName(names[0])
        qapp.setOrganizationName(names[1])
