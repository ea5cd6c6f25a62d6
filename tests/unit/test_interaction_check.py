"""The checker: every rule family fires, nothing unread is dropped, BP grading, benzo load."""

from __future__ import annotations

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.interaction_check import (
    CheckRequest,
    Vitals,
    blood_pressure_grade,
    check_patient,
    diazepam_equivalent_mg_per_day,
    read_condition,
    review_fingerprint,
)
from ketadesk.core.interaction_check_json import parse_check_request, result_to_json
from ketadesk.core.knowledge_base import SEVERITY_ORDER, load_knowledge_base


def _flags(meds=(), conditions=(), vitals=None, pregnant=False):  # type: ignore[no-untyped-def]
    return check_patient(list(meds), list(conditions), vitals, pregnant).flags


def _ids(flags) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule_id for f in flags}


@pytest.mark.parametrize(
    ("line", "rule_id", "severity"),
    [
        ("Ambien 10 mg qhs", "DRUG-ZDRUG", "moderate"),
        ("Percocet 5/325 prn", "DRUG-OPIOID", "major"),
        ("Suboxone 8/2 mg daily", "DRUG-OPIOID", "major"),
        ("methadone 80 mg daily", "DRUG-OPIOID", "major"),
        ("Vivitrol 380 mg monthly", "DRUG-NALTREXONE", "moderate"),
        ("gabapentin 300 mg tid", "DRUG-GABAPENTINOID", "moderate"),
        ("alcohol 2 drinks nightly", "DRUG-ALCOHOL", "major"),
        ("butalbital", "DRUG-BARBITURATE", "major"),
        ("Benadryl 25 mg at bedtime", "DRUG-SEDATING-ANTIHISTAMINE", "moderate"),
        ("Flexeril 10 mg", "DRUG-MUSCLE-RELAXANT", "moderate"),
        ("Seroquel 50 mg qhs", "DRUG-ANTIPSYCHOTIC", "moderate"),
        ("Xyrem", "DRUG-OTHER-CNS-DEPRESSANT", "moderate"),
        ("Lamictal 200 mg daily", "DRUG-LAMOTRIGINE", "minor"),
        ("Vyvanse 40 mg qam", "DRUG-PSYCHOSTIMULANT", "moderate"),
        ("Provigil 200 mg", "DRUG-PSYCHOSTIMULANT", "moderate"),
        ("Nardil 15 mg tid", "DRUG-MAOI", "major"),
        ("Emsam 6 mg/24 hr patch", "DRUG-MAOI", "major"),
        ("Sudafed 60 mg", "DRUG-SYMPATHOMIMETIC", "moderate"),
        ("Synthroid 88 mcg daily", "DRUG-THYROID-HORMONE", "moderate"),
        ("theophylline 300 mg bid", "DRUG-THEOPHYLLINE", "major"),
        ("aminophylline", "DRUG-THEOPHYLLINE", "major"),
        ("Namenda 10 mg bid", "DRUG-NMDA-ANTAGONIST", "moderate"),
        ("Biaxin 500 mg bid", "DRUG-CYP3A4-INHIBITOR", "moderate"),
        ("ketoconazole 200 mg", "DRUG-CYP3A4-INHIBITOR", "moderate"),
        ("grapefruit juice daily", "DRUG-CYP3A4-INHIBITOR", "moderate"),
        ("ticlopidine 250 mg bid", "DRUG-CYP2B6-INHIBITOR-STRONG", "moderate"),
        ("Plavix 75 mg", "DRUG-CYP2B6-INHIBITOR-OTHER", "minor"),
        ("Tegretol 200 mg bid", "DRUG-CYP-INDUCER", "moderate"),
        ("St John's wort 300 mg tid", "DRUG-CYP-INDUCER", "moderate"),
        ("rifampicin 600 mg", "DRUG-CYP-INDUCER", "moderate"),
        ("Xanax 0.25 mg at bedtime", "DRUG-BENZODIAZEPINE", "moderate"),
    ],
)
def test_every_drug_rule_family_fires(line: str, rule_id: str, severity: str) -> None:
    flags = [f for f in _flags([line]) if f.rule_id == rule_id]
    assert len(flags) == 1
    flag = flags[0]
    assert flag.severity == severity
    assert flag.entered_as == line
    assert flag.drug is not None
    assert flag.sources
    assert flag.kind == "drug"


def test_phenobarbital_raises_both_depressant_and_inducer_flags() -> None:
    assert {"DRUG-BARBITURATE", "DRUG-CYP-INDUCER"} <= _ids(_flags(["phenobarbital 60 mg"]))


def test_combination_product_flags_each_interacting_ingredient() -> None:
    flags = _flags(["Contrave 8/90 bid", "Nyquil at bedtime"])
    drugs = {(f.rule_id, f.drug) for f in flags}
    assert ("DRUG-NALTREXONE", "naltrexone") in drugs
    assert ("DRUG-NMDA-ANTAGONIST", "dextromethorphan") in drugs
    assert ("DRUG-SEDATING-ANTIHISTAMINE", "doxylamine") in drugs
    assert not any(f.drug in ("bupropion", "acetaminophen") for f in flags)


def test_caffeine_in_a_combination_is_recognised_but_not_flagged() -> None:
    result = check_patient(["Fioricet 1 tab prn headache"], [], None, False)
    assert result.read_as[0].generics == ("butalbital", "acetaminophen", "caffeine")
    assert {f.drug for f in result.flags} == {"butalbital"}


@pytest.mark.parametrize(
    "line",
    ["sertraline 100 mg daily", "Lexapro 10 mg", "Cymbalta 60 mg", "Effexor XR 150 mg",
     "Wellbutrin XL 300 mg", "Lipitor 40 mg", "metformin 500 mg bid", "lisinopril 10 mg",
     "melatonin 3 mg", "Celebrex 200 mg", "hydralazine 25 mg tid", "clonidine 0.1 mg bid",
     "azithromycin 250 mg", "omeprazole 20 mg"],
)
def test_recognised_medications_without_a_sourced_interaction_raise_no_flag(line: str) -> None:
    result = check_patient([line], [], None, False)
    assert result.flags == ()
    assert result.unrecognized == ()
    assert [r.entered_as for r in result.read_as] == [line]


def test_unknown_medications_and_conditions_are_listed_as_not_checked() -> None:
    result = check_patient(
        ["foobarium 10 mg", "Ativan 1 mg", "  "], ["weird rash", "no history of stroke", "HTN"],
        None, False,
    )
    # A denied condition is read (as negated), so it is not "not checked" and raises nothing.
    assert result.unrecognized == ("foobarium 10 mg", "weird rash")
    assert [r.entered_as for r in result.read_as] == ["Ativan 1 mg"]
    assert not [f for f in result.flags if f.rule_id == "COND-STROKE"]


def test_flags_are_sorted_most_severe_first() -> None:
    flags = _flags(
        ["Lamictal 100 mg", "Xanax 0.25 mg qhs", "Percocet 5/325 prn"],
        ["abdominal aortic aneurysm"],
    )
    ranks = [SEVERITY_ORDER.index(f.severity) for f in flags]
    assert ranks == sorted(ranks)
    assert flags[0].severity == "contraindicated"
    assert flags[-1].severity == "minor"


@pytest.mark.parametrize(
    ("condition", "rule_id", "severity"),
    [
        ("abdominal aortic aneurysm", "COND-ANEURYSM", "contraindicated"),
        ("I71.4", "COND-ANEURYSM", "contraindicated"),
        ("AVM", "COND-AVM", "contraindicated"),
        ("history of intracerebral hemorrhage", "COND-ICH", "contraindicated"),
        ("I61.9", "COND-ICH", "contraindicated"),
        ("schizophrenia", "COND-PSYCHOSIS", "major"),
        ("F20.9", "COND-PSYCHOSIS", "major"),
        ("alcohol use disorder", "COND-SUD", "major"),
        ("pregnant", "COND-PREGNANCY", "contraindicated"),
        ("breastfeeding", "COND-BREASTFEEDING", "moderate"),
        ("decompensated cirrhosis", "COND-HEPATIC-SEVERE", "major"),
        ("Child-Pugh B", "COND-HEPATIC-OTHER", "moderate"),
        ("idiopathic intracranial hypertension", "COND-ICP", "major"),
        ("untreated glaucoma", "COND-IOP", "major"),
        ("unstable angina", "COND-CARDIAC-UNSTABLE", "major"),
        ("atrial fibrillation", "COND-CARDIAC-STABLE", "moderate"),
        ("Graves' disease", "COND-HYPERTHYROID", "major"),
        ("E05.00", "COND-HYPERTHYROID", "major"),
        ("hx of TIA", "COND-STROKE", "major"),
        ("interstitial cystitis", "COND-CYSTITIS", "moderate"),
    ],
)
def test_condition_rules_fire_through_synonyms_and_icd10(
    condition: str, rule_id: str, severity: str
) -> None:
    flags = [f for f in _flags(conditions=[condition]) if f.rule_id == rule_id]
    assert len(flags) == 1
    assert flags[0].severity == severity
    assert flags[0].drug is None
    assert flags[0].entered_as == condition


def test_recognised_condition_without_rule_is_read_but_not_flagged() -> None:
    result = check_patient([], ["major depressive disorder", "T2DM", "hypothyroidism"], None, False)
    assert result.flags == ()
    assert result.unrecognized == ()
    assert all(c.concept_id for c in result.conditions_read)


def test_negated_condition_is_read_as_negated_and_raises_no_flag() -> None:
    stroke = read_condition("no history of stroke")
    assert stroke.concept_id == "ischaemic_stroke_tia" and stroke.context == "negated"
    assert stroke.read_as_text == "read as: no ischaemic stroke or TIA (negated)"
    assert read_condition("denies AVM").context == "negated"
    assert _flags(conditions=["denies AVM", "no history of stroke"]) == ()


def test_pregnant_flag_fires_once_even_with_a_pregnancy_condition() -> None:
    flags = [f for f in _flags(conditions=["pregnancy"], pregnant=True)
             if f.rule_id == "COND-PREGNANCY"]
    assert len(flags) == 1
    assert flags[0].entered_as == "pregnant: yes; pregnancy"
    assert not [f for f in _flags(pregnant=False) if f.rule_id == "COND-PREGNANCY"]
    assert [f.severity for f in _flags(pregnant=True)] == ["contraindicated"]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (140, 90, None),
        (141, 80, "VITAL-BP-UNCONTROLLED"),
        (130, 91, "VITAL-BP-UNCONTROLLED"),
        (180, 120, "VITAL-BP-UNCONTROLLED"),
        (181, 100, "VITAL-BP-SEVERE"),
        (170, 121, "VITAL-BP-SEVERE"),
        (118, 76, None),
    ],
)
def test_blood_pressure_grading_at_the_boundaries(
    systolic: int, diastolic: int, expected: str | None
) -> None:
    grade = blood_pressure_grade(systolic, diastolic)
    assert (grade.rule_id if grade else None) == expected
    flags = _flags(vitals=Vitals(systolic=systolic, diastolic=diastolic))
    assert _ids(flags) == ({expected} if expected else set())


def test_hypertension_is_graded_by_the_latest_reading() -> None:
    controlled = _flags(conditions=["HTN"], vitals=Vitals(systolic=138, diastolic=88))
    assert [(f.rule_id, f.severity) for f in controlled] == [("VITAL-BP-CONTROLLED", "moderate")]
    assert "138/88" in controlled[0].title
    uncontrolled = _flags(conditions=["hypertension"], vitals=Vitals(systolic=150, diastolic=95))
    assert [(f.rule_id, f.severity) for f in uncontrolled] == [("VITAL-BP-UNCONTROLLED", "major")]
    crisis = _flags(conditions=["I10"], vitals=Vitals(systolic=190, diastolic=100))
    assert [(f.rule_id, f.severity) for f in crisis] == [("VITAL-BP-SEVERE", "contraindicated")]
    unknown = _flags(conditions=["high blood pressure"])
    assert [(f.rule_id, f.severity) for f in unknown] == [("VITAL-BP-NOT-RECORDED", "major")]


def test_implausible_vitals_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(UserFacingError, match="Systolic"):
        Vitals(systolic=400, diastolic=80)
    with pytest.raises(UserFacingError, match="higher than diastolic"):
        Vitals(systolic=80, diastolic=90)


def test_diazepam_equivalent_arithmetic() -> None:
    assert diazepam_equivalent_mg_per_day("clonazepam", 0.5, 2) == pytest.approx(20.0)
    assert diazepam_equivalent_mg_per_day("lorazepam", 1, 1) == pytest.approx(10.0)
    assert diazepam_equivalent_mg_per_day("alprazolam", 0.25, 3) == pytest.approx(15.0)
    assert diazepam_equivalent_mg_per_day("diazepam", 2, 4) == pytest.approx(8.0)
    with pytest.raises(UserFacingError):
        diazepam_equivalent_mg_per_day("sertraline", 50, 1)


def test_benzodiazepine_load_above_threshold_escalates_and_is_shown() -> None:
    result = check_patient(["Klonopin 0.5 mg bid", "Ativan 0.5 mg at bedtime"], [], None, False)
    load = result.benzodiazepine_load
    assert load is not None
    assert load.total_mg_per_day == pytest.approx(25.0)
    assert load.is_above_threshold and load.is_complete
    benzo = [f for f in result.flags if f.rule_id == "DRUG-BENZODIAZEPINE"]
    assert len(benzo) == 2
    assert all(f.severity == "major" for f in benzo)
    assert all("25 mg/day diazepam-equivalent" in f.title for f in benzo)
    assert all("above 8 mg/day" in f.title for f in benzo)


def test_benzodiazepine_load_at_threshold_stays_moderate() -> None:
    result = check_patient(["diazepam 2 mg qid"], [], None, False)
    assert result.benzodiazepine_load is not None
    assert result.benzodiazepine_load.total_mg_per_day == pytest.approx(8.0)
    flag = next(f for f in result.flags if f.rule_id == "DRUG-BENZODIAZEPINE")
    assert flag.severity == "moderate"
    assert "not above 8 mg/day" in flag.title


def test_benzodiazepine_without_frequency_is_named_as_not_counted() -> None:
    result = check_patient(["clonazepan 0.5", "Xanax prn"], [], None, False)
    load = result.benzodiazepine_load
    assert load is not None and not load.is_complete
    assert load.total_mg_per_day == 0
    flag = next(f for f in result.flags if f.entered_as == "clonazepan 0.5")
    assert "frequency not stated" in flag.title
    assert "dose not stated" in flag.title
    assert flag.severity == "moderate"


def test_result_json_matches_the_headless_contract_exactly() -> None:
    result = check_patient(["Ativan 1 mg qhs", "lorazapam", "foo"], ["AVM"], None, False)
    out = result_to_json(result)
    assert set(out) == {"flags", "unrecognized", "read_as", "kb_version"}
    assert out["kb_version"] == load_knowledge_base().version
    for flag in out["flags"]:
        assert set(flag) == {"severity", "drug", "class", "title", "management", "entered_as",
                             "sources"}
        assert flag["sources"] and all(s["url"].startswith("http") for s in flag["sources"])
    assert out["unrecognized"] == ["foo"]
    assert out["read_as"] == [
        {"entered_as": "Ativan 1 mg qhs", "generic": ["lorazepam"], "fuzzy": False,
         "kind": "medication", "route": "systemic"},
        {"entered_as": "lorazapam", "generic": ["lorazepam"], "fuzzy": True,
         "kind": "medication", "route": "systemic"},
        {"entered_as": "AVM", "generic": [], "fuzzy": False, "kind": "condition",
         "concept": "arteriovenous_malformation", "code": "Q28.2", "context": "present",
         "text": "Arteriovenous malformation", "unread": []},
    ]
    condition_flag = next(f for f in out["flags"] if f["drug"] is None)
    assert condition_flag["class"] == "Vascular"


def test_parse_check_request_accepts_the_contract_and_rejects_bad_shapes() -> None:
    request = parse_check_request(
        {"medications": ["a"], "conditions": [], "pregnant": True,
         "vitals": {"systolic": 120, "diastolic": 80, "heart_rate": 70, "weight_kg": 70.5}}
    )
    assert request == CheckRequest(("a",), (), Vitals(120, 80, 70, 70.5), True)
    assert parse_check_request({}) == CheckRequest()
    for bad, message in (
        ([], "JSON object"),
        ({"medications": "Ativan"}, "list of text"),
        ({"medication": []}, "unknown field"),
        ({"pregnant": "yes"}, "true or false"),
        ({"vitals": {"systolic": "150"}}, "whole number"),
        ({"vitals": {"systolic": True}}, "whole number"),
        ({"vitals": {"bp": 1}}, "unknown field"),
    ):
        with pytest.raises(UserFacingError, match=message):
            parse_check_request(bad)


def test_review_fingerprint_changes_with_any_input_but_not_with_order_or_spacing() -> None:
    base = review_fingerprint(["Ativan 1 mg", "Zoloft 50"], ["HTN"], Vitals(130, 80), False, "v1")
    same = review_fingerprint(["zoloft 50", " ativan  1 mg", ""], ["htn"], Vitals(130, 80),
                              False, "v1")
    assert base == same and len(base) == 64
    assert base != review_fingerprint(["Ativan 2 mg", "Zoloft 50"], ["HTN"], Vitals(130, 80),
                                      False, "v1")
    assert base != review_fingerprint(["Ativan 1 mg", "Zoloft 50"], [], Vitals(130, 80),
                                      False, "v1")
    assert base != review_fingerprint(["Ativan 1 mg", "Zoloft 50"], ["HTN"], Vitals(131, 80),
                                      False, "v1")
    assert base != review_fingerprint(["Ativan 1 mg", "Zoloft 50"], ["HTN"], Vitals(130, 80),
                                      True, "v1")
    assert base != review_fingerprint(["Ativan 1 mg", "Zoloft 50"], ["HTN"], Vitals(130, 80),
                                      False, "v2")


def test_carry_forward_key_tracks_drug_dose_and_frequency() -> None:
    one = _flags(["Klonopin 0.5 mg bid"])[0].carry_forward_key
    same = _flags(["clonazepam 0.5 mg twice daily"])[0].carry_forward_key
    changed = _flags(["clonazepam 1 mg bid"])[0].carry_forward_key
    assert one == same
    assert one != changed


@pytest.mark.parametrize(
    ("line", "route", "flagged"),
    [
        ("ketoconazole 2% shampoo twice weekly", "local", False),
        ("ketoconazole cream bid", "local", False),
        ("topical ketoconazole", "local", False),
        ("ketoconazole 200 mg daily", "systemic", True),
        ("diphenhydramine cream prn itch", "local", False),
        ("Benadryl 25 mg qhs", "systemic", True),
        ("Emsam 6 mg/24 hr patch", "systemic", True),
        ("fentanyl 25 mcg/hr patch q72h", "systemic", True),
        ("Butrans 10 mcg/hr patch weekly", "systemic", True),
    ],
)
def test_route_decides_whether_the_systemic_interaction_applies(
    line: str, route: str, flagged: bool
) -> None:
    result = check_patient([line], [], None, False)
    assert result.unrecognized == ()
    assert result.read_as[0].route == route
    assert bool([f for f in result.flags if f.kind == "drug"]) is flagged


def test_look_alike_of_an_interacting_drug_is_not_given_its_interaction() -> None:
    # ketorolac eye drops must not be read as ketamine, nor hydralazine as hydroxyzine.
    result = check_patient(["ketorolac 0.5% eye drops", "hydralazine 25 mg tid"], [], None,
                           False)
    assert not [f for f in result.flags if f.drug in ("ketamine", "hydroxyzine")]


def test_combination_whose_ingredients_share_a_class_gives_one_finding() -> None:
    flags = _flags(["Adderall XR 20 mg qam"])
    stimulant = [f for f in flags if f.rule_id == "DRUG-PSYCHOSTIMULANT"]
    assert len(stimulant) == 1
    assert stimulant[0].drug == "amphetamine + dextroamphetamine"


def test_as_needed_benzodiazepine_load_is_worded_as_a_maximum_or_not_stated() -> None:
    capped = check_patient(["Xanax 0.5 mg prn max 3/day"], [], None, False)
    assert capped.benzodiazepine_load is not None
    summary = capped.benzodiazepine_load.summary()
    assert summary.startswith("up to 30 mg/day diazepam-equivalent if taken as often as allowed")
    open_ended = check_patient(["Xanax 0.5 mg prn"], [], None, False)
    assert open_ended.benzodiazepine_load is not None
    text = open_ended.benzodiazepine_load.summary()
    assert "as needed, amount not stated" in text
    assert "at least 0" not in text and "0 mg/day" not in text


def test_request_accepts_age_or_date_of_birth() -> None:
    from datetime import date

    assert parse_check_request({"age_years": 70}).age_years == 70
    born = parse_check_request({"dob": "2009-06-30"}, today=date(2026, 6, 29))
    assert born.age_years == 16
    for bad, message in (
        ({"age_years": "70"}, "age_years"),
        ({"age_years": 200}, "age_years"),
        ({"dob": "30/06/2009"}, "YYYY-MM-DD"),
        ({"dob": "2009-06-30", "age_years": 16}, "not both"),
        ({"dob": "2999-01-01"}, "future"),
    ):
        with pytest.raises(UserFacingError, match=message):
            parse_check_request(bad, today=date(2026, 6, 29))


def test_fingerprint_follows_the_age_band_not_the_age() -> None:
    from ketadesk.core.interaction_check import age_band

    base = review_fingerprint(["Ativan 1 mg"], ["HTN"], None, False, "v1")
    assert base == review_fingerprint(["Ativan 1 mg"], ["HTN"], None, False, "v1", None)
    assert age_band(None) is None
    assert age_band(40) == age_band(50) == "adult"
    assert age_band(70) == "AGE-65-AND-OVER"
    forty = review_fingerprint(["Ativan 1 mg"], ["HTN"], None, False, "v1", age_band(40))
    fifty = review_fingerprint(["Ativan 1 mg"], ["HTN"], None, False, "v1", age_band(50))
    seventy = review_fingerprint(["Ativan 1 mg"], ["HTN"], None, False, "v1", age_band(70))
    assert forty == fifty != seventy != base
