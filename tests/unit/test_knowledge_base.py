"""The shipped knowledge base loads, validates, and rejects unsourced or inconsistent rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ketadesk.core.knowledge_base import (
    SEVERITY_ORDER,
    KnowledgeBaseError,
    canonical_key,
    default_kb_dir,
    load_knowledge_base,
    load_knowledge_base_from,
)


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(default_kb_dir(), target)
    return target


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_shipped_kb_loads_with_version_and_is_cached() -> None:
    kb = load_knowledge_base()
    assert kb.version == json.loads((default_kb_dir() / "drug_rules.json").read_text())[
        "kb_version"
    ]
    assert load_knowledge_base() is kb


def test_at_least_400_names_are_recognised() -> None:
    assert load_knowledge_base().name_count >= 400


def test_every_rule_has_a_source_with_a_link_and_a_valid_severity() -> None:
    kb = load_knowledge_base()
    rules = [*kb.drug_rules, *(r for rs in kb.condition_rules.values() for r in rs)]
    rules += [*kb.bp_grades, kb.bp_controlled, kb.bp_not_recorded, *kb.age_rules]
    assert len(rules) == len(kb.all_rule_ids()) == len(set(kb.all_rule_ids()))
    for rule in rules:
        assert rule.sources, rule.rule_id
        assert rule.severity in SEVERITY_ORDER
        for source in rule.sources:
            assert source.link.startswith(("http://", "https://")), rule.rule_id
            assert source.section.strip()


def test_required_rule_families_are_covered() -> None:
    kb = load_knowledge_base()
    covered = set(kb.rules_by_generic)
    for generic in (
        "lorazepam", "zolpidem", "buprenorphine", "methadone", "naltrexone", "gabapentin",
        "alcohol", "phenobarbital", "diphenhydramine", "cyclobenzaprine", "quetiapine",
        "lamotrigine", "methylphenidate", "modafinil", "phenelzine", "selegiline",
        "pseudoephedrine", "levothyroxine", "theophylline", "aminophylline", "memantine",
        "clarithromycin", "ketoconazole", "ticlopidine", "clopidogrel", "carbamazepine",
        "st john's wort", "grapefruit", "rifampin",
    ):
        assert generic in covered, generic


def test_rule_without_sources_fails_validation(kb_copy: Path) -> None:
    _edit(kb_copy / "drug_rules.json", lambda d: d["rules"][0].pop("sources"))
    with pytest.raises(KnowledgeBaseError, match="sources"):
        load_knowledge_base_from(kb_copy)


def test_rule_with_empty_sources_fails_validation(kb_copy: Path) -> None:
    _edit(kb_copy / "condition_rules.json", lambda d: d["condition_rules"][0].update(sources=[]))
    with pytest.raises(KnowledgeBaseError, match=r"condition_rules\.json"):
        load_knowledge_base_from(kb_copy)


def test_unknown_source_reference_fails(kb_copy: Path) -> None:
    def change(d):  # type: ignore[no-untyped-def]
        d["rules"][1]["sources"] = [{"ref": "made_up_paper", "section": "1"}]

    _edit(kb_copy / "drug_rules.json", change)
    with pytest.raises(KnowledgeBaseError, match="made_up_paper"):
        load_knowledge_base_from(kb_copy)


def test_source_needs_url_or_doi(kb_copy: Path) -> None:
    _edit(kb_copy / "sources.json", lambda d: d["sources"]["spravato_label"].pop("url"))
    with pytest.raises(KnowledgeBaseError, match=r"sources\.json"):
        load_knowledge_base_from(kb_copy)


def test_severity_outside_the_four_levels_fails(kb_copy: Path) -> None:
    _edit(kb_copy / "drug_rules.json", lambda d: d["rules"][0].update(severity="severe"))
    with pytest.raises(KnowledgeBaseError, match="severe"):
        load_knowledge_base_from(kb_copy)


def test_member_without_a_name_entry_fails(kb_copy: Path) -> None:
    _edit(kb_copy / "drug_rules.json", lambda d: d["rules"][0]["members"].append("unobtainium"))
    with pytest.raises(KnowledgeBaseError, match="unobtainium"):
        load_knowledge_base_from(kb_copy)


def test_version_mismatch_between_files_fails(kb_copy: Path) -> None:
    _edit(kb_copy / "drug_names.json", lambda d: d.update(kb_version="1999.1.0"))
    with pytest.raises(KnowledgeBaseError, match="version"):
        load_knowledge_base_from(kb_copy)


def test_missing_file_and_bad_json_are_reported_plainly(kb_copy: Path) -> None:
    (kb_copy / "drug_names.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="not valid JSON"):
        load_knowledge_base_from(kb_copy)
    (kb_copy / "drug_names.json").unlink()
    with pytest.raises(KnowledgeBaseError, match="missing"):
        load_knowledge_base_from(kb_copy)


def test_condition_synonym_used_twice_fails(kb_copy: Path) -> None:
    def change(d):  # type: ignore[no-untyped-def]
        d["conditions"][1]["synonyms"].append("htn")

    _edit(kb_copy / "condition_rules.json", change)
    with pytest.raises(KnowledgeBaseError, match="htn"):
        load_knowledge_base_from(kb_copy)


def test_benzodiazepine_equivalents_have_a_source_and_cover_common_benzos() -> None:
    kb = load_knowledge_base()
    assert kb.benzodiazepine_sources
    assert kb.benzodiazepine_threshold_mg_per_day == 8
    for generic in ("alprazolam", "clonazepam", "diazepam", "lorazepam", "temazepam"):
        assert generic in kb.diazepam_equivalents_mg
    assert kb.diazepam_equivalents_mg["diazepam"] == 10


def test_canonical_key_folds_punctuation_and_case() -> None:
    assert canonical_key("St. John\u2019s Wort") == canonical_key("st johns wort")
    assert canonical_key("Claritin-D") == "claritin d"


def test_condition_vocabulary_is_wide_and_coded() -> None:
    kb = load_knowledge_base()
    assert len(kb.conditions) >= 80
    for concept in kb.conditions.values():
        assert concept.synonyms, concept.concept_id
        if concept.concept_id != "ketamine_hypersensitivity":  # an allergy has no own code
            assert concept.icd10, concept.concept_id
    with_abbreviations = [c for c in kb.conditions.values() if c.abbreviations]
    assert len(with_abbreviations) >= 50
    for concept in kb.conditions.values():
        if concept.parent is not None:
            assert concept.parent in kb.conditions


def test_rules_split_by_context_and_family_rules_stand_apart() -> None:
    kb = load_knowledge_base()
    sud = {r.rule_id: r.contexts for r in kb.condition_rules["substance_use_disorder"]}
    assert "historical" not in sud["COND-SUD"]
    assert sud["COND-SUD-REMISSION"] == frozenset({"historical"})
    for rules in kb.condition_rules.values():
        for rule in rules:
            assert "family" not in rule.contexts or rule.contexts == frozenset({"family"})
    assert [r.rule_id for r in kb.age_rules] == ["AGE-UNDER-18", "AGE-18-TO-24", "AGE-65-AND-OVER"]


def test_a_rule_mixing_family_and_patient_contexts_fails(kb_copy: Path) -> None:
    _edit(
        kb_copy / "condition_rules.json",
        lambda d: d["condition_rules"][0].update(contexts=["present", "family"]),
    )
    with pytest.raises(KnowledgeBaseError, match="family"):
        load_knowledge_base_from(kb_copy)


def test_an_ambiguous_abbreviation_cannot_also_be_a_term(kb_copy: Path) -> None:
    def change(d):  # type: ignore[no-untyped-def]
        d["conditions"][0]["abbreviations"].append("bpd")

    _edit(kb_copy / "condition_rules.json", change)
    with pytest.raises(KnowledgeBaseError, match="bpd"):
        load_knowledge_base_from(kb_copy)


def test_unknown_parent_and_reading_data_errors_are_named(kb_copy: Path) -> None:
    _edit(kb_copy / "condition_rules.json", lambda d: d["conditions"][0].update(parent="nope"))
    with pytest.raises(KnowledgeBaseError, match="nope"):
        load_knowledge_base_from(kb_copy)
    shutil.rmtree(kb_copy)
    shutil.copytree(default_kb_dir(), kb_copy)
    _edit(kb_copy / "condition_reading.json",
          lambda d: d["triggers"][0].update(context="sometimes"))
    with pytest.raises(KnowledgeBaseError, match=r"condition_reading\.json"):
        load_knowledge_base_from(kb_copy)
