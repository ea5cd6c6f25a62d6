"""Blood pressure before dosing (mmHg) over time, with the protocol hold thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ketadesk.ui.outcomes.outcome_chart_base import (
    ChartBase,
    ChartFrame,
    ChartMarker,
    LegendEntry,
    date_range,
    draw_series,
    line_pen,
)

NO_BP_TEXT = "No blood pressure readings yet"

_SYSTOLIC_COLOUR = QColor("#0072B2")
_DIASTOLIC_COLOUR = QColor("#009E73")
_HOLD_COLOUR = QColor("#B00020")


@dataclass(frozen=True)
class BpReading:
    """One blood pressure reading in mmHg."""

    when: date
    systolic: int
    diastolic: int


@dataclass(frozen=True)
class BpChartData:
    """Blood pressure readings and the protocol's hold thresholds (mmHg; ``None`` = no rule)."""

    readings: tuple[BpReading, ...] = ()
    hold_systolic_above: int | None = None
    hold_diastolic_above: int | None = None
    markers: tuple[ChartMarker, ...] = field(default=())


def _systolic_pen() -> QPen:
    return line_pen(_SYSTOLIC_COLOUR, 2.2)


def _diastolic_pen() -> QPen:
    return line_pen(_DIASTOLIC_COLOUR, 2.0, Qt.PenStyle.DashLine)


def _hold_pen() -> QPen:
    return line_pen(_HOLD_COLOUR, 1.6, Qt.PenStyle.DashLine)


class BloodPressureChart(ChartBase):
    """Systolic and diastolic readings (mmHg) over time with the protocol hold thresholds."""

    _empty_text = NO_BP_TEXT

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Blood pressure before dosing", "Blood pressure (mmHg)", parent)
        self._data = BpChartData()

    def set_data(self, data: BpChartData) -> None:
        self._data = data
        self.update()

    def chart_data(self) -> BpChartData:
        return self._data

    def _chart_markers(self) -> tuple[ChartMarker, ...]:
        return self._data.markers

    def is_empty(self) -> bool:
        return not self._data.readings

    def readings_above_hold(self) -> tuple[BpReading, ...]:
        """Readings above either hold threshold (systolic or diastolic, mmHg)."""
        data = self._data
        return tuple(
            r
            for r in data.readings
            if (data.hold_systolic_above is not None and r.systolic > data.hold_systolic_above)
            or (data.hold_diastolic_above is not None and r.diastolic > data.hold_diastolic_above)
        )

    def _paint_chart(self, painter: QPainter) -> None:
        data = self._data
        dates = [r.when for r in data.readings] + [m.when for m in data.markers]
        first, last = date_range(dates)
        values = [v for r in data.readings for v in (r.systolic, r.diastolic)]
        values += [
            t for t in (data.hold_systolic_above, data.hold_diastolic_above) if t is not None
        ]
        low = max(0, (min(values) - 10) // 20 * 20)
        high = (max(values) + 20) // 20 * 20
        frame = ChartFrame(self._plot_rect(), first, last, low, high)
        plot = frame.plot
        self._draw_title(painter)
        self._draw_axes(painter, frame, list(range(int(low), int(high) + 1, 20)))
        self._draw_markers(painter, frame, data.markers)

        painter.setFont(self._font(8, bold=True))
        hold_pen = _hold_pen()
        for name, threshold in (
            ("systolic", data.hold_systolic_above),
            ("diastolic", data.hold_diastolic_above),
        ):
            if threshold is None:
                continue
            y = frame.y(threshold)
            painter.setPen(hold_pen)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            self._draw_right_label(painter, y - 7, f"Hold if {name}", _HOLD_COLOUR)
            self._draw_right_label(painter, y + 7, f"> {threshold} mmHg", _HOLD_COLOUR)

        painter.setFont(self._font(8))
        for points, series_pen, shape in (
            ([(r.when, r.systolic) for r in data.readings], _systolic_pen(), "triangle"),
            ([(r.when, r.diastolic) for r in data.readings], _diastolic_pen(), "square"),
        ):
            draw_series(painter, frame, points, series_pen, shape, label_values=False)
        # Readings above a hold threshold get a ring and their value, so they stand out in text.
        # The highest are labelled first; a label that would overprint another is left out
        # (the ring stays, and every reading is in the dose log).
        painter.setFont(self._font(8, bold=True))
        metrics = QFontMetricsF(painter.font())
        above = sorted(self.readings_above_hold(), key=lambda r: -r.systolic)
        painter.setPen(QPen(_HOLD_COLOUR, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for reading in above:  # every ring first, so no ring covers a label
            painter.drawEllipse(QPointF(frame.x(reading.when), frame.y(reading.systolic)), 8, 8)
        labelled: list[QRectF] = []
        for reading in above:
            centre = QPointF(frame.x(reading.when), frame.y(reading.systolic))
            text = f"{reading.systolic}/{reading.diastolic}"
            width = metrics.horizontalAdvance(text)
            # Beside the ring; a reading at the right edge has its value over the ring instead,
            # inside the plot (beside it, it ran off the chart or onto the hold labels).
            left = min(centre.x() + 9, plot.right() - width - 2)
            rise = 9 if left == centre.x() + 9 else 12
            at = QPointF(left, max(centre.y() - rise, metrics.ascent() + 1))
            rect = QRectF(at.x(), at.y() - metrics.ascent(), width, metrics.height())
            if any(rect.intersects(other) for other in labelled):
                continue
            labelled.append(rect)
            painter.fillRect(rect, QColor(255, 255, 255, 210))  # rings and lines stay behind
            painter.drawText(at, text)
            self._note_text("value", text, rect)

        self._draw_legend(painter)

    def _legend_entries(self) -> list[LegendEntry]:
        data = self._data
        legend: list[LegendEntry] = [
            ("Systolic", _systolic_pen(), "triangle"),
            ("Diastolic", _diastolic_pen(), "square"),
        ]
        if data.hold_systolic_above is not None or data.hold_diastolic_above is not None:
            legend.append(("Hold threshold", _hold_pen(), ""))
        if self.readings_above_hold():
            legend.append(("Above hold (ringed)", line_pen(_HOLD_COLOUR, 2), ""))
        return legend + self._marker_entries(data.markers)
