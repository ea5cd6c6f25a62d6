from __future__ import annotations

from datetime import date

import pytest

from ketadesk.core.csv_encoding import decode_csv_bytes
from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import format_mrn
from ketadesk.core.patient_csv import (
    MAX_FIELD_CHARS,
    duplicate_key,
    find_duplicates,
    inspect_patient_csv,
    read_patient_csv,
)

TODAY = date(2026, 3, 15)
HEADER = "first_name,last_name,dob,sex,state,county,phone,email,address,weight_kg,mrn"
GOOD_ROWS = [
    "Zoë,Ñúñez-Łukasiewicz,1980-02-01,female,FL,Miami-Dade,305-555-0142,zoe@example.org,"
    "12 Quillon Way,70.5,",
    "Zyxwander,Quillon,07/04/1975,M,NJ,Cape May County,(609) 555-0123,,,,",
]


def csv_bytes(*lines: str, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode(encoding)


def test_good_file_gives_normalised_rows() -> None:
    plan = read_patient_csv(csv_bytes(HEADER, *GOOD_ROWS), today=TODAY)
    assert plan.problems == ()
    assert plan.encoding == "UTF-8"
    assert plan.delimiter == ","
    assert plan.data_row_count == 2
    assert [r.row_number for r in plan.rows] == [2, 3]
    first, second = plan.rows
    assert first.demographics.first_name == "Zoë"
    assert first.demographics.phone == "(305) 555-0142"
    assert first.demographics.address_line1 == "12 Quillon Way"
    assert first.weight_kg == pytest.approx(70.5)
    assert second.demographics.dob == date(1975, 7, 4)
    assert second.demographics.sex == "male"
    assert second.demographics.county == "Cape May"
    assert second.weight_kg is None


def test_utf8_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes(HEADER, *GOOD_ROWS, newline="\r\n")
    plan = read_patient_csv(data, today=TODAY)
    assert plan.encoding.startswith("UTF-8")
    assert plan.column_mapping["first_name"] == "first_name"  # BOM not glued to the header
    assert len(plan.rows) == 2


def test_utf16_with_bom_from_excel_unicode_text() -> None:
    text = "\n".join([HEADER.replace(",", "\t")] + [r.replace(",", "\t") for r in GOOD_ROWS])
    plan = read_patient_csv(text.encode("utf-16"), today=TODAY)
    assert plan.encoding == "UTF-16"
    assert plan.delimiter == "\t"
    assert plan.rows[0].demographics.last_name == "Ñúñez-Łukasiewicz"


def test_cp1252_is_detected_and_reported() -> None:
    lines = [
        HEADER,
        "Zoë,Núñez,1980-02-01,F,FL,Leon,,,,,",
        "Zoë,O’Quillon,1981-03-02,F,FL,Leon,,,,,",
    ]
    plan = read_patient_csv(csv_bytes(*lines, encoding="cp1252"), today=TODAY)
    assert plan.encoding.startswith("Windows-1252")
    assert any("read as Windows-1252" in n for n in plan.notices)
    assert [r.demographics.last_name for r in plan.rows] == ["Núñez", "O’Quillon"]


def test_latin1_is_detected_and_reported() -> None:
    lines = [HEADER, "Zoë,Núñez,1980-02-01,F,FL,Leon,,,,,"]
    plan = read_patient_csv(csv_bytes(*lines, encoding="latin-1"), today=TODAY)
    assert plan.encoding.startswith("Latin-1")
    assert plan.rows[0].demographics.first_name == "Zoë"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"first_name,last_name\x07\n", "binary"),
        ("Имя,Фамилия,Дата\nЖанна,Петрова,1980\n".encode("cp1251"), "encoding"),
        (b"first_name\n\x81\x8d\x8f\n", "encoding"),
        ("first_name,last_name\nZoë,A\n".encode() + "Zoë,B\n".encode("cp1252"), "UTF-8"),
        (b"\xef\xbb\xbffirst_name\n\xff\xfe\n", "not UTF-8"),
        (csv_bytes("first_name,last_name,dob"), "no column for: Sex, State, County"),
        (csv_bytes(HEADER), "no patients"),
        (csv_bytes(HEADER, ",,,,,,,,,,"), "no patients"),
        (csv_bytes("x" * 300 + ",b", "1,2"), "column headings"),
        (csv_bytes(",".join(f"c{i}" for i in range(250)), "1"), "more than 200 columns"),
        (csv_bytes(HEADER, '"' + "x" * 200_000 + '"'), "could not be read"),
    ],
)
def test_file_level_refusals(data: bytes, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        read_patient_csv(data, today=TODAY)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_delimiter_sniffing(delimiter: str) -> None:
    # Commas inside values must not fool the sniffer.
    header = HEADER.replace(",", delimiter)
    row = 'Zoë Jr.;Quillon;1980-02-01;F;FL;Leon;;;"1, Main St";;'.replace(";", delimiter)
    plan = read_patient_csv(csv_bytes(header, row), today=TODAY)
    assert plan.delimiter == delimiter
    assert plan.problems == ()
    assert plan.rows[0].demographics.address_line1 == "1, Main St"


def test_aliases_are_recognised() -> None:
    header = (
        "Given Name,Surname,Birth Date,Gender,State,County,Phone Number,E-mail,"
        "Street Address,Weight (lbs),Medical Record Number,Shoe size"
    )
    row = "Zoë,Quillon,02/01/1980,Female,Florida,St Johns,3055550142,z@example.org,1 A St,160,"
    plan = read_patient_csv(csv_bytes(header, row), today=TODAY)
    assert plan.problems == ()
    assert plan.column_mapping["last_name"] == "Surname"
    assert plan.column_mapping["weight_lb"] == "Weight (lbs)"
    assert plan.ignored_columns == ("Shoe size",)
    assert plan.rows[0].weight_kg == pytest.approx(72.5748, abs=1e-3)
    assert plan.rows[0].demographics.county == "St. Johns"


def test_unit_less_weight_and_full_name_are_explained_not_guessed() -> None:
    header = "Name,first_name,last_name,dob,sex,state,county,Weight"
    plan = read_patient_csv(
        csv_bytes(header, "Zoë Q,Zoë,Quillon,1980-02-01,F,FL,Leon,70"), today=TODAY
    )
    assert plan.rows[0].weight_kg is None
    assert any('"Weight"' in n and "unit" in n for n in plan.notices)
    assert any('"Name"' in n for n in plan.notices)
    assert set(plan.ignored_columns) == {"Name", "Weight"}


def test_two_columns_for_one_field_must_be_chosen() -> None:
    header = "first_name,last_name,Surname,dob,sex,state,county"
    with pytest.raises(UserFacingError, match="no column for: Last name"):
        read_patient_csv(csv_bytes(header, "Zoë,A,B,1980-02-01,F,FL,Leon"), today=TODAY)
    info = inspect_patient_csv(csv_bytes(header, "Zoë,A,B,1980-02-01,F,FL,Leon"))
    assert any("Last name" in n and "choose one" in n for n in info.notices)


def test_user_column_mapping() -> None:
    header = "A,B,C,D,E,F"
    data = csv_bytes(header, "Quillon,Zoë,02/01/1980,f,NJ,Hudson")
    info = inspect_patient_csv(data)
    assert info.headers == ("A", "B", "C", "D", "E", "F")
    assert info.suggested_mapping == {}
    mapping = {
        "last_name": "A",
        "first_name": "B",
        "dob": "C",
        "sex": "D",
        "state": "E",
        "county": "F",
        "phone": "",
    }
    plan = read_patient_csv(data, today=TODAY, column_mapping=mapping)
    assert plan.problems == ()
    assert plan.rows[0].demographics.last_name == "Quillon"
    with pytest.raises(UserFacingError, match="not in the file"):
        read_patient_csv(data, today=TODAY, column_mapping={**mapping, "email": "Z"})
    with pytest.raises(UserFacingError, match="mapped to both"):
        read_patient_csv(data, today=TODAY, column_mapping={**mapping, "middle_name": "B"})
    with pytest.raises(UserFacingError, match="unknown field"):
        read_patient_csv(data, today=TODAY, column_mapping={**mapping, "ssn": "A"})


def test_row_problems_name_row_field_and_column() -> None:
    header = "First Name,Last Name,DOB,Sex,State,County,Phone,Weight (kg)"
    lines = [
        header,
        "Zoë,Quillon,1980-02-01,F,FL,Leon,,",  # row 2: fine
        "",  # row 3: blank, skipped but still counted as a spreadsheet row
        "Zoë,Quillon,13/01/1980,F,FL,Leon,,",  # row 4: day-first date
        "Zoë,Quillon,1980-02-01,F,GA,Fulton,,",  # row 5: out of area
        "Zoë,Quillon,1980-02-01,F,NJ,Leon,,",  # row 6: county not in NJ
        ",Quillon,1980-02-01,F,FL,Leon,555,700",  # row 7: three problems
        "Zoë,Quillon,2010-01-01,F,FL,Leon,,",  # row 8: minor
        "Zoë,Quillon,1980-02-01,F,FL,Leon,,,surplus",  # row 9: extra value
        "Zoë,Quillon,1980-02-01",  # row 10: short row, missing required values
    ]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert [r.row_number for r in plan.rows] == [2]
    got = {(p.row_number, p.field) for p in plan.problems}
    assert got == {
        (4, "dob"),
        (5, "state"),
        (6, "county"),
        (7, "first_name"),
        (7, "phone"),
        (7, "weight_kg"),
        (8, "dob"),
        (9, ""),
        (10, "sex"),
        (10, "state"),
        (10, "county"),
    }
    assert plan.invalid_row_numbers == (4, 5, 6, 7, 8, 9, 10)
    assert plan.data_row_count == 8
    by_key = {(p.row_number, p.field): p for p in plan.problems}
    assert by_key[(4, "dob")].column == "DOB"
    assert by_key[(4, "dob")].describe().startswith('Row 4, Date of birth (column "DOB"): ')
    assert "under 18" in by_key[(8, "dob")].message
    assert "Florida and New Jersey" in by_key[(5, "state")].message
    assert by_key[(9, "")].describe().startswith("Row 9, Row: has 9 values")


def test_problem_messages_do_not_quote_patient_values() -> None:
    lines = [HEADER, "Zyxwander9,Quillonqq,31/31/1980,Q,GA,Fulton,12,bad@,,9999,KD-00000019"]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert len(plan.problems) >= 6
    for problem in plan.problems:
        for value in ("Zyxwander9", "Quillonqq", "31/31", "Fulton", "bad@", "9999", "00000019"):
            assert value not in problem.describe()


def test_multiline_quoted_value_keeps_spreadsheet_row_numbers() -> None:
    lines = [
        HEADER,
        '"Zoë","Quillon",1980-02-01,F,FL,Leon,,,"1 A St\nApt 2",,',
        "X,Y,bad,F,FL,Leon,,,,,",
    ]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert [r.row_number for r in plan.rows] == [2]
    assert plan.invalid_row_numbers == (3,)


def test_huge_field_is_a_row_problem() -> None:
    lines = [HEADER, "Zoë,Quillon,1980-02-01,F,FL,Leon,,," + "a" * (MAX_FIELD_CHARS + 1) + ",,"]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert plan.rows == ()
    assert [(p.field, p.message) for p in plan.problems] == [
        ("address_line1", f"longer than {MAX_FIELD_CHARS} characters.")
    ]


def test_mrn_column() -> None:
    good = format_mrn(41)
    lines = [
        HEADER,
        f"Zoë,Quillon,1980-02-01,F,FL,Leon,,,,,{good.lower()}",
        "Zoë,Brackwater,1980-02-01,F,FL,Leon,,,,,KD-00000019",
        "Zoë,Ysolde,1980-02-01,F,FL,Leon,,,,,OLD-7781",
        "Zoë,Quest,1980-02-01,F,FL,Leon,,,,,KDX-12",
    ]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert [(r.mrn, r.external_id) for r in plan.rows] == [
        (good, None),
        (None, "OLD-7781"),
        (None, "KDX-12"),
    ]
    assert [(p.row_number, p.field) for p in plan.problems] == [(3, "mrn")]
    assert any("another system" in n for n in plan.notices)


def test_duplicates_within_file_are_reported_not_merged() -> None:
    lines = [
        HEADER,
        "Zoë,Ñúñez,1980-02-01,F,FL,Leon,,,,,",
        "Zyxwander,Quillon,1980-02-01,M,FL,Leon,,,,,",
        "ZOE,Nunez,02/01/1980,female,FL,Leon,,,,,",
        "Zoe,Nunez,1980-02-02,F,FL,Leon,,,,,",
    ]
    plan = read_patient_csv(csv_bytes(*lines), today=TODAY)
    assert len(plan.rows) == 4
    assert [g.row_numbers for g in plan.duplicates_in_file] == [(2, 4)]


def test_find_duplicates_against_existing_keys() -> None:
    plan = read_patient_csv(csv_bytes(HEADER, *GOOD_ROWS), today=TODAY)
    existing = [
        duplicate_key("zoe", "Nunez Lukasiewicz", date(1980, 2, 1)),
        duplicate_key("Zyxwander", "Quillon", date(1975, 7, 5)),  # different DOB
    ]
    assert [r.row_number for r in find_duplicates(plan.rows, existing)] == [2]
    assert find_duplicates(plan.rows, []) == []


def test_decode_reports_encoding_label() -> None:
    assert decode_csv_bytes(b"a,b\n") == ("a,b\n", "UTF-8")
    assert decode_csv_bytes("é\n".encode("latin-1"))[1].startswith("Latin-1")


def test_progress_is_reported_to_the_end() -> None:
    lines = [HEADER] + ["Zoë,Quillon,1980-02-01,F,FL,Leon,,,,,"] * 1200
    calls: list[tuple[int, int]] = []
    plan = read_patient_csv(
        csv_bytes(*lines), today=TODAY, progress=lambda done, total: calls.append((done, total))
    )
    assert len(plan.rows) == 1200
    assert calls == [(0, 1200), (500, 1200), (1000, 1200), (1200, 1200)]


def test_the_emergency_contact_relationship_is_imported_beside_the_contact() -> None:
    """Defect 16: a "Relationship" column is read where the emergency contact already is."""
    header = HEADER + ",emergency contact,emergency phone,relationship"
    row = GOOD_ROWS[0] + ",Tomas Varga (husband),305-555-0100,spouse"
    plan = read_patient_csv(csv_bytes(header, row), today=TODAY)
    assert plan.problems == ()
    d = plan.rows[0].demographics
    assert (d.emergency_contact_name, d.emergency_contact_relationship) == (
        "Tomas Varga (husband)", "spouse"
    )
