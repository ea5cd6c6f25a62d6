"""Outcome charts drawn with QPainter (no QtCharts): questionnaire totals and blood pressure.

Input is plain frozen dataclasses so the charts never hold ORM rows. Severity bands, markers
and series are told apart by text, line style and point shape as well as colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from ketadesk.core.questionnaires import (
    QuestionnaireScore,
    ResponseStatus,
    load_instrument,
    response_status,
)

NO_QUESTIONNAIRES_TEXT = "No questionnaires yet"
NO_BP_TEXT = "No blood pressure readings yet"


class MarkerKind(StrEnum):
    DOSE_CHANGE = "dose_change"
    PROTOCOL_VERSION = "protocol_version"


@dataclass(frozen=True)
class ChartMarker:
    """A vertical event line: a dose change ("150 → 200 mg") or a protocol version ("v2")."""

    when: date
    label: str
    kind: MarkerKind = MarkerKind.DOSE_CHANGE


@dataclass(frozen=True)
class ScorePoint:
    """One complete questionnaire total (points); ``safety_alert`` = PHQ-9 item 9 non-zero."""

    when: date
    total: int
    safety_alert: bool = False


@dataclass(frozen=True)
class OutcomeChartData:
    """PHQ-9 and GAD-7 totals (complete forms only) and the events to mark."""

    phq9: tuple[ScorePoint, ...] = ()
    gad7: tuple[ScorePoint, ...] = ()
    markers: tuple[ChartMarker, ...] = ()


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


def score_points(scored: Sequence[tuple[date, QuestionnaireScore]]) -> tuple[ScorePoint, ...]:
    """Chart points from scored forms, oldest first. Incomplete forms have no total and are
    left out (they are listed, not plotted)."""
    return tuple(
        ScorePoint(when, score.total, score.safety_alert)
        for when, score in sorted(scored, key=lambda pair: pair[0])
        if score.is_complete and score.total is not None
    )


# Colours chosen to stay distinguishable for the common colour-vision deficiencies
# (Okabe-Ito palette); each series also has its own line style and point shape.
_PHQ9_COLOUR = QColor("#0072B2")
_GAD7_COLOUR = QColor("#D55E00")
_SYSTOLIC_COLOUR = QColor("#0072B2")
_DIASTOLIC_COLOUR = QColor("#009E73")
_HOLD_COLOUR = QColor("#B00020")
_ALERT_COLOUR = QColor("#B00020")
_DOSE_MARKER_COLOUR = QColor("#555555")
_PROTOCOL_MARKER_COLOUR = QColor("#6A3D9A")
_AXIS_COLOUR = QColor("#333333")
_GRID_COLOUR = QColor("#DDDDDD")


def _pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width)
    pen.setStyle(style)
    return pen


LegendEntry = tuple[str, QPen, str]
"""Legend row: label, line pen, point shape ("circle", "square", "triangle" or "")."""

_BAND_SHADES = ("#F3F8F3", "#FBF8E6", "#FCEFE0", "#FADDD5", "#F5C9C4")


@dataclass(frozen=True)
class _Frame:
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


def _date_range(dates: Sequence[date]) -> tuple[date, date]:
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


class _ChartBase(QWidget):
    """Shared painting: title, axes, date ticks, event markers, legend, empty message."""

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
                ("Dose change", _pen(_DOSE_MARKER_COLOUR, 1.4, Qt.PenStyle.DashLine), "")
            )
        if any(m.kind is MarkerKind.PROTOCOL_VERSION for m in markers):
            entries.append(
                (
                    "Protocol version",
                    _pen(_PROTOCOL_MARKER_COLOUR, 1.4, Qt.PenStyle.DashDotLine),
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
        painter.setPen(_AXIS_COLOUR)
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

    def _draw_axes(self, painter: QPainter, frame: _Frame, y_ticks: Sequence[float]) -> None:
        plot = frame.plot
        painter.setFont(self._font(8.5))
        metrics = QFontMetricsF(painter.font())
        for value in y_ticks:
            y = frame.y(value)
            painter.setPen(QPen(_GRID_COLOUR, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(_AXIS_COLOUR)
            text = f"{value:g}"
            painter.drawText(
                QPointF(
                    plot.left() - 6 - metrics.horizontalAdvance(text), y + metrics.ascent() / 3
                ),
                text,
            )
        for tick in _date_ticks(frame.first, frame.last):
            x = frame.x(tick)
            painter.setPen(QPen(_AXIS_COLOUR, 1))
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            text = _tick_label(tick, frame.first, frame.last)
            painter.drawText(
                QPointF(
                    x - metrics.horizontalAdvance(text) / 2, plot.bottom() + 6 + metrics.ascent()
                ),
                text,
            )
        painter.setPen(QPen(_AXIS_COLOUR, 1.2))
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
        self, painter: QPainter, frame: _Frame, markers: Sequence[ChartMarker]
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
            painter.setPen(_pen(colour, 1.4, style))
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
                _draw_point(painter, QPointF(x + 12, mid), shape, pen.color())
            painter.setPen(_AXIS_COLOUR)
            painter.drawText(QPointF(x + 29, y + metrics.ascent()), label)

    def _draw_right_label(self, painter: QPainter, y: float, text: str, colour: QColor) -> None:
        """Write a label in the right margin, vertically centred on ``y``."""
        metrics = QFontMetricsF(painter.font())
        painter.setPen(colour)
        painter.drawText(QPointF(self._plot_rect().right() + 8, y + metrics.ascent() / 2 - 1), text)


def _label_left(preferred: float, text: str, painter: QPainter, plot: QRectF) -> float:
    """Left edge for a label near a point, moved left so it stays inside the plot."""
    width = QFontMetricsF(painter.font()).horizontalAdvance(text)
    return min(preferred, plot.right() - width - 2)


def _draw_point(painter: QPainter, centre: QPointF, shape: str, colour: QColor) -> None:
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


def _draw_series(
    painter: QPainter,
    frame: _Frame,
    points: Sequence[tuple[date, float]],
    pen: QPen,
    shape: str,
    *,
    label_values: bool,
    label_above: bool = True,
) -> None:
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
        _draw_point(painter, centre, shape, pen.color())
        if label_values:
            painter.setPen(pen.color().darker(130))
            text = f"{value:g}"
            dy = -8 if label_above else 8 + metrics.ascent()
            painter.drawText(
                QPointF(centre.x() - metrics.horizontalAdvance(text) / 2, centre.y() + dy), text
            )


def _phq9_pen() -> QPen:
    return _pen(_PHQ9_COLOUR, 2.4)


def _gad7_pen() -> QPen:
    return _pen(_GAD7_COLOUR, 2.0, Qt.PenStyle.DashLine)


class QuestionnaireChart(_ChartBase):
    """PHQ-9 and GAD-7 totals over time with severity bands, events and PHQ-9 response."""

    _margin_bottom = 84.0  # date axis, axis title, then the response line (may wrap)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("PHQ-9 and GAD-7 totals", "Total score (points)", parent)
        self._data = OutcomeChartData()
        self._phq9 = load_instrument("PHQ-9")

    def set_data(self, data: OutcomeChartData) -> None:
        self._data = data
        self.update()

    def chart_data(self) -> OutcomeChartData:
        return self._data

    def is_empty(self) -> bool:
        return not (self._data.phq9 or self._data.gad7)

    def phq9_response(self) -> ResponseStatus | None:
        """First PHQ-9 (baseline) against the latest, or ``None`` with no PHQ-9 at all."""
        if not self._data.phq9:
            return None
        ordered = sorted(self._data.phq9, key=lambda p: p.when)
        if len(ordered) == 1:
            return response_status(ordered[0].total, None)
        return response_status(ordered[0].total, ordered[-1].total)

    def response_text(self) -> str:
        """A one-line summary of response and remission, in words (also drawn on the chart)."""
        status = self.phq9_response()
        if status is None:
            return "PHQ-9 response: not checked (no PHQ-9 yet)"
        if status.current_total is None:
            return f"PHQ-9 baseline {status.baseline_total}: one more PHQ-9 needed for response"
        change = "" if status.percent_change is None else f" ({status.percent_change:+.0f}%)"
        response = {
            True: "RESPONSE (≥50% drop)",
            False: "no response yet",
            None: "response not checked",
        }[status.is_response]
        remission = {
            True: "REMISSION (<5)",
            False: "not in remission",
            None: "remission not checked",
        }[status.is_remission]
        return (
            f"PHQ-9 {status.baseline_total} → {status.current_total}{change}: "
            f"{response}; {remission}"
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        try:
            if self.is_empty():
                self._draw_empty(painter, NO_QUESTIONNAIRES_TEXT)
                return
            self._paint_chart(painter)
        finally:
            painter.end()

    def _paint_chart(self, painter: QPainter) -> None:
        data = self._data
        dates = [p.when for p in (*data.phq9, *data.gad7)] + [m.when for m in data.markers]
        first, last = _date_range(dates)
        frame = _Frame(self._plot_rect(), first, last, 0, self._phq9.max_total)
        plot = frame.plot
        self._draw_title(painter)

        # Severity bands (PHQ-9 cut-offs), shaded and named in text at the right edge.
        painter.setFont(self._font(8))
        for index, band in enumerate(self._phq9.bands):
            top = frame.y(band.max_total + (0 if band.max_total == frame.high else 0.5))
            bottom = frame.y(max(band.min_total - 0.5, 0))
            rect = QRectF(plot.left(), top, plot.width(), bottom - top)
            painter.fillRect(rect, QColor(_BAND_SHADES[index % len(_BAND_SHADES)]))
            label = f"{band.min_total}–{band.max_total} {band.label}"
            self._draw_right_label(painter, (top + bottom) / 2, label, QColor("#444444"))

        self._draw_axes(painter, frame, [0, 5, 10, 15, 20, 27])
        self._draw_markers(painter, frame, data.markers)

        painter.setFont(self._font(8.5, bold=True))
        phq_pen, gad_pen = _phq9_pen(), _gad7_pen()
        _draw_series(
            painter,
            frame,
            [(p.when, p.total) for p in data.gad7],
            gad_pen,
            "square",
            label_values=True,
            label_above=False,
        )
        _draw_series(
            painter,
            frame,
            [(p.when, p.total) for p in data.phq9],
            phq_pen,
            "circle",
            label_values=True,
        )
        self._draw_safety_alerts(painter, frame)

        self._draw_legend(painter)
        self._draw_outcome_points(painter, frame)
        self._draw_response_banner(painter, plot)
        painter.setFont(self._font(7.5))
        painter.setPen(QColor("#555555"))
        note = (
            "Shading = PHQ-9 severity bands.\n"
            "GAD-7: 0–4 minimal, 5–9 mild,\n10–14 moderate, 15–21 severe."
        )
        painter.drawText(
            QRectF(plot.right() + 8, plot.bottom() + 22, self._margin_right - 10, 44),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
            note,
        )

    def _legend_entries(self) -> list[LegendEntry]:
        data = self._data
        legend: list[LegendEntry] = []
        if data.phq9:
            legend.append(("PHQ-9 (depression)", _phq9_pen(), "circle"))
        if data.gad7:
            legend.append(("GAD-7 (anxiety)", _gad7_pen(), "square"))
        legend += self._marker_entries(data.markers)
        if any(p.safety_alert for p in data.phq9):
            legend.append(("PHQ-9 item 9 alert", _pen(_ALERT_COLOUR, 0), "triangle"))
        return legend

    def _draw_safety_alerts(self, painter: QPainter, frame: _Frame) -> None:
        painter.setFont(self._font(8, bold=True))
        for point in self._data.phq9:
            if not point.safety_alert:
                continue
            centre = QPointF(frame.x(point.when), frame.y(point.total) - 30)
            _draw_point(painter, centre, "triangle", _ALERT_COLOUR)
            painter.setPen(_ALERT_COLOUR)
            left = _label_left(centre.x() + 8, "item 9 alert", painter, frame.plot)
            painter.drawText(QPointF(left, centre.y() + 4), "item 9 alert")

    def _draw_outcome_points(self, painter: QPainter, frame: _Frame) -> None:
        """Label the first PHQ-9 that meets response and the first that meets remission."""
        ordered = sorted(self._data.phq9, key=lambda p: p.when)
        if len(ordered) < 2:
            return
        baseline = ordered[0].total
        painter.setFont(self._font(8, bold=True))
        shown: set[str] = set()
        for point in ordered[1:]:
            status = response_status(baseline, point.total)
            reached = {"response": status.is_response, "remission": status.is_remission}
            new = [name for name, is_met in reached.items() if is_met and name not in shown]
            shown.update(new)
            centre = QPointF(frame.x(point.when), frame.y(point.total))
            painter.setPen(QColor("#1B5E20"))
            for row, name in enumerate(new):
                text = f"✓ {name}"
                left = _label_left(centre.x() + 6, text, painter, frame.plot)
                painter.drawText(QPointF(left, centre.y() - 22 - 14 * row), text)

    def _draw_response_banner(self, painter: QPainter, plot: QRectF) -> None:
        text = self.response_text()
        status = self.phq9_response()
        painter.setFont(self._font(9, bold=True))
        metrics = QFontMetricsF(painter.font())
        flags = Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap
        bounds = metrics.boundingRect(QRectF(0, 0, plot.width() - 12, 200), int(flags), text)
        box = QRectF(plot.left(), plot.bottom() + 44, bounds.width() + 12, bounds.height() + 4)
        is_good = status is not None and (status.is_response or status.is_remission)
        painter.fillRect(box, QColor("#E3F2E6") if is_good else QColor("#F2F2F2"))
        painter.setPen(QColor("#1B5E20") if is_good else _AXIS_COLOUR)
        painter.drawText(box.adjusted(6, 2, -6, -2), flags, text)


def _systolic_pen() -> QPen:
    return _pen(_SYSTOLIC_COLOUR, 2.2)


def _diastolic_pen() -> QPen:
    return _pen(_DIASTOLIC_COLOUR, 2.0, Qt.PenStyle.DashLine)


def _hold_pen() -> QPen:
    return _pen(_HOLD_COLOUR, 1.6, Qt.PenStyle.DashLine)


class BloodPressureChart(_ChartBase):
    """Systolic and diastolic readings (mmHg) over time with the protocol hold thresholds."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Blood pressure before dosing", "Blood pressure (mmHg)", parent)
        self._data = BpChartData()

    def set_data(self, data: BpChartData) -> None:
        self._data = data
        self.update()

    def chart_data(self) -> BpChartData:
        return self._data

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

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        try:
            if self.is_empty():
                self._draw_empty(painter, NO_BP_TEXT)
                return
            self._paint_chart(painter)
        finally:
            painter.end()

    def _paint_chart(self, painter: QPainter) -> None:
        data = self._data
        dates = [r.when for r in data.readings] + [m.when for m in data.markers]
        first, last = _date_range(dates)
        values = [v for r in data.readings for v in (r.systolic, r.diastolic)]
        values += [
            t for t in (data.hold_systolic_above, data.hold_diastolic_above) if t is not None
        ]
        low = max(0, (min(values) - 10) // 20 * 20)
        high = (max(values) + 20) // 20 * 20
        frame = _Frame(self._plot_rect(), first, last, low, high)
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
        systolic_pen, diastolic_pen = _systolic_pen(), _diastolic_pen()
        _draw_series(
            painter,
            frame,
            [(r.when, r.systolic) for r in data.readings],
            systolic_pen,
            "triangle",
            label_values=False,
        )
        _draw_series(
            painter,
            frame,
            [(r.when, r.diastolic) for r in data.readings],
            diastolic_pen,
            "square",
            label_values=False,
        )
        # Readings above a hold threshold get a ring and their value, so they stand out in text.
        painter.setFont(self._font(8, bold=True))
        for reading in self.readings_above_hold():
            centre = QPointF(frame.x(reading.when), frame.y(reading.systolic))
            painter.setPen(QPen(_HOLD_COLOUR, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(centre, 8, 8)
            painter.drawText(
                QPointF(centre.x() + 9, centre.y() - 9), f"{reading.systolic}/{reading.diastolic}"
            )

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
            legend.append(("Above hold (ringed)", _pen(_HOLD_COLOUR, 2), ""))
        return legend + self._marker_entries(data.markers)


class OutcomeChartsPanel(QWidget):
    """The two charts stacked: questionnaire totals above, blood pressure below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.questionnaire_chart = QuestionnaireChart(self)
        self.blood_pressure_chart = BloodPressureChart(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.questionnaire_chart)
        layout.addWidget(self.blood_pressure_chart)

    def set_data(self, outcomes: OutcomeChartData, blood_pressure: BpChartData) -> None:
        self.questionnaire_chart.set_data(outcomes)
        self.blood_pressure_chart.set_data(blood_pressure)
