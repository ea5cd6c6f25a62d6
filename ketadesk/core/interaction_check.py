"""Check a patient's medications, conditions and vitals against the ketamine knowledge base.

Pure functions over frozen dataclasses; no database, no Qt. The review screen, sign-off and
the headless ``check-interactions`` command all build on :func:`check_patient`.

Anything that cannot be read is returned in ``InteractionResult.unrecognized`` ("not
checked"); nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ketadesk.core.condition_reading import (
    AmbiguousMention,
    ConditionMention,
    read_condition_line,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.knowledge_base import (
    AgeRule,
    BloodPressureRule,
    ConditionRule,
    DrugRule,
    KnowledgeBase,
    Severity,
    Source,
    load_knowledge_base,
    severity_rank,
)
from ketadesk.core.medication_names import MedicationReading, read_medication_line

FlagKind = Literal["drug", "condition", "vital", "age"]

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
    """What one typed condition line was read as.

    ``concept_id`` is the first condition found (None when none was); ``name`` is the whole
    reading in words, e.g. ``"no psychotic disorder (negated)"`` or ``"Hypertension
    (uncontrolled); Gastro-oesophageal reflux"`` (None when not recognised), so a screen that
    shows "read as: {name}" says what was understood. ``mentions`` holds each condition with
    its context; ``ambiguous`` the abbreviations that were not guessed; ``unread`` the parts of
    a partly read line that named nothing known (not checked).
    """

    entered_as: str
    concept_id: str | None
    name: str | None
    matched_by: Literal["term", "abbreviation", "icd10", "fuzzy"] | None
    mentions: tuple[ConditionMention, ...] = ()
    ambiguous: tuple[AmbiguousMention, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def is_recognized(self) -> bool:
        """True when at least one condition was read (present, denied, past, family ...)."""
        return bool(self.mentions)

    @property
    def context(self) -> str | None:
        """Context of the first condition read (present, negated, historical, family, uncertain)."""
        return self.mentions[0].context if self.mentions else None

    @property
    def read_as_text(self) -> str:
        """``"read as: ..."``, or ``"not checked"`` (naming an ambiguous abbreviation if any)."""
        if self.name is not None:
            return f"read as: {self.name}"
        if self.ambiguous:
            return "not checked: " + "; ".join(a.words for a in self.ambiguous)
        return "not checked"


@dataclass(frozen=True)
class BenzodiazepineLine:
    """One benzodiazepine line's contribution (mg/day diazepam-equivalent, None if unknown)."""

    entered_as: str
    generic: str
    diazepam_equivalent_mg_per_day: float | None
    reason_not_counted: str | None
    as_needed: bool = False


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
        """One line for the flag, e.g. ``"about 20 mg/day diazepam-equivalent (above 8)"``.

        Lines taken "as needed" count at the most allowed ("up to N mg/day ... if taken as
        often as allowed"); a total is never given as "at least 0 mg/day".
        """
        counted = [x for x in self.lines if x.diazepam_equivalent_mg_per_day is not None]
        as_needed = any(x.as_needed for x in counted)
        amount = f"{self.total_mg_per_day:g} mg/day diazepam-equivalent"
        if as_needed:
            total = f"up to {amount}"
        elif self.is_complete:
            total = f"about {amount}"
        else:
            total = f"at least {amount}"
        if as_needed:
            total += " if taken as often as allowed"
        if not counted:
            text = "amount not known"
        elif self.is_above_threshold:
            text = f"{total}, above {self.threshold_mg_per_day:g} mg/day"
        elif self.is_complete:
            text = f"{total}, not above {self.threshold_mg_per_day:g} mg/day"
        else:
            text = f"at least {amount}" + (" if taken as often as allowed" if as_needed else "")
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
    age_years: float | None = None


def check_patient(
    medications: Sequence[str],
    conditions: Sequence[str],
    vitals: Vitals | None,
    pregnant: bool,
    kb: KnowledgeBase | None = None,
    age_years: float | None = None,
) -> InteractionResult:
    """Check medication lines, conditions, vitals (BP in mmHg) and age (years) against the KB.

    Blank lines are ignored. Lines with nothing recognised are returned in ``unrecognized``
    in the order entered (medications first); a condition that is denied or belongs to a
    relative is recognised, so it is never listed there.
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
    unrecognised += [c.entered_as for c in condition_readings if not c.is_recognized]
    flags.extend(_condition_flags(condition_readings, pregnant, kb))
    flags.extend(_blood_pressure_flags(condition_readings, vitals, kb))
    if age_years is not None:
        flags.extend(
            _age_flag(rule, age_years) for rule in kb.age_rules if rule.applies_to(age_years)
        )

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
        request.medications, request.conditions, request.vitals, request.pregnant, kb,
        age_years=request.age_years,
    )


def _drug_flags(
    reading: MedicationReading, kb: KnowledgeBase, load: BenzodiazepineLoad | None
) -> list[Flag]:
    """One flag per rule per line: a combination whose ingredients share a class (Adderall:
    amphetamine + dextroamphetamine) gives one finding. A product acting locally (cream,
    eye drops, shampoo) gets only the rules that say they apply to local use."""
    by_rule: dict[str, tuple[DrugRule, list[str]]] = {}
    for generic in reading.generics:
        for rule in kb.rules_by_generic.get(generic, ()):
            if reading.route == "local" and not rule.applies_to_local_route:
                continue
            by_rule.setdefault(rule.rule_id, (rule, []))[1].append(generic)
    flags = []
    for rule, generics in by_rule.values():
        severity, title = _drug_severity_and_title(rule, load)
        dose = "" if reading.dose_mg is None else f"{reading.dose_mg:g}mg"
        per_day = reading.frequency_per_day
        frequency = "" if per_day is None else f"{per_day:g}/d"
        drug = " + ".join(generics)
        if reading.route == "local":
            title = f"{title} ({reading.route_word}, acts locally)"
        flags.append(
            Flag(
                rule_id=rule.rule_id,
                severity=severity,
                kind="drug",
                drug=drug,
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
                    (rule.rule_id, drug, dose, frequency, "prn" if reading.as_needed else "")
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
        if reading.route == "local":
            continue
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
        reason = "as needed, amount not stated" if reading.as_needed else "frequency not stated"
    if reason is not None or equivalent is None or reading.max_daily_dose_mg is None:
        return BenzodiazepineLine(reading.entered_as, generic, None, reason)
    daily = reading.max_daily_dose_mg * 10.0 / equivalent
    return BenzodiazepineLine(
        reading.entered_as, generic, round(daily, 2), None, as_needed=reading.as_needed
    )


def diazepam_equivalent_mg_per_day(
    generic: str, dose_mg: float, doses_per_day: float, kb: KnowledgeBase | None = None
) -> float:
    """Daily diazepam-equivalent (mg/day) of ``dose_mg`` taken ``doses_per_day`` times."""
    kb = kb or load_knowledge_base()
    equivalent = kb.diazepam_equivalents_mg.get(generic)
    if equivalent is None:
        raise UserFacingError(f"No diazepam equivalence is recorded for {generic}.")
    return dose_mg * doses_per_day * 10.0 / equivalent


def read_condition(text: str, kb: KnowledgeBase | None = None) -> ConditionReading:
    """Read one typed condition line: every condition in it, with its context, in words.

    A denied condition ("no history of stroke") is recognised and read as negated, so it is
    shown ("read as: no ischaemic stroke or TIA (negated)") and raises no flag.
    """
    line = read_condition_line(text, kb)
    first = line.mentions[0] if line.mentions else None
    return ConditionReading(
        entered_as=line.entered_as,
        concept_id=None if first is None else first.concept_id,
        name=line.words,
        matched_by=None if first is None else first.matched_by,
        mentions=line.mentions,
        ambiguous=line.ambiguous,
        unread=line.unread,
    )


def _rule_applies(rule: ConditionRule, mention: ConditionMention) -> bool:
    if mention.context == "negated" or mention.context not in rule.contexts:
        return False
    modifiers = set(mention.modifiers)
    if rule.requires_modifier and not modifiers & rule.requires_modifier:
        return False
    return not modifiers & rule.unless_modifier


def _uncertain_cap(rule: ConditionRule, kb: KnowledgeBase) -> Severity:
    cap = rule.uncertain_severity or kb.condition_reading.get("uncertain_max_severity", "major")
    return rule.severity if severity_rank(rule.severity) >= severity_rank(cap) else cap


def _condition_flags(
    readings: Sequence[ConditionReading], pregnant: bool, kb: KnowledgeBase
) -> list[Flag]:
    found: dict[str, tuple[ConditionRule, str, Severity, list[str]]] = {}
    order: list[str] = []
    confirmed: set[str] = set()

    def add(
        rule: ConditionRule, category: str, severity: Severity, text: str, sure: bool = True
    ) -> None:
        if rule.rule_id not in found:
            found[rule.rule_id] = (rule, category, severity, [])
            order.append(rule.rule_id)
        old_rule, old_category, old_severity, texts = found[rule.rule_id]
        if severity_rank(severity) < severity_rank(old_severity):
            found[rule.rule_id] = (old_rule, old_category, severity, texts)
        if text not in texts:
            texts.append(text)
        if sure:
            confirmed.add(rule.rule_id)

    if pregnant and "pregnancy" in kb.conditions:
        for rule in kb.condition_rules.get("pregnancy", ()):
            add(rule, kb.conditions["pregnancy"].category, rule.severity, "pregnant: yes")
    for reading in readings:
        for mention in reading.mentions:
            for concept_id in kb.concept_lineage(mention.concept_id):
                for rule in kb.condition_rules.get(concept_id, ()):
                    if not _rule_applies(rule, mention):
                        continue
                    severity = rule.severity
                    if mention.context == "uncertain":
                        severity = _uncertain_cap(rule, kb)
                    category = kb.conditions[rule.concept_id].category
                    sure = mention.context != "uncertain"
                    add(rule, category, severity, reading.entered_as, sure)
    flags = []
    for rule_id in order:
        rule, category, severity, texts = found[rule_id]
        flag = _condition_flag(rule, category, "; ".join(texts))
        if rule_id not in confirmed:
            flag = dataclasses.replace(
                flag, severity=severity, title=f"{rule.title} (possible, not confirmed)"
            )
        flags.append(flag)
    return flags


def _age_flag(rule: AgeRule, age_years: float) -> Flag:
    return Flag(
        rule_id=rule.rule_id,
        severity=rule.severity,
        kind="age",
        drug=None,
        drug_class="Age",
        title=rule.title,
        effect=rule.effect,
        management=rule.management,
        mechanism=rule.mechanism,
        evidence=rule.evidence,
        label_vs_studies=None,
        entered_as=f"age {int(age_years)} years",
        sources=rule.sources,
        carry_forward_key=f"{rule.rule_id}|age",
    )


def age_in_years(dob: date, on: date) -> int:
    """Completed years of age on the date ``on`` for a date of birth ``dob`` (years)."""
    if dob > on:
        raise UserFacingError("The date of birth is in the future; check it.")
    years = on.year - dob.year
    if (on.month, on.day) < (dob.month, dob.day):
        years -= 1
    return years


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
    hypertension_lines = [
        r.entered_as for r in readings
        if any(
            m.concept_id == kb.hypertension_concept and m.is_about_patient for m in r.mentions
        )
    ]
    has_hypertension = bool(hypertension_lines)
    hypertension_text = "; ".join(hypertension_lines)
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


def age_band(age_years: float | None, kb: KnowledgeBase | None = None) -> str | None:
    """The age rules (ids joined by "+") that apply at ``age_years`` (years), "adult" when
    none does, or None when the age is unknown. A review depends on the band, not the age."""
    if age_years is None:
        return None
    kb = kb or load_knowledge_base()
    applying = [rule.rule_id for rule in kb.age_rules if rule.applies_to(age_years)]
    return "+".join(applying) or "adult"


def review_fingerprint(
    medication_lines: Sequence[str],
    conditions: Sequence[str],
    vitals: Vitals | None,
    pregnant: bool,
    kb_version: str,
    age_band: str | None = None,
) -> str:
    """SHA-256 (hex) of everything a review depends on; it changes when any input changes.

    Order of lines, case and extra whitespace do not matter; blank lines are ignored.
    Vitals are included as values (BP in mmHg, heart rate per minute, weight in kg);
    ``age_band`` (from :func:`age_band`) only when given, so fingerprints made without an
    age stay as they were.
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
    if age_band is not None:
        payload["age_band"] = age_band
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
