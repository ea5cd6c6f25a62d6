"""Reading typed medication lines: brands, misspellings, look-alike traps, doses, combos."""

from __future__ import annotations

import pytest

from ketadesk.core.knowledge_base import load_knowledge_base
from ketadesk.core.medication_names import edit_distance, fuzzy_name_match, read_medication_line


@pytest.mark.parametrize(
    ("line", "generics"),
    [
        ("Ativan 1 mg at bedtime", ("lorazepam",)),
        ("Xanax", ("alprazolam",)),
        ("KLONOPIN 0.5mg", ("clonazepam",)),
        ("Ritalin LA 20mg qam", ("methylphenidate",)),
        ("Emsam 6 mg/24 hr patch", ("selegiline",)),
        ("Synthroid 88 mcg daily", ("levothyroxine",)),
        ("Suboxone 8/2 mg daily", ("buprenorphine", "naloxone")),
        ("St. John's Wort 300 mg tid", ("st john's wort",)),
        ("Zoloft 100 mg", ("sertraline",)),
        ("Lipitor 40", ("atorvastatin",)),
        ("metformin 500 mg bid", ("metformin",)),
        ("melatonin 3 mg OTC", ("melatonin",)),
        ("Tylenol #3", ("acetaminophen", "codeine")),
    ],
)
def test_brand_and_generic_names_resolve(line: str, generics: tuple[str, ...]) -> None:
    reading = read_medication_line(line)
    assert reading.generics == generics
    assert not reading.fuzzy
    assert reading.entered_as == line


@pytest.mark.parametrize(
    ("line", "generics"),
    [
        ("Percocet 5/325 prn", ("oxycodone", "acetaminophen")),
        ("Fioricet 1 tab prn", ("butalbital", "acetaminophen", "caffeine")),
        ("Contrave 8/90 bid", ("naltrexone", "bupropion")),
        ("Nyquil at bedtime", ("acetaminophen", "dextromethorphan", "doxylamine")),
        ("Claritin-D", ("loratadine", "pseudoephedrine")),
        ("Auvelity", ("dextromethorphan", "bupropion")),
    ],
)
def test_combination_products_list_every_ingredient(line: str, generics: tuple[str, ...]) -> None:
    assert read_medication_line(line).generics == generics


def test_combination_strengths_are_parsed_per_ingredient() -> None:
    reading = read_medication_line("Percocet 10/325 mg q6h prn")
    assert reading.strengths_mg == (10.0, 325.0)
    assert reading.dose_mg is None
    assert reading.frequency_per_day == 4.0
    assert reading.as_needed


@pytest.mark.parametrize(
    ("typed", "generic"),
    [
        ("clonazepan 0.5", "clonazepam"),
        ("lorazapam 1 mg", "lorazepam"),
        ("hydroxizine 25 mg", "hydroxyzine"),
        ("sertralin 50", "sertraline"),
        ("seroqel 25 mg", "quetiapine"),
        ("wellbutrim 150 mg", "bupropion"),
    ],
)
def test_unambiguous_misspellings_are_read_and_marked_fuzzy(typed: str, generic: str) -> None:
    reading = read_medication_line(typed)
    assert generic in reading.generics
    assert reading.fuzzy


@pytest.mark.parametrize(
    ("typed", "must_not_be"),
    [
        ("hydroxyzine", "hydralazine"),
        ("hydralazine", "hydroxyzine"),
        ("clonidine 0.1 mg bid", "clonazepam"),
        ("clonazepam 0.5 mg", "clonidine"),
        ("Celexa 20 mg", "celecoxib"),
        ("Celebrex 200 mg", "citalopram"),
        ("clonadine 0.1", "clonazepam"),
        ("celexr", "celecoxib"),
        ("celebrexa", "citalopram"),
    ],
)
def test_look_alike_names_are_never_merged(typed: str, must_not_be: str) -> None:
    assert must_not_be not in read_medication_line(typed).generics


@pytest.mark.parametrize(
    "typed", ["ketorolac 10 mg", "ketoconazole", "ketoprofen", "ketotifen drops", "ketamax",
              "keto", "ketones", "ketorolak", "ketoconazol", "ketosis"],
)
def test_nothing_that_merely_starts_with_ket_is_ketamine(typed: str) -> None:
    assert "ketamine" not in read_medication_line(typed).generics


def test_look_alike_partners_are_read_exactly() -> None:
    assert read_medication_line("Celexa").generics == ("citalopram",)
    assert read_medication_line("Celebrex").generics == ("celecoxib",)
    assert read_medication_line("clonidine").generics == ("clonidine",)
    assert read_medication_line("hydralazine").generics == ("hydralazine",)


def test_unknown_names_are_not_recognised() -> None:
    for typed in ("foobarium 10 mg", "xq", "", "my heart pill", "5 mg"):
        reading = read_medication_line(typed)
        assert not reading.is_recognized
        assert reading.generics == ()


def test_misspelling_near_a_listed_look_alike_is_refused() -> None:
    # "adderal" is one edit from Adderall but only two from Inderal (a listed confusion pair).
    assert read_medication_line("adderal 10 mg").generics == ()
    assert read_medication_line("Adderall 10 mg").generics == ("amphetamine", "dextroamphetamine")


def test_ambiguous_misspelling_is_refused() -> None:
    kb = load_knowledge_base()
    # "clonadine" is one edit from clonidine but two from clozapine: too close to call.
    assert fuzzy_name_match("clonadine", kb) is None


@pytest.mark.parametrize(
    ("line", "dose_mg", "per_day", "as_needed"),
    [
        ("Ativan 1 mg at bedtime", 1.0, 1.0, False),
        ("Klonopin 0.5mg BID", 0.5, 2.0, False),
        ("Xanax 0.25 mg t.i.d. p.r.n.", 0.25, 3.0, True),
        ("lorazepam 0.5-1 mg q8h prn", 1.0, 3.0, True),
        ("diazepam 5 mg four times a day", 5.0, 4.0, False),
        ("valium 5 mg 2x/day", 5.0, 2.0, False),
        ("Ritalin LA 20mg qam", 20.0, 1.0, False),
        ("temazepam 15 mg qhs", 15.0, 1.0, False),
        ("clonazepam 1 mg every other day", 1.0, 0.5, False),
        ("alprazolam 1 mg prn", 1.0, None, True),
        ("Synthroid 88 mcg daily", 0.088, 1.0, False),
        ("gabapentin 1.2 g tid", 1200.0, 3.0, False),
        ("diazepam 2 mg q6h", 2.0, 4.0, False),
    ],
)
def test_dose_and_frequency_parsing(
    line: str, dose_mg: float, per_day: float | None, as_needed: bool
) -> None:
    reading = read_medication_line(line)
    assert reading.dose_mg == pytest.approx(dose_mg)
    assert reading.frequency_per_day == (None if per_day is None else pytest.approx(per_day))
    assert reading.as_needed is as_needed


def test_number_without_unit_is_taken_as_mg_and_marked_assumed() -> None:
    reading = read_medication_line("clonazepan 0.5")
    assert reading.dose_mg == 0.5
    assert reading.unit == "mg"
    assert reading.unit_assumed
    assert reading.frequency_per_day is None
    assert reading.max_daily_dose_mg is None


def test_non_mass_units_give_no_mg_dose() -> None:
    reading = read_medication_line("insulin glargine 20 units at bedtime")
    assert reading.generics == ("insulin glargine",)
    assert reading.dose_mg is None
    assert reading.unit == "units"


def test_edit_distance_counts_transpositions_and_stops_at_limit() -> None:
    assert edit_distance("clonazepam", "clonazpeam", 3) == 1
    assert edit_distance("abc", "abc", 0) == 0
    assert edit_distance("hydroxyzine", "hydralazine", 1) == 2
