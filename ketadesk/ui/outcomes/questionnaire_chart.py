"""PHQ-9 and GAD-7 totals over time, with severity bands, events and PHQ-9 response."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ketadesk.core.questionnaires import (
    QuestionnaireScore,
    ResponseStatus,
    load_instrument,
    response_status,
)
from ketadesk.ui.outcomes.outcome_chart_base import (
    AXIS_COLOUR,
    ChartBase,
    ChartFrame,
    ChartMarker,
    LegendEntry,
    date_range,
    draw_point,
    draw_series,
    label_left,
    line_pen,
)

NO_QUESTIONNAIRES_TEXT = "No questionnaires yet"

_PHQ9_COLOUR = QColor("#0072B2")
_GAD7_COLOUR = QColor("#D55E00")
_ALERT_COLOUR = QColor("#B00020")
_ALERT_LABEL = "item 9 alert"
# Labels written next to points, which must not cover one another.
_POINT_LABEL_KINDS = frozenset({"value", "outcome label", "alert label"})
_BAND_SHADES = ("#F3F8F3", "#FBF8E6", "#FCEFE0", "#FADDD5", "#F5C9C4")


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


def score_points(scored: Sequence[tuple[date, QuestionnaireScore]]) -> tuple[ScorePoint, ...]:
    """Chart points from scored forms, oldest first. Incomplete forms have no total and are
    left out (they are listed, not plotted)."""
    return tuple(
        ScorePoint(when, score.total, score.safety_alert)
        for when, score in sorted(scored, key=lambda pair: pair[0])
        if score.is_complete and score.total is not None
    )


def _phq9_pen() -> QPen:
    return line_pen(_PHQ9_COLOUR, 2.4)


def _gad7_pen() -> QPen:
    return line_pen(_GAD7_COLOUR, 2.0, Qt.PenStyle.DashLine)


class QuestionnaireChart(ChartBase):
    """PHQ-9 and GAD-7 totals over time with severity bands, events and PHQ-9 response."""

    _empty_text = NO_QUESTIONNAIRES_TEXT
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

    def _chart_markers(self) -> tuple[ChartMarker, ...]:
        return self._data.markers

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

    def _paint_chart(self, painter: QPainter) -> None:
        data = self._data
        dates = [p.when for p in (*data.phq9, *data.gad7)] + [m.when for m in data.markers]
        first, last = date_range(dates)
        frame = ChartFrame(self._plot_rect(), first, last, 0, self._phq9.max_total)
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
        # Where both forms were taken on one day, the higher total is labelled above its point
        # and the lower below, so neither label lands on the other's point.
        phq_by_day = {p.when: p.total for p in data.phq9}
        gad_by_day = {p.when: p.total for p in data.gad7}
        draw_series(
            painter,
            frame,
            [(p.when, p.total) for p in data.gad7],
            gad_pen,
            "square",
            label_values=True,
            label_above=lambda when, total: when in phq_by_day and total > phq_by_day[when],
            notes=self.painted_text,
        )
        draw_series(
            painter,
            frame,
            [(p.when, p.total) for p in data.phq9],
            phq_pen,
            "circle",
            label_values=True,
            label_above=lambda when, total: total >= gad_by_day.get(when, -1),
            notes=self.painted_text,
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
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        box = QRectF(plot.right() + 8, plot.bottom() + 22, self._margin_right - 10, 44)
        painter.drawText(box, flags, note)
        used = QFontMetricsF(painter.font()).boundingRect(box, int(flags), note)
        self._note_text("note", note, used)

    def _legend_entries(self) -> list[LegendEntry]:
        data = self._data
        legend: list[LegendEntry] = []
        if data.phq9:
            legend.append(("PHQ-9 (depression)", _phq9_pen(), "circle"))
        if data.gad7:
            legend.append(("GAD-7 (anxiety)", _gad7_pen(), "square"))
        legend += self._marker_entries(data.markers)
        if any(p.safety_alert for p in data.phq9):
            legend.append(("PHQ-9 item 9 alert", line_pen(_ALERT_COLOUR, 0), "triangle"))
        return legend

    def _draw_safety_alerts(self, painter: QPainter, frame: ChartFrame) -> None:
        painter.setFont(self._font(8, bold=True))
        for point in self._data.phq9:
            if not point.safety_alert:
                continue
            centre = QPointF(frame.x(point.when), frame.y(point.total) - 30)
            draw_point(painter, centre, "triangle", _ALERT_COLOUR)
            painter.setPen(_ALERT_COLOUR)
            # Above the marker, centred, so it never covers the point's own value label.
            width = painter.fontMetrics().horizontalAdvance(_ALERT_LABEL)
            left = label_left(centre.x() - width / 2, _ALERT_LABEL, painter, frame.plot)
            at = QPointF(left, centre.y() - 9)
            painter.drawText(at, _ALERT_LABEL)
            metrics = QFontMetricsF(painter.font())
            self._note_text("alert label", _ALERT_LABEL, QRectF(
                at.x(), at.y() - metrics.ascent(), width, metrics.height()))

    def _draw_outcome_points(self, painter: QPainter, frame: ChartFrame) -> None:
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
            metrics = QFontMetricsF(painter.font())
            for name in new:
                text = f"✓ {name}"
                left = label_left(centre.x() + 6, text, painter, frame.plot)
                # The first height above the point where it covers no value or other label
                # (the response line under the chart says it in words as well).
                for rise in (22.0, 36.0, 50.0, 64.0):
                    at = QPointF(left, centre.y() - rise)
                    rect = QRectF(at.x(), at.y() - metrics.ascent(),
                                  metrics.horizontalAdvance(text), metrics.height())
                    if rect.top() >= frame.plot.top() and not any(
                        p.kind in _POINT_LABEL_KINDS and p.rect.intersects(rect)
                        for p in self.painted_text
                    ):
                        painter.drawText(at, text)
                        self._note_text("outcome label", text, rect)
                        break

    def _response_banner_size(self, plot_width: float) -> QRectF:
        """The response line's box (at 0, 0) for a plot ``plot_width`` pixels wide."""
        metrics = QFontMetricsF(self._font(9, bold=True))
        flags = Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap
        text = self.response_text()
        bounds = metrics.boundingRect(QRectF(0, 0, plot_width - 12, 200), int(flags), text)
        return QRectF(0, 0, bounds.width() + 12, bounds.height() + 4)

    def _bottom_margin(self) -> float:
        """Date labels and axis title, then the response line, however many lines it wraps
        to (a fixed margin cut its second line on a short chart)."""
        if self.is_empty():
            return self._margin_bottom
        return max(self._margin_bottom, 44 + self._response_banner_size(
            self._plot_width()).height() + 4)

    def _draw_response_banner(self, painter: QPainter, plot: QRectF) -> None:
        text = self.response_text()
        status = self.phq9_response()
        painter.setFont(self._font(9, bold=True))
        flags = Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap
        box = self._response_banner_size(plot.width()).translated(plot.left(), plot.bottom() + 44)
        is_good = status is not None and (status.is_response or status.is_remission)
        painter.fillRect(box, QColor("#E3F2E6") if is_good else QColor("#F2F2F2"))
        painter.setPen(QColor("#1B5E20") if is_good else AXIS_COLOUR)
        painter.drawText(box.adjusted(6, 2, -6, -2), flags, text)
        self._note_text("response line", text, box)
