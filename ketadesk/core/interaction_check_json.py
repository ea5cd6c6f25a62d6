"""The headless ``check-interactions`` JSON contract: reading a request, writing a result.

:func:`parse_check_request` turns one decoded JSON object into a
:class:`~ketadesk.core.interaction_check.CheckRequest` (bad shapes raise UserFacingError naming
the field); :func:`result_to_json` writes an
:class:`~ketadesk.core.interaction_check.InteractionResult` with the documented keys.

Input keys: ``medications``, ``conditions`` (lists of text), ``vitals`` (systolic/diastolic
mmHg, heart_rate per minute, weight_kg), ``pregnant`` (true/false), and optionally
``age_years`` (years) or ``dob`` (YYYY-MM-DD). Output keys: ``flags``, ``unrecognized``,
``read_as``, ``kb_version``. Each ``read_as`` entry has ``entered_as``, ``generic``, ``fuzzy``
and ``kind`` ("medication" or "condition"); medication entries add ``route`` ("systemic",
or "local" for a cream, drops, shampoo ... that gets no systemic interaction); condition
entries add ``concept``, ``code``,
``context`` ("present", "negated", "historical", "family", "uncertain"), ``text`` (the
reading in words) and ``unread`` (parts of the line that named nothing known). A line is in
``unrecognized`` only when nothing in it was read; a denied or family-history condition is
read, so it is never there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ketadesk.core.errors import UserFacingError
from ketadesk.core.interaction_check import (
    CheckRequest,
    InteractionResult,
    Vitals,
    age_in_years,
)


def result_to_json(result: InteractionResult) -> dict[str, Any]:
    """The headless contract's output object for one check (keys exactly as documented)."""
    return {
        "flags": [
            {
                "severity": flag.severity,
                "drug": flag.drug,
                "class": flag.drug_class,
                "title": flag.title,
                "management": flag.management,
                "entered_as": flag.entered_as,
                "sources": [
                    {"title": s.title, "section": s.section, "url": s.link} for s in flag.sources
                ],
            }
            for flag in result.flags
        ],
        "unrecognized": list(result.unrecognized),
        "read_as": [
            {"entered_as": r.entered_as, "generic": list(r.generics), "fuzzy": r.fuzzy,
             "kind": "medication", "route": r.route}
            for r in result.read_as
        ]
        + [
            {
                "entered_as": reading.entered_as,
                "generic": [],
                "fuzzy": mention.matched_by == "fuzzy",
                "kind": "condition",
                "concept": mention.concept_id,
                "code": mention.code,
                "context": mention.context,
                "text": mention.words,
                "unread": list(reading.unread),
            }
            for reading in result.conditions_read
            for mention in reading.mentions
        ],
        "kb_version": result.kb_version,
    }


_REQUEST_KEYS = frozenset(
    {"medications", "conditions", "vitals", "pregnant", "age_years", "dob"}
)
_VITAL_TYPES: Mapping[str, tuple[type, ...]] = {
    "systolic": (int,),
    "diastolic": (int,),
    "heart_rate": (int,),
    "weight_kg": (int, float),
}


def parse_check_request(
    value: object, where: str = "The input", today: date | None = None
) -> CheckRequest:
    """Turn one decoded JSON object into a :class:`CheckRequest`, or raise UserFacingError.

    ``where`` names the object in messages (e.g. ``"Item 3"`` for arrays). Age is optional:
    ``age_years`` (years) or ``dob`` (YYYY-MM-DD, aged on ``today``, default the local date).
    """
    if not isinstance(value, dict):
        raise UserFacingError(f"{where} must be a JSON object, not {_json_type(value)}.")
    unknown = sorted(set(value) - _REQUEST_KEYS)
    if unknown:
        raise UserFacingError(
            f"{where} has unknown field(s) {', '.join(unknown)}; expected medications, "
            "conditions, vitals, pregnant, age_years, dob."
        )
    medications = _string_list(value.get("medications", []), f"{where}: medications")
    conditions = _string_list(value.get("conditions", []), f"{where}: conditions")
    pregnant = value.get("pregnant", False)
    if not isinstance(pregnant, bool):
        raise UserFacingError(f"{where}: pregnant must be true or false.")
    vitals = _vitals(value.get("vitals"), f"{where}: vitals")
    age = _age_years(value.get("age_years"), value.get("dob"), where, today)
    return CheckRequest(medications, conditions, vitals, pregnant, age)


def _age_years(age: object, dob: object, where: str, today: date | None) -> float | None:
    if age is not None and dob is not None:
        raise UserFacingError(f"{where}: give age_years or dob, not both.")
    if age is not None:
        if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 <= age <= 130:
            raise UserFacingError(f"{where}: age_years must be a number of years from 0 to 130.")
        return float(age)
    if dob is None:
        return None
    if not isinstance(dob, str):
        raise UserFacingError(f"{where}: dob must be a date as YYYY-MM-DD.")
    try:
        born = date.fromisoformat(dob)
    except ValueError:
        raise UserFacingError(f"{where}: dob must be a date as YYYY-MM-DD.") from None
    on = today or datetime.now().astimezone().date()
    return float(age_in_years(born, on))


#: More entries than any patient takes or has; a longer list is refused before any checking.
MAX_LIST_ENTRIES = 500
MAX_ENTRY_CHARS = 200


def _string_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserFacingError(f"{where} must be a list of text strings.")
    if len(value) > MAX_LIST_ENTRIES:
        raise UserFacingError(
            f"{where} has {len(value):,} entries; at most {MAX_LIST_ENTRIES} are checked at once."
        )
    if any(len(v) > MAX_ENTRY_CHARS for v in value):
        raise UserFacingError(f"{where}: an entry is longer than {MAX_ENTRY_CHARS} characters.")
    return tuple(value)


def _vitals(value: object, where: str) -> Vitals | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserFacingError(f"{where} must be a JSON object.")
    unknown = sorted(set(value) - set(_VITAL_TYPES))
    if unknown:
        raise UserFacingError(
            f"{where} has unknown field(s) {', '.join(unknown)}; expected systolic, diastolic, "
            "heart_rate, weight_kg."
        )
    fields: dict[str, Any] = {}
    for name, types in _VITAL_TYPES.items():
        item = value.get(name)
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, types):
            kind = "a whole number" if types == (int,) else "a number"
            raise UserFacingError(f"{where}: {name} must be {kind}.")
        fields[name] = item
    return Vitals(**fields)


def _json_type(value: object) -> str:
    names = {list: "an array", str: "text", bool: "true/false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), "an unexpected value")
