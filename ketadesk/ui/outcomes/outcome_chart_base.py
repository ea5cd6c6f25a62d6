"""What both outcome charts share: event markers, the date/value frame, axes, legend, series.

Drawn with QPainter (no QtCharts). Markers and series are told apart by text, line style and
point shape as well as colour. Subclasses say what is empty, what the legend lists and how to
paint the plot; ``ChartBase.paintEvent`` does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QWidget


class MarkerKind(StrEnum):
    DOSE_CHANGE = "dose_change"
    PROTOCOL_VERSION = "protocol_version"


@dataclass(frozen=True)
class ChartMarker:
    """A vertical event line: a dose change ("150 → 200 mg") or a protocol version ("v2")."""

    when: date
    label: str
    kind: MarkerKind = MarkerKind.DOSE_CHANGE


# Colours chosen to stay distinguishable for the common colour-vision deficiencies
# (Okabe-Ito palette); each series also has its own line style and point shape.
_DOSE_MARKER_COLOUR = QColor("#555555")
_PROTOCOL_MARKER_COLOUR = QColor("#6A3D9A")
AXIS_COLOUR = QColor("#333333")
_GRID_COLOUR = QColor("#DDDDDD")


def line_pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of ``width`` pixels in ``colour`` and line ``style``."""
    line = QPen(colour, width)
    line.setStyle(style)
    return line


LegendEntry = tuple[str, QPen, str]
"""Legend row: label, line pen, point shape ("circle", "square", "triangle" or "")."""


@dataclass(frozen=True)
class ChartFrame:
    """Maps dates and values onto the plot rectangle."""

    plot: QRectF
    first: date
    last: date
    low: float
    high: float

    def x(self, when: date) -> float:
        span = max((self.last - self.first).days, 1)
        return self.plot.left() + self.plot.width() * (when - self.first).days / span

    def y(self, value: float) -> float:
        span = self.high - self.low
        return self.plot.bottom() - self.plot.height() * (value - self.low) / span


def date_range(dates: Sequence[date]) -> tuple[date, date]:
    first, last = min(dates), max(dates)
    if first == last:
        return first - timedelta(days=7), last + timedelta(days=7)
    pad = timedelta(days=max(1, (last - first).days // 20))
    return first - pad, last + pad


def _date_ticks(first: date, last: date) -> list[date]:
    """Tick dates: weekly for short ranges, first-of-month otherwise."""
    days = (last - first).days
    if days <= 56:
        step = 7 if days > 14 else 2
        start = first + timedelta(days=(7 - first.weekday()) % 7 if step == 7 else 1)
        return [start + timedelta(days=i) for i in range(0, (last - start).days + 1, step)]
    ticks: list[date] = []
    month = date(first.year, first.month, 1)
    while month <= last:
        if month >= first:
            ticks.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    every = max(1, len(ticks) // 8)
    return ticks[::every]


def _tick_label(when: date, first: date, last: date) -> str:
    return when.strftime("%d %b") if (last - first).days <= 56 else when.strftime("%b %Y")


class ChartBase(QWidget):
    """Shared painting: title, axes, date ticks, event markers, legend, empty message.

    Subclasses set ``_empty_text`` and implement ``is_empty`` and ``_paint_chart``.
    """

    _empty_text = ""

    _margin_left = 64.0
    _margin_right = 180.0
    _margin_bottom = 64.0
    _legend_top = 30.0
    _legend_row_height = 18.0

    def __init__(self, title: str, y_axis_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._y_axis_label = y_axis_label
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(480, 260)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(self.backgroundRole(), QColor("white"))
        self.setPalette(palette)

    def sizeHint(self) -> QSize:
        return QSize(900, 380)

    def is_empty(self) -> bool:
        """Whether there is nothing to plot (the empty message is drawn instead)."""
        raise NotImplementedError

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        try:
            if self.is_empty():
                self._draw_empty(painter, self._empty_text)
                return
            self._paint_chart(painter)
        finally:
            painter.end()

    def _paint_chart(self, painter: QPainter) -> None:
        raise NotImplementedError

    # --- pieces used by subclasses ---------------------------------------------------------

    def _plot_rect(self) -> QRectF:
        return QRectF(
            self._margin_left,
            self._margin_top(),
            max(10.0, self.width() - self._margin_left - self._margin_right),
            max(10.0, self.height() - self._margin_top() - self._margin_bottom),
        )

    def _legend_entries(self) -> list[LegendEntry]:
        """What the legend lists for the current data (subclasses fill it in)."""
        return []

    def _marker_entries(self, markers: Sequence[ChartMarker]) -> list[LegendEntry]:
        entries: list[LegendEntry] = []
        if any(m.kind is MarkerKind.DOSE_CHANGE for m in markers):
            entries.append(
                ("Dose change", line_pen(_DOSE_MARKER_COLOUR, 1.4, Qt.PenStyle.DashLine), "")
            )
        if any(m.kind is MarkerKind.PROTOCOL_VERSION for m in markers):
            entries.append(
                (
                    "Protocol version",
                    line_pen(_PROTOCOL_MARKER_COLOUR, 1.4, Qt.PenStyle.DashDotLine),
                    "",
                )
            )
        return entries

    def _legend_positions(self, entries: Sequence[LegendEntry]) -> list[QPointF]:
        """Top-left of each legend entry; entries wrap onto further rows in narrow widgets."""
        metrics = QFontMetricsF(self._font(8.5))
        x, y = self._margin_left, self._legend_top
        positions: list[QPointF] = []
        for label, _line, _shape in entries:
            width = 29 + metrics.horizontalAdvance(label) + 18
            if x > self._margin_left and x + width > self.width() - 4:
                x, y = self._margin_left, y + self._legend_row_height
            positions.append(QPointF(x, y))
            x += width
        return positions

    def _marker_label_height(self) -> float:
        return QFontMetricsF(self._font(8)).height() + 4

    def _margin_top(self) -> float:
        """Title, legend rows, then two rows of event labels above the plot."""
        positions = self._legend_positions(self._legend_entries())
        legend_bottom = (positions[-1].y() if positions else self._legend_top) + (
            self._legend_row_height
        )
        return legend_bottom + 2 * self._marker_label_height() + 4

    def _font(self, point_size: float, *, bold: bool = False) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(point_size)
        font.setBold(bold)
        return font

    def _draw_title(self, painter: QPainter) -> None:
        painter.setFont(self._font(11, bold=True))
        painter.setPen(AXIS_COLOUR)
        painter.drawText(
            QRectF(self._margin_left, 6, self.width() - self._margin_left - 8, 24),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self._title,
        )

    def _draw_empty(self, painter: QPainter, message: str) -> None:
        self._draw_title(painter)
        painter.setFont(self._font(12))
        painter.setPen(QColor("#555555"))
        painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, message)

    def _draw_axes(self, painter: QPainter, frame: ChartFrame, y_ticks: Sequence[float]) -> None:
        plot = frame.plot
        painter.setFont(self._font(8.5))
        metrics = QFontMetricsF(painter.font())
        for value in y_ticks:
            y = frame.y(value)
            painter.setPen(QPen(_GRID_COLOUR, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(AXIS_COLOUR)
            text = f"{value:g}"
            painter.drawText(
                QPointF(
                    plot.left() - 6 - metrics.horizontalAdvance(text), y + metrics.ascent() / 3
                ),
                text,
            )
        for tick in _date_ticks(frame.first, frame.last):
            x = frame.x(tick)
            painter.setPen(QPen(AXIS_COLOUR, 1))
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            text = _tick_label(tick, frame.first, frame.last)
            painter.drawText(
                QPointF(
                    x - metrics.horizontalAdvance(text) / 2, plot.bottom() + 6 + metrics.ascent()
                ),
                text,
            )
        painter.setPen(QPen(AXIS_COLOUR, 1.2))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())

        painter.setFont(self._font(9))
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + 24, plot.width(), 20),
            Qt.AlignmentFlag.AlignHCenter,
            "Date",
        )
        painter.save()
        painter.translate(14, plot.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-plot.height() / 2, -8, plot.height(), 18),
            Qt.AlignmentFlag.AlignCenter,
            self._y_axis_label,
        )
        painter.restore()

    def _draw_markers(
        self, painter: QPainter, frame: ChartFrame, markers: Sequence[ChartMarker]
    ) -> None:
        plot = frame.plot
        painter.setFont(self._font(8))
        metrics = QFontMetricsF(painter.font())
        row = 0
        for marker in sorted(markers, key=lambda m: m.when):
            if not frame.first <= marker.when <= frame.last:
                continue
            x = frame.x(marker.when)
            is_protocol = marker.kind is MarkerKind.PROTOCOL_VERSION
            colour = _PROTOCOL_MARKER_COLOUR if is_protocol else _DOSE_MARKER_COLOUR
            style = Qt.PenStyle.DashDotLine if is_protocol else Qt.PenStyle.DashLine
            painter.setPen(line_pen(colour, 1.4, style))
            # Alternate two label rows so neighbouring markers do not overprint each other.
            row_height = self._marker_label_height()
            top = plot.top() - 2 * row_height + (row % 2) * row_height
            painter.drawLine(QPointF(x, top), QPointF(x, plot.bottom()))
            prefix = "Protocol " if is_protocol else "Dose "
            text = prefix + marker.label
            width = metrics.horizontalAdvance(text) + 6
            left = min(x + 2, self.width() - width - 2)
            box = QRectF(left, top, width, metrics.height() + 2)
            painter.fillRect(box, QColor(255, 255, 255, 225))
            painter.setPen(colour)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            row += 1

    def _draw_legend(self, painter: QPainter) -> None:
        """Draw the legend (line sample, point shape, label) under the title."""
        entries = self._legend_entries()
        painter.setFont(self._font(8.5))
        metrics = QFontMetricsF(painter.font())
        for (label, pen, shape), top_left in zip(
            entries, self._legend_positions(entries), strict=True
        ):
            x, y = top_left.x(), top_left.y()
            mid = y + metrics.height() / 2
            painter.setPen(pen)
            painter.drawLine(QPointF(x, mid), QPointF(x + 24, mid))
            if shape:
                draw_point(painter, QPointF(x + 12, mid), shape, pen.color())
            painter.setPen(AXIS_COLOUR)
            painter.drawText(QPointF(x + 29, y + metrics.ascent()), label)

    def _draw_right_label(self, painter: QPainter, y: float, text: str, colour: QColor) -> None:
        """Write a label in the right margin, vertically centred on ``y``."""
        metrics = QFontMetricsF(painter.font())
        painter.setPen(colour)
        painter.drawText(QPointF(self._plot_rect().right() + 8, y + metrics.ascent() / 2 - 1), text)


def label_left(preferred: float, text: str, painter: QPainter, plot: QRectF) -> float:
    """Left edge for a label near a point, moved left so it stays inside the plot."""
    width = QFontMetricsF(painter.font()).horizontalAdvance(text)
    return min(preferred, plot.right() - width - 2)


def draw_point(painter: QPainter, centre: QPointF, shape: str, colour: QColor) -> None:
    """A filled circle, square or triangle of ``colour`` centred on ``centre``."""
    painter.save()
    painter.setPen(QPen(colour, 1.5))
    painter.setBrush(QBrush(colour))
    r = 4.0
    if shape == "square":
        painter.drawRect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))
    elif shape == "triangle":
        painter.drawPolygon(
            QPolygonF(
                [
                    QPointF(centre.x(), centre.y() - r - 1),
                    QPointF(centre.x() - r - 1, centre.y() + r),
                    QPointF(centre.x() + r + 1, centre.y() + r),
                ]
            )
        )
    else:
        painter.drawEllipse(centre, r, r)
    painter.restore()


def draw_series(
    painter: QPainter,
    frame: ChartFrame,
    points: Sequence[tuple[date, float]],
    pen: QPen,
    shape: str,
    *,
    label_values: bool,
    label_above: bool = True,
) -> None:
    """A line through ``points`` (oldest first) with a shape at each, values optionally
    written above or below."""
    if not points:
        return
    ordered = sorted(points)
    path = QPainterPath(QPointF(frame.x(ordered[0][0]), frame.y(ordered[0][1])))
    for when, value in ordered[1:]:
        path.lineTo(QPointF(frame.x(when), frame.y(value)))
    painter.save()
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(path)
    painter.restore()
    metrics = QFontMetricsF(painter.font())
    for when, value in ordered:
        centre = QPointF(frame.x(when), frame.y(value))
        draw_point(painter, centre, shape, pen.color())
        if label_values:
            painter.setPen(pen.color().darker(130))
            text = f"{value:g}"
            dy = -8 if label_above else 8 + metrics.ascent()
            painter.drawText(
                QPointF(centre.x() - metrics.horizontalAdvance(text) / 2, centre.y() + dy), text
            )
