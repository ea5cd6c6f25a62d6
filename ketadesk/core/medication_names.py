"""Read a typed medication line: name -> generic ingredients, plus dose and frequency.

``read_medication_line("Percocet 5/325 prn")`` gives oxycodone + acetaminophen, strengths
5 mg and 325 mg, taken as needed. ``"ketoconazole 2% shampoo"`` is read with a local route
(it acts where applied), so the caller does not give it the interactions of ketoconazole by
mouth; a patch is systemic unless its ingredient is listed as a local patch (lidocaine).
Misspellings are read only when the nearest known name is
unambiguous, and never across a listed look-alike pair (hydroxyzine/hydralazine,
clonidine/clonazepam, Celexa/Celebrex, ketamine/ketorolac ...). A line that cannot be read
comes back with no generics: the caller must list it as "not checked".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from ketadesk.core.knowledge_base import KnowledgeBase, canonical_key, load_knowledge_base

#: Words that end the name part of a line (units, routes, forms, frequencies).
_STOP_WORDS = frozenset(
    """mg mcg ug g ml units unit iu tab tabs tablet tablets cap caps capsule capsules po oral
    sl sublingual patch prn qd od bid tid qid qam qpm qhs hs daily nightly weekly every
    at as once twice take takes taking otc q4h q6h q8h q12h q24h per by for with x""".split()
)

_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_MASS_UNITS = {"mg": 1.0, "mcg": 0.001, "ug": 0.001, "\u00b5g": 0.001, "g": 1000.0}
_COMBO_RE = re.compile(
    rf"(?<![\w.])({_NUMBER})\s*(mg|mcg|ug|\u00b5g|g)?\s*/\s*"
    rf"({_NUMBER})(?!\s*(?:h|hr|hrs|hours?)\b)"
    rf"(?:\s*/\s*({_NUMBER}))?\s*(mg|mcg|ug|\u00b5g|g)?(?![\w/])"
)
_DOSE_RE = re.compile(
    rf"(?<![\w./])({_NUMBER})(?:\s*(?:-|to)\s*({_NUMBER}))?\s*"
    r"(mg|mcg|ug|\u00b5g|g|ml|units?|iu|%)?(?!\w)"
)


@dataclass(frozen=True)
class MedicationReading:
    """What one typed medication line was read as.

    ``dose_mg`` is the single-ingredient dose per administration in mg (the upper end of a
    range such as "0.5-1 mg"); ``strengths_mg`` holds per-ingredient strengths in mg for
    combination strings such as "5/325" (in the order the product lists them).
    ``frequency_per_day`` is administrations per day (0.5 for every other day).
    """

    entered_as: str
    generics: tuple[str, ...]
    matched_name: str | None
    fuzzy: bool
    dose_mg: float | None = None
    strengths_mg: tuple[float, ...] = ()
    unit: str | None = None
    unit_assumed: bool = False
    frequency_per_day: float | None = None
    as_needed: bool = False
    route: Literal["systemic", "local"] = "systemic"
    route_word: str | None = None

    @property
    def is_recognized(self) -> bool:
        """True when the line resolved to at least one generic ingredient."""
        return bool(self.generics)

    @property
    def max_daily_dose_mg(self) -> float | None:
        """Dose (mg) times frequency (per day); for "as needed" lines, every dose taken."""
        if self.dose_mg is None or self.frequency_per_day is None:
            return None
        return self.dose_mg * self.frequency_per_day


def read_medication_line(text: str, kb: KnowledgeBase | None = None) -> MedicationReading:
    """Read one typed medication line (doses in mg, frequency per day)."""
    kb = kb or load_knowledge_base()
    entered = " ".join(text.split())
    lowered = unicodedata.normalize("NFKC", entered).casefold().replace("\u2019", "'")
    all_tokens = lowered.split()
    prefixes = set(kb.medication_routes.get("route_prefixes", ()))
    skipped = 0
    while skipped < len(all_tokens) - 1 and canonical_key(all_tokens[skipped]) in prefixes:
        skipped += 1
    tokens = all_tokens[skipped:]
    match = _exact_prefix(tokens, kb)
    fuzzy = False
    if match is None:
        match = _fuzzy_prefix(tokens, kb)
        fuzzy = match is not None
    if match is None:
        return MedicationReading(entered_as=entered, generics=(), matched_name=None, fuzzy=False)
    name_key, used = match
    rest = " ".join(tokens[used:])
    dose = _parse_dose_and_frequency(rest)
    route, route_word = medication_route(lowered, kb.names[name_key], kb)
    return MedicationReading(
        entered_as=entered,
        generics=kb.names[name_key],
        matched_name=kb.display_names[name_key],
        fuzzy=fuzzy,
        dose_mg=dose.dose_mg,
        strengths_mg=dose.strengths_mg,
        unit=dose.unit,
        unit_assumed=dose.unit_assumed,
        frequency_per_day=dose.frequency_per_day,
        as_needed=dose.as_needed,
        route=route,
        route_word=route_word,
    )


def medication_route(
    text: str, generics: tuple[str, ...], kb: KnowledgeBase | None = None
) -> tuple[Literal["systemic", "local"], str | None]:
    """Whether a line's product acts locally (cream, eye drops, shampoo ...) or systemically.

    Returns the route and the word that decided it ("shampoo", "patch"), or None.
    """
    kb = kb or load_knowledge_base()
    routes = kb.medication_routes
    if not routes:
        return "systemic", None
    words = canonical_key(text).split()
    forms = _local_forms(tuple(routes["local_forms"]))
    not_after = routes.get("not_local_after", {})
    for i in range(len(words)):
        for form in forms:
            if tuple(words[i: i + len(form)]) != form:
                continue
            following = words[i + len(form)] if i + len(form) < len(words) else ""
            if following in not_after.get(" ".join(form), ()):
                continue
            return "local", " ".join(form)
    if "patch" in words or "patches" in words:
        local = set(routes.get("local_patch_generics", ()))
        if generics and all(g in local for g in generics):
            return "local", "patch"
        return "systemic", "patch"
    return "systemic", None


@functools.lru_cache(maxsize=8)
def _local_forms(forms: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    keyed = {tuple(canonical_key(f).split()) for f in forms}
    return tuple(sorted((f for f in keyed if f), key=len, reverse=True))


def _exact_prefix(tokens: list[str], kb: KnowledgeBase) -> tuple[str, int] | None:
    for count in range(min(len(tokens), 5), 0, -1):
        key = canonical_key(" ".join(tokens[:count]))
        if key in kb.names:
            return key, count
    return None


def _name_part(tokens: list[str]) -> list[str]:
    part: list[str] = []
    for token in tokens[:4]:
        bare = token.strip(".,;:()")
        if not bare or bare[0].isdigit() or bare in _STOP_WORDS:
            break
        part.append(token)
    return part


def _fuzzy_prefix(tokens: list[str], kb: KnowledgeBase) -> tuple[str, int] | None:
    part = _name_part(tokens)
    for count in range(len(part), 0, -1):
        key = canonical_key(" ".join(part[:count]))
        if not key:
            continue
        found = fuzzy_name_match(key, kb)
        if found is not None:
            return found, count
    return None


def fuzzy_name_match(key: str, kb: KnowledgeBase | None = None) -> str | None:
    """The one known name a misspelt ``key`` (a canonical key) clearly means, or None.

    A near name is accepted only if it is within the allowed edit distance, no name with
    different ingredients is nearly as close, and it is far from every listed look-alike.
    """
    kb = kb or load_knowledge_base()
    return _fuzzy_cached(kb, key)


@functools.lru_cache(maxsize=4096)
def _fuzzy_cached(kb: KnowledgeBase, key: str) -> str | None:
    settings = kb.fuzzy
    allowed = settings.max_distance(len(key))
    if allowed == 0 or key in kb.names:
        return None
    horizon = allowed + settings.required_margin - 1
    scored: list[tuple[int, str]] = []
    key_letters = _letters(key)
    for candidate in kb.names_by_initial.get(key[0], ()):
        if abs(len(candidate) - len(key)) > horizon:
            continue
        if _letter_bound(key_letters, _letters(candidate)) > horizon:
            continue
        distance = edit_distance(key, candidate, horizon)
        if distance <= horizon:
            scored.append((distance, candidate))
    if not scored:
        return None
    scored.sort(key=lambda item: (item[0], len(item[1]), item[1]))
    best_distance, best = scored[0]
    if best_distance > allowed:
        return None
    best_generics = kb.names[best]
    for distance, other in scored[1:]:
        if kb.names[other] != best_generics and distance < best_distance + settings.required_margin:
            return None
    for partner in kb.look_alike_partners.get(best, frozenset()):
        if kb.names[partner] == best_generics:
            continue
        limit = best_distance + settings.look_alike_margin
        if edit_distance(key, partner, limit) < limit:
            return None
    return best


@functools.lru_cache(maxsize=8192)
def _letters(text: str) -> Counter[str]:
    return Counter(text)


def _letter_bound(a: Counter[str], b: Counter[str]) -> int:
    """A lower bound on the edit distance: letters one string has that the other lacks."""
    return max(sum((a - b).values()), sum((b - a).values()))


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition counts as one edit).

    Returns ``limit + 1`` as soon as the distance is known to exceed ``limit``.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous_previous: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        row_min = i
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if (
                i > 1
                and j > 1
                and char_a == b[j - 2]
                and a[i - 2] == char_b
            ):
                value = min(value, previous_previous[j - 2] + 1)
            current[j] = value
            row_min = min(row_min, value)
        if row_min > limit:
            return limit + 1
        previous_previous, previous = previous, current
    return min(previous[-1], limit + 1)


_FREQUENCY_PATTERNS: tuple[tuple[re.Pattern[str], float | None], ...] = tuple(
    (re.compile(pattern), value)
    for pattern, value in (
        (
            r"\b(?:max(?:imum)?|up to|no more than|not to exceed|nte)\s*(\d+)\s*"
            r"(?:times|doses?|tabs?|tablets?|caps?|capsules?|x)?\s*(?:/|per|a|each|in)\s*"
            r"(?:day|d|24\s?h(?:ours?|rs?)?)\b",
            -1.0,
        ),
        (r"\bq\s?(\d+)\s?h(?:rs?|ours?)?\b", None),
        (r"\bevery\s+(\d+)\s+hours?\b", None),
        (r"\b(\d)\s*x\s*(?:/\s*)?(?:a\s+|per\s+)?(?:daily|day|d)\b", -1.0),
        (r"\b(?:qid|four times (?:a|per) day|4 times (?:a|per) day|four times daily)\b", 4.0),
        (r"\b(?:tid|three times (?:a|per) day|3 times (?:a|per) day|three times daily)\b", 3.0),
        (r"\b(?:bid|twice (?:a|per) day|twice daily|2 times (?:a|per) day|q12)\b", 2.0),
        (r"\b(?:every other day|qod|alternate days)\b", 0.5),
        (r"\b(?:twice|2 times|2x) (?:a |per |each )?week(?:ly)?\b", 2.0 / 7.0),
        (r"\b(?:three times|3 times|3x) (?:a |per |each )?week(?:ly)?\b", 3.0 / 7.0),
        (r"\b(?:weekly|once (?:a|per) week|every week|qweek|q ?wk)\b", 1.0 / 7.0),
        (
            r"\b(?:qd|od|qday|daily|once daily|once (?:a|per) day|every day|qam|qpm|qhs|hs|"
            r"at bedtime|bedtime|nightly|every morning|every night|every evening|"
            r"in the morning|at night|in the evening|qnight|each morning|each night)\b",
            1.0,
        ),
    )
)
_AS_NEEDED = re.compile(r"\b(?:prn|as needed|as-needed|when needed|if needed)\b")


@dataclass
class _Dose:
    dose_mg: float | None = None
    strengths_mg: tuple[float, ...] = ()
    unit: str | None = None
    unit_assumed: bool = False
    frequency_per_day: float | None = None
    as_needed: bool = False


def _parse_dose_and_frequency(rest: str) -> _Dose:
    out = _Dose()
    text = re.sub(r"(?<=[a-z])\.(?=[a-z]|\s|$)", "", rest)
    combo = _COMBO_RE.search(text)
    if combo:
        unit = combo.group(5) or combo.group(2)
        factor = _MASS_UNITS.get(unit or "mg", 1.0)
        parts = [p for p in (combo.group(1), combo.group(3), combo.group(4)) if p]
        out.strengths_mg = tuple(float(p) * factor for p in parts)
        out.unit = unit or "mg"
        out.unit_assumed = unit is None
        text = text[: combo.start()] + " " + text[combo.end() :]
    else:
        dose = _DOSE_RE.search(text)
        if dose:
            value = float(dose.group(2) or dose.group(1))
            unit = dose.group(3)
            unit = "units" if unit in ("unit", "units", "iu") else unit
            if unit is None:
                out.dose_mg, out.unit, out.unit_assumed = value, "mg", True
            elif unit in _MASS_UNITS:
                out.dose_mg, out.unit = value * _MASS_UNITS[unit], unit
            else:
                out.unit = unit
            text = text[: dose.start()] + " " + text[dose.end() :]
    out.as_needed = bool(_AS_NEEDED.search(text))
    out.frequency_per_day = _frequency(text)
    return out


def _frequency(text: str) -> float | None:
    for pattern, value in _FREQUENCY_PATTERNS:
        found = pattern.search(text)
        if not found:
            continue
        if value is None:
            hours = int(found.group(1))
            return 24.0 / hours if 0 < hours <= 24 else None
        if value < 0:
            count = int(found.group(1))
            return float(count) if count > 0 else None
        return value
    return None
