"""Outcome charts built offscreen from real scored questionnaires; pixels checked, not mocked."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from ketadesk.core.questionnaires import load_instrument, score_questionnaire
from ketadesk.ui.outcomes.blood_pressure_chart import (
    NO_BP_TEXT,
    BloodPressureChart,
    BpChartData,
    BpReading,
)
from ketadesk.ui.outcomes.outcome_chart_base import ChartMarker, MarkerKind
from ketadesk.ui.outcomes.outcome_charts import OutcomeChartsPanel
from ketadesk.ui.outcomes.questionnaire_chart import (
    NO_QUESTIONNAIRES_TEXT,
    OutcomeChartData,
    QuestionnaireChart,
    score_points,
)

START = date(2026, 1, 5)


def spread(total: int, items: int) -> list[int | None]:
    answers: list[int | None] = []
    for _ in range(items):
        answers.append(min(3, total))
        total -= answers[-1]  # type: ignore[operator]
    return answers


def synthetic_outcomes(phq_totals: list[int], gad_totals: list[int]) -> OutcomeChartData:
    phq9, gad7 = load_instrument("PHQ-9"), load_instrument("GAD-7")
    phq_scores = [
        (START + timedelta(weeks=2 * i), score_questionnaire(phq9, spread(t, 9)))
        for i, t in enumerate(phq_totals)
    ]
    gad_scores = [
        (START + timedelta(weeks=2 * i), score_questionnaire(gad7, spread(t, 7)))
        for i, t in enumerate(gad_totals)
    ]
    return OutcomeChartData(
        phq9=score_points(phq_scores),
        gad7=score_points(gad_scores),
        markers=(
            ChartMarker(START, "v1", MarkerKind.PROTOCOL_VERSION),
            ChartMarker(START + timedelta(days=24), "150→200 mg"),
        ),
    )


def image_of(widget: QuestionnaireChart | BloodPressureChart | OutcomeChartsPanel) -> QImage:
    image = widget.grab().toImage()
    assert not image.isNull()
    assert image.width() > 0 and image.height() > 0
    return image


def dark_pixels(image: QImage, left: int, top: int, right: int, bottom: int) -> int:
    count = 0
    for y in range(top, bottom, 2):
        for x in range(left, right, 2):
            if image.pixelColor(x, y).lightness() < 160:
                count += 1
    return count


@pytest.fixture
def chart(qtbot: QtBot) -> QuestionnaireChart:
    widget = QuestionnaireChart()
    qtbot.addWidget(widget)
    widget.resize(900, 380)
    return widget


def test_chart_builds_with_real_scores_and_reports_response(chart: QuestionnaireChart) -> None:
    chart.set_data(synthetic_outcomes([21, 17, 12, 9, 4], [16, 14, 11, 8, 6]))
    assert not chart.is_empty()
    status = chart.phq9_response()
    assert status is not None
    assert (status.baseline_total, status.current_total) == (21, 4)
    assert status.is_response is True and status.is_remission is True
    assert "RESPONSE" in chart.response_text() and "REMISSION" in chart.response_text()
    image_of(chart)


def test_no_response_yet_is_said_in_words(chart: QuestionnaireChart) -> None:
    chart.set_data(synthetic_outcomes([20, 15], []))
    text = chart.response_text()
    assert "20 → 15" in text and "no response yet" in text and "not in remission" in text


def test_single_phq9_needs_another(chart: QuestionnaireChart) -> None:
    chart.set_data(synthetic_outcomes([14], [9]))
    assert "one more PHQ-9 needed" in chart.response_text()
    image_of(chart)


def test_incomplete_forms_are_not_plotted() -> None:
    phq9 = load_instrument("PHQ-9")
    complete = score_questionnaire(phq9, [1] * 9)
    incomplete = score_questionnaire(phq9, [1] * 8 + [None])
    points = score_points([(date(2026, 2, 1), incomplete), (date(2026, 1, 1), complete)])
    assert [(p.when, p.total) for p in points] == [(date(2026, 1, 1), 9)]
    assert points[0].safety_alert is True


def test_empty_chart_shows_message_and_no_plot(chart: QuestionnaireChart) -> None:
    chart.set_data(OutcomeChartData())
    assert chart.is_empty()
    assert NO_QUESTIONNAIRES_TEXT == "No questionnaires yet"
    image = image_of(chart)
    w, h = image.width(), image.height()
    # The message is drawn in the middle; no y axis is drawn at the plot's left edge (x = 64).
    assert dark_pixels(image, w // 2 - 90, h // 2 - 12, w // 2 + 90, h // 2 + 12) > 0
    assert dark_pixels(image, 62, h // 2 - 40, 67, h // 2 + 40) == 0
    chart.set_data(synthetic_outcomes([12, 10], [8, 7]))
    assert dark_pixels(image_of(chart), 62, h // 2 - 40, 67, h // 2 + 40) > 0


def test_pixels_differ_between_data_sets(chart: QuestionnaireChart, tmp_path: Path) -> None:
    chart.set_data(synthetic_outcomes([21, 17, 12, 9, 4], [16, 14, 11, 8, 6]))
    first = image_of(chart)
    chart.set_data(synthetic_outcomes([8, 12, 19, 24], [5, 9, 15, 20]))
    second = image_of(chart)
    assert first.size() == second.size()
    assert first != second
    assert chart.grab().save(str(tmp_path / "outcomes.png"))
    assert (tmp_path / "outcomes.png").stat().st_size > 1000


def test_safety_alert_point_changes_the_picture(chart: QuestionnaireChart) -> None:
    phq9 = load_instrument("PHQ-9")
    without = score_questionnaire(phq9, [2, 2, 2, 2, 2, 0, 0, 0, 0])
    with_alert = score_questionnaire(phq9, [2, 2, 2, 2, 1, 0, 0, 0, 1])
    assert without.total == with_alert.total
    chart.set_data(OutcomeChartData(phq9=score_points([(START, without)])))
    plain = image_of(chart)
    chart.set_data(OutcomeChartData(phq9=score_points([(START, with_alert)])))
    assert image_of(chart) != plain


@pytest.fixture
def bp_chart(qtbot: QtBot) -> BloodPressureChart:
    widget = BloodPressureChart()
    qtbot.addWidget(widget)
    widget.resize(900, 360)
    return widget


def bp_data(systolics: list[int], hold: int | None = 160) -> BpChartData:
    return BpChartData(
        readings=tuple(
            BpReading(START + timedelta(days=3 * i), s, 80 + i % 15)
            for i, s in enumerate(systolics)
        ),
        hold_systolic_above=hold,
        hold_diastolic_above=100,
        markers=(ChartMarker(START + timedelta(days=10), "v2", MarkerKind.PROTOCOL_VERSION),),
    )


def test_bp_chart_marks_readings_above_hold(bp_chart: BloodPressureChart) -> None:
    bp_chart.set_data(bp_data([128, 150, 161, 160, 172]))
    assert [r.systolic for r in bp_chart.readings_above_hold()] == [161, 172]
    with_hold = image_of(bp_chart)
    bp_chart.set_data(bp_data([128, 150, 161, 160, 172], hold=None))
    assert bp_chart.readings_above_hold() == ()
    assert image_of(bp_chart) != with_hold


def test_bp_chart_empty_message(bp_chart: BloodPressureChart) -> None:
    bp_chart.set_data(BpChartData())
    assert bp_chart.is_empty()
    assert NO_BP_TEXT == "No blood pressure readings yet"
    image = image_of(bp_chart)
    assert dark_pixels(image, 350, 160, 550, 200) > 0


def test_panel_shows_both_charts(qtbot: QtBot, tmp_path: Path) -> None:
    panel = OutcomeChartsPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 800)
    panel.set_data(synthetic_outcomes([19, 14, 9], [13, 10, 7]), bp_data([130, 140, 165]))
    panel.show()
    qtbot.waitExposed(panel)
    assert not panel.questionnaire_chart.is_empty()
    assert not panel.blood_pressure_chart.is_empty()
    image = image_of(panel)
    assert image.height() >= 700
