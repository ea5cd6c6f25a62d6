"""Patient demographics: the draft a form or import fills in, and the checks it must pass.

Everything here is pure: no database, no Qt. ``validate_demographics`` returns every problem
at once (so a form can mark all fields), ``normalise_demographics`` returns the canonical form
to store (trimmed, NFC names, ``(305) 555-0142`` phones, official county names).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from ketadesk.core.errors import UserFacingError
from ketadesk.resources import load_validated_json

ProblemLevel = Literal["error", "confirm"]

SEX_VALUES: tuple[str, ...] = ("female", "male", "intersex", "other", "unknown")
SEX_LABELS: Mapping[str, str] = {
    "female": "Female",
    "male": "Male",
    "intersex": "Intersex",
    "other": "Other",
    "unknown": "Unknown",
}
_SEX_ALIASES: Mapping[str, str] = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "i": "intersex",
    "intersex": "intersex",
    "o": "other",
    "other": "other",
    "x": "other",
    "nonbinary": "other",
    "non-binary": "other",
    "u": "unknown",
    "unknown": "unknown",
    "unk": "unknown",
    "not known": "unknown",
    "not stated": "unknown",
    "declined": "unknown",
}

PRACTICE_STATES: tuple[str, ...] = ("FL", "NJ")
_STATE_ALIASES: Mapping[str, str] = {
    "fl": "FL",
    "fla": "FL",
    "fla.": "FL",
    "florida": "FL",
    "nj": "NJ",
    "n.j.": "NJ",
    "new jersey": "NJ",
}

MAX_NAME_LENGTH = 100
MAX_ADDRESS_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_RELATIONSHIP_LENGTH = 60
MAX_AGE_YEARS = 120
#: Offered in the relationship box; anything else may be typed ("godmother", "case worker").
RELATIONSHIP_SUGGESTIONS: tuple[str, ...] = (
    "spouse", "partner", "parent", "child", "sibling", "other relative", "friend", "caregiver",
    "neighbor",
)
ADULT_AGE_YEARS = 18

OUT_OF_AREA_MESSAGE = "This practice treats patients in Florida and New Jersey only."
MINOR_CONFIRM_MESSAGE = "KetaDesk treatment is for adults; confirm to record a patient under 18."
_DATE_FORMAT_HINT = "Enter the date as MM/DD/YYYY or YYYY-MM-DD (for example 02/01/1980)."


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field. ``level`` "error" blocks saving; "confirm" needs a yes."""

    field: str
    message: str
    level: ProblemLevel = "error"


@dataclass(frozen=True)
class PatientDemographics:
    """Demographics as typed (a draft) or as normalised for storage.

    ``sex`` is one of ``SEX_VALUES``; ``state`` a two-letter code; ``county`` the official
    county name without the word "County"; empty strings mean "not given".
    """

    first_name: str
    last_name: str
    dob: date | None
    sex: str
    state: str
    county: str
    middle_name: str = ""
    phone: str = ""
    email: str = ""
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    zip: str = ""
    emergency_contact_name: str = ""
    emergency_contact_phone: str = ""
    sitter_name: str = ""
    sitter_phone: str = ""
    emergency_contact_relationship: str = ""


FIELD_LABELS: Mapping[str, str] = {
    "first_name": "First name",
    "middle_name": "Middle name",
    "last_name": "Last name",
    "dob": "Date of birth",
    "sex": "Sex",
    "phone": "Phone",
    "email": "Email",
    "address_line1": "Address",
    "address_line2": "Address line 2",
    "city": "City",
    "state": "State",
    "zip": "ZIP code",
    "county": "County",
    "emergency_contact_name": "Emergency contact name",
    "emergency_contact_phone": "Emergency contact phone",
    "emergency_contact_relationship": "Emergency contact relationship",
    "sitter_name": "Sitter name",
    "sitter_phone": "Sitter phone",
}


# --------------------------------------------------------------------------- parsers


def parse_date_input(text: str, *, today: date | None = None, is_past: bool = False) -> date:
    """Return the date typed as ``YYYY-MM-DD`` or US ``MM/DD/YYYY`` (``02/01/1980`` is 1 Feb).

    With ``today`` given, a two-digit year (``M/D/YY``) is read too: for a date that cannot
    be in the future (``is_past``, e.g. a date of birth) it is the latest such date not after
    ``today``; otherwise the one from 80 years before ``today`` to 20 years after. Without
    ``today`` a two-digit year is refused (a file being imported has no one to ask).

    Raises UserFacingError with a plain explanation for anything else (day-first dates that
    cannot be months, dates that do not exist).
    """
    stripped = text.strip()
    if not stripped:
        raise UserFacingError("Enter a date. " + _DATE_FORMAT_HINT)
    iso = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", stripped)
    us = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", stripped)
    us_short = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{2})", stripped)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    elif us:
        month, day, year = (int(g) for g in us.groups())
    elif us_short and today is not None:
        month, day, short_year = (int(g) for g in us_short.groups())
        year = _century_for(short_year, month, day, today, is_past=is_past)
    elif us_short:
        raise UserFacingError("Write the year with four digits. " + _DATE_FORMAT_HINT)
    else:
        raise UserFacingError("That is not a date KetaDesk can read. " + _DATE_FORMAT_HINT)
    if not 1 <= month <= 12:
        raise UserFacingError("The month must be 1 to 12. Dates are read month first (MM/DD/YYYY).")
    try:
        return date(year, month, day)
    except ValueError:
        raise UserFacingError(
            "That date does not exist on the calendar; check the day and the month."
        ) from None


def _century_for(short_year: int, month: int, day: int, today: date, *, is_past: bool) -> int:
    """The four-digit year for ``short_year`` (0-99) as described in ``parse_date_input``."""
    year = today.year - today.year % 100 + short_year
    if is_past:
        # Compare (month, day) rather than dates: 02/30 must still reach the calendar check.
        if (year, month, day) > (today.year, today.month, today.day):
            year -= 100
        return year
    if year > today.year + 20:
        year -= 100
    elif year < today.year - 80:
        year += 100
    return year


def age_in_years(dob: date, today: date) -> int:
    """Return completed years of age on ``today`` (a birthday on 29 Feb counts from 1 Mar)."""
    years = today.year - dob.year
    if (today.month, today.day) < (dob.month, dob.day):
        years -= 1
    return years


def normalise_phone(text: str) -> str:
    """Return a US phone number as ``(305) 555-0142``.

    Accepts 10 digits, or 11 starting with the country code 1 (``+1``), with spaces, dots,
    hyphens and brackets. Area code and exchange must start with 2-9 (the North American
    numbering plan). Raises UserFacingError otherwise.
    """
    stripped = text.strip()
    if not stripped:
        raise UserFacingError("Enter a phone number.")
    if len(stripped) > 40 or not re.fullmatch(r"\+?[0-9()\-.\s]+", stripped):
        raise UserFacingError(
            "A phone number may contain only digits, spaces, brackets, dots and hyphens."
        )
    digits = re.sub(r"[^0-9]", "", stripped)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    elif stripped.startswith("+"):
        raise UserFacingError("Only US phone numbers (+1) can be recorded.")
    if len(digits) != 10:
        raise UserFacingError("A US phone number has 10 digits, e.g. (305) 555-0142.")
    if digits[0] in "01" or digits[3] in "01":
        raise UserFacingError(
            "That is not a valid US phone number: the area code and the next three digits "
            "cannot start with 0 or 1."
        )
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def parse_sex(text: str) -> str:
    """Return one of ``SEX_VALUES`` for what was typed ("F", "Female", "male", "U", ...)."""
    key = " ".join(text.strip().casefold().split())
    if key in _SEX_ALIASES:
        return _SEX_ALIASES[key]
    raise UserFacingError("Sex must be female, male, intersex, other or unknown.")


def parse_state(text: str) -> str:
    """Return ``"FL"`` or ``"NJ"`` for what was typed; anything else is outside the practice."""
    key = " ".join(text.strip().casefold().split())
    if not key:
        raise UserFacingError("Choose the state: Florida or New Jersey.")
    if key in _STATE_ALIASES:
        return _STATE_ALIASES[key]
    raise UserFacingError(OUT_OF_AREA_MESSAGE)


# --------------------------------------------------------------------------- counties


@dataclass(frozen=True)
class _StateGeo:
    name: str
    zip_prefixes: tuple[str, ...]
    counties: tuple[str, ...]
    county_by_key: Mapping[str, str]


@lru_cache(maxsize=4096)
def _county_key(text: str) -> str:
    """Comparison key: case-, accent-, punctuation-insensitive, "County" and "Saint" folded."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    folded = re.sub(r"[^a-z0-9]+", " ", folded).strip()
    folded = re.sub(r"\s+county$", "", folded)
    folded = re.sub(r"^saint\b", "st", folded)
    return folded.replace(" ", "")


@lru_cache(maxsize=1)
def _geo() -> Mapping[str, _StateGeo]:
    document: Any = load_validated_json(
        "geo", "us_counties_fl_nj.json", schema="us_counties_fl_nj.schema.json"
    )
    result: dict[str, _StateGeo] = {}
    for code, state in document["states"].items():
        names = tuple(str(c["name"]) for c in state["counties"])
        result[code] = _StateGeo(
            name=str(state["name"]),
            zip_prefixes=tuple(str(p) for p in state["zip_prefixes"]),
            counties=names,
            county_by_key={_county_key(n): n for n in names},
        )
    return result


def counties_for_state(state: str) -> tuple[str, ...]:
    """Return the official county names of ``state`` ("FL" or "NJ"), in FIPS order."""
    geo = _geo().get(state)
    return geo.counties if geo else ()


def canonical_county(state: str, text: str) -> str | None:
    """Return the official county name for ``text`` in ``state``, or None if it is not one.

    Case-insensitive; the word "County" is optional; "Saint"/"St"/"St." and spaces, hyphens
    and dots are interchangeable ("saint johns county" -> "St. Johns", "Miami Dade" ->
    "Miami-Dade", "De Soto" -> "DeSoto"). The pre-1997 name "Dade" is not accepted.
    """
    geo = _geo().get(state)
    if geo is None:
        return None
    return geo.county_by_key.get(_county_key(text))


# --------------------------------------------------------------------------- field checks


def name_problem(text: str, *, required: bool, label: str = "The name") -> str | None:
    """Return why ``text`` is not an acceptable person's name, or None if it is fine.

    Any script is welcome: letters and combining marks, plus spaces, hyphens, apostrophes
    and full stops (for "Jr." or initials). Digits, symbols and control characters are not.
    """
    stripped = text.strip()
    if not stripped:
        return f"{label} is required." if required else None
    if len(stripped) > MAX_NAME_LENGTH:
        return f"{label} is longer than {MAX_NAME_LENGTH} characters."
    if not any(unicodedata.category(ch).startswith("L") for ch in stripped):
        return f"{label} must contain at least one letter."
    for ch in stripped:
        category = unicodedata.category(ch)
        if category[0] in "LM" or ch in " -'’‐.":
            continue
        if category[0] == "C" or category in ("Zl", "Zp"):
            return f"{label} contains an invisible control character; retype it."
        if category == "Nd":
            return f"{label} cannot contain digits."
        return f"{label} may contain only letters, spaces, hyphens, apostrophes and full stops."
    return None


_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def email_problem(text: str) -> str | None:
    """Return why ``text`` is not a plausible email address, or None (also when empty)."""
    stripped = text.strip()
    if not stripped:
        return None
    message = "That does not look like an email address (name@example.com)."
    if len(stripped) > MAX_EMAIL_LENGTH:
        return f"An email address is at most {MAX_EMAIL_LENGTH} characters."
    if stripped.count("@") != 1:
        return message
    local, domain = stripped.split("@")
    if not local or len(local) > 64 or _WHITESPACE_OR_CONTROL.search(stripped):
        return message
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return message
    if not re.fullmatch(r"[\w.!#$%&'*+/=?^`{|}~\-]+", local):
        return message
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return message
    for part in labels:
        if len(part) > 63 or part.startswith("-") or part.endswith("-"):
            return message
        if not all(ch.isalnum() or ch == "-" for ch in part):
            return message
    if not labels[-1].isalpha() or len(labels[-1]) < 2:
        return message
    return None


def zip_problem(text: str, state: str) -> str | None:
    """Return why ``text`` is not a plausible ZIP code for ``state``, or None (also when empty).

    Accepts 5 digits or ZIP+4 (``32801-1234`` or 9 digits). Florida ZIPs start 32-34,
    New Jersey ZIPs 07-08.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not re.fullmatch(r"[0-9]{5}(?:-?[0-9]{4})?", stripped):
        return "A ZIP code has 5 digits, or 9 as ZIP+4 (e.g. 32801 or 32801-1234)."
    geo = _geo().get(state)
    if geo is not None and not stripped.startswith(geo.zip_prefixes):
        starts = " or ".join(geo.zip_prefixes)
        return f"{geo.name} ZIP codes start with {starts}; check the ZIP code or the state."
    return None


def normalise_zip(text: str) -> str:
    """Return ``32801`` or ``32801-1234`` for a 5- or 9-digit ZIP (no plausibility check)."""
    digits = re.sub(r"[^0-9]", "", text)
    return f"{digits[:5]}-{digits[5:]}" if len(digits) == 9 else digits


def _text_problem(text: str, *, label: str, limit: int) -> str | None:
    if len(text.strip()) > limit:
        return f"{label} is longer than {limit} characters."
    # Line breaks and tabs are harmless here (a multi-line spreadsheet cell); they become
    # single spaces in normalise_demographics.
    if any(
        unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\t\r\n" for ch in text
    ):
        return f"{label} contains an invisible control character; retype it."
    return None


def _phone_problem(text: str) -> str | None:
    if not text.strip():
        return None
    try:
        normalise_phone(text)
    except UserFacingError as error:
        return error.message
    return None


# --------------------------------------------------------------------------- whole draft


def validate_demographics(
    draft: PatientDemographics, today: date, *, confirmed_minor: bool = False
) -> list[FieldProblem]:
    """Return every problem with ``draft`` (empty list when it may be saved).

    ``today`` is the local calendar date used for age (years). A patient under 18 gives a
    "confirm" problem unless ``confirmed_minor`` is True. Required: first and last name,
    date of birth, sex, state (FL or NJ) and county (of that state).
    """
    problems: list[FieldProblem] = []

    def add(field: str, message: str | None, level: ProblemLevel = "error") -> None:
        if message:
            problems.append(FieldProblem(field, message, level))

    add("first_name", name_problem(draft.first_name, required=True, label="First name"))
    add("middle_name", name_problem(draft.middle_name, required=False, label="Middle name"))
    add("last_name", name_problem(draft.last_name, required=True, label="Last name"))

    if draft.dob is None:
        add("dob", "Date of birth is required.")
    elif draft.dob > today:
        add("dob", "Date of birth cannot be in the future.")
    else:
        age = age_in_years(draft.dob, today)
        if age > MAX_AGE_YEARS:
            add("dob", f"Date of birth gives an age over {MAX_AGE_YEARS}; check the year.")
        elif age < ADULT_AGE_YEARS and not confirmed_minor:
            add("dob", MINOR_CONFIRM_MESSAGE, "confirm")

    if not draft.sex.strip():
        add("sex", "Sex is required (choose 'unknown' if it is not known).")
    elif draft.sex not in SEX_VALUES:
        try:
            parse_sex(draft.sex)
        except UserFacingError as error:
            add("sex", error.message)

    state: str | None = None
    try:
        state = parse_state(draft.state)
    except UserFacingError as error:
        add("state", error.message)

    if not draft.county.strip():
        add("county", "County is required.")
    elif state is not None and canonical_county(state, draft.county) is None:
        state_name = _geo()[state].name
        add("county", f"That is not one of {state_name}'s counties; check the county or the state.")

    add("phone", _phone_problem(draft.phone))
    add("email", email_problem(draft.email))
    add(
        "address_line1",
        _text_problem(draft.address_line1, label="Address", limit=MAX_ADDRESS_LENGTH),
    )
    add(
        "address_line2",
        _text_problem(draft.address_line2, label="Address line 2", limit=MAX_ADDRESS_LENGTH),
    )
    add("city", _text_problem(draft.city, label="City", limit=MAX_NAME_LENGTH))
    if state is not None:
        add("zip", zip_problem(draft.zip, state))
    elif draft.zip.strip():
        add("zip", zip_problem(draft.zip, ""))

    for who, name_field, phone_field in (
        ("Emergency contact", "emergency_contact_name", "emergency_contact_phone"),
        ("Sitter", "sitter_name", "sitter_phone"),
    ):
        name = getattr(draft, name_field)
        phone = getattr(draft, phone_field)
        add(name_field, contact_name_problem(name, label=f"{who} name"))
        add(phone_field, _phone_problem(phone))
        if name.strip() and not phone.strip():
            add(phone_field, f"{who} phone is required when a {who.lower()} is named.")
        elif phone.strip() and not name.strip():
            add(name_field, f"{who} name is required when a phone number is given.")
    relationship = draft.emergency_contact_relationship
    add("emergency_contact_relationship", relationship_problem(relationship))
    if relationship.strip() and not draft.emergency_contact_name.strip():
        add(
            "emergency_contact_name",
            "Emergency contact name is required when a relationship is given.",
        )
    return problems


def relationship_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable relationship ("spouse", "step-mother"), or None
    (also when empty): words of letters, spaces, hyphens and apostrophes, up to 60 characters."""
    if len(text.strip()) > MAX_RELATIONSHIP_LENGTH:
        return f"The relationship is longer than {MAX_RELATIONSHIP_LENGTH} characters."
    return name_problem(text, required=False, label="The relationship")


_RELATIONSHIP_NOTE = re.compile(r"^(?P<name>[^()]*?)\s*\((?P<relationship>[^()]*)\)\s*$")


def contact_name_problem(text: str, *, label: str) -> str | None:
    """Why ``text`` is not an acceptable contact name, or None: a person's name, optionally
    followed by who they are in brackets ("Maria Lopez (husband)", "J. Park (sister-in-law)")."""
    note = _RELATIONSHIP_NOTE.match(text.strip())
    if note is None:
        return name_problem(text, required=False, label=label)
    problem = name_problem(note["name"], required=True, label=label)
    if problem is None:
        problem = name_problem(
            note["relationship"], required=True, label="The relationship in brackets"
        )
    return problem


def blocking_problems(problems: list[FieldProblem]) -> list[FieldProblem]:
    """Return only the problems that stop saving (level "error")."""
    return [p for p in problems if p.level == "error"]


def _clean_name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def normalise_demographics(draft: PatientDemographics) -> PatientDemographics:
    """Return ``draft`` in stored form. Call only when ``validate_demographics`` has no errors.

    Names are trimmed and NFC-normalised (spelling and capitals kept as typed); phones become
    ``(305) 555-0142``; state a code; county the official name; ZIP ``32801`` or
    ``32801-1234``; email trimmed with a lower-case domain.
    """
    problems = blocking_problems(validate_demographics(draft, date.max, confirmed_minor=True))
    # date.max as "today" skips the age checks, which depend on the caller's today.
    problems = [p for p in problems if p.field != "dob"]
    if problems:
        raise UserFacingError("The patient details have problems; fix them before saving.")
    return normalised_valid_demographics(draft)


def normalised_valid_demographics(draft: PatientDemographics) -> PatientDemographics:
    """``normalise_demographics`` without re-checking: only for a draft that has just passed
    ``validate_demographics`` with no errors (e.g. a CSV row). Otherwise it may raise."""
    state = parse_state(draft.state)
    email = draft.email.strip()
    if email:
        local, domain = email.split("@")
        email = f"{local}@{domain.lower()}"

    def phone(text: str) -> str:
        return normalise_phone(text) if text.strip() else ""

    return replace(
        draft,
        first_name=_clean_name(draft.first_name),
        middle_name=_clean_name(draft.middle_name),
        last_name=_clean_name(draft.last_name),
        sex=draft.sex if draft.sex in SEX_VALUES else parse_sex(draft.sex),
        state=state,
        county=canonical_county(state, draft.county) or draft.county,
        phone=phone(draft.phone),
        email=email,
        address_line1=" ".join(draft.address_line1.split()),
        address_line2=" ".join(draft.address_line2.split()),
        city=" ".join(draft.city.split()),
        zip=normalise_zip(draft.zip) if draft.zip.strip() else "",
        emergency_contact_name=_clean_name(draft.emergency_contact_name),
        emergency_contact_phone=phone(draft.emergency_contact_phone),
        emergency_contact_relationship=" ".join(draft.emergency_contact_relationship.split()),
        sitter_name=_clean_name(draft.sitter_name),
        sitter_phone=phone(draft.sitter_phone),
    )
