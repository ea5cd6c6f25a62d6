"""Is every word on a screen readable, and is every widget on it inside its window?

``layout_problems`` walks a screen's visible widgets and returns one sentence per problem, naming
the screen, the widget (its objectName, else its text, else its class) and the window size.
Qt can tell when text is cut: the font's ``horizontalAdvance`` of the text against the width the
style actually leaves for text (a push button's contents rect after the style's margins and
padding, a check box's label rect, a label's contents rect minus its margin and indent).

What is not a problem:
- a label that shortens its text with "…" and shows the whole of it as a tooltip;
- a widget inside a QScrollArea that lies beyond the visible part of the scroll area: it is
  judged against the scroll area's content (the user scrolls to it), not against the viewport;
- a table cell whose text is cut, when the cell's tooltip holds the whole of it (tables and
  lists scroll and elide by themselves; a cut cell with no tooltip is a problem).

Charts are painted, not built of widgets: ``ChartBase.painted_text`` lists each label the last
paint drew and where, so a label cut by the chart's edge, or two date, event or value labels on
top of each other, are found too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetrics, QTextDocument
from PySide6.QtGui import Qt as QtGuiQt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QListView,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QStyleOptionGroupBox,
    QTabBar,
    QToolButton,
    QWidget,
)

from ketadesk.ui.outcomes.outcome_chart_base import ChartBase

# Widgets whose insides belong to them (a combo box's line edit, a spin box's arrows, a tab
# bar's scroll buttons): judged as one widget, never child by child.
_COMPOSITE = (QComboBox, QAbstractSpinBox, QTabBar, QAbstractItemView)
# Where a label's text may end in "…" on purpose; the whole text must then be in the tooltip.
_ELLIPSIS = "…"
# Rounding of fractional glyph advances: one device pixel.
_SLACK = 1


def widget_name(widget: QWidget) -> str:
    """How a failure names a widget: objectName, else its text, else its class and place."""
    if widget.objectName() and not widget.objectName().startswith("qt_"):
        return f"{type(widget).__name__} {widget.objectName()!r}"
    text = _shown_text(widget)
    if text:
        short = text if len(text) <= 60 else text[:57] + "..."
        return f"{type(widget).__name__} {short!r}"
    parent = widget.parentWidget()
    while parent is not None and type(parent).__module__.startswith("PySide6"):
        parent = parent.parentWidget()  # up to the first of the app's own widgets
    where = widget_name(parent) if parent is not None else "the window"
    return f"{type(widget).__name__} (in {where})"


def _without_mnemonic(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _shown_text(widget: QWidget) -> str:
    if isinstance(widget, QLabel):
        text = _plain(widget.text(), widget.textFormat())
        return _without_mnemonic(text) if widget.buddy() is not None else text
    if isinstance(widget, QAbstractButton):
        return _without_mnemonic(widget.text())
    if isinstance(widget, QGroupBox):
        return _without_mnemonic(widget.title())
    if isinstance(widget, QComboBox):
        return widget.currentText()
    return ""


def _plain(text: str, text_format: Qt.TextFormat) -> str:
    is_rich = text_format == Qt.TextFormat.RichText or (
        text_format == Qt.TextFormat.AutoText and QtGuiQt.mightBeRichText(text)
    )
    if not is_rich:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def _visible_widgets(root: QWidget, window: QWidget) -> Iterator[QWidget]:
    """``root`` and its visible descendants, not descending into composite widgets."""
    stack = [root]
    while stack:
        widget = stack.pop()
        if not widget.isVisibleTo(window) or (widget.isWindow() and widget is not window):
            continue
        yield widget
        if isinstance(widget, _COMPOSITE):
            continue
        stack.extend(
            child for child in widget.children() if isinstance(child, QWidget)
        )


# --- text -------------------------------------------------------------------------------


def _label_problem(label: QLabel) -> str | None:
    if label.pixmap() is not None and not label.pixmap().isNull():
        return None
    text = _shown_text(label)
    if not text.strip():
        return None
    if _ELLIPSIS in text and label.toolTip().strip():
        return None  # elided on purpose, the whole text on hover
    rect = label.contentsRect()
    margin = label.margin()
    width = rect.width() - 2 * margin - max(label.indent(), 0)
    height = rect.height() - 2 * margin
    metrics = label.fontMetrics()
    if label.wordWrap():
        # A wrapped label is cut when the lines it needs at its width are taller than it is.
        # heightForWidth takes the whole widget width (contents margins included).
        needed = label.heightForWidth(label.width())
        if needed > label.height() + _SLACK:
            return f"wrapped text needs {needed} px of height, has {label.height()} px"
        words = re.split(r"[\s\u200b]+", text)  # Qt also breaks at a zero-width space
        longest_word = max((metrics.horizontalAdvance(word) for word in words), default=0)
        if longest_word > width + _SLACK:
            return f"a word needs {longest_word} px, the label has {width} px"
        return None
    needed_width = max(metrics.horizontalAdvance(line) for line in text.split("\n"))
    if needed_width > width + _SLACK:
        return f"text needs {needed_width} px, the label has {width} px"
    needed_height = metrics.height() * (text.count("\n") + 1)
    if needed_height > height + _SLACK + metrics.leading() * text.count("\n"):
        return f"text needs {needed_height} px of height, the label has {height} px"
    return None


def _button_text_width(button: QAbstractButton) -> int | None:
    """The width the style leaves for a button's text (icon and indicator taken off)."""
    style = button.style()
    if isinstance(button, QPushButton):
        option = QStyleOptionButton()
        button.initStyleOption(option)
        rect = style.subElementRect(QStyle.SubElement.SE_PushButtonContents, option, button)
        width = rect.width()
        if not option.icon.isNull():
            width -= option.iconSize.width() + 4  # QCommonStyle's icon-to-text spacing
        if option.features & QStyleOptionButton.ButtonFeature.HasMenu:
            width -= style.pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, option, button)
        return width
    if isinstance(button, QCheckBox | QRadioButton):
        option = QStyleOptionButton()
        button.initStyleOption(option)
        element = (
            QStyle.SubElement.SE_CheckBoxContents
            if isinstance(button, QCheckBox)
            else QStyle.SubElement.SE_RadioButtonContents
        )
        rect = style.subElementRect(element, option, button)
        width = rect.width()
        if not option.icon.isNull():
            width -= option.iconSize.width() + 4
        return width
    if isinstance(button, QToolButton):
        if button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly and not (
            button.icon().isNull()
        ):
            return None
        # QToolButton draws its label in its rect less the frame's margins (3 px each side).
        margin = style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin, None, button)
        return button.width() - margin
    return None


def _button_problem(button: QAbstractButton) -> str | None:
    text = _shown_text(button)
    if not text.strip():
        return None
    width = _button_text_width(button)
    if width is None:
        return None
    needed = button.fontMetrics().horizontalAdvance(text)
    if needed > width + _SLACK:
        return f"text needs {needed} px, the button leaves {width} px for it"
    return None


def _group_box_problem(box: QGroupBox) -> str | None:
    title = _shown_text(box)
    if not title.strip():
        return None
    option = QStyleOptionGroupBox()
    box.initStyleOption(option)
    needed = box.fontMetrics().horizontalAdvance(title)
    label = box.style().subControlRect(
        QStyle.ComplexControl.CC_GroupBox, option, QStyle.SubControl.SC_GroupBoxLabel, box
    )
    frame = box.style().subControlRect(
        QStyle.ComplexControl.CC_GroupBox, option, QStyle.SubControl.SC_GroupBoxFrame, box
    )
    available = min(label.right(), frame.right()) - label.left()
    if needed > available + _SLACK:
        return f"title needs {needed} px, the box leaves {available} px for it"
    return None


def _combo_problem(combo: QComboBox) -> str | None:
    if combo.isEditable():
        return None  # the line edit scrolls its text
    text = combo.currentText()
    if not text.strip():
        return None
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    width = field.width()
    if not option.currentIcon.isNull():
        width -= option.iconSize.width() + 4
    needed = combo.fontMetrics().horizontalAdvance(text)
    if needed > width + _SLACK:
        return f"the choice shown needs {needed} px, the box leaves {width} px for it"
    return None


def _tab_bar_problems(bar: QTabBar) -> Iterator[str]:
    for index in range(bar.count()):
        text = _without_mnemonic(bar.tabText(index))
        if not text:
            continue
        shown = bar.tabRect(index)
        if shown.isEmpty():
            continue
        needed = bar.fontMetrics().horizontalAdvance(text)
        # A tab shorter than its text is elided by the bar; fine when the tooltip has it all.
        if needed > shown.width() and not bar.tabToolTip(index).strip():
            hint = bar.tabSizeHint(index).width()
            if hint > shown.width():
                yield f"tab {text[:40]!r} is cut ({shown.width()} px of {hint} px) with no tooltip"


# Groups of painted chart text whose members must never overprint one another.
_CHART_KINDS_APART = (
    {"date tick"},
    {"y tick"},
    {"event label"},
    {"legend"},
    # the labels next to points, and those in the right margin they might stray onto
    {"value", "outcome label", "alert label", "right label"},
)


def _chart_problems(chart: ChartBase) -> Iterator[str]:
    """Painted labels: each wholly inside the chart, none on top of another of its kind."""
    chart.grab()  # paints, which records what was drawn where
    bounds = QRectF(chart.rect()).adjusted(-_SLACK, -_SLACK, _SLACK, _SLACK)
    for painted in chart.painted_text:
        if not bounds.contains(painted.rect):
            yield f"{painted.kind} {painted.text[:40]!r} is cut by the chart's edge"
    for kinds in _CHART_KINDS_APART:
        labels = [p for p in chart.painted_text if p.kind in kinds]
        for index, first in enumerate(labels):
            for second in labels[index + 1 :]:
                overlap = first.rect.intersected(second.rect)
                if overlap.width() > _SLACK and overlap.height() > _SLACK:
                    yield (f"{first.kind} {first.text!r} and {second.kind} {second.text!r} "
                           "overprint")


def _wrapped_cell_is_cut(view: QAbstractItemView, index, text: str, shown: QRect) -> bool:
    """Whether ``text``, wrapped at word boundaries in the cell's width, is taller than it."""
    style = view.style()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
    width = shown.width() - 2 * margin
    if index.data(Qt.ItemDataRole.DecorationRole) is not None:
        width -= view.iconSize().width() + 2 * margin if view.iconSize().isValid() else 16
    font = index.data(Qt.ItemDataRole.FontRole)
    metrics = QFontMetrics(font) if isinstance(font, QFont) else view.fontMetrics()
    needed = metrics.boundingRect(
        QRect(0, 0, max(width, 1), 100_000), int(Qt.TextFlag.TextWordWrap), text
    )
    return needed.height() > shown.height() + _SLACK or needed.width() > width + _SLACK


def _item_view_problems(view: QAbstractItemView) -> Iterator[str]:
    """A cell on screen whose text the column cuts must carry its whole text in a tooltip.

    The width a cell needs on one line is the delegate's own size hint (text, icon, margins),
    exactly what a column sized to its contents gets; in a view that wraps, a longer text is
    cut only when its wrapped lines are taller than the row.
    """
    model = view.model()
    if model is None:
        return
    wraps = bool(getattr(view, "wordWrap", lambda: False)())
    viewport = view.viewport().rect()
    root = view.rootIndex()
    columns = 1 if isinstance(view, QListView) else model.columnCount(root)
    reported = 0
    for row in range(min(model.rowCount(root), 200)):
        for column in range(columns):
            index = model.index(row, column, root)
            shown = view.visualRect(index)
            if shown.isEmpty() or not viewport.intersects(shown):
                continue
            text = index.data(Qt.ItemDataRole.DisplayRole)
            if not isinstance(text, str) or not text.strip():
                continue
            needed = view.sizeHintForIndex(index).width()
            if needed <= shown.width() + _SLACK:
                continue
            if wraps and not _wrapped_cell_is_cut(view, index, text, shown):
                continue
            tooltip = index.data(Qt.ItemDataRole.ToolTipRole)
            if isinstance(tooltip, str) and tooltip.strip():
                continue
            header = model.headerData(column, Qt.Orientation.Horizontal)
            yield (
                f"row {row + 1}, column {header or column + 1!s}: {text[:40]!r} is cut "
                f"({shown.width()}×{shown.height()} px) and has no tooltip"
            )
            reported += 1
            if reported >= 5:  # enough to see the pattern
                return


def _text_problems(widget: QWidget) -> Iterator[str]:
    problem: str | None = None
    if isinstance(widget, QAbstractItemView):
        yield from _item_view_problems(widget)
    if isinstance(widget, ChartBase):
        yield from _chart_problems(widget)
    if isinstance(widget, QLabel):
        problem = _label_problem(widget)
    elif isinstance(widget, QAbstractButton):
        problem = _button_problem(widget)
    elif isinstance(widget, QGroupBox):
        problem = _group_box_problem(widget)
    elif isinstance(widget, QComboBox):
        problem = _combo_problem(widget)
    elif isinstance(widget, QTabBar):
        yield from _tab_bar_problems(widget)
    if problem:
        yield problem


# --- geometry ---------------------------------------------------------------------------


def _judging_area(widget: QWidget, window: QWidget) -> tuple[QWidget, str]:
    """The widget against whose rect ``widget`` must lie: the content of the nearest QScrollArea
    whose content holds it (the user scrolls to it), else the window. A scroll area's own parts
    (viewport, scroll bars) are judged as the scroll area is."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            content = parent.widget()
            if content is not None and (content is widget or content.isAncestorOf(widget)):
                return content, "its scroll area's content"
        if parent is window:
            break
        parent = parent.parentWidget()
    return window, "its window"


def _inside_an_item_view(widget: QWidget, window: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, QAbstractItemView):
            return True
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent, QScrollArea):
            # text edits and other scroll areas: their viewport children scroll with them
            if widget.parentWidget() is parent.viewport():
                return True
        parent = parent.parentWidget()
    return False


def _geometry_problem(widget: QWidget, window: QWidget) -> str | None:
    if widget is window or _inside_an_item_view(widget, window):
        return None
    area, area_name = _judging_area(widget, window)
    if widget is area:
        return None
    top_left = widget.mapTo(area, QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    bounds = area.rect()
    if not bounds.contains(rect):
        return (
            f"lies outside {area_name}: at {rect.x()},{rect.y()} {rect.width()}×{rect.height()}"
            f" in {bounds.width()}×{bounds.height()}"
        )
    return None


def _window_problem(window: QWidget, width: int, height: int) -> str | None:
    if window.width() > width or window.height() > height:
        return (
            f"the window is {window.width()}×{window.height()}, larger than the screen "
            f"(its layout asks at least {window.minimumSizeHint().width()}×"
            f"{window.minimumSizeHint().height()})"
        )
    return None


def layout_problems(
    screen: str, window: QWidget, root: QWidget, size: tuple[int, int]
) -> list[str]:
    """One line per clipped text or stray widget of ``root`` (shown in ``window``) at ``size``."""
    width, height = size
    where = f"{screen} at {width}×{height}"
    problems: list[str] = []
    trouble = _window_problem(window, width, height)
    if trouble:
        problems.append(f"{where}: {trouble}")
    strays: set[int] = set()  # a stray widget's children are not named again
    for widget in _visible_widgets(root, window):
        name = widget_name(widget)
        problems.extend(f"{where}: {name}: {text}" for text in _text_problems(widget))
        parent = widget.parentWidget()
        if parent is not None and id(parent) in strays:
            strays.add(id(widget))
            continue
        stray = _geometry_problem(widget, window)
        if stray:
            strays.add(id(widget))
            problems.append(f"{where}: {name}: {stray}")
    return problems
