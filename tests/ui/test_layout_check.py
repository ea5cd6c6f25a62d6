"""The layout checker itself: it must catch cut text and stray widgets, and nothing else."""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ketadesk.ui.common.elided_label import ElidedLabel
from ketadesk.ui.outcomes.outcome_chart_base import ChartBase
from tests.ui.layout_check import layout_problems

SIZE = (1280, 800)

def _window(qtbot, width: int = 400, height: int = 300) -> QWidget:
    window = QWidget()
    qtbot.addWidget(window)
    window.resize(width, height)
    return window

def _shown(qtbot, window: QWidget) -> None:
    window.show()
    qtbot.waitExposed(window)

def test_a_button_as_wide_as_its_size_hint_passes_and_a_narrower_one_is_named(qtbot):
    window = _window(qtbot)
    fits = QPushButton("Acknowledge the alert…", window)
    fits.setObjectName("fits")
    fits.resize(fits.sizeHint())
    cut = QPushButton("Acknowledge the alert…", window)
    cut.setObjectName("cut")
    cut.setGeometry(0, 50, fits.sizeHint().width() - 20, fits.sizeHint().height())
    _shown(qtbot, window)
    problems = layout_problems("Test screen", window, window, SIZE)
    assert len(problems) == 1, problems
    assert problems[0].startswith("Test screen at 1280×800: QPushButton 'cut': text needs")

def test_a_label_cut_is_named_and_an_elided_one_with_its_tooltip_passes(qtbot):
    window = _window(qtbot)
    layout = QVBoxLayout(window)
    long_name = "Featherstonehaugh-Cholmondeley, Maximiliana-Josephine " * 3
    elided = ElidedLabel(long_name)
    layout.addWidget(elided)
    cut = QLabel(long_name)
    cut.setMinimumWidth(10)  # the layout may squeeze it below its text

    cut.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    layout.addWidget(cut)
    _shown(qtbot, window)
    assert elided.is_elided() and elided.toolTip()
    problems = layout_problems("Test screen", window, window, SIZE)
    assert len(problems) == 1, problems
    assert "QLabel 'Featherstonehaugh" in problems[0] and "text needs" in problems[0]

def test_a_widget_scrolled_out_of_view_passes_and_one_outside_the_window_fails(qtbot):
    window = _window(qtbot)
    layout = QHBoxLayout(window)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    content = QWidget()
    column = QVBoxLayout(content)
    for index in range(40):  # far taller than the scroll area: the user scrolls to them
        column.addWidget(QLabel(f"Row {index}"))
    scroll.setWidget(content)
    layout.addWidget(scroll)
    stray = QPushButton("Save", window)
    stray.setObjectName("stray")
    _shown(qtbot, window)
    stray.move(window.width() - 10, 10)  # half of it past the right edge
    problems = layout_problems("Test screen", window, window, SIZE)
    assert len(problems) == 1, problems
    assert "QPushButton 'stray': lies outside its window" in problems[0]

def test_a_window_larger_than_the_screen_is_named(qtbot):
    window = _window(qtbot, 1300, 700)
    _shown(qtbot, window)
    problems = layout_problems("Test screen", window, window, SIZE)
    assert problems == [
        "Test screen at 1280×800: the window is 1300×700, larger than the screen "
        f"(its layout asks at least {window.minimumSizeHint().width()}×"
        f"{window.minimumSizeHint().height()})"
    ]


def test_a_cut_table_cell_needs_a_tooltip(qtbot):
    window = _window(qtbot, 400, 200)
    layout = QVBoxLayout(window)
    table = QTableWidget(2, 1)
    table.setWordWrap(False)
    table.setHorizontalHeaderLabels(["Next check-in"])
    table.setColumnWidth(0, 80)
    text = "Overdue 13 days; check-in 12/02/2026"
    table.setItem(0, 0, QTableWidgetItem(text))
    with_tooltip = QTableWidgetItem(text)
    with_tooltip.setToolTip(text)
    table.setItem(1, 0, with_tooltip)
    layout.addWidget(table)
    _shown(qtbot, window)
    problems = layout_problems("Test screen", window, window, SIZE)
    assert len(problems) == 1, problems
    assert "row 1, column Next check-in: 'Overdue 13 days" in problems[0]


class _Chart(ChartBase):
    """A chart that paints two labels where the test says."""

    def __init__(self, second_left: float) -> None:
        super().__init__("Test chart", "Value")
        self.second_left = second_left

    def is_empty(self) -> bool:
        return False

    def _paint_chart(self, painter: QPainter) -> None:
        for text, left in (("Dose 10→15 mg", 40.0), ("Dose 15→20 mg", self.second_left)):
            box = QRectF(left, 40, 90, 16)
            painter.drawText(box, text)
            self._note_text("event label", text, box)


def test_painted_chart_labels_that_overprint_or_leave_the_chart_are_named(qtbot):
    window = _window(qtbot, 600, 300)
    layout = QVBoxLayout(window)
    chart = _Chart(second_left=100.0)  # 40..130 and 100..190 overlap
    layout.addWidget(chart)
    _shown(qtbot, window)
    problems = layout_problems("Test screen", window, window, SIZE)
    assert problems == [
        "Test screen at 1280×800: _Chart (in the window): event label 'Dose 10→15 mg' and "
        "event label 'Dose 15→20 mg' overprint"
    ]
    chart.second_left = 140.0
    assert layout_problems("Test screen", window, window, SIZE) == []
    chart.second_left = chart.width() - 20.0  # runs off the right edge
    problems = layout_problems("Test screen", window, window, SIZE)
    assert problems == [
        "Test screen at 1280×800: _Chart (in the window): event label 'Dose 15→20 mg' is cut "
        "by the chart's edge"
    ]
