"""The offline ICD-10-CM code list: lookups, search, and the vocabulary's codes exist in it."""

from __future__ import annotations

from ketadesk.core.icd10cm import icd10cm_code, icd10cm_search, load_icd10cm
from ketadesk.core.knowledge_base import load_knowledge_base


def test_code_list_loads_with_its_release() -> None:
    index = load_icd10cm()
    assert "2026" in index.version
    assert len(index.codes) > 40_000


def test_lookup_by_code_with_or_without_dot_and_seventh_character() -> None:
    entry = icd10cm_code("I71.4")
    assert entry is not None and "abdominal aortic aneurysm" in entry.description.lower()
    assert icd10cm_code("f331") == icd10cm_code("F33.1")
    seventh = icd10cm_code("S06.9X0A")
    assert seventh is not None and seventh.code == "S06.9X0"
    assert icd10cm_code("Q99.99") is None


def test_search_by_code_prefix_and_by_words() -> None:
    by_code = icd10cm_search("I71")
    assert by_code[0].code == "I71"
    assert all(c.code.startswith("I71") for c in by_code)
    words = icd10cm_search("schizoaff bipolar")
    assert any(c.code.startswith("F25") for c in words)
    assert icd10cm_search("") == ()


def test_every_code_in_the_condition_vocabulary_is_a_listed_code() -> None:
    kb = load_knowledge_base()
    missing = [
        (concept.concept_id, code)
        for concept in kb.conditions.values()
        for code in concept.icd10
        if icd10cm_code(code) is None
    ]
    assert missing == []


def test_problem_list_picker_puts_vocabulary_first_then_codes() -> None:
    from ketadesk.core.condition_reading import problem_list_suggestions

    found = problem_list_suggestions("schizoaff", limit=6)
    assert found[0].concept_id == "psychosis"
    coded = [s for s in found if s.concept_id is not None and s.code and s.code.startswith("F25")]
    assert coded, found
    outside = problem_list_suggestions("cholera", limit=3)
    assert outside and outside[0].concept_id is None and outside[0].code == "A00"
    assert problem_list_suggestions("a") == ()
