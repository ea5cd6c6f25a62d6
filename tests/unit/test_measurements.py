from __future__ import annotations

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import (
    BloodPressure,
    cm_to_in,
    kg_to_lb,
    parse_blood_pressure,
    parse_heart_rate,
    parse_height,
    parse_weight,
    validate_vitals,
)


@pytest.mark.parametrize(
    ("value", "unit", "kg"),
    [
        ("72.5", "kg", 72.5),
        ("72,5", "kg", 72.5),
        (72, "kg", 72.0),
        ("160", "lb", 72.57477920),
        ("160 lbs", None, 72.57477920),
        ("160lb", "LB", 72.57477920),
        ("70 kg", None, 70.0),
        (154.3, "pounds", 69.98930269),
    ],
)
def test_parse_weight(value: str | float, unit: str | None, kg: float) -> None:
    assert parse_weight(value, unit) == pytest.approx(kg)


@pytest.mark.parametrize(
    ("value", "unit", "words"),
    [
        ("", "kg", "Enter the weight"),
        ("seventy", "kg", "as a number"),
        ("-70", "kg", "as a number"),
        ("70", None, "kg/lb"),
        ("70", "stone", "kg/lb"),
        ("70 kg", "lb", "typed in kg but lb"),
        ("29.9", "kg", "between 30 and 300 kg"),
        ("301", "kg", "between 30 and 300 kg"),
        ("700", "lb", "between 30 and 300 kg"),
        (float("nan"), "kg", "as a number"),
        (float("inf"), "kg", "as a number"),
    ],
)
def test_parse_weight_rejections(value: str | float, unit: str | None, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        parse_weight(value, unit)


def test_weight_limits_are_inclusive() -> None:
    assert parse_weight("30", "kg") == 30.0
    assert parse_weight("300", "kg") == 300.0


@pytest.mark.parametrize(
    ("value", "unit", "cm"),
    [
        ("170", "cm", 170.0),
        ("67", "in", 170.18),
        ("67 in", None, 170.18),
        ("5'7\"", None, 170.18),
        ("5' 7", None, 170.18),
        ("5 ft 7 in", None, 170.18),
        ("6'", None, 182.88),
        ("1.70 m", None, 170.0),
    ],
)
def test_parse_height(value: str, unit: str | None, cm: float) -> None:
    assert parse_height(value, unit) == pytest.approx(cm)


@pytest.mark.parametrize(
    ("value", "unit", "words"),
    [
        ("170", None, "cm/in"),
        ("17", "cm", "between 120 and 230 cm"),
        ("5'13", None, "less than 12"),
        ("5'7", "cm", "feet and inches but cm"),
        ("tall", "cm", "as a number"),
    ],
)
def test_parse_height_rejections(value: str, unit: str | None, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        parse_height(value, unit)


def test_conversions_round_trip() -> None:
    assert kg_to_lb(parse_weight("160", "lb")) == pytest.approx(160)
    assert cm_to_in(parse_height("67", "in")) == pytest.approx(67)


def test_blood_pressure() -> None:
    assert parse_blood_pressure("128/82") == BloodPressure(128, 82)
    assert parse_blood_pressure(" 128 / 82 mmHg") == BloodPressure(128, 82)
    assert parse_blood_pressure("128", "82") == BloodPressure(128, 82)
    assert parse_blood_pressure(128, 82) == BloodPressure(128, 82)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("82/128",), "swapped"),
        (("120/120",), "higher than diastolic"),
        (("300/80",), "Systolic pressure must be 60-260"),
        (("120/20",), "Diastolic pressure must be 30-160"),
        (("120-80",), "systolic/diastolic"),
        (("12x", "80"), "whole number"),
        ((120,), "systolic/diastolic"),
    ],
)
def test_blood_pressure_rejections(args: tuple[object, ...], words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        parse_blood_pressure(*args)  # type: ignore[arg-type]


def test_heart_rate() -> None:
    assert parse_heart_rate("72") == 72
    assert parse_heart_rate("72 bpm") == 72
    for bad in ("29", "221", "7 2", "fast", ""):
        with pytest.raises(UserFacingError):
            parse_heart_rate(bad)


def test_validate_vitals_reports_each_field() -> None:
    assert validate_vitals("128", "82", "72", "70", "kg") == []
    assert validate_vitals(None, None, None) == []
    assert [p.field for p in validate_vitals("128", "", None)] == ["diastolic"]
    problems = validate_vitals("80", "120", "300", "700", "kg")
    assert {p.field for p in problems} == {"diastolic", "heart_rate", "weight"}
