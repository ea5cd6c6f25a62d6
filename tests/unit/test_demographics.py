from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from ketadesk.core.demographics import (
    MINOR_CONFIRM_MESSAGE,
    OUT_OF_AREA_MESSAGE,
    PatientDemographics,
    age_in_years,
    blocking_problems,
    canonical_county,
    contact_name_problem,
    counties_for_state,
    normalise_demographics,
    normalise_phone,
    parse_date_input,
    parse_sex,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError

TODAY = date(2026, 3, 15)


def make_draft(**changes: object) -> PatientDemographics:
    draft = PatientDemographics(
        first_name="Zoë",
        last_name="Ñúñez-Łukasiewicz",
        dob=date(1980, 2, 1),
        sex="female",
        state="FL",
        county="Miami-Dade",
        phone="305.555.0142",
        email="zoe.nunez@example.org",
        address_line1="12 Quillon Way",
        city="Coral Gables",
        zip="33134",
        emergency_contact_name="Zyxwander Quillon",
        emergency_contact_phone="(305) 555-0199",
        sitter_name="Ysolde Brackwater",
        sitter_phone="305-555-0177",
    )
    return replace(draft, **changes)  # type: ignore[arg-type]


def fields(problems: list) -> set[str]:  # type: ignore[type-arg]
    return {p.field for p in problems}


def test_valid_draft_has_no_problems() -> None:
    assert validate_demographics(make_draft(), TODAY) == []


def test_counties_file_has_every_county() -> None:
    assert len(counties_for_state("FL")) == 67
    assert len(counties_for_state("NJ")) == 21
    assert {"Miami-Dade", "St. Johns", "St. Lucie", "DeSoto", "Indian River"} <= set(
        counties_for_state("FL")
    )
    assert {"Cape May", "Hunterdon", "Union"} <= set(counties_for_state("NJ"))
    assert counties_for_state("GA") == ()


@pytest.mark.parametrize(
    ("state", "typed", "official"),
    [
        ("FL", "miami dade", "Miami-Dade"),
        ("FL", "Miami-Dade County", "Miami-Dade"),
        ("FL", "Saint Johns", "St. Johns"),
        ("FL", "st johns county", "St. Johns"),
        ("FL", "ST. LUCIE", "St. Lucie"),
        ("FL", "De Soto", "DeSoto"),
        ("FL", "desoto", "DeSoto"),
        ("FL", "palm beach", "Palm Beach"),
        ("NJ", "cape may county", "Cape May"),
        ("NJ", "Union", "Union"),
        ("FL", "Union", "Union"),
    ],
)
def test_county_variants(state: str, typed: str, official: str) -> None:
    assert canonical_county(state, typed) == official


@pytest.mark.parametrize(
    ("state", "typed"),
    [
        ("FL", "Dade"),
        ("FL", "Bergen"),
        ("NJ", "Miami-Dade"),
        ("FL", "Orange County CA"),
        ("FL", ""),
        ("TX", "Harris"),
    ],
)
def test_county_rejections(state: str, typed: str) -> None:
    assert canonical_county(state, typed) is None


def test_county_must_belong_to_state() -> None:
    problems = validate_demographics(make_draft(state="NJ", zip="07030"), TODAY)
    assert fields(problems) == {"county"}
    assert "New Jersey" in problems[0].message


@pytest.mark.parametrize("state", ["GA", "New York", "TX"])
def test_out_of_area_state(state: str) -> None:
    problems = validate_demographics(make_draft(state=state), TODAY)
    assert ("state", OUT_OF_AREA_MESSAGE) in [(p.field, p.message) for p in problems]


def test_state_accepts_names() -> None:
    assert validate_demographics(make_draft(state="florida"), TODAY) == []
    assert normalise_demographics(make_draft(state="Florida")).state == "FL"


@pytest.mark.parametrize(
    "name",
    [
        "Zoë",
        "Ñúñez-Łukasiewicz",
        "O’Brien",
        "D'Arcy",
        "van der Berg",
        "山田",
        "Ἀλέξανδρος",
        "Nguyễn",
        "Jr.",
        "Ana María",
    ],
)
def test_unicode_names_accepted(name: str) -> None:
    assert validate_demographics(make_draft(first_name=name), TODAY) == []


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "required"),
        ("   ", "required"),
        ("Zo\x00e", "control character"),
        ("Zoe\u200b", "control character"),
        ("R2D2", "digits"),
        ("Zoe <script>", "letters, spaces"),
        ("x" * 101, "longer than 100"),
        ("---", "at least one letter"),
    ],
)
def test_bad_names_rejected_with_reason(name: str, words: str) -> None:
    problems = validate_demographics(make_draft(last_name=name), TODAY)
    assert fields(problems) == {"last_name"}
    assert words in problems[0].message


def test_dob_in_future() -> None:
    problems = validate_demographics(make_draft(dob=date(2026, 3, 16)), TODAY)
    assert [(p.field, p.level) for p in problems] == [("dob", "error")]
    assert "future" in problems[0].message


def test_dob_absurdly_old() -> None:
    problems = validate_demographics(make_draft(dob=date(1900, 1, 1)), TODAY)
    assert [(p.field, p.level) for p in problems] == [("dob", "error")]


def test_minor_needs_confirmation() -> None:
    minor = make_draft(dob=date(2008, 3, 16))  # turns 18 tomorrow
    problems = validate_demographics(minor, TODAY)
    assert [(p.field, p.level, p.message) for p in problems] == [
        ("dob", "confirm", MINOR_CONFIRM_MESSAGE)
    ]
    assert blocking_problems(problems) == []
    assert validate_demographics(minor, TODAY, confirmed_minor=True) == []
    assert validate_demographics(make_draft(dob=date(2008, 3, 15)), TODAY) == []


def test_missing_dob() -> None:
    assert fields(validate_demographics(make_draft(dob=None), TODAY)) == {"dob"}


def test_age_in_years_around_birthday_and_leap_day() -> None:
    assert age_in_years(date(1980, 2, 1), date(2026, 1, 31)) == 45
    assert age_in_years(date(1980, 2, 1), date(2026, 2, 1)) == 46
    assert age_in_years(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_in_years(date(2000, 2, 29), date(2018, 3, 1)) == 18


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-02-01", date(1980, 2, 1)),
        ("02/01/1980", date(1980, 2, 1)),
        ("2/1/1980", date(1980, 2, 1)),
        (" 12/31/1999 ", date(1999, 12, 31)),
        ("2000-02-29", date(2000, 2, 29)),
    ],
)
def test_parse_date_input(text: str, expected: date) -> None:
    assert parse_date_input(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Enter a date"),
        ("02/01/80", "four digits"),
        ("31/01/1980", "month first"),
        ("02/30/1980", "does not exist"),
        ("1999-02-29", "does not exist"),
        ("1 Feb 1980", "MM/DD/YYYY"),
        ("1980.02.01", "MM/DD/YYYY"),
    ],
)
def test_parse_date_input_rejections(text: str, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        parse_date_input(text)


@pytest.mark.parametrize(
    "text",
    [
        "3055550142",
        "305-555-0142",
        "(305) 555-0142",
        "+1 305 555 0142",
        "1-305-555-0142",
        "305.555.0142",
    ],
)
def test_normalise_phone(text: str) -> None:
    assert normalise_phone(text) == "(305) 555-0142"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("555-0142", "10 digits"),
        ("+44 20 7946 0958", "US phone"),
        ("(055) 555-0142", "cannot start with 0 or 1"),
        ("(305) 155-0142", "cannot start with 0 or 1"),
        ("305-555-0142 ext 5", "only digits"),
        ("", "Enter a phone"),
    ],
)
def test_phone_rejections(text: str, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        normalise_phone(text)


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "a@b",
        "a@@example.org",
        "a b@example.org",
        "a@example.",
        "a@-example.org",
        ".a@example.org",
        "a..b@example.org",
        "a@example.c0m",
    ],
)
def test_implausible_emails(email: str) -> None:
    assert fields(validate_demographics(make_draft(email=email), TODAY)) == {"email"}


def test_plausible_emails() -> None:
    for email in ("zoe+ketadesk@example.org", "z.q@mail.example.co.uk", ""):
        assert validate_demographics(make_draft(email=email), TODAY) == []


@pytest.mark.parametrize(
    ("state", "county", "zip_code", "ok"),
    [
        ("FL", "Leon", "32301", True),
        ("FL", "Leon", "32301-1234", True),
        ("FL", "Leon", "323011234", True),
        ("FL", "Leon", "07030", False),
        ("FL", "Leon", "3230", False),
        ("NJ", "Hudson", "07030", True),
        ("NJ", "Cape May", "08204", True),
        ("NJ", "Hudson", "33134", False),
        ("NJ", "Hudson", "", True),
    ],
)
def test_zip_plausibility(state: str, county: str, zip_code: str, ok: bool) -> None:
    problems = validate_demographics(make_draft(state=state, county=county, zip=zip_code), TODAY)
    assert (problems == []) == ok
    if not ok:
        assert fields(problems) == {"zip"}


def test_sex_values_and_aliases() -> None:
    assert parse_sex("F") == "female"
    assert parse_sex(" Male ") == "male"
    assert parse_sex("U") == "unknown"
    assert validate_demographics(make_draft(sex="intersex"), TODAY) == []
    assert fields(validate_demographics(make_draft(sex=""), TODAY)) == {"sex"}
    assert fields(validate_demographics(make_draft(sex="banana"), TODAY)) == {"sex"}


def test_contacts_need_name_and_phone_together() -> None:
    problems = validate_demographics(make_draft(sitter_phone=""), TODAY)
    assert fields(problems) == {"sitter_phone"}
    problems = validate_demographics(make_draft(emergency_contact_name=""), TODAY)
    assert fields(problems) == {"emergency_contact_name"}
    clear = make_draft(
        emergency_contact_name="", emergency_contact_phone="", sitter_name="", sitter_phone=""
    )
    assert validate_demographics(clear, TODAY) == []


def test_all_problems_reported_at_once() -> None:
    draft = make_draft(first_name="", state="GA", phone="123", email="nope", dob=None)
    assert fields(validate_demographics(draft, TODAY)) >= {
        "first_name",
        "state",
        "phone",
        "email",
        "dob",
    }


def test_normalise_demographics() -> None:
    draft = make_draft(
        first_name="  Zoe\u0308 ",  # decomposed ë
        county="miami dade county",
        phone="+1 305 555 0142",
        email="Zoe@Example.ORG",
        zip="331341234",
        sex="F",
    )
    clean = normalise_demographics(draft)
    assert clean.first_name == "Zoë"
    assert clean.county == "Miami-Dade"
    assert clean.phone == "(305) 555-0142"
    assert clean.email == "Zoe@example.org"
    assert clean.zip == "33134-1234"
    assert clean.sex == "female"
    assert clean.sitter_phone == "(305) 555-0177"


def test_normalise_refuses_invalid_draft() -> None:
    with pytest.raises(UserFacingError):
        normalise_demographics(make_draft(state="GA"))


@pytest.mark.parametrize(
    ("text", "is_past", "expected"),
    [
        ("11/29/90", True, date(1990, 11, 29)),
        ("3/15/26", True, date(2026, 3, 15)),  # today itself is not in the future
        ("3/16/26", True, date(1926, 3, 16)),  # a day later would be: the century before
        ("2/3/05", True, date(2005, 2, 3)),
        ("6/1/27", False, date(2027, 6, 1)),  # a protocol date may be next year
        ("6/1/46", False, date(2046, 6, 1)),  # up to 20 years ahead of today
        ("6/1/47", False, date(1947, 6, 1)),  # further ahead: the century before
    ],
)
def test_parse_date_input_two_digit_year_with_today(
    text: str, is_past: bool, expected: date
) -> None:
    assert parse_date_input(text, today=date(2026, 3, 15), is_past=is_past) == expected


def test_parse_date_input_two_digit_year_still_checks_the_calendar() -> None:
    with pytest.raises(UserFacingError, match="does not exist"):
        parse_date_input("2/30/90", today=date(2026, 3, 15), is_past=True)
    with pytest.raises(UserFacingError, match="month first"):
        parse_date_input("29/11/90", today=date(2026, 3, 15), is_past=True)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Tomas Varga (husband)", None),
        ("J. Park (sister-in-law)", None),
        ("Tomas Varga", None),
        ("", None),
        ("(husband)", "required"),
        ("Tomas (4)", "letter"),
        ("Tomas 4 (husband)", "digits"),
        ("Tomas (hus(band))", "only letters"),
    ],
)
def test_contact_name_may_carry_a_relationship_in_brackets(text: str, problem: str | None) -> None:
    found = contact_name_problem(text, label="Emergency contact name")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def _with_contact(**contact: str) -> PatientDemographics:
    return PatientDemographics(
        first_name="Zoë", last_name="Testperson", dob=date(1980, 2, 1), sex="female",
        state="FL", county="Miami-Dade", **contact,
    )


@pytest.mark.parametrize(
    ("contact", "field", "words"),
    [
        ({"emergency_contact_relationship": "spouse"}, "emergency_contact_name",
         "name is required when a relationship is given"),
        ({"emergency_contact_name": "Tomas Varga", "emergency_contact_phone": "305-555-0100",
          "emergency_contact_relationship": "friend #2"}, "emergency_contact_relationship",
         "The relationship"),
        ({"emergency_contact_name": "Tomas Varga", "emergency_contact_phone": "305-555-0100",
          "emergency_contact_relationship": "x" * 61}, "emergency_contact_relationship",
         "longer than 60"),
    ],
)
def test_the_emergency_contact_relationship_is_checked_in_words(contact, field, words) -> None:
    problems = blocking_problems(validate_demographics(_with_contact(**contact), date(2026, 3, 1)))
    assert [(p.field, words in p.message) for p in problems] == [(field, True)]


def test_a_relationship_of_free_choice_is_kept_beside_a_bracketed_name() -> None:
    """Defect 16: "(husband)" in the name is allowed and kept, and the relationship box takes
    any words ("step-mother"), trimmed."""
    draft = _with_contact(
        emergency_contact_name="Tomas Varga (husband)", emergency_contact_phone="305-555-0100",
        emergency_contact_relationship="  step-mother ",
    )
    assert blocking_problems(validate_demographics(draft, date(2026, 3, 1))) == []
    stored = normalise_demographics(draft)
    assert stored.emergency_contact_name == "Tomas Varga (husband)"
    assert stored.emergency_contact_relationship == "step-mother"
