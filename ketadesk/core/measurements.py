"""Weight, height, blood pressure and heart rate as typed, checked and converted to SI.

Stored units: weight in kg, height in cm, blood pressure in mmHg, heart rate in beats per
minute. The plausibility ranges below catch typing mistakes (a weight typed in lb while kg
is selected, a missing digit); they are data-entry limits, not clinical thresholds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ketadesk.core.demographics import FieldProblem
from ketadesk.core.errors import UserFacingError

KG_PER_LB = 0.45359237  # exact, by the international yard and pound agreement (1959)
CM_PER_IN = 2.54  # exact

WEIGHT_RANGE_KG = (30.0, 300.0)
HEIGHT_RANGE_CM = (120.0, 230.0)
SYSTOLIC_RANGE_MMHG = (60, 260)
DIASTOLIC_RANGE_MMHG = (30, 160)
HEART_RATE_RANGE_BPM = (30, 220)

_WEIGHT_UNITS = {
    "kg": "kg",
    "kgs": "kg",
    "kilo": "kg",
    "kilos": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "#": "lb",
}
_HEIGHT_UNITS = {
    "cm": "cm",
    "centimeter": "cm",
    "centimeters": "cm",
    "centimetre": "cm",
    "centimetres": "cm",
    "m": "m",
    "in": "in",
    "inch": "in",
    "inches": "in",
    '"': "in",
}
_NUMBER_AND_UNIT = re.compile(r"([0-9]+(?:[.,][0-9]+)?)\s*([^\s0-9.,]*)")
_FEET_INCHES = re.compile(
    r"([0-9])\s*(?:'|’|ft|feet|foot)\s*(?:([0-9]{1,2}(?:[.,][0-9]+)?)\s*(?:\"|”|''|in|inch|inches)?)?"
)
MAX_INPUT_LENGTH = 40


def _number_and_unit(value: str | float | int, what: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise UserFacingError(f"Enter the {what} as a number.")
    if isinstance(value, int | float):
        number = float(value)
        unit = ""
    else:
        text = value.strip().casefold()
        if not text:
            raise UserFacingError(f"Enter the {what}.")
        if len(text) > MAX_INPUT_LENGTH:
            raise UserFacingError(f"Enter the {what} as a number.")
        match = _NUMBER_AND_UNIT.fullmatch(text)
        if match is None:
            raise UserFacingError(f"Enter the {what} as a number, e.g. 72.5.")
        number = float(match.group(1).replace(",", "."))
        unit = match.group(2)
    if not math.isfinite(number):
        raise UserFacingError(f"Enter the {what} as a number.")
    return number, unit


def _pick_unit(typed: str, given: str | None, units: dict[str, str], what: str) -> str:
    choices = "/".join(sorted(set(units.values()) - {"m"}))
    typed_unit = units.get(typed) if typed else None
    if typed and typed_unit is None:
        raise UserFacingError(f"Give the {what} in {choices}.")
    given_unit = units.get(given.strip().casefold()) if given else None
    if given and given_unit is None:
        raise UserFacingError(f"Give the {what} in {choices}.")
    if typed_unit and given_unit and typed_unit != given_unit:
        raise UserFacingError(f"The {what} was typed in {typed_unit} but {given_unit} is selected.")
    unit = typed_unit or given_unit
    if unit is None:
        raise UserFacingError(f"Say whether the {what} is in {choices}.")
    return unit


def weight_problem(kg: float) -> str | None:
    """Return why ``kg`` (kilograms) is not a plausible adult weight, or None."""
    low, high = WEIGHT_RANGE_KG
    if not math.isfinite(kg) or not low <= kg <= high:
        return (
            f"Weight must be between {low:g} and {high:g} kg ({low / KG_PER_LB:.0f} to "
            f"{high / KG_PER_LB:.0f} lb); check the number and the unit."
        )
    return None


def height_problem(cm: float) -> str | None:
    """Return why ``cm`` (centimetres) is not a plausible adult height, or None."""
    low, high = HEIGHT_RANGE_CM
    if not math.isfinite(cm) or not low <= cm <= high:
        return (
            f"Height must be between {low:g} and {high:g} cm ({low / CM_PER_IN:.0f} to "
            f"{high / CM_PER_IN:.0f} in); check the number and the unit."
        )
    return None


def parse_weight(value: str | float | int, unit: str | None = None) -> float:
    """Return the weight in kilograms.

    ``value`` is a number or text such as ``"72.5"``, ``"160 lb"``, ``"72,5 kg"``; ``unit`` is
    "kg" or "lb" (also "lbs", "pounds") and may be omitted when the text names it. Raises
    UserFacingError when unreadable or outside 30-300 kg.
    """
    number, typed = _number_and_unit(value, "weight")
    chosen = _pick_unit(typed, unit, _WEIGHT_UNITS, "weight")
    kg = number * KG_PER_LB if chosen == "lb" else number
    problem = weight_problem(kg)
    if problem:
        raise UserFacingError(problem)
    return kg


def parse_height(value: str | float | int, unit: str | None = None) -> float:
    """Return the height in centimetres.

    ``value`` is a number or text such as ``"170"``, ``"67 in"``, ``"5'7\""``, ``"5 ft 7 in"``;
    ``unit`` is "cm" or "in" and may be omitted when the text names it. Raises
    UserFacingError when unreadable or outside 120-230 cm.
    """
    if isinstance(value, str):
        text = value.strip().casefold()
        feet = _FEET_INCHES.fullmatch(text) if len(text) <= MAX_INPUT_LENGTH else None
        if feet:
            if unit and _HEIGHT_UNITS.get(unit.strip().casefold()) == "cm":
                raise UserFacingError("The height was typed in feet and inches but cm is selected.")
            inches_text = feet.group(2)
            inches = float(inches_text.replace(",", ".")) if inches_text else 0.0
            if inches >= 12:
                raise UserFacingError("Inches after feet must be less than 12 (e.g. 5'7\").")
            cm = (int(feet.group(1)) * 12 + inches) * CM_PER_IN
            problem = height_problem(cm)
            if problem:
                raise UserFacingError(problem)
            return cm
    number, typed = _number_and_unit(value, "height")
    chosen = _pick_unit(typed, unit, _HEIGHT_UNITS, "height")
    factor = {"cm": 1.0, "m": 100.0, "in": CM_PER_IN}[chosen]
    cm = number * factor
    problem = height_problem(cm)
    if problem:
        raise UserFacingError(problem)
    return cm


def kg_to_lb(kg: float) -> float:
    """Return ``kg`` (kilograms) in pounds."""
    return kg / KG_PER_LB


def cm_to_in(cm: float) -> float:
    """Return ``cm`` (centimetres) in inches."""
    return cm / CM_PER_IN


def _parse_whole(value: str | int, what: str, unit: str) -> int:
    if isinstance(value, bool):
        raise UserFacingError(f"Enter the {what} as a whole number of {unit}.")
    if isinstance(value, int):
        return value
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,4}", text):
        raise UserFacingError(f"Enter the {what} as a whole number of {unit}.")
    return int(text)


@dataclass(frozen=True)
class BloodPressure:
    """A blood pressure reading in mmHg."""

    systolic: int
    diastolic: int


def blood_pressure_problems(systolic: int, diastolic: int) -> list[FieldProblem]:
    """Return problems with a reading in mmHg (ranges 60-260 / 30-160; systolic > diastolic)."""
    problems: list[FieldProblem] = []
    s_low, s_high = SYSTOLIC_RANGE_MMHG
    d_low, d_high = DIASTOLIC_RANGE_MMHG
    if not s_low <= systolic <= s_high:
        problems.append(
            FieldProblem("systolic", f"Systolic pressure must be {s_low}-{s_high} mmHg.")
        )
    if not d_low <= diastolic <= d_high:
        problems.append(
            FieldProblem("diastolic", f"Diastolic pressure must be {d_low}-{d_high} mmHg.")
        )
    if systolic <= diastolic:
        problems.append(
            FieldProblem(
                "diastolic",
                "Systolic (top number) must be higher than diastolic (bottom number); "
                "were they swapped?",
            )
        )
    return problems


def parse_blood_pressure(systolic: str | int, diastolic: str | int | None = None) -> BloodPressure:
    """Return a BloodPressure in mmHg from two values, or from one text like ``"128/82"``.

    Raises UserFacingError (first problem) when unreadable, out of range or swapped.
    """
    if diastolic is None:
        if not isinstance(systolic, str):
            raise UserFacingError("Enter blood pressure as systolic/diastolic, e.g. 128/82.")
        match = re.fullmatch(
            r"\s*([0-9]{1,4})\s*/\s*([0-9]{1,4})\s*(?:mm\s*hg)?\s*", systolic, re.IGNORECASE
        )
        if match is None:
            raise UserFacingError("Enter blood pressure as systolic/diastolic, e.g. 128/82.")
        s_value, d_value = int(match.group(1)), int(match.group(2))
    else:
        s_value = _parse_whole(systolic, "systolic pressure", "mmHg")
        d_value = _parse_whole(diastolic, "diastolic pressure", "mmHg")
    problems = blood_pressure_problems(s_value, d_value)
    if problems:
        raise UserFacingError(problems[0].message)
    return BloodPressure(s_value, d_value)


def heart_rate_problem(bpm: int) -> str | None:
    """Return why ``bpm`` (beats per minute) is not a plausible heart rate, or None."""
    low, high = HEART_RATE_RANGE_BPM
    if not low <= bpm <= high:
        return f"Heart rate must be {low}-{high} beats per minute."
    return None


def parse_heart_rate(value: str | int) -> int:
    """Return the heart rate in beats per minute; UserFacingError outside 30-220 or unreadable."""
    if isinstance(value, str):
        value = re.sub(r"\s*(?:bpm|/min)\s*$", "", value.strip(), flags=re.IGNORECASE)
    bpm = _parse_whole(value, "heart rate", "beats per minute")
    problem = heart_rate_problem(bpm)
    if problem:
        raise UserFacingError(problem)
    return bpm


def validate_vitals(
    systolic: str | int | None,
    diastolic: str | int | None,
    heart_rate: str | int | None,
    weight: str | float | None = None,
    weight_unit: str | None = None,
) -> list[FieldProblem]:
    """Return problems for a vitals form (mmHg, beats per minute, kg or lb); [] when fine.

    Blood pressure is optional but needs both numbers if either is given; heart rate and
    weight are optional. Fields: "systolic", "diastolic", "heart_rate", "weight".
    """
    problems: list[FieldProblem] = []

    def blank(value: object) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    if blank(systolic) != blank(diastolic):
        missing = "diastolic" if blank(diastolic) else "systolic"
        problems.append(FieldProblem(missing, "Enter both blood pressure numbers, or neither."))
    elif systolic is not None and diastolic is not None and not blank(systolic):
        try:
            s_value = _parse_whole(systolic, "systolic pressure", "mmHg")
            d_value = _parse_whole(diastolic, "diastolic pressure", "mmHg")
        except UserFacingError as error:
            problems.append(FieldProblem("systolic", error.message))
        else:
            problems.extend(blood_pressure_problems(s_value, d_value))
    if heart_rate is not None and not blank(heart_rate):
        try:
            parse_heart_rate(heart_rate)
        except UserFacingError as error:
            problems.append(FieldProblem("heart_rate", error.message))
    if weight is not None and not blank(weight):
        try:
            parse_weight(weight, weight_unit)
        except UserFacingError as error:
            problems.append(FieldProblem("weight", error.message))
    return problems
