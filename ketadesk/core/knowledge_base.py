"""The interaction knowledge base: load, validate against JSON Schema, cross-check and index.

The clinical content lives in ``resources/kb/*.json`` (data with sources, never Python
literals). Each file is validated against ``resources/kb/schema/*.schema.json`` and then
cross-checked (every source reference exists, every rule member is a known generic, all
files carry the same ``kb_version``). :func:`load_knowledge_base` caches the result, so
callers may ask for it freely.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ketadesk.core.errors import UserFacingError
from ketadesk.resources import ResourceFileError, read_validated_json, resource_path

Severity = Literal["contraindicated", "major", "moderate", "minor"]

#: Severities from most to least serious; the index is the sort rank.
SEVERITY_ORDER: tuple[Severity, ...] = ("contraindicated", "major", "moderate", "minor")

KB_FILES: tuple[str, ...] = (
    "sources", "drug_rules", "condition_rules", "drug_names", "condition_reading"
)

#: Where a condition is said to stand in a typed line (see ``condition_reading.py``).
ConditionContext = Literal["present", "negated", "historical", "family", "uncertain"]

#: Contexts a condition rule applies to when its entry does not say.
DEFAULT_RULE_CONTEXTS: frozenset[str] = frozenset({"present", "historical", "uncertain"})


class KnowledgeBaseError(UserFacingError):
    """The knowledge base files are missing, malformed or inconsistent."""


def severity_rank(severity: str) -> int:
    """Sort rank of a severity: 0 for ``contraindicated`` up to 3 for ``minor``."""
    return SEVERITY_ORDER.index(cast(Severity, severity))


def canonical_key(text: str) -> str:
    """Lower-case, accent-folded key with punctuation turned into single spaces.

    ``"St. John's Wort"`` and ``"st johns wort"`` give the same key, as do
    ``"Claritin-D"`` and ``"claritin d"``.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.replace("\u2019", "'").replace("'", "")
    folded = re.sub(r"[^a-z0-9]+", " ", folded)
    return folded.strip()


@dataclass(frozen=True)
class Source:
    """One citation: a label section, study or review, with a URL or DOI."""

    title: str
    section: str
    url: str | None = None
    doi: str | None = None

    @property
    def link(self) -> str:
        """A clickable address: the URL, or the DOI resolver address."""
        if self.url:
            return self.url
        return f"https://doi.org/{self.doi}"


@dataclass(frozen=True)
class RuleText:
    """What every knowledge base rule says: severity, the explanation, and its sources."""

    rule_id: str
    severity: Severity
    title: str
    mechanism: str
    effect: str
    management: str
    evidence: str
    sources: tuple[Source, ...]


#: JSON keys copied as they are into every rule's :class:`RuleText` fields.
_RULE_TEXT_KEYS = ("rule_id", "severity", "title", "mechanism", "effect", "management", "evidence")


@dataclass(frozen=True)
class DrugRule(RuleText):
    """An interaction between ketamine and a drug class (all members share it)."""

    drug_class: str
    members: frozenset[str]
    label_vs_studies: str | None
    escalate_above_dz_mg_per_day: float | None
    escalated_severity: Severity | None
    applies_to_local_route: bool = False


@dataclass(frozen=True)
class ConditionConcept:
    """One condition in the vocabulary, with synonyms, abbreviations and ICD-10-CM codes.

    ``parent`` names a broader concept whose rules also apply (alcohol use disorder is a
    substance use disorder).
    """

    concept_id: str
    name: str
    category: str
    synonyms: tuple[str, ...]
    icd10: tuple[str, ...]
    abbreviations: tuple[str, ...] = ()
    parent: str | None = None


@dataclass(frozen=True)
class ConditionRule(RuleText):
    """A contraindication or caution triggered by a condition.

    ``contexts`` are the readings it applies to (present, historical, uncertain, family);
    ``requires_modifier`` / ``unless_modifier`` name severity or control words that must
    (or must not) accompany the condition; ``uncertain_severity`` caps the severity when the
    condition is only possible.
    """

    concept_id: str
    label_vs_studies: str | None
    contexts: frozenset[str] = DEFAULT_RULE_CONTEXTS
    requires_modifier: frozenset[str] = frozenset()
    unless_modifier: frozenset[str] = frozenset()
    uncertain_severity: Severity | None = None


@dataclass(frozen=True)
class AgeRule(RuleText):
    """A caution for an age band: ``from_years`` inclusive, ``below_years`` exclusive (years)."""

    from_years: int | None
    below_years: int | None

    def applies_to(self, age_years: float) -> bool:
        """True when ``age_years`` (years) falls in this band."""
        if self.from_years is not None and age_years < self.from_years:
            return False
        return self.below_years is None or age_years < self.below_years


@dataclass(frozen=True)
class BloodPressureRule(RuleText):
    """One blood pressure grade. Thresholds are inclusive integers in mmHg."""

    grade: str
    systolic_at_least: int | None
    diastolic_at_least: int | None
    threshold_text: str


@dataclass(frozen=True)
class FuzzySettings:
    """How far a misspelling may be from a known name (edit distance) and still be read."""

    min_length: int
    max_distance_short: int
    long_from_length: int
    max_distance_long: int
    required_margin: int
    look_alike_margin: int

    def max_distance(self, length: int) -> int:
        """Edits allowed for a typed name of ``length`` characters (0 below ``min_length``)."""
        if length < self.min_length:
            return 0
        if length >= self.long_from_length:
            return self.max_distance_long
        return self.max_distance_short


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    """Validated, indexed knowledge base. Treat as read-only."""

    version: str
    drug_rules: tuple[DrugRule, ...]
    rules_by_generic: Mapping[str, tuple[DrugRule, ...]]
    generics: frozenset[str]
    names: Mapping[str, tuple[str, ...]]
    display_names: Mapping[str, str]
    names_by_initial: Mapping[str, tuple[str, ...]]
    look_alike_partners: Mapping[str, frozenset[str]]
    fuzzy: FuzzySettings
    conditions: Mapping[str, ConditionConcept]
    condition_by_term: Mapping[str, str]
    condition_by_icd10: Mapping[str, str]
    condition_rules: Mapping[str, tuple[ConditionRule, ...]]
    hypertension_concept: str
    bp_grades: tuple[BloodPressureRule, ...]
    bp_controlled: BloodPressureRule
    bp_not_recorded: BloodPressureRule
    diazepam_equivalents_mg: Mapping[str, float]
    benzodiazepine_threshold_mg_per_day: float
    benzodiazepine_note: str
    benzodiazepine_sources: tuple[Source, ...]
    age_rules: tuple[AgeRule, ...] = ()
    condition_reading: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    medication_routes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def concept_lineage(self, concept_id: str) -> tuple[str, ...]:
        """The concept and its broader parents, nearest first."""
        lineage = [concept_id]
        parent = self.conditions[concept_id].parent if concept_id in self.conditions else None
        while parent is not None and parent not in lineage:
            lineage.append(parent)
            parent = self.conditions[parent].parent
        return tuple(lineage)

    @property
    def name_count(self) -> int:
        """Number of distinct medication names (brand, generic, synonym) recognised."""
        return len(self.names)

    def all_rule_ids(self) -> tuple[str, ...]:
        """Every rule id in the knowledge base (drug, condition and vital-sign rules)."""
        ids = [r.rule_id for r in self.drug_rules]
        ids += [r.rule_id for rules in self.condition_rules.values() for r in rules]
        ids += [g.rule_id for g in self.bp_grades]
        ids += [self.bp_controlled.rule_id, self.bp_not_recorded.rule_id]
        ids += [r.rule_id for r in self.age_rules]
        return tuple(ids)


def default_kb_dir() -> Path:
    """Folder of the shipped knowledge base (works from source and from a bundle)."""
    return resource_path("kb")


_loading_shipped = threading.Lock()


def load_knowledge_base() -> KnowledgeBase:
    """Load, validate and index the shipped knowledge base once per process (a caller that
    comes while another thread loads it waits for that load instead of repeating it)."""
    with _loading_shipped:
        return _shipped_knowledge_base()


@functools.cache
def _shipped_knowledge_base() -> KnowledgeBase:
    return load_knowledge_base_from(default_kb_dir())


def load_knowledge_base_from(directory: Path) -> KnowledgeBase:
    """Load and validate the knowledge base in ``directory`` (not cached).

    Raises :class:`KnowledgeBaseError` naming the file and the first problem found.
    """
    raw = {name: _read_validated(directory, name) for name in KB_FILES}
    versions = {name: str(doc["kb_version"]) for name, doc in raw.items()}
    if len(set(versions.values())) != 1:
        raise KnowledgeBaseError(
            f"The interaction knowledge base files disagree on their version: {versions}."
        )
    return _build(next(iter(versions.values())), raw)


def _read_validated(directory: Path, name: str) -> dict[str, Any]:
    data_path = directory / f"{name}.json"
    schema_path = directory / "schema" / f"{name}.schema.json"
    try:
        data = read_validated_json(data_path, schema_path)
    except ResourceFileError as error:
        raise KnowledgeBaseError(_problem_text(name, error)) from None
    return cast(dict[str, Any], data)


def _problem_text(name: str, error: ResourceFileError) -> str:
    if error.problem == "missing":
        return f"The interaction knowledge base is incomplete: {error.file_name} is missing."
    if error.problem == "not_json" and error.line is not None:
        return (
            f"The interaction knowledge base file {name}.json is not valid JSON "
            f"(line {error.line})."
        )
    if error.problem == "invalid":
        return (
            f"The interaction knowledge base file {name}.json is invalid at "
            f"{error.where or '(top level)'}: {error.detail}"
        )
    return f"The interaction knowledge base cannot be loaded: {error.message}"


def _build(version: str, raw: Mapping[str, dict[str, Any]]) -> KnowledgeBase:
    catalogue: dict[str, dict[str, str]] = raw["sources"]["sources"]

    def sources(refs: list[dict[str, str]], owner: str) -> tuple[Source, ...]:
        out = []
        for ref in refs:
            entry = catalogue.get(ref["ref"])
            if entry is None:
                raise KnowledgeBaseError(
                    f"Knowledge base rule {owner} cites an unknown source '{ref['ref']}'."
                )
            out.append(
                Source(entry["title"], ref["section"], entry.get("url"), entry.get("doi"))
            )
        return tuple(out)

    def rule_text(item: Mapping[str, Any]) -> dict[str, Any]:
        """The :class:`RuleText` fields of a rule entry, as keyword arguments."""
        text = {name: item[name] for name in _RULE_TEXT_KEYS}
        return {**text, "sources": sources(item["sources"], item["rule_id"])}

    names_doc = raw["drug_names"]
    generics = frozenset(_strings(names_doc["generics"], "drug_names.json generics"))
    names: dict[str, tuple[str, ...]] = {}
    display: dict[str, str] = {}

    def add_name(name: str, ingredients: tuple[str, ...]) -> None:
        key = canonical_key(name)
        unknown = [g for g in ingredients if g not in generics]
        if unknown:
            raise KnowledgeBaseError(
                f"Medication name '{name}' lists unknown generic ingredient(s): {unknown}."
            )
        if key in names and names[key] != ingredients:
            raise KnowledgeBaseError(
                f"Medication name '{name}' is listed twice with different ingredients."
            )
        names[key] = ingredients
        display.setdefault(key, name)

    for generic in names_doc["generics"]:
        add_name(generic, (generic,))
    for name, ingredients in names_doc["names"].items():
        add_name(name, _strings(ingredients, f"drug_names.json names/{name}"))

    partners: dict[str, set[str]] = {}
    for group in names_doc["look_alike_groups"]:
        keys = [canonical_key(n) for n in group]
        for key, name in zip(keys, group, strict=True):
            if key not in names:
                raise KnowledgeBaseError(f"Look-alike name '{name}' is not a known name.")
            partners.setdefault(key, set()).update(k for k in keys if k != key)

    by_initial: dict[str, list[str]] = {}
    for key in names:
        by_initial.setdefault(key[0], []).append(key)

    drug_doc = raw["drug_rules"]
    rules: list[DrugRule] = []
    by_generic: dict[str, list[DrugRule]] = {}
    seen_ids: set[str] = set()
    for item in drug_doc["rules"]:
        rule_id = item["rule_id"]
        _check_unique(rule_id, seen_ids)
        unknown = [m for m in _strings(item["members"], rule_id) if m not in generics]
        if unknown:
            raise KnowledgeBaseError(
                f"Knowledge base rule {rule_id} names members with no medication name entry: "
                f"{unknown}."
            )
        escalation = item.get("dose_escalation")
        rule = DrugRule(
            drug_class=item["class"],
            members=frozenset(item["members"]),
            label_vs_studies=item.get("label_vs_studies"),
            escalate_above_dz_mg_per_day=float(escalation["above"]) if escalation else None,
            escalated_severity=escalation["severity"] if escalation else None,
            applies_to_local_route=bool(item.get("local_route", {}).get("applies", False)),
            **rule_text(item),
        )
        rules.append(rule)
        for member in item["members"]:
            by_generic.setdefault(member, []).append(rule)

    load = drug_doc["benzodiazepine_load"]
    equivalents = {str(k): float(v) for k, v in load["equivalent_to_10mg_diazepam"].items()}
    unknown_benzos = [g for g in equivalents if g not in generics]
    if unknown_benzos:
        raise KnowledgeBaseError(
            f"Diazepam-equivalence table names unknown drugs: {unknown_benzos}."
        )

    cond_doc = raw["condition_rules"]
    concepts: dict[str, ConditionConcept] = {}
    by_term: dict[str, str] = {}
    by_icd: dict[str, str] = {}
    for item in cond_doc["conditions"]:
        concept = ConditionConcept(
            concept_id=item["id"],
            name=item["name"],
            category=item["category"],
            synonyms=_strings(item["synonyms"], f"condition {item['id']}"),
            icd10=tuple(item["icd10"]),
            abbreviations=_strings(item.get("abbreviations", []), f"condition {item['id']}"),
            parent=item.get("parent"),
        )
        if concept.concept_id in concepts:
            raise KnowledgeBaseError(f"Condition '{concept.concept_id}' is listed twice.")
        concepts[concept.concept_id] = concept
        for term in (concept.name, *concept.synonyms, *concept.abbreviations):
            key = canonical_key(term)
            if by_term.get(key, concept.concept_id) != concept.concept_id:
                raise KnowledgeBaseError(
                    f"Condition synonym '{term}' belongs to two conditions; it must be unique."
                )
            by_term[key] = concept.concept_id
        for code in concept.icd10:
            if by_icd.get(code, concept.concept_id) != concept.concept_id:
                raise KnowledgeBaseError(f"ICD-10 code {code} belongs to two conditions.")
            by_icd[code] = concept.concept_id

    for concept in concepts.values():
        if concept.parent is not None and concept.parent not in concepts:
            raise KnowledgeBaseError(
                f"Condition '{concept.concept_id}' names an unknown parent '{concept.parent}'."
            )

    cond_rules: dict[str, list[ConditionRule]] = {}
    for item in cond_doc["condition_rules"]:
        rule_id = item["rule_id"]
        _check_unique(rule_id, seen_ids)
        if item["condition"] not in concepts:
            raise KnowledgeBaseError(
                f"Knowledge base rule {rule_id} refers to unknown condition '{item['condition']}'."
            )
        cond_rules.setdefault(item["condition"], []).append(
            _condition_rule(item, rule_text(item))
        )

    bp_doc = cond_doc["blood_pressure"]
    if bp_doc["condition"] not in concepts:
        raise KnowledgeBaseError("The blood pressure section names an unknown condition.")

    def bp_rule(item: dict[str, Any]) -> BloodPressureRule:
        _check_unique(item["rule_id"], seen_ids)
        return BloodPressureRule(
            grade=item["grade"],
            systolic_at_least=item.get("systolic_at_least"),
            diastolic_at_least=item.get("diastolic_at_least"),
            threshold_text=item["threshold_text"],
            **rule_text(item),
        )

    age_rules = []
    for item in cond_doc.get("age_rules", []):
        _check_unique(item["rule_id"], seen_ids)
        age_rules.append(
            AgeRule(
                from_years=item.get("from_years"),
                below_years=item.get("below_years"),
                **rule_text(item),
            )
        )
    reading = raw["condition_reading"]
    for entry in reading["ambiguous_abbreviations"]:
        if canonical_key(entry["abbreviation"]) in by_term:
            raise KnowledgeBaseError(
                f"Ambiguous abbreviation '{entry['abbreviation']}' is also listed as a term for "
                f"'{by_term[canonical_key(entry['abbreviation'])]}'; it must be one or the other."
            )
        for meaning in entry["meanings"]:
            if "concept" in meaning and meaning["concept"] not in concepts:
                raise KnowledgeBaseError(
                    f"Ambiguous abbreviation '{entry['abbreviation']}' names unknown condition "
                    f"'{meaning['concept']}'."
                )

    grades = tuple(
        sorted((bp_rule(g) for g in bp_doc["grades"]), key=lambda g: severity_rank(g.severity))
    )
    return KnowledgeBase(
        version=version,
        drug_rules=tuple(rules),
        rules_by_generic={k: tuple(v) for k, v in by_generic.items()},
        generics=generics,
        names=names,
        display_names=display,
        names_by_initial={k: tuple(v) for k, v in by_initial.items()},
        look_alike_partners={k: frozenset(v) for k, v in partners.items()},
        fuzzy=FuzzySettings(**names_doc["fuzzy"]),
        conditions=concepts,
        condition_by_term=by_term,
        condition_by_icd10=by_icd,
        condition_rules={k: tuple(v) for k, v in cond_rules.items()},
        hypertension_concept=bp_doc["condition"],
        bp_grades=grades,
        bp_controlled=bp_rule(bp_doc["controlled"]),
        bp_not_recorded=bp_rule(bp_doc["not_recorded"]),
        diazepam_equivalents_mg=equivalents,
        benzodiazepine_threshold_mg_per_day=float(load["threshold_mg_per_day"]),
        benzodiazepine_note=load["note"],
        benzodiazepine_sources=sources(load["sources"], "benzodiazepine_load"),
        age_rules=tuple(age_rules),
        condition_reading=reading,
        medication_routes=names_doc.get("routes", {}),
    )


def _condition_rule(item: Mapping[str, Any], text: dict[str, Any]) -> ConditionRule:
    contexts = frozenset(item.get("contexts", DEFAULT_RULE_CONTEXTS))
    if "family" in contexts and contexts != {"family"}:
        raise KnowledgeBaseError(
            f"Knowledge base rule {item['rule_id']} mixes family history with the patient's own "
            "condition; a family-history rule must apply to family history only."
        )
    return ConditionRule(
        concept_id=item["condition"],
        label_vs_studies=item.get("label_vs_studies"),
        contexts=contexts,
        requires_modifier=frozenset(item.get("requires_modifier", ())),
        unless_modifier=frozenset(item.get("unless_modifier", ())),
        uncertain_severity=item.get("uncertain_severity"),
        **text,
    )


def _strings(values: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise KnowledgeBaseError(f"Knowledge base list {where} must hold non-empty text only.")
    return tuple(values)


def _check_unique(rule_id: str, seen: set[str]) -> None:
    if rule_id in seen:
        raise KnowledgeBaseError(f"Knowledge base rule id {rule_id} is used twice.")
    seen.add(rule_id)
