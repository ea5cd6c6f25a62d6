"""The codes and profile addresses used on FHIR R4 (US Core) exports, read from data.

They live in ``resources/interchange/fhir_codes.json``, each with the source it was checked
against; nothing here is typed in as a literal code. Read once, on first use, never at import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ketadesk.resources import load_resource_json


@dataclass(frozen=True)
class CodedConcept:
    """One code of a code system with its display words."""

    code: str
    display: str


@dataclass(frozen=True)
class InstrumentCodes:
    """LOINC codes of one questionnaire: the panel, the total score and each item in order."""

    panel: CodedConcept
    total: CodedConcept
    items: tuple[str, ...]


@dataclass(frozen=True)
class FhirCodes:
    """Every code system, profile and code an export uses (see the data file for sources)."""

    systems: dict[str, str]
    profiles: dict[str, str]
    blood_pressure: CodedConcept
    systolic: CodedConcept
    diastolic: CodedConcept
    heart_rate: CodedConcept
    body_weight: CodedConcept
    units: dict[str, CodedConcept]
    instruments: dict[str, InstrumentCodes]
    answer_codes: tuple[CodedConcept, ...]

    @property
    def loinc(self) -> str:
        return self.systems["loinc"]

    def answer_points(self, code: str) -> int | None:
        """Points (0-3) of a LOINC answer code, or None when it is not one of the four."""
        for points, answer in enumerate(self.answer_codes):
            if answer.code == code:
                return points
        return None


def _concept(raw: dict[str, Any]) -> CodedConcept:
    return CodedConcept(str(raw["code"]), str(raw["display"]))


@functools.cache
def fhir_codes() -> FhirCodes:
    """The shipped code table (read once per process)."""
    data = load_resource_json("interchange", "fhir_codes.json")
    vitals = data["vitals"]
    answers = data["answers"]
    return FhirCodes(
        systems=dict(data["systems"]),
        profiles=dict(data["profiles"]),
        blood_pressure=_concept(vitals["blood_pressure"]),
        systolic=_concept(vitals["blood_pressure"]["systolic"]),
        diastolic=_concept(vitals["blood_pressure"]["diastolic"]),
        heart_rate=_concept(vitals["heart_rate"]),
        body_weight=_concept(vitals["body_weight"]),
        units={
            **{
                name: _concept(vitals[name]["unit"])
                for name in ("blood_pressure", "heart_rate", "body_weight")
            },
            **{name: _concept(unit) for name, unit in data["units"].items()},
        },
        instruments={
            key: InstrumentCodes(
                panel=_concept(raw["panel"]),
                total=_concept(raw["total"]),
                items=tuple(raw["items"]),
            )
            for key, raw in data["instruments"].items()
        },
        answer_codes=tuple(
            CodedConcept(code, display)
            for code, display in zip(answers["codes"], answers["displays"], strict=True)
        ),
    )
