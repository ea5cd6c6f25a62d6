"""Read a typed condition line the way a clinician wrote it.

``read_condition_line("hx of psychosis 2019, denies SI")`` finds two conditions anywhere in
the line (the longest known term, synonym or abbreviation wins; ICD-10-CM codes map by code
prefix; misspellings are read only when one concept is clearly meant) and the context each
stands in, after the NegEx/ConText approach: trigger phrases (``denies``, ``hx of``,
``family history of``, ``possible``, ``in remission`` ...) reach forward or backward over a
few words, and a scope ends at a boundary (``but``, ``;``, ``however`` ...). Severity and
control words ("uncontrolled", "severe", a blood pressure such as 170/105 mmHg) are attached
to the nearest condition for rules to use. Abbreviations with several common meanings (BPD,
MS, PE) are reported as ambiguous, never guessed.

All of the vocabulary and trigger phrases are data in ``resources/kb/condition_reading.json``
and ``resources/kb/condition_rules.json``. Pure functions; no Qt, no database.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ketadesk.core.knowledge_base import (
    ConditionContext,
    KnowledgeBase,
    canonical_key,
    load_knowledge_base,
)
from ketadesk.core.medication_names import edit_distance

MatchedBy = Literal["term", "abbreviation", "icd10", "fuzzy"]

#: When two triggers reach the same condition, the first listed here decides.
_CONTEXT_PRECEDENCE: tuple[ConditionContext, ...] = (
    "family", "negated", "uncertain", "historical", "present",
)

_TOKEN_RE = re.compile(
    r"(?P<code>(?<![a-z0-9])[a-z][0-9]{2}(?:\.[0-9a-z]{1,4})?(?![a-z0-9]))"
    r"|(?P<bp>(?<![0-9])[0-9]{2,3}\s?/\s?[0-9]{2,3}(?![0-9]))"
    r"|(?P<slash>(?<![a-z])[a-z]/[a-z](?:'d)?(?![a-z]))"
    r"|(?P<word>[a-z0-9]+(?:'[a-z]+)?)"
    r"|(?P<punct>[;,.:()?!/+\-])"
)
#: Punctuation that ends every scope and that a term cannot span.
_HARD_BOUNDARIES = frozenset({";", ".", "!"})
#: Punctuation a term cannot span (a comma separates list items).
_TERM_BREAKS = frozenset({";", ".", "!", ":", ",", "(", ")", "?", "+"})


@dataclass(frozen=True)
class ConditionMention:
    """One condition found in a line and the context it stands in.

    ``code`` is the ICD-10-CM code typed, or the concept's first code; ``modifiers`` are
    severity/control tags (``uncontrolled``, ``controlled``, ``severe``, ``mild``, ...);
    ``blood_pressure_mmhg`` is a reading typed in the line (systolic, diastolic in mmHg).
    """

    concept_id: str
    name: str
    context: ConditionContext
    matched_text: str
    matched_by: MatchedBy
    code: str | None
    modifiers: tuple[str, ...] = ()
    blood_pressure_mmhg: tuple[int, int] | None = None

    @property
    def words(self) -> str:
        """The reading in words, e.g. ``"no psychotic disorder (negated)"``."""
        return describe(self.name, self.context, self.modifiers)

    @property
    def is_about_patient(self) -> bool:
        """True unless the condition is denied or belongs to a relative."""
        return self.context not in ("negated", "family")


@dataclass(frozen=True)
class AmbiguousMention:
    """An abbreviation with several common meanings (display texts), left for the physician."""

    text: str
    meanings: tuple[str, ...]

    @property
    def words(self) -> str:
        """E.g. ``"BPD is ambiguous (bipolar disorder, borderline personality disorder ...)"``."""
        return f"{self.text} is ambiguous ({' or '.join(self.meanings)})"


@dataclass(frozen=True)
class ConditionLineReading:
    """Everything read from one condition line, in the order it was typed.

    ``unread`` lists the comma- or semicolon-separated parts of a line that was partly read
    but where a part named nothing known ("HTN, moyamoya disease" -> "moyamoya disease"):
    those parts were not checked.
    """

    entered_as: str
    mentions: tuple[ConditionMention, ...]
    ambiguous: tuple[AmbiguousMention, ...]
    unread: tuple[str, ...] = ()

    @property
    def words(self) -> str | None:
        """All readings in words joined by "; ", or None when nothing was recognised."""
        if not self.mentions:
            return None
        return "; ".join(m.words for m in self.mentions)


def describe(name: str, context: ConditionContext, modifiers: Sequence[str] = ()) -> str:
    """Words for one reading: "Hypertension (uncontrolled)", "no psychosis (negated)" ..."""
    if context != "present":
        name = name.removesuffix(" (history)")
    lowered = _lower_first(name)
    detail = [m for m in modifiers if m in ("uncontrolled", "controlled", "severe", "repaired")]
    suffix = f" ({', '.join(detail)})" if detail else ""
    if context == "negated":
        return f"no {lowered} (negated)"
    if context == "family":
        return f"family history of {lowered} (family)"
    if context == "uncertain":
        return f"possible {lowered}{suffix} (uncertain)"
    if context == "historical":
        return f"{name}{suffix} (history)"
    return f"{name}{suffix}"


def _lower_first(name: str) -> str:
    if len(name) > 1 and name[1].islower():
        return name[0].lower() + name[1:]
    return name


# --------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class _Trigger:
    context: ConditionContext
    direction: Literal["forward", "backward"]
    max_words: int


@dataclass(frozen=True)
class _Fuzzy:
    min_length: int
    short: int
    long_from: int
    long: int
    margin: int
    look_alike_margin: int


def _look_alikes(groups: Sequence[Sequence[str]]) -> dict[str, frozenset[str]]:
    partners: dict[str, set[str]] = {}
    for group in groups:
        keys = [" ".join(_term_tokens(term)) for term in group]
        for key in keys:
            partners.setdefault(key, set()).update(k for k in keys if k != key)
    return {k: frozenset(v) for k, v in partners.items()}


@dataclass(frozen=True, eq=False)
class _Lexicon:
    terms: Mapping[tuple[str, ...], tuple[str, MatchedBy]]
    longest_term: int
    whole_line_only: frozenset[str]
    ambiguous: Mapping[str, tuple[str, ...]]
    triggers: Mapping[tuple[str, ...], tuple[_Trigger, ...]]
    pseudo: frozenset[tuple[str, ...]]
    end_all: frozenset[tuple[str, ...]]
    end_historical: frozenset[tuple[str, ...]]
    modifiers: Mapping[tuple[str, ...], str]
    reactivation: frozenset[tuple[str, ...]]
    longest_phrase: int
    code_contexts: tuple[tuple[str, ConditionContext], ...]
    fuzzy_terms: Mapping[str, tuple[tuple[str, str, Counter[str]], ...]]
    not_fuzzy: frozenset[str]
    filler: frozenset[str]
    look_alikes: Mapping[str, frozenset[str]]
    fuzzy: _Fuzzy
    uncontrolled_bp: tuple[int, int]
    severe_bp: tuple[int, int]


def _phrase_tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t, _kind, _s, _e in _tokenise(text))


def _term_tokens(text: str) -> tuple[str, ...]:
    """A vocabulary term as matched in a line: its words, ignoring punctuation."""
    return tuple(t for t, kind, _s, _e in _tokenise(text) if kind != "punct")


@functools.cache
def _lexicon(kb: KnowledgeBase) -> _Lexicon:
    data: Mapping[str, Any] = kb.condition_reading
    terms: dict[tuple[str, ...], tuple[str, MatchedBy]] = {}
    fuzzy_terms: dict[str, list[tuple[str, str, Counter[str]]]] = {}
    for concept in kb.conditions.values():
        for term in (concept.name, *concept.synonyms):
            tokens = _term_tokens(term)
            if tokens:
                terms.setdefault(tokens, (concept.concept_id, "term"))
                key = " ".join(tokens)
                if len(key) >= kb.fuzzy.min_length:
                    fuzzy_terms.setdefault(key[0], []).append(
                        (key, concept.concept_id, Counter(key))
                    )
        for abbreviation in concept.abbreviations:
            tokens = _term_tokens(abbreviation)
            if tokens:
                terms.setdefault(tokens, (concept.concept_id, "abbreviation"))
    ambiguous: dict[str, tuple[str, ...]] = {}
    for entry in data["ambiguous_abbreviations"]:
        meanings = []
        for meaning in entry["meanings"]:
            text = meaning.get("text") or kb.conditions[meaning["concept"]].name
            meanings.append(_lower_first(text))
        ambiguous[" ".join(_phrase_tokens(entry["abbreviation"]))] = tuple(meanings)
    triggers: dict[tuple[str, ...], list[_Trigger]] = {}
    default_scope = int(data["max_scope_words"])
    listed = [
        {**group, "phrase": phrase} for group in data["triggers"] for phrase in group["phrases"]
    ]
    for item in [*listed, *_family_triggers(data)]:
        trigger = _Trigger(item["context"], item["direction"], item.get("max_words", default_scope))
        triggers.setdefault(_phrase_tokens(item["phrase"]), []).append(trigger)
    modifiers = {
        _phrase_tokens(phrase): tag
        for tag, phrases in data["modifiers"].items()
        for phrase in phrases
    }
    pseudo = frozenset(_phrase_tokens(p) for p in data["pseudo_triggers"])
    end_all = frozenset(_phrase_tokens(p) for p in data["terminations"]["all"])
    end_hist = frozenset(_phrase_tokens(p) for p in data["terminations"]["historical"])
    reactivation = frozenset(_phrase_tokens(p) for p in data["reactivation"])
    phrases = [*triggers, *pseudo, *end_all, *end_hist, *modifiers, *reactivation]
    grades = {g.grade: g for g in kb.bp_grades}
    uncontrolled = grades.get("uncontrolled")
    severe = grades.get("severe")
    settings = kb.fuzzy
    return _Lexicon(
        terms=terms,
        longest_term=max(len(t) for t in terms),
        whole_line_only=frozenset(canonical_key(w) for w in data["whole_line_only"]),
        ambiguous=ambiguous,
        triggers={k: tuple(v) for k, v in triggers.items()},
        pseudo=pseudo,
        end_all=end_all,
        end_historical=end_hist,
        modifiers=modifiers,
        reactivation=reactivation,
        longest_phrase=max(len(p) for p in phrases),
        code_contexts=tuple((c["prefix"], c["context"]) for c in data["code_contexts"]),
        fuzzy_terms={k: tuple(v) for k, v in fuzzy_terms.items()},
        not_fuzzy=frozenset(data["not_fuzzy"]),
        filler=frozenset(data.get("filler_words", ())),
        look_alikes=_look_alikes(data.get("look_alike_groups", ())),
        fuzzy=_Fuzzy(
            settings.min_length, settings.max_distance_short, settings.long_from_length,
            settings.max_distance_long, settings.required_margin, settings.look_alike_margin,
        ),
        uncontrolled_bp=(
            uncontrolled.systolic_at_least or 141, uncontrolled.diastolic_at_least or 91
        ) if uncontrolled else (141, 91),
        severe_bp=(severe.systolic_at_least or 181, severe.diastolic_at_least or 121)
        if severe else (181, 121),
    )


def _family_triggers(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Relative words as family triggers: "mother with X", "X in mother", "(mother)", and a
    bare relative ("father alcoholic") reaching a few words."""
    out: list[dict[str, Any]] = []
    bare_reach = int(data["family_bare_relative_max_words"])
    for relative in data["family_relatives"]:
        out.append({"phrase": relative, "context": "family", "direction": "forward",
                    "max_words": bare_reach})
        for link in data["family_relative_links"]:
            out.append({"phrase": f"{relative} {link}", "context": "family",
                        "direction": "forward"})
        for phrase in (f"in {relative}", f"in her {relative}", f"in his {relative}",
                       f"({relative})"):
            out.append({"phrase": phrase, "context": "family", "direction": "backward",
                        "max_words": 6})
    return out


def _tokenise(text: str) -> list[tuple[str, str, int, int]]:
    """(normalised token, kind, start, end) for a casefolded line."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    out = []
    for match in _TOKEN_RE.finditer(folded):
        kind = match.lastgroup or "word"
        token = match.group()
        if kind == "word":
            token = token.replace("'", "")
        elif kind == "bp":
            token = token.replace(" ", "")
        out.append((token, kind, match.start(), match.end()))
    return out


# --------------------------------------------------------------------------- reading


@dataclass
class _Found:
    start: int
    end: int
    concept_id: str
    matched_by: MatchedBy
    code: str | None = None


def read_condition_line(text: str, kb: KnowledgeBase | None = None) -> ConditionLineReading:
    """Read one typed condition line into conditions with their context (see module doc)."""
    kb = kb or load_knowledge_base()
    entered = " ".join(text.split())
    # Whole lines are not cached: they are patient data and must not outlive the session.
    return _read(kb, entered)


def _read(kb: KnowledgeBase, entered: str) -> ConditionLineReading:
    lex = _lexicon(kb)
    tokens = _tokenise(entered)
    found, ambiguous = _find_concepts(tokens, lex, kb)
    covered = {i for f in found for i in range(f.start, f.end)}
    covered |= {i for start, end in ambiguous for i in range(start, end)}
    events = _find_phrases(tokens, lex, covered)
    fuzzy = _find_fuzzy(tokens, lex, covered | {i for e in events for i in range(e[0], e[1])})
    found = sorted([*found, *fuzzy], key=lambda f: f.start)
    mentions = []
    for index, item in enumerate(found):
        context = _context_of(item, index, found, events, tokens, lex)
        modifiers, pressure = _modifiers_of(item, index, found, events, tokens, lex)
        concept = kb.conditions[item.concept_id]
        code = item.code or (concept.icd10[0] if concept.icd10 else None)
        mentions.append(
            ConditionMention(
                concept_id=item.concept_id,
                name=concept.name,
                context=context,
                matched_text=entered[tokens[item.start][2]: tokens[item.end - 1][3]],
                matched_by=item.matched_by,
                code=code,
                modifiers=modifiers,
                blood_pressure_mmhg=pressure,
            )
        )
    ambiguous_mentions = tuple(
        AmbiguousMention(entered[tokens[s][2]: tokens[e - 1][3]], lex.ambiguous[tokens[s][0]])
        for s, e in ambiguous
    )
    unread: tuple[str, ...] = ()
    if found or ambiguous:
        concept_tokens = covered | {i for f in found for i in range(f.start, f.end)}
        phrase_tokens = {i for e in events for i in range(e[0], e[1])}
        unread = _unread_parts(entered, tokens, concept_tokens, phrase_tokens, lex, kb)
    return ConditionLineReading(entered, tuple(_unique(mentions)), ambiguous_mentions, unread)


def _unread_parts(
    entered: str,
    tokens: list[tuple[str, str, int, int]],
    concept_tokens: set[int],
    phrase_tokens: set[int],
    lex: _Lexicon,
    kb: KnowledgeBase,
) -> tuple[str, ...]:
    """List items (split at "," and ";") that name no condition but hold words that no
    trigger, modifier, filler word or medication name explains."""
    parts: list[str] = []
    segment: list[int] = []
    for index in range(len(tokens) + 1):
        if index < len(tokens) and tokens[index][0] not in (",", ";"):
            segment.append(index)
            continue
        if segment and not any(i in concept_tokens for i in segment):
            unexplained = [
                i for i in segment
                if tokens[i][1] == "word" and i not in phrase_tokens
                and len(tokens[i][0]) >= 3 and not tokens[i][0][0].isdigit()
                and tokens[i][0] not in lex.filler and tokens[i][0] not in kb.names
            ]
            if unexplained:
                text = entered[tokens[segment[0]][2]: tokens[segment[-1]][3]]
                parts.append(text.strip(" -"))
        segment = []
    return tuple(parts)


def _unique(mentions: list[ConditionMention]) -> list[ConditionMention]:
    """One mention per condition for the patient (the first) and one for relatives."""
    seen: set[tuple[str, bool]] = set()
    out = []
    for mention in mentions:
        key = (mention.concept_id, mention.context == "family")
        if key not in seen:
            seen.add(key)
            out.append(mention)
    return out


def _find_concepts(
    tokens: list[tuple[str, str, int, int]], lex: _Lexicon, kb: KnowledgeBase
) -> tuple[list[_Found], list[tuple[int, int]]]:
    words = [t for t, kind, _s, _e in tokens if kind != "punct"]
    whole_line = " ".join(words)
    found: list[_Found] = []
    ambiguous: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        token, kind, _s, _e = tokens[i]
        if kind == "punct":
            i += 1
            continue
        if kind == "code":
            concept_id = _concept_for_code(token.upper(), kb)
            if concept_id is not None:
                found.append(_Found(i, i + 1, concept_id, "icd10", token.upper()))
                i += 1
                continue
        match = _longest_term(tokens, i, lex, whole_line)
        if match is not None:
            end, (concept_id, matched_by) = match
            found.append(_Found(i, end, concept_id, matched_by))
            i = end
            continue
        if token in lex.ambiguous:
            ambiguous.append((i, i + 1))
        i += 1
    return found, ambiguous


def _longest_term(
    tokens: list[tuple[str, str, int, int]], start: int, lex: _Lexicon, whole_line: str
) -> tuple[int, tuple[str, MatchedBy]] | None:
    key: list[str] = []
    best: tuple[int, tuple[str, MatchedBy]] | None = None
    j = start
    while j < len(tokens) and len(key) < lex.longest_term:
        token, kind, _s, _e = tokens[j]
        if kind == "punct":
            if token in _TERM_BREAKS or not key:
                break
            j += 1
            continue
        key.append(token)
        j += 1
        hit = lex.terms.get(tuple(key))
        if hit is not None:
            joined = " ".join(key)
            if joined not in lex.whole_line_only or joined == whole_line:
                best = (j, hit)
    return best


def concept_for_icd10(code: str, kb: KnowledgeBase | None = None) -> str | None:
    """The knowledge-base concept an ICD-10-CM code (or its nearest parent code) maps to."""
    return _concept_for_code(code.strip().upper(), kb or load_knowledge_base())


def _concept_for_code(code: str, kb: KnowledgeBase) -> str | None:
    candidate = code
    while candidate:
        if candidate in kb.condition_by_icd10:
            return kb.condition_by_icd10[candidate]
        if "." not in candidate:
            return None
        head, tail = candidate.split(".", 1)
        candidate = f"{head}.{tail[:-1]}" if len(tail) > 1 else head
    return None


#: Modifier tag of a phrase saying a past condition is back ("relapsed").
_REACTIVATED = "active"

# An event: (start token, end token, triggers, is pseudo, ends all, ends historical, modifier)
_Event = tuple[int, int, tuple[_Trigger, ...], bool, bool, bool, str | None]


def _find_phrases(
    tokens: list[tuple[str, str, int, int]], lex: _Lexicon, covered: set[int]
) -> list[_Event]:
    events: list[_Event] = []
    i = 0
    keys = [t for t, _k, _s, _e in tokens]
    while i < len(tokens):
        if i in covered:
            i += 1
            continue
        best = 0
        for length in range(min(lex.longest_phrase, len(tokens) - i), 0, -1):
            if any(k in covered for k in range(i, i + length)):
                continue
            phrase = tuple(keys[i: i + length])
            if (
                phrase in lex.triggers or phrase in lex.pseudo or phrase in lex.end_all
                or phrase in lex.end_historical or phrase in lex.modifiers
                or phrase in lex.reactivation
            ):
                best = length
                break
        if best == 0:
            if tokens[i][1] == "bp":
                events.append((i, i + 1, (), False, False, False, "bp"))
            i += 1
            continue
        phrase = tuple(keys[i: i + best])
        is_pseudo = phrase in lex.pseudo
        events.append((
            i, i + best,
            () if is_pseudo else lex.triggers.get(phrase, ()),
            is_pseudo,
            phrase in lex.end_all,
            phrase in lex.end_historical or phrase in lex.reactivation,
            _REACTIVATED if phrase in lex.reactivation else lex.modifiers.get(phrase),
        ))
        i += best
    return events


def _find_fuzzy(
    tokens: list[tuple[str, str, int, int]], lex: _Lexicon, covered: set[int]
) -> list[_Found]:
    found: list[_Found] = []
    i = 0
    while i < len(tokens):
        hit = None
        for length in (3, 2, 1):
            span = range(i, i + length)
            if span.stop > len(tokens) or any(
                k in covered or tokens[k][1] != "word" or tokens[k][0] in lex.not_fuzzy
                or tokens[k][0].isdigit()
                for k in span
            ):
                continue
            key = " ".join(tokens[k][0] for k in span)
            concept_id = _fuzzy_concept(lex, key)
            if concept_id is not None:
                hit = _Found(i, span.stop, concept_id, "fuzzy")
                break
        if hit is not None:
            found.append(hit)
            i = hit.end
        else:
            i += 1
    return found


@functools.lru_cache(maxsize=8192)
def _fuzzy_concept(lex: _Lexicon, key: str) -> str | None:
    settings = lex.fuzzy
    if len(key) < settings.min_length:
        return None
    allowed = settings.long if len(key) >= settings.long_from else settings.short
    if " " in key:
        # Several words: one slip only, so "alcohol use" is never read as "alcohol abuse".
        allowed = min(allowed, 1)
    horizon = allowed + settings.margin - 1
    scored = []
    letters = Counter(key)
    for candidate, concept_id, candidate_letters in lex.fuzzy_terms.get(key[0], ()):
        if abs(len(candidate) - len(key)) > horizon:
            continue
        # Letters one has that the other lacks bound the edit distance from below.
        if max(
            sum((letters - candidate_letters).values()),
            sum((candidate_letters - letters).values()),
        ) > horizon:
            continue
        distance = edit_distance(key, candidate, horizon)
        if distance <= horizon:
            scored.append((distance, candidate, concept_id))
    if not scored:
        return None
    scored.sort()
    best_distance, best, best_concept = scored[0]
    if best_distance == 0 or best_distance > allowed:
        return None
    for distance, _other, concept_id in scored[1:]:
        if concept_id != best_concept and distance < best_distance + settings.margin:
            return None
    # Never read across a listed look-alike (hypertension / hypotension), as for medicines.
    limit = best_distance + settings.look_alike_margin
    for partner in lex.look_alikes.get(best, frozenset()):
        if edit_distance(key, partner, limit) < limit:
            return None
    return best_concept


def _word_count(tokens: list[tuple[str, str, int, int]], start: int, end: int) -> int:
    return sum(1 for k in range(start, end) if tokens[k][1] != "punct")


def _context_of(
    item: _Found,
    index: int,
    found: list[_Found],
    events: list[_Event],
    tokens: list[tuple[str, str, int, int]],
    lex: _Lexicon,
) -> ConditionContext:
    contexts: set[ConditionContext] = set()
    if item.code is not None:
        for prefix, context in lex.code_contexts:
            if item.code.startswith(prefix):
                contexts.add(context)
    contexts |= _nearest_forward(item, events, tokens)
    backward = _nearest_backward(item, index, found, events, tokens)
    if backward is not None:
        contexts.add(backward)
    if contexts == {"historical"} and _active_again(item, index, found, events, tokens, lex):
        return "present"
    for context in _CONTEXT_PRECEDENCE:
        if context in contexts:
            return context
    return "present"


def _boundary_between(tokens: list[tuple[str, str, int, int]], start: int, end: int) -> bool:
    return any(tokens[k][0] in _HARD_BOUNDARIES for k in range(start, end))


def _nearest_forward(
    item: _Found, events: list[_Event], tokens: list[tuple[str, str, int, int]]
) -> set[ConditionContext]:
    """Context of the nearest forward trigger, plus one directly before it ("denies any
    history of" is negated and historical: negation then wins by precedence)."""
    ended_historical = False
    found: set[ConditionContext] = set()
    reach = item.start
    for start, end, triggers, _pseudo, ends_all, ends_hist, _mod in reversed(events):
        if end > item.start:
            continue
        if _boundary_between(tokens, end, reach) or ends_all:
            break
        if found and _word_count(tokens, end, reach) > 1:
            break
        ended_historical = ended_historical or ends_hist
        hits = [
            t.context for t in triggers
            if t.direction == "forward"
            and not (t.context in ("historical", "family") and ended_historical)
            and _word_count(tokens, end, item.start if not found else reach) <= t.max_words
        ]
        if hits:
            found.add(hits[0])
            reach = start
        elif found:
            break
    return found


def _nearest_backward(
    item: _Found,
    index: int,
    found: list[_Found],
    events: list[_Event],
    tokens: list[tuple[str, str, int, int]],
) -> ConditionContext | None:
    next_concept = found[index + 1].start if index + 1 < len(found) else len(tokens)
    ended_historical = False
    for start, _end, triggers, _pseudo, ends_all, ends_hist, _mod in events:
        if start < item.end:
            continue
        if start >= next_concept or _boundary_between(tokens, item.end, start):
            return None
        for trigger in triggers:
            if trigger.direction != "backward":
                continue
            if trigger.context in ("historical", "family") and ended_historical:
                continue
            if _word_count(tokens, item.end, start) <= trigger.max_words:
                return trigger.context
        if ends_all:
            return None
        ended_historical = ended_historical or ends_hist
    return None


def _active_again(
    item: _Found,
    index: int,
    found: list[_Found],
    events: list[_Event],
    tokens: list[tuple[str, str, int, int]],
    lex: _Lexicon,
) -> bool:
    """True when words after a past condition say it is back ("relapsed", "now active")."""
    next_concept = found[index + 1].start if index + 1 < len(found) else len(tokens)
    for start, end, _triggers, _pseudo, ends_all, _ends_hist, _mod in events:
        if start < item.end:
            continue
        if start >= next_concept or ends_all or _boundary_between(tokens, item.end, start):
            return False
        if tuple(t for t, _k, _s, _e in tokens[start:end]) in lex.reactivation:
            return True
    return False


def _modifiers_of(
    item: _Found,
    index: int,
    found: list[_Found],
    events: list[_Event],
    tokens: list[tuple[str, str, int, int]],
    lex: _Lexicon,
) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    tags: list[str] = []
    pressure: tuple[int, int] | None = None
    for start, end, _triggers, _pseudo, _ends_all, _ends_hist, modifier in events:
        if modifier is None or _nearest_concept(start, end, found, tokens) != index:
            continue
        if modifier == "bp":
            systolic, diastolic = (int(x) for x in tokens[start][0].split("/"))
            if not 40 <= systolic <= 300 or not 20 <= diastolic <= 200:
                continue
            pressure = (systolic, diastolic)
            tags.append(_bp_tag(systolic, diastolic, lex))
            if tags[-1] == "severe":
                tags.append("uncontrolled")
        else:
            tags.append(modifier)
    return tuple(dict.fromkeys(tags)), pressure


def _bp_tag(systolic: int, diastolic: int, lex: _Lexicon) -> str:
    if systolic >= lex.severe_bp[0] or diastolic >= lex.severe_bp[1]:
        return "severe"
    if systolic >= lex.uncontrolled_bp[0] or diastolic >= lex.uncontrolled_bp[1]:
        return "uncontrolled"
    return "controlled"


def _nearest_concept(
    start: int, end: int, found: list[_Found], tokens: list[tuple[str, str, int, int]]
) -> int | None:
    """The condition a modifier at tokens [start, end) describes: the nearest in its clause."""
    best: tuple[int, int] | None = None
    for index, item in enumerate(found):
        if item.end <= start:
            lo, hi, distance = item.end, start, start - item.end
        else:
            lo, hi, distance = end, item.start, item.start - end + 1
        if _boundary_between(tokens, lo, hi):
            continue
        if best is None or distance < best[0]:
            best = (distance, index)
    return None if best is None else best[1]


# --------------------------------------------------------------------------- picker


@dataclass(frozen=True)
class ConditionSuggestion:
    """One problem-list picker entry: what to show and what to store.

    ``concept_id`` is the knowledge base concept the entry maps to (None for an ICD-10-CM
    code outside the vocabulary, which is stored and shown but raises no rule).
    """

    concept_id: str | None
    code: str | None
    display: str
    matched: str


def problem_list_suggestions(
    prefix: str, limit: int = 12, kb: KnowledgeBase | None = None
) -> tuple[ConditionSuggestion, ...]:
    """Picker suggestions: vocabulary concepts first (see :func:`condition_suggestions`),
    then ICD-10-CM codes from the full offline list, each mapped to a concept by code prefix
    when one covers it. Needs 2 or more characters (fewer gives nothing)."""
    from ketadesk.core.icd10cm import icd10cm_search

    kb = kb or load_knowledge_base()
    if len(prefix.strip()) < 2:
        return ()
    concepts = list(condition_suggestions(prefix, limit, kb))
    seen = {s.code for s in concepts}
    for entry in icd10cm_search(prefix, limit * 2):
        if len(concepts) >= limit:
            break
        if entry.code in seen:
            continue
        concept_id = _concept_for_code(entry.code, kb)
        concepts.append(
            ConditionSuggestion(
                concept_id=concept_id,
                code=entry.code,
                display=f"{entry.description} [{entry.code}]",
                matched=entry.description,
            )
        )
    return tuple(concepts[:limit])


def condition_suggestions(
    prefix: str, limit: int = 12, kb: KnowledgeBase | None = None
) -> tuple[ConditionSuggestion, ...]:
    """Picker suggestions for a typed prefix over names, synonyms, abbreviations and codes.

    Exact abbreviation and name-start matches come first, then word-start matches; each concept
    appears once. An ICD-10-CM prefix ("I71", "f33.1") matches the concept's codes.
    """
    kb = kb or load_knowledge_base()
    key = canonical_key(prefix)
    if not key:
        return ()
    return _suggestions_cached(kb, key, prefix.strip().upper(), limit)


@functools.lru_cache(maxsize=1024)
def _suggestions_cached(
    kb: KnowledgeBase, key: str, upper: str, limit: int
) -> tuple[ConditionSuggestion, ...]:
    scored: dict[str, tuple[int, int, str, str | None]] = {}
    code_like = re.fullmatch(r"[A-Z][0-9]{1,2}(?:\.[0-9A-Z]{0,4})?", upper) is not None
    for concept in kb.conditions.values():
        candidates: list[tuple[int, str, str | None]] = []
        for listed in concept.icd10:
            if code_like and (listed.startswith(upper) or upper.startswith(listed)):
                candidates.append((0, listed, upper if upper.startswith(listed) else listed))
        for abbreviation in concept.abbreviations:
            if canonical_key(abbreviation) == key:
                candidates.append((1, abbreviation.upper(), None))
        for term in (concept.name, *concept.synonyms, *concept.abbreviations):
            term_key = canonical_key(term)
            if term_key.startswith(key):
                candidates.append((2, term, None))
            elif f" {key}" in f" {term_key}":
                candidates.append((3, term, None))
        if candidates:
            rank, matched, typed_code = min(candidates, key=lambda c: (c[0], len(c[1])))
            code = typed_code or (concept.icd10[0] if concept.icd10 else None)
            scored[concept.concept_id] = (rank, len(matched), matched, code)
    ordered = sorted(scored.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))
    return tuple(
        ConditionSuggestion(
            concept_id=concept_id,
            code=code,
            display=_display(kb.conditions[concept_id].name, matched, code),
            matched=matched,
        )
        for concept_id, (_rank, _length, matched, code) in ordered[:limit]
    )


def _display(name: str, matched: str, code: str | None) -> str:
    plain = canonical_key(matched) in (canonical_key(name), canonical_key(code or ""))
    shown = name if plain else f"{name} ({matched})"
    return f"{shown} [{code}]" if code else shown
