"""Fuzzing the patient inputs: roster CSV files, chart form fields and the search box (the
last also through the roster's own queries on a practice file and a practice server).

Every target must either return a well-formed result or raise UserFacingError with a
message; any other exception fails the test. The number of generated examples per target
comes from KETADESK_FUZZ_EXAMPLES (default 300 so `make test` stays quick). The reliability
figure is 10,000 per target:

    KETADESK_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest -q tests/reliability/test_fuzz_inputs.py
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import unicodedata
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketadesk.core.demographics import (
    PatientDemographics,
    blocking_problems,
    normalise_phone,
    parse_date_input,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import (
    DIASTOLIC_RANGE_MMHG,
    HEART_RATE_RANGE_BPM,
    HEIGHT_RANGE_CM,
    SYSTOLIC_RANGE_MMHG,
    WEIGHT_RANGE_KG,
    parse_blood_pressure,
    parse_heart_rate,
    parse_height,
    parse_weight,
    validate_vitals,
)
from ketadesk.core.patient_csv import (
    IMPORT_FIELDS,
    MAX_FIELD_CHARS,
    CsvImportPlan,
    read_patient_csv,
)
from ketadesk.core.search_text import fold_for_search, parse_search_query

FUZZ_EXAMPLES = int(os.environ.get("KETADESK_FUZZ_EXAMPLES", "300"))
TODAY = date(2026, 3, 15)

fuzz = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_clear_refusal(error: UserFacingError) -> None:
    message = error.message
    assert message.strip(), "refusal without words"
    assert "Traceback" not in message
    assert "\n" not in message


# --------------------------------------------------------------------------- CSV files

HEADER_CHOICES = [
    "first_name",
    "First Name",
    "Given Name",
    "last_name",
    "Last Name",
    "Surname",
    "dob",
    "DOB",
    "Date of Birth",
    "Birth Date",
    "sex",
    "Gender",
    "state",
    "county",
    "phone",
    "Phone Number",
    "email",
    "E-mail",
    "address",
    "weight_kg",
    "Weight (kg)",
    "Weight (lbs)",
    "mrn",
    "Weight",
    "Name",
    "Notes",
    "",
    "zip",
    "city",
]
# Values that are sometimes right and often nearly right.
CELL_CHOICES = [
    "Zoë",
    "Ñúñez-Łukasiewicz",
    "Zyxwander",
    "Quillon",
    "O’Brien",
    "1980-02-01",
    "02/01/1980",
    "13/01/1980",
    "2/30/1999",
    "2099-01-01",
    "F",
    "male",
    "unknown",
    "FL",
    "NJ",
    "Florida",
    "GA",
    "Miami-Dade",
    "miami dade county",
    "Saint Johns",
    "Cape May",
    "Dade",
    "Leon",
    "305-555-0142",
    "+1 (609) 555-0123",
    "555",
    "zoe@example.org",
    "nope@",
    "70",
    "160 lb",
    "-1",
    "1e309",
    "nan",
    "KD-00000018",
    "KD-00000019",
    "OLD-1",
    "",
    " ",
    '"',
    '""',
    ",",
    ";",
    "\t",
    "\r\n",
    "\n",
    "x" * 1001,
    "=cmd|' /C calc'!A0",
    "\u202e",
    "\u200b",
    "\ufeff",
]
cells = st.one_of(
    st.sampled_from(CELL_CHOICES),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=30),
)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])


def render_csv(rows: list[list[str]], delimiter: str, quoting: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.sampled_from(HEADER_CHOICES), min_size=0, max_size=14))
    width = max(len(headers), 1)
    body = draw(
        st.lists(
            st.lists(cells, min_size=0, max_size=width + 2),
            min_size=0,
            max_size=6,
        )
    )
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    text = render_csv([headers, *body], delimiter, quoting)
    if draw(st.booleans()):
        # Break the quoting on purpose: stray quotes, truncation, doubled lines.
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', '""', '"\n', "\x00", ""])) + text[cut:]
    encoding = draw(encodings)
    return text.encode(encoding, errors="replace")


def check_plan_or_refusal(data: bytes) -> CsvImportPlan | None:
    """Read ``data``; check the plan's invariants, or that the refusal has clear words."""
    try:
        plan = read_patient_csv(data, today=TODAY)
    except UserFacingError as error:
        assert_clear_refusal(error)
        return None
    # Every data row is accounted for: imported or named in a problem, never both.
    good = {row.row_number for row in plan.rows}
    bad = set(plan.invalid_row_numbers)
    assert not good & bad
    assert len(good) + len(bad) == plan.data_row_count
    assert all(row_number >= 2 for row_number in good | bad)
    for problem in plan.problems:
        assert problem.message.strip()
        assert problem.field in IMPORT_FIELDS or problem.field == ""
        assert problem.describe().startswith(f"Row {problem.row_number}")
    for row in plan.rows:
        assert blocking_problems(validate_demographics(row.demographics, TODAY)) == []
        if row.weight_kg is not None:
            assert WEIGHT_RANGE_KG[0] <= row.weight_kg <= WEIGHT_RANGE_KG[1]
    for group in plan.duplicates_in_file:
        assert len(group.row_numbers) >= 2
        assert set(group.row_numbers) <= good
    return plan


@fuzz
@given(csv_files())
def test_fuzz_structured_csv(data: bytes) -> None:
    check_plan_or_refusal(data)


@fuzz
@given(st.binary(max_size=2000))
def test_fuzz_raw_bytes_csv(data: bytes) -> None:
    check_plan_or_refusal(data)


@fuzz
@given(
    st.sampled_from(["first_name", "last_name", "address", "email"]),
    st.integers(min_value=900, max_value=150_000),
    st.sampled_from(["x", "é", '"', ",", "\n"]),
)
def test_fuzz_huge_fields(column: str, size: int, filler: str) -> None:
    header = "first_name,last_name,dob,sex,state,county,address,email"
    values = {"first_name": "Zoë", "last_name": "Quillon", "address": "", "email": ""}
    values[column] = filler * size
    row = render_csv(
        [
            [
                values["first_name"],
                values["last_name"],
                "1980-02-01",
                "F",
                "FL",
                "Leon",
                values["address"],
                values["email"],
            ]
        ],
        ",",
        csv.QUOTE_MINIMAL,
    )
    data = (header + "\r\n" + row).encode("utf-8")
    plan = check_plan_or_refusal(data)
    if plan is not None and size > MAX_FIELD_CHARS:
        assert plan.rows == ()
        assert plan.problems[0].column == column


@fuzz
@given(
    st.lists(
        st.sampled_from(["first_name", "last_name", "dob", "sex", "state", "county", "phone"]),
        unique=True,
    )
)
def test_fuzz_missing_columns_are_named(present: list[str]) -> None:
    values = {
        "first_name": "Zoë",
        "last_name": "Quillon",
        "dob": "1980-02-01",
        "sex": "F",
        "state": "FL",
        "county": "Leon",
        "phone": "305-555-0142",
    }
    data = render_csv([present, [values[c] for c in present]], ",", csv.QUOTE_MINIMAL)
    required = {"first_name", "last_name", "dob", "sex", "state", "county"}
    try:
        plan = read_patient_csv(data.encode(), today=TODAY)
    except UserFacingError as error:
        assert_clear_refusal(error)
        assert not required <= set(present)
        assert "no column for" in error.message or "empty" in error.message
        return
    assert required <= set(present)
    assert len(plan.rows) == 1


# --------------------------------------------------------------------------- form fields

names = st.one_of(st.text(max_size=120), st.sampled_from(["Zoë", "Ñúñez-Łukasiewicz", "O’Brien"]))


@fuzz
@given(
    first=names,
    last=names,
    dob=st.one_of(st.none(), st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 1, 1))),
    sex=st.text(max_size=12),
    state=st.sampled_from(["FL", "NJ", "GA", "", "florida", "nj "]),
    county=st.one_of(st.text(max_size=30), st.sampled_from(["Leon", "Hudson", "miami dade"])),
    phone=st.one_of(
        st.text(max_size=20),
        st.from_regex(r"\+?1?[ (]*[2-9]\d\d[) .-]*\d{3}[ .-]?\d{4}", fullmatch=True),
    ),
    email=st.one_of(st.text(max_size=40), st.emails()),
    zip_code=st.text(alphabet="0123456789- ", max_size=11),
    confirmed_minor=st.booleans(),
)
def test_fuzz_demographics_form(
    first: str,
    last: str,
    dob: date | None,
    sex: str,
    state: str,
    county: str,
    phone: str,
    email: str,
    zip_code: str,
    confirmed_minor: bool,
) -> None:
    draft = PatientDemographics(
        first_name=first,
        last_name=last,
        dob=dob,
        sex=sex,
        state=state,
        county=county,
        phone=phone,
        email=email,
        zip=zip_code,
    )
    problems = validate_demographics(draft, TODAY, confirmed_minor=confirmed_minor)
    for problem in problems:
        assert problem.message.strip() and problem.level in ("error", "confirm")
    flagged = {p.field for p in problems}
    for field, value in (("first_name", first), ("last_name", last)):
        if not value.strip() or any(unicodedata.category(ch)[0] in "CN" for ch in value.strip()):
            assert field in flagged
    if dob is not None and dob > TODAY:
        assert "dob" in flagged
    if state.strip().upper() not in ("FL", "NJ", "FLORIDA"):
        assert "state" in flagged


@fuzz
@given(
    st.one_of(
        st.text(max_size=30),
        st.dates().map(lambda d: d.strftime("%m/%d/%Y")),
        st.dates().map(lambda d: d.isoformat()),
    )
)
def test_fuzz_dates(text: str) -> None:
    try:
        parsed = parse_date_input(text)
    except UserFacingError as error:
        assert_clear_refusal(error)
        return
    stripped = text.strip()
    assert stripped in (
        parsed.isoformat(),
        parsed.strftime("%m/%d/%Y"),
        f"{parsed.month}/{parsed.day}/{parsed.year:04d}",
        f"{parsed.month:02d}/{parsed.day}/{parsed.year:04d}",
        f"{parsed.month}/{parsed.day:02d}/{parsed.year:04d}",
        f"{parsed.year:04d}-{parsed.month}-{parsed.day}",
        f"{parsed.year:04d}-{parsed.month:02d}-{parsed.day}",
        f"{parsed.year:04d}-{parsed.month}-{parsed.day:02d}",
    )


@fuzz
@given(st.one_of(st.text(max_size=30), st.from_regex(r"[0-9 ()+.\-]{7,18}", fullmatch=True)))
def test_fuzz_phone(text: str) -> None:
    try:
        phone = normalise_phone(text)
    except UserFacingError as error:
        assert_clear_refusal(error)
        return
    assert re.fullmatch(r"\([2-9]\d\d\) [2-9]\d\d-\d{4}", phone)
    assert normalise_phone(phone) == phone


weights = st.one_of(
    st.text(max_size=20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.from_regex(r"[0-9]{1,3}([.,][0-9]{1,2})? ?(kg|lb|lbs|pounds)?", fullmatch=True),
)
units = st.one_of(st.none(), st.sampled_from(["kg", "lb", "LBS", "stone", ""]))


@fuzz
@given(weights, units)
def test_fuzz_weight(value: str | float | int, unit: str | None) -> None:
    try:
        kg = parse_weight(value, unit)
    except UserFacingError as error:
        assert_clear_refusal(error)
        return
    assert math.isfinite(kg)
    assert WEIGHT_RANGE_KG[0] <= kg <= WEIGHT_RANGE_KG[1]


@fuzz
@given(
    st.one_of(
        st.text(max_size=20),
        st.floats(),
        st.from_regex(r"[4-7] ?('|ft) ?[0-9]{1,2}(\"| ?in)?", fullmatch=True),
    ),
    st.one_of(st.none(), st.sampled_from(["cm", "in", "m", "ft"])),
)
def test_fuzz_height(value: str | float, unit: str | None) -> None:
    try:
        cm = parse_height(value, unit)
    except UserFacingError as error:
        assert_clear_refusal(error)
        return
    assert HEIGHT_RANGE_CM[0] <= cm <= HEIGHT_RANGE_CM[1]


bp_numbers = st.one_of(st.integers(min_value=-500, max_value=5000), st.text(max_size=6))


@fuzz
@given(
    st.one_of(st.text(max_size=15), st.from_regex(r"\d{1,3} ?/ ?\d{1,3}", fullmatch=True)),
    bp_numbers,
    bp_numbers,
    st.one_of(st.integers(min_value=-10, max_value=400), st.text(max_size=8)),
)
def test_fuzz_vitals(
    bp_text: str, systolic: int | str, diastolic: int | str, heart: int | str
) -> None:
    for call in (
        lambda: parse_blood_pressure(bp_text),
        lambda: parse_blood_pressure(systolic, diastolic),
    ):
        try:
            reading = call()
        except UserFacingError as error:
            assert_clear_refusal(error)
        else:
            assert SYSTOLIC_RANGE_MMHG[0] <= reading.systolic <= SYSTOLIC_RANGE_MMHG[1]
            assert DIASTOLIC_RANGE_MMHG[0] <= reading.diastolic <= DIASTOLIC_RANGE_MMHG[1]
            assert reading.systolic > reading.diastolic
    try:
        bpm = parse_heart_rate(heart)
    except UserFacingError as error:
        assert_clear_refusal(error)
    else:
        assert HEART_RATE_RANGE_BPM[0] <= bpm <= HEART_RATE_RANGE_BPM[1]
    for problem in validate_vitals(systolic, diastolic, heart):
        assert problem.message.strip()


@fuzz
@given(st.text(max_size=250))
def test_fuzz_search_box(text: str) -> None:
    try:
        query = parse_search_query(text)
    except UserFacingError as error:
        assert_clear_refusal(error)
        assert len(text) > 200
        return
    for term in query.name_terms:
        assert term and " " not in term
    folded = fold_for_search(text)
    assert fold_for_search(folded) == folded
    assert all(ch.isalnum() or ch == " " for ch in folded)


@pytest.fixture
def searchable_roster(practice_on: Any) -> Any:
    """A roster of demo patients on each back end, prepared as the roster screen does."""
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.roster import roster_query as rq

    with practice_on.db.session() as session:
        populate_demo_patients(session, 30, entered_by=practice_on.physician.user_name)
        rq.prepare_roster(session)
    return practice_on


@settings(
    max_examples=min(FUZZ_EXAMPLES, 120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=250))
def test_fuzz_search_box_against_the_roster_on_both_back_ends(
    searchable_roster: Any, text: str
) -> None:
    """Whatever is typed in the search box reaches the database's own search (FTS5 and LIKE
    on a file, full-text and trigram indexes on a server) and comes back as rows or as a
    refusal in words, never a database error."""
    from ketadesk.storage.roster import roster_query as rq

    roster_filter = rq.RosterFilter(search_text=text)
    with searchable_roster.db.session() as session:
        try:
            result = rq.query_roster(session, roster_filter, limit=50)
        except UserFacingError as error:
            assert_clear_refusal(error)
            return
        found = {r.patient_id for r in result.rows}
        assert result.total == len(found)  # 30 patients: every match is on the first page
        for strategy in (rq.LOOKUP, rq.WALK, rq.ROWS):  # each way a page is fetched agrees
            page = rq.fetch_roster_page(session, roster_filter, limit=50, strategy=strategy)
            assert {r.patient_id for r in page} == found, strategy
