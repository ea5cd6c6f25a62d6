"""What both outcome charts share: event markers, the date/value frame, axes, legend, series.

Drawn with QPainter (no QtCharts). Markers and series are told apart by text, line style and
point shape as well as colour. Subclasses say what is empty, what the legend lists and how to
paint the plot; ``ChartBase.paintEvent`` does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    QResizeEvent,
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
# Rows of event labels above the plot (a protocol version and two dose changes a fortnight
# apart overprinted each other in two rows at 1,280 × 800).
_MARKER_ROWS = 3
_MIN_PLOT_HEIGHT = 120.0
_MIN_WIDTH = 480


def line_pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of ``width`` pixels in ``colour`` and line ``style``."""
    line = QPen(colour, width)
    line.setStyle(style)
    return line


@dataclass(frozen=True)
class PaintedText:
    """One piece of text the last paint drew: what kind (``date tick``, ``event label`` ...),
    the words, and the rectangle they cover (widget pixels). The layout test reads these to
    tell cut-off and overprinted labels, which no widget geometry shows."""

    kind: str
    text: str
    rect: QRectF


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


def _text_rect(metrics: QFontMetricsF, baseline_left: QPointF, text: str) -> QRectF:
    """The rectangle ``text`` covers when drawn with its baseline starting at ``baseline_left``."""
    return QRectF(
        baseline_left.x(),
        baseline_left.y() - metrics.ascent(),
        metrics.horizontalAdvance(text),
        metrics.height(),
    )


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
        #: The text the last paint drew, with where (see ``PaintedText``).
        self.painted_text: list[PaintedText] = []
        self._title = title
        self._y_axis_label = y_axis_label
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._last_minimum = QSize()
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(self.backgroundRole(), QColor("white"))
        self.setPalette(palette)

    def sizeHint(self) -> QSize:
        return QSize(900, max(380, self.minimumSizeHint().height()))

    def minimumSizeHint(self) -> QSize:
        """Room for the title, legend, event labels and axes around a plot of at least
        ``_MIN_PLOT_HEIGHT`` (a fixed 260 px left a 55 px plot whose ticks overprinted)."""
        height = self._margin_top() + self._bottom_margin() + _MIN_PLOT_HEIGHT
        return QSize(_MIN_WIDTH, int(height + 0.5))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        minimum = self.minimumSizeHint()  # the legend wraps to more rows when narrower
        if minimum != self._last_minimum:
            self._last_minimum = minimum
            self.updateGeometry()

    def is_empty(self) -> bool:
        """Whether there is nothing to plot (the empty message is drawn instead)."""
        raise NotImplementedError

    def paintEvent(self, event: QPaintEvent) -> None:
        self.painted_text = []
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

    def _note_text(self, kind: str, text: str, rect: QRectF) -> None:
        self.painted_text.append(PaintedText(kind, text, QRectF(rect)))

    def _plot_width(self) -> float:
        return max(10.0, self.width() - self._margin_left - self._margin_right)

    def _bottom_margin(self) -> float:
        """Room under the plot: date labels and the axis title (subclasses may add more)."""
        return self._margin_bottom

    def _plot_rect(self) -> QRectF:
        return QRectF(
            self._margin_left,
            self._margin_top(),
            self._plot_width(),
            max(10.0, self.height() - self._margin_top() - self._bottom_margin()),
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
        """Title, legend rows, then the rows of event labels above the plot."""
        positions = self._legend_positions(self._legend_entries())
        legend_bottom = (positions[-1].y() if positions else self._legend_top) + (
            self._legend_row_height
        )
        rows = _MARKER_ROWS if self._chart_markers() else 1  # 1: room for a label above a point
        return legend_bottom + rows * self._marker_label_height() + 4

    def _chart_markers(self) -> Sequence[ChartMarker]:
        """The event markers of the current data (subclasses with markers say which)."""
        return ()

    def _font(self, point_size: float, *, bold: bool = False) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(point_size)
        font.setBold(bold)
        return font

    def _draw_title(self, painter: QPainter) -> None:
        painter.setFont(self._font(11, bold=True))
        painter.setPen(AXIS_COLOUR)
        box = QRectF(self._margin_left, 6, self.width() - self._margin_left - 8, 24)
        painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self._title)
        width = QFontMetricsF(painter.font()).horizontalAdvance(self._title)
        self._note_text("title", self._title, QRectF(box.left(), box.top(), width, box.height()))

    def _draw_empty(self, painter: QPainter, message: str) -> None:
        self._draw_title(painter)
        painter.setFont(self._font(12))
        painter.setPen(QColor("#555555"))
        painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, message)

    def _draw_axes(self, painter: QPainter, frame: ChartFrame, y_ticks: Sequence[float]) -> None:
        plot = frame.plot
        painter.setFont(self._font(8.5))
        metrics = QFontMetricsF(painter.font())
        previous_top = 1e9  # value labels never overprint either: a crowded one is left out
        for value in y_ticks:
            y = frame.y(value)
            painter.setPen(QPen(_GRID_COLOUR, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(AXIS_COLOUR)
            text = f"{value:g}"
            at = QPointF(
                plot.left() - 6 - metrics.horizontalAdvance(text), y + metrics.ascent() / 3
            )
            rect = _text_rect(metrics, at, text)
            if rect.bottom() > previous_top:
                continue
            painter.drawText(at, text)
            self._note_text("y tick", text, rect)
            previous_top = rect.top()
        # Date labels never overprint: a tick whose label would touch the one before is
        # left without a label (its tick mark stays).
        gap = metrics.horizontalAdvance("  ")
        previous_right = -1e9
        for tick in _date_ticks(frame.first, frame.last):
            x = frame.x(tick)
            painter.setPen(QPen(AXIS_COLOUR, 1))
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            text = _tick_label(tick, frame.first, frame.last)
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, 1.0), self.width() - width - 1)
            if left < previous_right + gap:
                continue
            at = QPointF(left, plot.bottom() + 6 + metrics.ascent())
            painter.drawText(at, text)
            self._note_text("date tick", text, _text_rect(metrics, at, text))
            previous_right = left + width
        painter.setPen(QPen(AXIS_COLOUR, 1.2))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())

        painter.setFont(self._font(9))
        metrics = QFontMetricsF(painter.font())
        date_title = QRectF(plot.left(), plot.bottom() + 24, plot.width(), 20)
        painter.drawText(date_title, Qt.AlignmentFlag.AlignHCenter, "Date")
        width = metrics.horizontalAdvance("Date")
        self._note_text("axis title", "Date", QRectF(
            date_title.center().x() - width / 2, date_title.top(), width, metrics.height()))
        # The value axis title is written up the left edge, centred on the plot but free to
        # run past its ends (a short plot cut "Total score (points)" to "tal score (point").
        title = self._y_axis_label
        room = self.height() - 4.0
        if metrics.horizontalAdvance(title) > room:
            title = metrics.elidedText(title, Qt.TextElideMode.ElideRight, room)
        span = metrics.horizontalAdvance(title) + 4
        centre = min(max(plot.center().y(), 2 + span / 2), self.height() - 2 - span / 2)
        painter.save()
        painter.translate(14, centre)
        painter.rotate(-90)
        painter.drawText(
            QRectF(-span / 2, -8, span, 18), Qt.AlignmentFlag.AlignCenter, title
        )
        painter.restore()
        self._note_text("axis title", title, QRectF(14 - 8, centre - span / 2, 18, span))

    def _draw_markers(
        self, painter: QPainter, frame: ChartFrame, markers: Sequence[ChartMarker]
    ) -> None:
        plot = frame.plot
        painter.setFont(self._font(8))
        metrics = QFontMetricsF(painter.font())
        row_height = self._marker_label_height()
        row_ends = [-1e9] * _MARKER_ROWS  # right edge of the last label in each row
        for marker in sorted(markers, key=lambda m: m.when):
            if not frame.first <= marker.when <= frame.last:
                continue
            x = frame.x(marker.when)
            is_protocol = marker.kind is MarkerKind.PROTOCOL_VERSION
            colour = _PROTOCOL_MARKER_COLOUR if is_protocol else _DOSE_MARKER_COLOUR
            style = Qt.PenStyle.DashDotLine if is_protocol else Qt.PenStyle.DashLine
            prefix = "Protocol " if is_protocol else "Dose "
            text = prefix + marker.label
            width = metrics.horizontalAdvance(text) + 6
            left = min(x + 2, self.width() - width - 2)
            # The first row where the label clears its neighbour; when every row is taken,
            # the row whose last label ends first, the label moved right of that one.
            free = [r for r in range(_MARKER_ROWS) if row_ends[r] + 2 <= left]
            row = free[0] if free else min(range(_MARKER_ROWS), key=lambda r: row_ends[r])
            left = max(left, row_ends[row] + 2)
            top = plot.top() - _MARKER_ROWS * row_height + row * row_height
            painter.setPen(line_pen(colour, 1.4, style))
            painter.drawLine(QPointF(x, top), QPointF(x, plot.bottom()))
            box = QRectF(left, top, width, metrics.height() + 2)
            painter.fillRect(box, QColor(255, 255, 255, 225))
            painter.setPen(colour)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            self._note_text("event label", text, box)
            row_ends[row] = left + width

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
            at = QPointF(x + 29, y + metrics.ascent())
            painter.drawText(at, label)
            self._note_text("legend", label, _text_rect(metrics, at, label))

    def _draw_right_label(self, painter: QPainter, y: float, text: str, colour: QColor) -> None:
        """Write a label in the right margin, vertically centred on ``y``."""
        metrics = QFontMetricsF(painter.font())
        painter.setPen(colour)
        at = QPointF(self._plot_rect().right() + 8, y + metrics.ascent() / 2 - 1)
        painter.drawText(at, text)
        self._note_text("right label", text, _text_rect(metrics, at, text))


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
    label_above: bool | Callable[[date, float], bool] = True,
    notes: list[PaintedText] | None = None,
) -> None:
    """A line through ``points`` (oldest first) with a shape at each, values optionally
    written above or below (``label_above`` may decide point by point); the value labels
    drawn are added to ``notes``, and a label that would overprint one already there is left
    out."""
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
            above = label_above(when, value) if callable(label_above) else label_above
            width = metrics.horizontalAdvance(text)
            if above:
                at = QPointF(centre.x() - width / 2, centre.y() - 8)
            elif centre.y() + 8 + metrics.height() <= frame.plot.bottom():
                at = QPointF(centre.x() - width / 2, centre.y() + 8 + metrics.ascent())
            else:  # below, it would land on the date labels: beside the point instead
                at = QPointF(centre.x() + 7, centre.y() + metrics.ascent() / 2 - 1)
            rect = _text_rect(metrics, at, text)
            if notes is not None:
                # Dense points: a value whose label would overprint another is left unlabelled
                # (its point stays; every value is in the table beside the chart).
                if any(n.kind == "value" and n.rect.intersects(rect) for n in notes):
                    continue
                notes.append(PaintedText("value", text, rect))
            painter.drawText(at, text)
