from __future__ import annotations

from datetime import date

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.search_text import fold_for_search, parse_search_query


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zoë", "zoe"),
        ("Łukasiewicz", "lukasiewicz"),
        ("Zoë Ñúñez-Łukasiewicz", "zoe nunez lukasiewicz"),
        ("Straße", "strasse"),
        ("Ærøskøbing", "aeroskobing"),
        ("Œuvre", "oeuvre"),
        ("Đorđević", "dordevic"),
        ("ıspanak", "ispanak"),
        ("O’Brien", "obrien"),
        ("O'Brien", "obrien"),
        ("  Zyxwander   Quillon ", "zyxwander quillon"),
        ("Ǆemal", "dzemal"),
    ],
)
def test_fold_for_search(text: str, folded: str) -> None:
    assert fold_for_search(text) == folded


def test_fold_keeps_non_latin_scripts_searchable() -> None:
    assert fold_for_search("Ἀλέξανδρος") == "αλεξανδροσ"
    assert fold_for_search("Жанна") == "жанна"
    assert fold_for_search("山田") == "山田"


def test_typed_query_matches_stored_name_when_both_folded() -> None:
    stored = fold_for_search("Zoë Ñúñez-Łukasiewicz")
    query = parse_search_query("zoe lukas")
    assert all(any(word.startswith(t) for word in stored.split()) for t in query.name_terms)


@pytest.mark.parametrize("text", ["1980-02-01", "02/01/1980", "2/1/1980", " 1980-2-1 "])
def test_query_recognises_dob_in_both_formats(text: str) -> None:
    query = parse_search_query(text)
    assert query.dob == date(1980, 2, 1)
    assert query.name_terms == () and query.phone_digits is None


def test_query_recognises_mrn_and_prefixes() -> None:
    assert parse_search_query("kd-00000018").mrn_prefix == "KD-00000018"
    assert parse_search_query("KD0000").mrn_prefix == "KD-0000"
    assert parse_search_query("KD-").mrn_prefix == "KD-"
    # "kd" alone could be the start of a name.
    assert parse_search_query("kd").name_terms == ("kd",)


def test_query_recognises_phone() -> None:
    query = parse_search_query("(305) 555-0142")
    assert query.phone_digits == "3055550142"
    assert query.mrn_prefix is None and not query.digits_only
    assert parse_search_query("+1 305 555 0142").phone_digits == "3055550142"


def test_bare_digits_may_be_phone_or_mrn() -> None:
    query = parse_search_query("0000001")
    assert query.digits_only
    assert query.phone_digits == "0000001"
    assert query.mrn_prefix == "KD-0000001"


def test_mixed_query_combines_name_and_dob() -> None:
    query = parse_search_query("Zoë 02/01/1980")
    assert query.name_terms == ("zoe",)
    assert query.dob == date(1980, 2, 1)


def test_invalid_calendar_date_is_not_a_dob() -> None:
    query = parse_search_query("02/30/1980")
    assert query.dob is None


def test_empty_query() -> None:
    assert parse_search_query("   ").is_empty
    assert not parse_search_query("zo").is_empty


def test_overlong_query_is_refused() -> None:
    with pytest.raises(UserFacingError):
        parse_search_query("a" * 201)


@pytest.mark.parametrize(
    ("text", "dob", "prefix", "suffix", "phone"),
    [
        # Defect 18 of issue 13: MRNs without their prefix, by their last digits.
        ("836", None, None, "836", "836"),
        ("KD836", None, None, "836", None),
        ("kd-836", None, None, "836", None),
        ("KD-0000", None, "KD-0000", None, None),
        ("00008", None, "KD-00008", None, "00008"),
        # 1-2 digits: MRN endings only (every phone contains them).
        ("4", None, None, "4", None),
        ("42", None, None, "42", None),
        # Dates of birth as people type them.
        ("11291990", date(1990, 11, 29), "KD-11291990", None, "11291990"),
        ("11/29/90", date(1990, 11, 29), None, None, None),
        ("1/2/05", date(2005, 1, 2), None, None, None),
        ("11-29-1990", date(1990, 11, 29), None, None, None),
        ("13291990", None, "KD-13291990", None, "13291990"),  # no 13th month: digits only
        ("555-01", None, None, None, "55501"),
    ],
)
def test_search_forms(text, dob, prefix, suffix, phone) -> None:
    query = parse_search_query(text)
    assert (query.dob, query.mrn_prefix, query.mrn_suffix, query.phone_digits) == (
        dob,
        prefix,
        suffix,
        phone,
    )


def test_two_digit_year_is_never_in_the_future() -> None:
    from ketadesk.core.search_text import parse_search_date

    assert parse_search_date("01/01/30", today=date(2026, 12, 2)) == date(1930, 1, 1)
    assert parse_search_date("01/01/26", today=date(2026, 12, 2)) == date(2026, 1, 1)
