"""Reading a patient roster CSV exported from another system, without touching the database.

``read_patient_csv`` turns the file's bytes into a ``CsvImportPlan``: the rows that passed every
check (as normalised ``PatientDemographics``), a problem list naming each bad row by its
spreadsheet row number (the header is row 1), and groups of rows that look like the same
person. The importer decides what to write; nothing here merges, drops or guesses silently.
Messages never quote the cell values, so they are safe to log.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from ketadesk.core.csv_encoding import decode_csv_bytes
from ketadesk.core.demographics import (
    FIELD_LABELS,
    PatientDemographics,
    blocking_problems,
    normalised_valid_demographics,
    parse_date_input,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.measurements import parse_weight
from ketadesk.core.mrn import normalise_mrn
from ketadesk.core.search_text import fold_for_search

MAX_FIELD_CHARS = 1000
MAX_COLUMNS = 200
PROGRESS_EVERY_ROWS = 500
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

REQUIRED_FIELDS: tuple[str, ...] = ("first_name", "last_name", "dob", "sex", "state", "county")
OPTIONAL_FIELDS: tuple[str, ...] = (
    "mrn",
    "middle_name",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "zip",
    "weight_kg",
    "weight_lb",
    "emergency_contact_name",
    "emergency_contact_phone",
    "emergency_contact_relationship",
    "sitter_name",
    "sitter_phone",
)
IMPORT_FIELDS: tuple[str, ...] = REQUIRED_FIELDS + OPTIONAL_FIELDS

IMPORT_FIELD_LABELS: Mapping[str, str] = {
    **FIELD_LABELS,
    "mrn": "MRN",
    "weight_kg": "Weight (kg)",
    "weight_lb": "Weight (lb)",
}

# Header spellings, compared after _header_key() (lower case, letters and digits only).
_HEADER_ALIASES: Mapping[str, tuple[str, ...]] = {
    "mrn": (
        "mrn",
        "medicalrecordnumber",
        "medicalrecord",
        "recordnumber",
        "chartnumber",
        "patientid",
        "patientnumber",
        "mrnumber",
    ),
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "patientfirstname"),
    "middle_name": ("middlename", "middle", "middleinitial", "mi"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname", "patientlastname"),
    "dob": ("dob", "dateofbirth", "birthdate", "birthday", "birthdt", "dobmmddyyyy", "patientdob"),
    "sex": ("sex", "gender", "sexatbirth", "administrativesex"),
    "state": ("state", "statecode", "stateabbreviation", "stateprovince"),
    "county": ("county", "countyname", "countyofresidence"),
    "phone": (
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "mobilephone",
        "cell",
        "cellphone",
        "homephone",
        "primaryphone",
        "contactnumber",
    ),
    "email": ("email", "emailaddress", "mail"),
    "address_line1": (
        "address",
        "address1",
        "addressline1",
        "street",
        "streetaddress",
        "homeaddress",
    ),
    "address_line2": ("address2", "addressline2", "apt", "suite", "unit", "aptsuite"),
    "city": ("city", "town", "cityortown"),
    "zip": ("zip", "zipcode", "postalcode", "postcode", "zip5"),
    "weight_kg": ("weightkg", "weightinkg", "weightkgs", "wtkg", "kg"),
    "weight_lb": (
        "weightlb",
        "weightlbs",
        "weightinlb",
        "weightinlbs",
        "weightpounds",
        "wtlb",
        "wtlbs",
        "lbs",
    ),
    "emergency_contact_name": ("emergencycontact", "emergencycontactname", "emergencyname"),
    "emergency_contact_phone": (
        "emergencycontactphone",
        "emergencyphone",
        "emergencycontactnumber",
    ),
    "emergency_contact_relationship": (
        "emergencycontactrelationship",
        "emergencyrelationship",
        "emergencycontactrelation",
        "relationship",
    ),
    "sitter_name": ("sitter", "sittername", "monitorname", "athomesitter"),
    "sitter_phone": ("sitterphone", "monitorphone"),
}
_FIELD_BY_HEADER: Mapping[str, str] = {
    alias: name for name, aliases in _HEADER_ALIASES.items() for alias in aliases
}
# Headers that clearly hold something we cannot import safely: explained, not guessed.
_UNSUPPORTED_HEADERS: Mapping[str, str] = {
    "weight": "its unit is not stated; map it to Weight (kg) or Weight (lb)",
    "name": "full names cannot be split safely; export first and last names separately",
    "patientname": "full names cannot be split safely; export first and last names separately",
    "fullname": "full names cannot be split safely; export first and last names separately",
    "age": "KetaDesk needs the date of birth, not the age",
}

# "KD" + 8 digits in any spacing is meant as a KetaDesk MRN, so its check digit is verified;
# any other value in the MRN column is another system's identifier.
_KETADESK_MRN_SHAPE = re.compile(r"KD[\s-]*(?:[0-9][\s-]*){8}", re.IGNORECASE)

DuplicateKey = tuple[str, str, date]


@dataclass(frozen=True)
class CsvRow:
    """A row that passed every check, ready to import.

    ``row_number`` is the row as a spreadsheet shows it (header = 1). ``weight_kg`` is in
    kilograms (converted if the file gave pounds). ``mrn`` is a valid KetaDesk MRN from the
    file, if it had one; ``external_id`` is another system's identifier from the MRN column.
    """

    row_number: int
    demographics: PatientDemographics
    weight_kg: float | None = None
    mrn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class CsvRowProblem:
    """One problem in one row: spreadsheet row number, the KetaDesk field, the column, why."""

    row_number: int
    field: str
    column: str
    message: str

    def describe(self) -> str:
        """One line for a report: ``Row 7, Date of birth (column "DOB"): ...``."""
        where = f'{IMPORT_FIELD_LABELS.get(self.field, self.field)} (column "{self.column}")'
        if not self.column:
            where = IMPORT_FIELD_LABELS.get(self.field, "Row")
        return f"Row {self.row_number}, {where}: {self.message}"


@dataclass(frozen=True)
class DuplicateGroup:
    """Rows that share a folded first name, last name and date of birth."""

    row_numbers: tuple[int, ...]


@dataclass(frozen=True)
class CsvFileInfo:
    """What ``inspect_patient_csv`` learned about a file before any row is checked."""

    encoding: str
    delimiter: str
    headers: tuple[str, ...]
    suggested_mapping: Mapping[str, str]
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CsvImportPlan:
    """The result of reading a roster CSV: good rows, problems, duplicates, file notes."""

    encoding: str
    delimiter: str
    column_mapping: Mapping[str, str]
    rows: tuple[CsvRow, ...]
    problems: tuple[CsvRowProblem, ...]
    duplicates_in_file: tuple[DuplicateGroup, ...]
    data_row_count: int
    ignored_columns: tuple[str, ...] = ()
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def invalid_row_numbers(self) -> tuple[int, ...]:
        """Spreadsheet row numbers with at least one problem, in order."""
        return tuple(sorted({p.row_number for p in self.problems}))

    @property
    def has_problems(self) -> bool:
        """True when at least one row would not import."""
        return bool(self.problems)


# --------------------------------------------------------------------------- parsing


def _header_key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _sniff_delimiter(text: str) -> str:
    """Pick the delimiter that splits the header line into the most columns (comma on a tie)."""
    header_line = ""
    for line in text.splitlines():
        if line.strip():
            header_line = line
            break
    counts = {d: 0 for d in DELIMITERS}
    in_quotes = False
    for ch in header_line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_records(text: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error:
        raise UserFacingError(
            f"Row {reader.line_num} of the file could not be read (a very long value or broken "
            "quotation marks). Check that row in your spreadsheet and export the file again."
        ) from None
    return records


def _header_row(records: list[list[str]]) -> tuple[int, tuple[str, ...]]:
    for index, record in enumerate(records):
        if any(cell.strip() for cell in record):
            headers = tuple(cell.strip() for cell in record)
            if len(headers) > MAX_COLUMNS:
                raise UserFacingError(
                    f"The header row has more than {MAX_COLUMNS} columns; this does not look "
                    "like a patient list."
                )
            if any(len(h) > 200 for h in headers):
                raise UserFacingError(
                    "The first row does not look like column headings (a heading is very "
                    "long). The file needs a header row such as first_name,last_name,dob."
                )
            return index, headers
    raise UserFacingError("The file is empty.")


def suggest_column_mapping(headers: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Return ({field: header}, notices) for headers recognised by name or common alias.

    A field claimed by two headers is left out and explained in the notices.
    """
    mapping: dict[str, str] = {}
    clashes: dict[str, list[str]] = {}
    notices: list[str] = []
    for header in headers:
        key = _header_key(header)
        name = _FIELD_BY_HEADER.get(key)
        if name is None:
            if key in _UNSUPPORTED_HEADERS:
                notices.append(f'Column "{header}" is not imported: {_UNSUPPORTED_HEADERS[key]}.')
            continue
        if name in mapping:
            clashes.setdefault(name, [mapping[name]]).append(header)
        else:
            mapping[name] = header
    for name, headers_for_field in clashes.items():
        del mapping[name]
        listed = ", ".join(f'"{h}"' for h in headers_for_field)
        notices.append(
            f"Columns {listed} all look like {IMPORT_FIELD_LABELS[name]}; choose one in the "
            "column mapping."
        )
    if "weight_kg" in mapping and "weight_lb" in mapping:
        notices.append(
            "The file has weights in both kg and lb; the kg column is used where both are filled."
        )
    return mapping, notices


def inspect_patient_csv(data: bytes) -> CsvFileInfo:
    """Return encoding, delimiter, headers and a suggested mapping, for the mapping step.

    Raises UserFacingError for empty, binary or undecodable files.
    """
    text, encoding = decode_csv_bytes(data)
    delimiter = _sniff_delimiter(text)
    _, headers = _header_row(_read_records(text, delimiter))
    mapping, notices = suggest_column_mapping(headers)
    return CsvFileInfo(encoding, delimiter, headers, mapping, tuple(notices))


def _check_mapping(mapping: Mapping[str, str], headers: tuple[str, ...]) -> dict[str, int]:
    """Return {field: column index} for a mapping, refusing unknown fields and headers."""
    positions: dict[str, int] = {}
    used: dict[int, str] = {}
    for name, header in mapping.items():
        if name not in IMPORT_FIELDS:
            raise UserFacingError(f"The column mapping names an unknown field ({name!r}).")
        if not header:
            continue
        if header not in headers:
            raise UserFacingError(
                f'The column mapping uses a column "{header[:60]}" that is not in the file.'
            )
        index = headers.index(header)
        if index in used:
            raise UserFacingError(
                f'Column "{header[:60]}" is mapped to both {IMPORT_FIELD_LABELS[used[index]]} '
                f"and {IMPORT_FIELD_LABELS[name]}."
            )
        used[index] = name
        positions[name] = index
    missing = [IMPORT_FIELD_LABELS[f] for f in REQUIRED_FIELDS if f not in positions]
    if missing:
        raise UserFacingError(
            "The file has no column for: " + ", ".join(missing) + ". Rename the columns in "
            "the file (e.g. first_name, last_name, dob, sex, state, county) or choose them in "
            "the column mapping."
        )
    return positions


def duplicate_key(first_name: str, last_name: str, dob: date) -> DuplicateKey:
    """Return the key two records share when they may be the same person.

    Names are folded (case, accents and punctuation ignored), so "Zoë Núñez" and
    "zoe nunez" with the same date of birth match.
    """
    return (fold_for_search(first_name), fold_for_search(last_name), dob)


def find_duplicates(rows: Iterable[CsvRow], existing_keys: Iterable[DuplicateKey]) -> list[CsvRow]:
    """Return the rows whose ``duplicate_key`` is among ``existing_keys`` (e.g. from the database).

    Build ``existing_keys`` with ``duplicate_key(first_name, last_name, dob)`` for each stored
    patient. Rows are returned in file order; nothing is merged.
    """
    known = set(existing_keys)
    result: list[CsvRow] = []
    for row in rows:
        d = row.demographics
        if d.dob is not None and duplicate_key(d.first_name, d.last_name, d.dob) in known:
            result.append(row)
    return result


def _row_to_plan_entry(
    row_number: int,
    cells: Mapping[str, str],
    columns: Mapping[str, str],
    today: date,
) -> tuple[CsvRow | None, list[CsvRowProblem]]:
    problems: list[CsvRowProblem] = []

    def problem(name: str, message: str) -> None:
        problems.append(CsvRowProblem(row_number, name, columns.get(name, ""), message))

    for name, value in cells.items():
        if len(value) > MAX_FIELD_CHARS:
            problem(name, f"longer than {MAX_FIELD_CHARS} characters.")
    if problems:
        return None, problems

    def cell(name: str) -> str:
        return cells.get(name, "").strip()

    dob: date | None = None
    if cell("dob"):
        try:
            dob = parse_date_input(cell("dob"))
        except UserFacingError as error:
            problem("dob", error.message)

    draft = PatientDemographics(
        first_name=cell("first_name"),
        middle_name=cell("middle_name"),
        last_name=cell("last_name"),
        dob=dob,
        sex=cell("sex"),
        state=cell("state"),
        county=cell("county"),
        phone=cell("phone"),
        email=cell("email"),
        address_line1=cell("address_line1"),
        address_line2=cell("address_line2"),
        city=cell("city"),
        zip=cell("zip"),
        emergency_contact_name=cell("emergency_contact_name"),
        emergency_contact_phone=cell("emergency_contact_phone"),
        emergency_contact_relationship=cell("emergency_contact_relationship"),
        sitter_name=cell("sitter_name"),
        sitter_phone=cell("sitter_phone"),
    )
    field_problems = validate_demographics(draft, today)
    for found in field_problems:
        if found.field == "dob" and problems:
            continue  # the date could not be read; that message is already there
        if found.level == "confirm":
            problem(
                found.field,
                "The patient is under 18; KetaDesk treatment is for adults. Add this patient "
                "from the chart, where the age can be confirmed.",
            )
        else:
            problem(found.field, found.message)

    weight_kg: float | None = None
    for name, unit in (("weight_kg", "kg"), ("weight_lb", "lb")):
        if weight_kg is None and cell(name):
            try:
                weight_kg = parse_weight(cell(name), unit)
            except UserFacingError as error:
                problem(name, error.message)

    mrn: str | None = None
    external_id: str | None = None
    raw_mrn = cell("mrn")
    if raw_mrn:
        if _KETADESK_MRN_SHAPE.fullmatch(raw_mrn):
            try:
                mrn = normalise_mrn(raw_mrn)
            except UserFacingError as error:
                problem("mrn", error.message)
        elif any(unicodedata.category(ch)[0] == "C" for ch in raw_mrn):
            problem("mrn", "contains an invisible control character.")
        else:
            external_id = raw_mrn

    if problems or blocking_problems(field_problems):
        return None, problems
    row = CsvRow(row_number, normalised_valid_demographics(draft), weight_kg, mrn, external_id)
    return row, problems


def read_patient_csv(
    data: bytes,
    *,
    today: date,
    column_mapping: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CsvImportPlan:
    """Read a roster CSV into a ``CsvImportPlan`` (nothing is written anywhere).

    ``today`` is the local calendar date used for ages. ``column_mapping`` is
    {field: header}, e.g. {"dob": "Birth Date"}, as chosen in the mapping step; when None the
    columns are recognised by name and common aliases. Weights are returned in kg.
    ``progress(done, total)`` is called every few hundred rows (counts of records after the
    header) for a progress bar; an exception it raises (e.g. to cancel) propagates.
    Raises UserFacingError for file-level problems (empty, binary or undecidable encoding,
    missing required columns); each bad row becomes a ``CsvRowProblem`` instead.
    """
    text, encoding = decode_csv_bytes(data)
    delimiter = _sniff_delimiter(text)
    records = _read_records(text, delimiter)
    header_index, headers = _header_row(records)
    notices: list[str] = []
    if encoding not in ("UTF-8", "UTF-8 (with byte-order mark)"):
        notices.append(
            f"The file was read as {encoding}. Check that accented names look right in the preview."
        )
    if column_mapping is None:
        mapping, mapping_notices = suggest_column_mapping(headers)
        notices.extend(mapping_notices)
    else:
        mapping = {k: v for k, v in column_mapping.items() if v}
    positions = _check_mapping(mapping, headers)
    columns = {name: headers[index] for name, index in positions.items()}
    used_indexes = set(positions.values())
    ignored = tuple(h for i, h in enumerate(headers) if i not in used_indexes and h)

    rows: list[CsvRow] = []
    problems: list[CsvRowProblem] = []
    data_rows = 0
    external_ids = 0
    body = records[header_index + 1 :]
    for offset, record in enumerate(body):
        row_number = header_index + offset + 2
        if progress is not None and offset % PROGRESS_EVERY_ROWS == 0:
            progress(offset, len(body))
        if not any(cell.strip() for cell in record):
            continue
        data_rows += 1
        extra = record[len(headers) :]
        if any(cell.strip() for cell in extra):
            problems.append(
                CsvRowProblem(
                    row_number,
                    "",
                    "",
                    f"has {len(record)} values but the header has {len(headers)} columns "
                    "(a stray delimiter or quotation mark?).",
                )
            )
            continue
        cells = {
            name: record[index] if index < len(record) else "" for name, index in positions.items()
        }
        row, row_problems = _row_to_plan_entry(row_number, cells, columns, today)
        problems.extend(row_problems)
        if row is not None:
            rows.append(row)
            external_ids += row.external_id is not None
    if progress is not None:
        progress(len(body), len(body))
    if data_rows == 0:
        raise UserFacingError("The file has a header row but no patients.")
    if external_ids:
        notices.append(
            f"{external_ids} row(s) carry another system's record number in the "
            f'"{columns["mrn"]}" column; KetaDesk gives each patient a new MRN and keeps the '
            "old number for reference."
        )

    groups: dict[DuplicateKey, list[int]] = {}
    for row in rows:
        d = row.demographics
        if d.dob is not None:
            key = duplicate_key(d.first_name, d.last_name, d.dob)
            groups.setdefault(key, []).append(row.row_number)
    duplicates = tuple(DuplicateGroup(tuple(n)) for n in groups.values() if len(n) > 1)
    return CsvImportPlan(
        encoding=encoding,
        delimiter=delimiter,
        column_mapping=columns,
        rows=tuple(rows),
        problems=tuple(problems),
        duplicates_in_file=duplicates,
        data_row_count=data_rows,
        ignored_columns=ignored,
        notices=tuple(notices),
    )
