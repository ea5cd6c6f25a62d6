"""Check a patient's medications, conditions and vitals against the ketamine knowledge base.

Pure functions over frozen dataclasses; no database, no Qt. The review screen, sign-off and
the headless ``check-interactions`` command all build on :func:`check_patient`.

Anything that cannot be read is returned in ``InteractionResult.unrecognized`` ("not
checked"); nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ketadesk.core.errors import UserFacingError
from ketadesk.core.knowledge_base import (
    BloodPressureRule,
    ConditionRule,
    DrugRule,
    KnowledgeBase,
    Severity,
    Source,
    canonical_key,
    load_knowledge_base,
    severity_rank,
)
from ketadesk.core.medication_names import MedicationReading, read_medication_line

FlagKind = Literal["drug", "condition", "vital"]

#: Plausible ranges for vitals; values outside are treated as typing errors.
VITAL_RANGES: Mapping[str, tuple[float, float, str]] = {
    "systolic": (40, 300, "mmHg"),
    "diastolic": (20, 200, "mmHg"),
    "heart_rate": (20, 250, "beats per minute"),
    "weight_kg": (2, 400, "kg"),
}
_VITAL_LABELS = {
    "systolic": "Systolic blood pressure",
    "diastolic": "Diastolic blood pressure",
    "heart_rate": "Heart rate",
    "weight_kg": "Weight",
}


@dataclass(frozen=True)
class Vitals:
    """Latest vital signs: blood pressure in mmHg, heart rate per minute, weight in kg."""

    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    weight_kg: float | None = None

    def __post_init__(self) -> None:
        for name, (low, high, unit) in VITAL_RANGES.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise UserFacingError(
                    f"{_VITAL_LABELS[name]} must be between {low:g} and {high:g} {unit}."
                )
        if (
            self.systolic is not None
            and self.diastolic is not None
            and self.systolic <= self.diastolic
        ):
            raise UserFacingError(
                "Systolic blood pressure must be higher than diastolic; check the reading."
            )

    @property
    def blood_pressure_text(self) -> str:
        """E.g. ``"BP 150/95 mmHg"``; a missing half is shown as ``?``."""
        systolic = "?" if self.systolic is None else str(self.systolic)
        diastolic = "?" if self.diastolic is None else str(self.diastolic)
        return f"BP {systolic}/{diastolic} mmHg"


@dataclass(frozen=True)
class Flag:
    """One thing the physician must see. ``drug`` is the generic, or None for a condition.

    ``carry_forward_key`` identifies the same finding across reviews (rule, drug, dose and
    frequency, or condition), so a recorded decision can carry forward while it persists.
    """

    rule_id: str
    severity: Severity
    kind: FlagKind
    drug: str | None
    drug_class: str
    title: str
    effect: str
    management: str
    mechanism: str
    evidence: str
    label_vs_studies: str | None
    entered_as: str
    sources: tuple[Source, ...]
    carry_forward_key: str


@dataclass(frozen=True)
class ConditionReading:
    """What one typed condition was read as (``concept_id`` None when not recognised)."""

    entered_as: str
    concept_id: str | None
    name: str | None
    matched_by: Literal["term", "icd10"] | None


@dataclass(frozen=True)
class BenzodiazepineLine:
    """One benzodiazepine line's contribution (mg/day diazepam-equivalent, None if unknown)."""

    entered_as: str
    generic: str
    diazepam_equivalent_mg_per_day: float | None
    reason_not_counted: str | None


@dataclass(frozen=True)
class BenzodiazepineLoad:
    """Total daily benzodiazepine load in mg/day diazepam-equivalent."""

    total_mg_per_day: float
    threshold_mg_per_day: float
    lines: tuple[BenzodiazepineLine, ...]

    @property
    def is_complete(self) -> bool:
        """False when some benzodiazepine line had no parsable daily dose."""
        return all(line.diazepam_equivalent_mg_per_day is not None for line in self.lines)

    @property
    def is_above_threshold(self) -> bool:
        """True when the counted total is above the threshold (mg/day)."""
        return self.total_mg_per_day > self.threshold_mg_per_day

    def summary(self) -> str:
        """One line for the flag, e.g. ``"about 20 mg/day diazepam-equivalent (above 8)"``."""
        total = f"about {self.total_mg_per_day:g} mg/day diazepam-equivalent"
        if self.is_above_threshold:
            text = f"{total}, above {self.threshold_mg_per_day:g} mg/day"
        elif self.is_complete:
            text = f"{total}, not above {self.threshold_mg_per_day:g} mg/day"
        else:
            text = f"at least {total[6:]}"
        missing = [line for line in self.lines if line.diazepam_equivalent_mg_per_day is None]
        if missing:
            text += "; not counted: " + "; ".join(
                f"{line.entered_as} ({line.reason_not_counted})" for line in missing
            )
        return text


@dataclass(frozen=True)
class InteractionResult:
    """Everything one check found: flags (most severe first), what was read and what wasn't."""

    flags: tuple[Flag, ...]
    unrecognized: tuple[str, ...]
    read_as: tuple[MedicationReading, ...]
    conditions_read: tuple[ConditionReading, ...]
    benzodiazepine_load: BenzodiazepineLoad | None
    kb_version: str


@dataclass(frozen=True)
class CheckRequest:
    """The inputs of one check, as the headless contract defines them."""

    medications: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    vitals: Vitals | None = None
    pregnant: bool = False


def check_patient(
    medications: Sequence[str],
    conditions: Sequence[str],
    vitals: Vitals | None,
    pregnant: bool,
    kb: KnowledgeBase | None = None,
) -> InteractionResult:
    """Check medication lines, conditions and vitals (BP in mmHg) against the knowledge base.

    Blank lines are ignored. Unrecognised medication lines and conditions are returned in
    ``unrecognized`` in the order entered (medications first).
    """
    kb = kb or load_knowledge_base()
    readings = [read_medication_line(line, kb) for line in medications if line.strip()]
    recognised = [r for r in readings if r.is_recognized]
    unrecognised = [r.entered_as for r in readings if not r.is_recognized]

    load = _benzodiazepine_load(recognised, kb)
    flags: list[Flag] = []
    for reading in recognised:
        flags.extend(_drug_flags(reading, kb, load))

    condition_readings = [read_condition(text, kb) for text in conditions if text.strip()]
    unrecognised += [c.entered_as for c in condition_readings if c.concept_id is None]
    flags.extend(_condition_flags(condition_readings, pregnant, kb))
    flags.extend(_blood_pressure_flags(condition_readings, vitals, kb))

    flags.sort(key=lambda f: (severity_rank(f.severity), f.rule_id, f.drug or "", f.entered_as))
    return InteractionResult(
        flags=tuple(flags),
        unrecognized=tuple(unrecognised),
        read_as=tuple(recognised),
        conditions_read=tuple(condition_readings),
        benzodiazepine_load=load,
        kb_version=kb.version,
    )


def check_request(request: CheckRequest, kb: KnowledgeBase | None = None) -> InteractionResult:
    """:func:`check_patient` for a parsed :class:`CheckRequest`."""
    return check_patient(
        request.medications, request.conditions, request.vitals, request.pregnant, kb
    )


def _drug_flags(
    reading: MedicationReading, kb: KnowledgeBase, load: BenzodiazepineLoad | None
) -> list[Flag]:
    flags = []
    for generic in reading.generics:
        for rule in kb.rules_by_generic.get(generic, ()):
            severity, title = _drug_severity_and_title(rule, load)
            dose = "" if reading.dose_mg is None else f"{reading.dose_mg:g}mg"
            per_day = reading.frequency_per_day
            frequency = "" if per_day is None else f"{per_day:g}/d"
            flags.append(
                Flag(
                    rule_id=rule.rule_id,
                    severity=severity,
                    kind="drug",
                    drug=generic,
                    drug_class=rule.drug_class,
                    title=title,
                    effect=rule.effect,
                    management=rule.management,
                    mechanism=rule.mechanism,
                    evidence=rule.evidence,
                    label_vs_studies=rule.label_vs_studies,
                    entered_as=reading.entered_as,
                    sources=rule.sources,
                    carry_forward_key="|".join(
                        (rule.rule_id, generic, dose, frequency, "prn" if reading.as_needed else "")
                    ),
                )
            )
    return flags


def _drug_severity_and_title(
    rule: DrugRule, load: BenzodiazepineLoad | None
) -> tuple[Severity, str]:
    if rule.escalate_above_dz_mg_per_day is None or rule.escalated_severity is None:
        return rule.severity, rule.title
    if load is None:
        return rule.severity, rule.title
    severity = rule.severity
    if load.total_mg_per_day > rule.escalate_above_dz_mg_per_day:
        severity = rule.escalated_severity
    return severity, f"{rule.title} ({load.summary()})"


def _benzodiazepine_load(
    readings: Sequence[MedicationReading], kb: KnowledgeBase
) -> BenzodiazepineLoad | None:
    lines: list[BenzodiazepineLine] = []
    for reading in readings:
        for generic in reading.generics:
            rules = kb.rules_by_generic.get(generic, ())
            if not any(r.escalate_above_dz_mg_per_day for r in rules):
                continue
            lines.append(_benzodiazepine_line(reading, generic, kb))
    if not lines:
        return None
    total = sum(line.diazepam_equivalent_mg_per_day or 0.0 for line in lines)
    return BenzodiazepineLoad(
        total_mg_per_day=round(total, 1),
        threshold_mg_per_day=kb.benzodiazepine_threshold_mg_per_day,
        lines=tuple(lines),
    )


def _benzodiazepine_line(
    reading: MedicationReading, generic: str, kb: KnowledgeBase
) -> BenzodiazepineLine:
    equivalent = kb.diazepam_equivalents_mg.get(generic)
    reason: str | None = None
    if equivalent is None:
        reason = "no diazepam equivalence for this drug"
    elif len(reading.generics) > 1:
        reason = "combination product"
    elif reading.dose_mg is None:
        reason = "dose not stated"
    elif reading.frequency_per_day is None:
        reason = "frequency not stated"
    if reason is not None or equivalent is None or reading.max_daily_dose_mg is None:
        return BenzodiazepineLine(reading.entered_as, generic, None, reason)
    daily = reading.max_daily_dose_mg * 10.0 / equivalent
    return BenzodiazepineLine(reading.entered_as, generic, round(daily, 2), None)


def diazepam_equivalent_mg_per_day(
    generic: str, dose_mg: float, doses_per_day: float, kb: KnowledgeBase | None = None
) -> float:
    """Daily diazepam-equivalent (mg/day) of ``dose_mg`` taken ``doses_per_day`` times."""
    kb = kb or load_knowledge_base()
    equivalent = kb.diazepam_equivalents_mg.get(generic)
    if equivalent is None:
        raise UserFacingError(f"No diazepam equivalence is recorded for {generic}.")
    return dose_mg * doses_per_day * 10.0 / equivalent


_ICD10 = re.compile(r"\b([A-TV-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?)\b")
_NEGATIONS = ("no ", "not ", "denies ", "negative for ", "ruled out ", "r o ", "without ")
_QUALIFIER_PREFIXES = (
    "history of ", "hx of ", "hx ", "h o ", "known ", "past ", "prior ", "previous ",
    "remote ", "personal history of ", "pmh ", "current ", "active ", "chronic ",
)
_QUALIFIER_SUFFIXES = (
    " controlled", " well controlled", " uncontrolled", " stable", " treated", " on medication",
    " on meds", " diagnosed", " dx", " history", " hx",
)


def read_condition(text: str, kb: KnowledgeBase | None = None) -> ConditionReading:
    """Match a typed condition to the vocabulary by synonym or ICD-10 code.

    Negated entries ("no history of stroke") are deliberately not recognised, so they are
    listed as "not checked" for the physician to read.
    """
    kb = kb or load_knowledge_base()
    entered = " ".join(text.split())
    key = canonical_key(entered)
    if any(key.startswith(n.strip() + " ") or key == n.strip() for n in _NEGATIONS):
        return ConditionReading(entered, None, None, None)
    concept_id = _match_term(key, kb)
    matched_by: Literal["term", "icd10"] | None = "term" if concept_id else None
    if concept_id is None:
        for code in _ICD10.findall(entered.upper()):
            concept_id = _match_icd10(code, kb)
            if concept_id:
                matched_by = "icd10"
                break
    if concept_id is None:
        return ConditionReading(entered, None, None, None)
    return ConditionReading(entered, concept_id, kb.conditions[concept_id].name, matched_by)


def _match_term(key: str, kb: KnowledgeBase) -> str | None:
    seen: set[str] = set()
    pending = [key]
    while pending:
        candidate = pending.pop()
        if not candidate or candidate in seen:
            continue
        seen.add(candidate)
        if candidate in kb.condition_by_term:
            return kb.condition_by_term[candidate]
        for prefix in _QUALIFIER_PREFIXES:
            if candidate.startswith(prefix):
                pending.append(candidate[len(prefix):].strip())
        for suffix in _QUALIFIER_SUFFIXES:
            if candidate.endswith(suffix):
                pending.append(candidate[: -len(suffix)].strip())
    return None


def _match_icd10(code: str, kb: KnowledgeBase) -> str | None:
    candidate = code
    while candidate:
        if candidate in kb.condition_by_icd10:
            return kb.condition_by_icd10[candidate]
        if "." in candidate:
            head, tail = candidate.split(".", 1)
            candidate = f"{head}.{tail[:-1]}" if len(tail) > 1 else head
        else:
            return None
    return None


def _condition_flags(
    readings: Sequence[ConditionReading], pregnant: bool, kb: KnowledgeBase
) -> list[Flag]:
    entered: dict[str, list[str]] = {}
    for reading in readings:
        if reading.concept_id is not None:
            entered.setdefault(reading.concept_id, []).append(reading.entered_as)
    if pregnant:
        entered.setdefault("pregnancy", []).insert(0, "pregnant: yes")
    flags = []
    for concept_id, texts in entered.items():
        concept = kb.conditions.get(concept_id)
        if concept is None:
            continue
        for rule in kb.condition_rules.get(concept_id, ()):
            flags.append(_condition_flag(rule, concept.category, "; ".join(texts)))
    return flags


def _condition_flag(rule: ConditionRule, category: str, entered_as: str) -> Flag:
    return Flag(
        rule_id=rule.rule_id,
        severity=rule.severity,
        kind="condition",
        drug=None,
        drug_class=category,
        title=rule.title,
        effect=rule.effect,
        management=rule.management,
        mechanism=rule.mechanism,
        evidence=rule.evidence,
        label_vs_studies=rule.label_vs_studies,
        entered_as=entered_as,
        sources=rule.sources,
        carry_forward_key=f"{rule.rule_id}|{rule.concept_id}",
    )


def blood_pressure_grade(
    systolic: int | None, diastolic: int | None, kb: KnowledgeBase | None = None
) -> BloodPressureRule | None:
    """The most severe grade a reading (mmHg) reaches, or None when below every threshold."""
    kb = kb or load_knowledge_base()
    for grade in kb.bp_grades:
        if systolic is not None and grade.systolic_at_least is not None:
            if systolic >= grade.systolic_at_least:
                return grade
        if diastolic is not None and grade.diastolic_at_least is not None:
            if diastolic >= grade.diastolic_at_least:
                return grade
    return None


def _blood_pressure_flags(
    readings: Sequence[ConditionReading], vitals: Vitals | None, kb: KnowledgeBase
) -> list[Flag]:
    has_hypertension = any(r.concept_id == kb.hypertension_concept for r in readings)
    hypertension_text = "; ".join(
        r.entered_as for r in readings if r.concept_id == kb.hypertension_concept
    )
    has_reading = vitals is not None and (
        vitals.systolic is not None or vitals.diastolic is not None
    )
    if has_reading and vitals is not None:
        grade = blood_pressure_grade(vitals.systolic, vitals.diastolic, kb)
        reading_text = vitals.blood_pressure_text
        if grade is not None:
            return [_bp_flag(grade, reading_text, f"{grade.title} ({reading_text})")]
        if has_hypertension:
            rule = kb.bp_controlled
            text = f"{hypertension_text}; {reading_text}"
            return [_bp_flag(rule, text, f"{rule.title} ({reading_text})")]
        return []
    if has_hypertension:
        rule = kb.bp_not_recorded
        return [_bp_flag(rule, hypertension_text, rule.title)]
    return []


def _bp_flag(rule: BloodPressureRule, entered_as: str, title: str) -> Flag:
    return Flag(
        rule_id=rule.rule_id,
        severity=rule.severity,
        kind="vital",
        drug=None,
        drug_class="Blood pressure",
        title=title,
        effect=rule.effect,
        management=rule.management,
        mechanism=rule.mechanism,
        evidence=f"{rule.evidence} Threshold: {rule.threshold_text}.",
        label_vs_studies=None,
        entered_as=entered_as,
        sources=rule.sources,
        carry_forward_key=f"{rule.rule_id}|{rule.grade}",
    )


def review_fingerprint(
    medication_lines: Sequence[str],
    conditions: Sequence[str],
    vitals: Vitals | None,
    pregnant: bool,
    kb_version: str,
) -> str:
    """SHA-256 (hex) of everything a review depends on; it changes when any input changes.

    Order of lines, case and extra whitespace do not matter; blank lines are ignored.
    Vitals are included as values (BP in mmHg, heart rate per minute, weight in kg).
    """

    def norm(lines: Sequence[str]) -> list[str]:
        return sorted({" ".join(line.casefold().split()) for line in lines if line.strip()})

    payload = {
        "medications": norm(medication_lines),
        "conditions": norm(conditions),
        "vitals": None
        if vitals is None
        else {
            "systolic": vitals.systolic,
            "diastolic": vitals.diastolic,
            "heart_rate": vitals.heart_rate,
            "weight_kg": vitals.weight_kg,
        },
        "pregnant": bool(pregnant),
        "kb_version": kb_version,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
