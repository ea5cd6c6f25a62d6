"""PHQ-9 / GAD-7 scoring, bands at every boundary, incomplete forms, item-9 alert, response."""

from __future__ import annotations

import json
from datetime import date

import jsonschema
import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.questionnaires import (
    Instrument,
    OutcomeDefinitions,
    available_instruments,
    instrument_key,
    load_instrument,
    questionnaire_to_json,
    response_status,
    score_questionnaire,
)
from ketadesk.resources import resource_path


def answers_totalling(total: int, item_count: int, *, keep_last_zero: bool = False) -> list[int]:
    """Spread ``total`` points over the items (each at most 3), filling from the first item."""
    answers = [0] * item_count
    remaining = total
    usable = item_count - 1 if keep_last_zero else item_count
    for index in range(usable):
        answers[index] = min(3, remaining)
        remaining -= answers[index]
    assert remaining == 0, "total does not fit"
    return answers


@pytest.fixture(scope="module")
def phq9() -> Instrument:
    return load_instrument("PHQ-9")


@pytest.fixture(scope="module")
def gad7() -> Instrument:
    return load_instrument("gad7")


# --- resource files ------------------------------------------------------------------------


def test_every_instrument_file_matches_the_schema() -> None:
    schema = json.loads(resource_path("instruments", "instrument.schema.json").read_text("utf-8"))
    assert set(available_instruments()) == {"phq9", "gad7"}
    for key in available_instruments():
        data = json.loads(resource_path("instruments", f"{key}.json").read_text("utf-8"))
        jsonschema.validate(data, schema)
        assert all(s.get("doi") or s.get("url") for s in data["sources"])


def test_instruments_have_the_standard_shape(phq9: Instrument, gad7: Instrument) -> None:
    assert (len(phq9.items), phq9.max_total) == (9, 27)
    assert (len(gad7.items), gad7.max_total) == (7, 21)
    for instrument in (phq9, gad7):
        assert [o.value for o in instrument.response_options] == [0, 1, 2, 3]
    assert phq9.safety_item is not None and phq9.safety_item.number == 9
    assert "988" in phq9.safety_item.crisis_line
    assert gad7.safety_item is None
    assert phq9.outcome_definitions == OutcomeDefinitions(
        50, 5, phq9.outcome_definitions.sources if phq9.outcome_definitions else ()
    )
    dois = {s.doi for s in phq9.sources} | {s.doi for s in gad7.sources}
    assert "10.1046/j.1525-1497.2001.016009606.x" in dois
    assert "10.1001/archinte.166.10.1092" in dois


def test_instrument_names_are_normalised() -> None:
    assert instrument_key("PHQ-9") == instrument_key("phq 9") == "phq9"
    assert load_instrument("GAD-7").id == "gad7"


def test_unknown_instrument_is_a_clear_error() -> None:
    with pytest.raises(UserFacingError, match=r"Unknown questionnaire 'BDI-II'.*PHQ-9"):
        load_instrument("BDI-II")


# --- bands at every boundary ---------------------------------------------------------------

PHQ9_BOUNDARIES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately severe"),
    (19, "moderately severe"),
    (20, "severe"),
    (27, "severe"),
]

GAD7_BOUNDARIES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "severe"),
    (21, "severe"),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_BOUNDARIES)
def test_phq9_total_and_band_at_boundaries(phq9: Instrument, total: int, band: str) -> None:
    score = score_questionnaire(phq9, answers_totalling(total, 9))
    assert score.is_complete
    assert score.total == total
    assert score.band == band
    assert score.missing_items == ()


@pytest.mark.parametrize(("total", "band"), GAD7_BOUNDARIES)
def test_gad7_total_and_band_at_boundaries(gad7: Instrument, total: int, band: str) -> None:
    score = score_questionnaire(gad7, answers_totalling(total, 7))
    assert score.is_complete
    assert score.total == total
    assert score.band == band
    assert score.safety_alert is False


def test_band_for_rejects_impossible_total(phq9: Instrument) -> None:
    with pytest.raises(UserFacingError, match="between 0 and 27"):
        phq9.band_for(28)


# --- incomplete forms ----------------------------------------------------------------------


def test_incomplete_phq9_is_not_scored(phq9: Instrument) -> None:
    answers: list[int | None] = [3, 3, 3, 3, None, 3, 3, 3, 0]
    score = score_questionnaire(phq9, answers)
    assert score.is_complete is False
    assert score.total is None
    assert score.band is None
    assert score.missing_items == (5,)
    assert score.answers == tuple(answers)


def test_all_blank_gad7_is_incomplete(gad7: Instrument) -> None:
    score = score_questionnaire(gad7, [None] * 7)
    assert (score.is_complete, score.total, score.band) == (False, None, None)
    assert score.missing_items == (1, 2, 3, 4, 5, 6, 7)


# --- item-9 safety alert -------------------------------------------------------------------


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_non_zero_item9_raises_alert(phq9: Instrument, item9: int) -> None:
    score = score_questionnaire(phq9, [0] * 8 + [item9])
    assert score.safety_alert is True
    assert score.total == item9
    assert score.band == "minimal"  # a low total never hides the alert
    assert score.crisis_line is not None and "988" in score.crisis_line
    assert score.safety_message is not None


def test_item9_alert_when_other_items_are_blank(phq9: Instrument) -> None:
    score = score_questionnaire(phq9, [None] * 8 + [1])
    assert score.is_complete is False
    assert score.total is None
    assert score.safety_alert is True


def test_item9_zero_or_blank_gives_no_alert(phq9: Instrument) -> None:
    assert score_questionnaire(phq9, [3] * 8 + [0]).safety_alert is False
    blank_item9 = score_questionnaire(phq9, [3] * 8 + [None])
    assert blank_item9.safety_alert is False
    assert blank_item9.missing_items == (9,)
    assert blank_item9.safety_message is None


def test_severe_total_with_item9_zero_is_severe_without_alert(phq9: Instrument) -> None:
    score = score_questionnaire(phq9, answers_totalling(24, 9, keep_last_zero=True))
    assert (score.total, score.band, score.safety_alert) == (24, "severe", False)


# --- invalid input -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [4, -1, 10, True, 1.5, "2"])
def test_out_of_range_answers_are_refused(phq9: Instrument, bad: object) -> None:
    answers: list[object] = [0] * 9
    answers[3] = bad
    with pytest.raises(UserFacingError, match=r"PHQ-9 question 4: .*from 0 .* to 3"):
        score_questionnaire(phq9, answers)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, 7, 8, 10])
def test_wrong_number_of_answers_is_refused(phq9: Instrument, count: int) -> None:
    with pytest.raises(UserFacingError, match=f"9 questions, but {count} answers"):
        score_questionnaire(phq9, [0] * count)


def test_gad7_refuses_phq9_length(gad7: Instrument) -> None:
    with pytest.raises(UserFacingError, match="GAD-7 has 7 questions, but 9"):
        score_questionnaire(gad7, [0] * 9)


# --- response and remission ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "current", "percent", "is_response", "is_remission"),
    [
        (20, 10, -50.0, True, False),  # exactly 50% is a response
        (20, 11, -45.0, False, False),
        (21, 10, -52.4, True, False),
        (21, 11, -47.6, False, False),
        (10, 4, -60.0, True, True),
        (10, 5, -50.0, True, False),  # 5 is not below 5
        (8, 12, 50.0, False, False),  # worse
        (6, 6, 0.0, False, False),
    ],
)
def test_response_and_remission(
    baseline: int, current: int, percent: float, is_response: bool, is_remission: bool
) -> None:
    status = response_status(baseline, current)
    assert status.percent_change == percent
    assert status.is_response is is_response
    assert status.is_remission is is_remission
    assert status.not_checked_reason is None


def test_baseline_zero_is_not_checked_for_response() -> None:
    status = response_status(0, 2)
    assert status.percent_change is None
    assert status.is_response is None
    assert status.is_remission is True
    assert status.not_checked_reason is not None and "baseline" in status.not_checked_reason


def test_missing_baseline_or_current_is_not_checked() -> None:
    no_baseline = response_status(None, 12)
    assert (no_baseline.is_response, no_baseline.is_remission) == (None, False)
    no_current = response_status(18, None)
    assert (no_current.is_response, no_current.is_remission) == (None, None)
    assert no_current.not_checked_reason is not None


@pytest.mark.parametrize(("baseline", "current"), [(28, 3), (10, -1), (True, 3)])
def test_response_rejects_impossible_totals(baseline: object, current: object) -> None:
    with pytest.raises(UserFacingError, match="from 0 to 27"):
        response_status(baseline, current)  # type: ignore[arg-type]


def test_response_uses_supplied_definitions() -> None:
    stricter = OutcomeDefinitions(response_min_percent_drop=60, remission_below_total=3, sources=())
    status = response_status(20, 10, stricter)
    assert (status.is_response, status.is_remission) == (False, False)


# --- headless JSON -------------------------------------------------------------------------


def test_questionnaire_to_json_complete(phq9: Instrument) -> None:
    score = score_questionnaire(phq9, [1, 2, 1, 2, 1, 0, 1, 1, 0])
    data = questionnaire_to_json(score, date(2026, 3, 2))
    assert data == {
        "instrument": "PHQ-9",
        "date": "2026-03-02",
        "items": [1, 2, 1, 2, 1, 0, 1, 1, 0],
        "total": 9,
        "band": "mild",
        "complete": True,
        "safety_alert": False,
    }
    json.dumps(data)  # must be serialisable as-is


def test_questionnaire_to_json_incomplete(gad7: Instrument) -> None:
    score = score_questionnaire(gad7, [1, None, 2, 0, 0, 1, 1])
    data = questionnaire_to_json(score, date(2026, 1, 15))
    assert data["items"][1] is None
    assert (data["total"], data["band"], data["complete"]) == (None, None, False)
