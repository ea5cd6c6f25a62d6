"""PHQ-9 and GAD-7: loading the instrument definitions, scoring forms, response and remission.

The instruments are data (``resources/instruments/*.json``, validated against
``instrument.schema.json`` at load). Scores are whole questionnaire points; every item is
answered 0-3. A form with any item left blank is *incomplete*: it keeps the answers it has
but gets no total and no severity band, so it can never be mistaken for a low score.
The safety item (PHQ-9 item 9) is checked on every form, complete or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from ketadesk.core.errors import UserFacingError
from ketadesk.resources import ResourceFileError, load_validated_json, resource_path

_INSTRUMENT_FOLDER = "instruments"
_SCHEMA_FILE = "instrument.schema.json"
#: How a damaged definition is described (the names of the errors behind each problem).
_DAMAGED_KINDS = {"not_json": "JSONDecodeError", "invalid": "ValidationError"}


@dataclass(frozen=True)
class Source:
    """Where a clinical rule comes from (a paper, label section or guideline)."""

    citation: str
    doi: str | None = None
    url: str | None = None
    supports: str | None = None


@dataclass(frozen=True)
class ResponseOption:
    """One answer choice, worth ``value`` points."""

    value: int
    label: str


@dataclass(frozen=True)
class Item:
    """One question, numbered from 1, with the prompt paraphrased in KetaDesk's own words."""

    number: int
    prompt: str
    topic: str = ""


@dataclass(frozen=True)
class SeverityBand:
    """An inclusive range of totals (points) and its severity label."""

    min_total: int
    max_total: int
    label: str

    def contains(self, total: int) -> bool:
        return self.min_total <= total <= self.max_total


@dataclass(frozen=True)
class SafetyItem:
    """An item whose answer at or above ``alert_at_or_above`` must raise an urgent alert."""

    number: int
    alert_at_or_above: int
    alert_message: str
    crisis_line: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class OutcomeDefinitions:
    """Response (percent drop from baseline) and remission (total below a cut-off, points)."""

    response_min_percent_drop: int
    remission_below_total: int
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Instrument:
    """A rating scale: items, answer choices, severity bands, safety item and sources."""

    id: str
    name: str
    title: str
    lookback: str
    instructions: str
    response_options: tuple[ResponseOption, ...]
    items: tuple[Item, ...]
    bands: tuple[SeverityBand, ...]
    sources: tuple[Source, ...]
    safety_item: SafetyItem | None = None
    outcome_definitions: OutcomeDefinitions | None = None

    @property
    def min_answer(self) -> int:
        return min(option.value for option in self.response_options)

    @property
    def max_answer(self) -> int:
        return max(option.value for option in self.response_options)

    @property
    def max_total(self) -> int:
        """Highest possible total, in points (27 for the PHQ-9, 21 for the GAD-7)."""
        return self.max_answer * len(self.items)

    def band_for(self, total: int) -> SeverityBand:
        """Return the severity band of a complete total (points)."""
        for band in self.bands:
            if band.contains(total):
                return band
        raise UserFacingError(
            f"A {self.name} total must be between 0 and {self.max_total}; got {total}."
        )


@dataclass(frozen=True)
class QuestionnaireScore:
    """The result of scoring one form.

    ``answers`` keeps each item's answer (``None`` = left blank). ``total`` and ``band`` are
    ``None`` unless ``is_complete``. ``safety_alert`` is true when the safety item was answered
    at or above its alert level, whether or not the rest of the form is complete.
    """

    instrument_id: str
    instrument_name: str
    answers: tuple[int | None, ...]
    is_complete: bool
    total: int | None
    band: str | None
    missing_items: tuple[int, ...]
    safety_alert: bool
    safety_message: str | None = None
    crisis_line: str | None = None


@dataclass(frozen=True)
class ResponseStatus:
    """PHQ-9 change from baseline.

    ``percent_change`` is signed (negative = fewer symptoms); ``is_response`` /
    ``is_remission`` are ``None`` when they could not be checked, with the reason in
    ``not_checked_reason``.
    """

    baseline_total: int | None
    current_total: int | None
    percent_change: float | None
    is_response: bool | None
    is_remission: bool | None
    not_checked_reason: str | None = None


def instrument_key(name: str) -> str:
    """Normalise an instrument name: ``"PHQ-9"``, ``"phq9"`` and ``"Phq 9"`` all give ``"phq9"``."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@cache
def available_instruments() -> tuple[str, ...]:
    """Return the keys of every instrument definition shipped in ``resources/instruments``.

    Cached: the shipped files do not change while KetaDesk runs, and due dates for a whole
    roster ask for instruments many thousands of times.
    """
    folder = resource_path(_INSTRUMENT_FOLDER)
    return tuple(
        sorted(p.stem for p in folder.glob("*.json") if not p.name.endswith(".schema.json"))
    )


def load_instrument(name: str) -> Instrument:
    """Load and validate an instrument definition by name (``"PHQ-9"``, ``"gad7"``, ...)."""
    key = instrument_key(name)
    if key not in available_instruments():
        known = ", ".join(_display_names())
        raise UserFacingError(f"Unknown questionnaire '{name}'. KetaDesk knows: {known}.")
    return _load_instrument_cached(key)


def _display_names() -> list[str]:
    return [_load_instrument_cached(key).name for key in available_instruments()]


@cache
def _load_instrument_cached(key: str) -> Instrument:
    try:
        data = load_validated_json(_INSTRUMENT_FOLDER, f"{key}.json", schema=_SCHEMA_FILE)
    except ResourceFileError as error:
        if error.problem not in _DAMAGED_KINDS:
            raise
        raise UserFacingError(
            f"The questionnaire definition '{key}' is damaged and cannot be used "
            f"({_DAMAGED_KINDS[error.problem]}). Reinstall KetaDesk."
        ) from error
    instrument = _instrument_from_data(data)
    _check_consistency(instrument)
    return instrument


def _sources(raw: list[dict[str, str]]) -> tuple[Source, ...]:
    return tuple(
        Source(
            citation=entry["citation"],
            doi=entry.get("doi"),
            url=entry.get("url"),
            supports=entry.get("supports"),
        )
        for entry in raw
    )


def _instrument_from_data(data: dict[str, Any]) -> Instrument:
    safety = data.get("safety_item")
    outcomes = data.get("outcome_definitions")
    return Instrument(
        id=data["id"],
        name=data["name"],
        title=data["title"],
        lookback=data["lookback"],
        instructions=data["instructions"],
        response_options=tuple(
            ResponseOption(value=o["value"], label=o["label"]) for o in data["response_options"]
        ),
        items=tuple(
            Item(number=i["number"], prompt=i["prompt"], topic=i.get("topic", ""))
            for i in data["items"]
        ),
        bands=tuple(
            SeverityBand(min_total=b["min_total"], max_total=b["max_total"], label=b["label"])
            for b in data["bands"]
        ),
        sources=_sources(data["sources"]),
        safety_item=None
        if safety is None
        else SafetyItem(
            number=safety["number"],
            alert_at_or_above=safety["alert_at_or_above"],
            alert_message=safety["alert_message"],
            crisis_line=safety["crisis_line"],
            sources=_sources(safety["sources"]),
        ),
        outcome_definitions=None
        if outcomes is None
        else OutcomeDefinitions(
            response_min_percent_drop=outcomes["response_min_percent_drop"],
            remission_below_total=outcomes["remission_below_total"],
            sources=_sources(outcomes["sources"]),
        ),
    )


def _check_consistency(instrument: Instrument) -> None:
    """Rules the JSON Schema cannot express: numbering, contiguous bands, safety item range."""
    problems: list[str] = []
    numbers = [item.number for item in instrument.items]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append("items are not numbered 1, 2, 3, ...")
    values = [option.value for option in instrument.response_options]
    if values != list(range(values[0], values[0] + len(values))) or values[0] != 0:
        problems.append("answer values are not 0, 1, 2, ...")
    expected_start = 0
    for band in instrument.bands:
        if band.min_total != expected_start or band.max_total < band.min_total:
            problems.append("severity bands do not cover every total without gaps")
            break
        expected_start = band.max_total + 1
    if expected_start != instrument.max_total + 1:
        problems.append("severity bands do not end at the highest possible total")
    safety = instrument.safety_item
    if safety is not None and not 1 <= safety.number <= len(instrument.items):
        problems.append("the safety item number is not one of the items")
    if problems:
        raise UserFacingError(
            f"The questionnaire definition '{instrument.id}' is inconsistent: "
            + "; ".join(problems)
            + ". Reinstall KetaDesk."
        )


def score_questionnaire(
    instrument: Instrument, answers: Sequence[int | None]
) -> QuestionnaireScore:
    """Score one form. Answers are points per item (0-3), ``None`` for an item left blank.

    Returns the total (points) and severity band only when every item is answered; an
    incomplete form is returned as incomplete, never scored as if complete. The safety item
    is checked even when other items are blank. Raises ``UserFacingError`` when the number of
    answers is wrong or an answer is not one of the allowed values.
    """
    if isinstance(answers, str | bytes) or len(answers) != len(instrument.items):
        count = "text" if isinstance(answers, str | bytes) else f"{len(answers)} answers"
        raise UserFacingError(
            f"The {instrument.name} has {len(instrument.items)} questions, but {count} "
            "were given. Enter one answer per question (leave a question blank if unanswered)."
        )
    low, high = instrument.min_answer, instrument.max_answer
    for number, answer in enumerate(answers, start=1):
        if answer is None:
            continue
        is_whole_number = isinstance(answer, int) and not isinstance(answer, bool)
        if not is_whole_number or not low <= answer <= high:
            raise UserFacingError(
                f"{instrument.name} question {number}: the answer must be a whole number "
                f"from {low} ('{instrument.response_options[0].label}') to {high} "
                f"('{instrument.response_options[-1].label}'), or left blank."
            )
    stored = tuple(answers)
    missing = tuple(n for n, answer in enumerate(stored, start=1) if answer is None)
    is_complete = not missing
    total: int | None = None
    band: str | None = None
    if is_complete:
        total = sum(a for a in stored if a is not None)
        band = instrument.band_for(total).label

    safety = instrument.safety_item
    safety_answer = None if safety is None else stored[safety.number - 1]
    is_alert = (
        safety is not None
        and safety_answer is not None
        and safety_answer >= safety.alert_at_or_above
    )
    return QuestionnaireScore(
        instrument_id=instrument.id,
        instrument_name=instrument.name,
        answers=stored,
        is_complete=is_complete,
        total=total,
        band=band,
        missing_items=missing,
        safety_alert=is_alert,
        safety_message=safety.alert_message if is_alert and safety is not None else None,
        crisis_line=safety.crisis_line if is_alert and safety is not None else None,
    )


def response_status(
    baseline_total: int | None,
    current_total: int | None,
    definitions: OutcomeDefinitions | None = None,
) -> ResponseStatus:
    """Compare a current PHQ-9 total with the baseline total (both in points, 0-27).

    Response means the total fell by at least the defined percentage (50%) from baseline;
    remission means the current total is below the defined cut-off (5). Percent change is
    signed: -50.0 means half the baseline. A missing total or a baseline of 0 leaves the
    comparisons ``None`` ("not checked") with a reason, never ``False``. ``definitions``
    defaults to the PHQ-9's own, loaded from its resource file.
    """
    if definitions is None:
        definitions = _phq9_outcome_definitions()
    phq9_max = 27
    for label, value in (("baseline", baseline_total), ("current", current_total)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= phq9_max:
            raise UserFacingError(
                f"The {label} PHQ-9 total must be a whole number from 0 to {phq9_max}."
            )

    if current_total is None:
        return ResponseStatus(
            baseline_total,
            None,
            None,
            None,
            None,
            "Not checked: there is no complete PHQ-9 to compare.",
        )
    is_remission = current_total < definitions.remission_below_total
    if baseline_total is None:
        return ResponseStatus(
            None,
            current_total,
            None,
            None,
            is_remission,
            "Response not checked: there is no complete baseline PHQ-9.",
        )
    if baseline_total == 0:
        return ResponseStatus(
            0,
            current_total,
            None,
            None,
            is_remission,
            "Response not checked: the baseline PHQ-9 was 0, so a percentage change "
            "has no meaning.",
        )
    drop = baseline_total - current_total
    percent_change = round(-100.0 * drop / baseline_total, 1)
    # Integer comparison avoids floating-point edge cases exactly at the threshold.
    is_response = drop * 100 >= definitions.response_min_percent_drop * baseline_total
    return ResponseStatus(
        baseline_total, current_total, percent_change, is_response, is_remission, None
    )


def _phq9_outcome_definitions() -> OutcomeDefinitions:
    definitions = load_instrument("phq9").outcome_definitions
    if definitions is None:
        raise UserFacingError(
            "The PHQ-9 definition has no response/remission rules. Reinstall KetaDesk."
        )
    return definitions


def questionnaire_to_json(score: QuestionnaireScore, taken_on: date) -> dict[str, Any]:
    """Return the headless (``outcomes --json``) form of one questionnaire.

    Keys: ``instrument`` (e.g. "PHQ-9"), ``date`` (ISO 8601), ``items`` (points per item,
    ``null`` when blank), ``total`` (points, ``null`` when incomplete), ``band`` (``null`` when
    incomplete), ``complete``, plus ``safety_alert``.
    """
    return {
        "instrument": score.instrument_name,
        "date": taken_on.isoformat(),
        "items": list(score.answers),
        "total": score.total,
        "band": score.band,
        "complete": score.is_complete,
        "safety_alert": score.safety_alert,
    }
