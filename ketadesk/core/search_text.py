"""Text folding and query parsing for the patient search box.

``fold_for_search`` gives the form that names are stored in for searching and that typed
terms are compared in: lower case, no accents, punctuation as spaces ("Zoë Ñúñez-Łukasiewicz"
-> "zoe nunez lukasiewicz"). ``parse_search_query`` decides whether the person typed a date
of birth, an MRN, phone digits or name words; the roster turns that into SQL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime

from ketadesk.core.errors import UserFacingError

# Letters that NFKD does not split into "base letter + accent", spelled the way an
# English-speaking receptionist would type them.
_EXTRA_FOLDS = {
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ı": "i",
    "ŧ": "t",
    "ŀ": "l",
    "ß": "ss",
    "ẞ": "ss",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "ĸ": "k",
    "ŋ": "ng",
    "ɨ": "i",
    "ƚ": "l",
    "ȼ": "c",
    "ɇ": "e",
    "ɍ": "r",
    "ƀ": "b",
    "ɏ": "y",
    "ƶ": "z",
}
_FOLD_TABLE = str.maketrans(_EXTRA_FOLDS)
# Apostrophes vanish so "O'Brien", "O’Brien" and "OBrien" all fold to "obrien".
_APOSTROPHES = str.maketrans("", "", "'’ʼ‘`´")

_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
# US order with slashes, dashes or dots and a 4- or 2-digit year: 11/29/1990, 11-29-90.
_US_DATE = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_US_DIGITS_DATE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{4})")  # 11291990
_MRN_PREFIX = re.compile(r"KD-?([0-9]{0,8})", re.IGNORECASE)
MRN_DIGITS = 8  # KD- and 8 digits (7 of sequence, 1 check digit)
SHORT_DIGITS = 2  # 1-2 digits typed alone search MRN endings only; 3+ phones too
_PHONEISH = re.compile(r"[0-9()+.\-\s]+")
MAX_QUERY_LENGTH = 200


def fold_for_search(text: str) -> str:
    """Return ``text`` case-folded, without accents, with punctuation turned into single spaces.

    "Zoë" -> "zoe", "Łukasiewicz" -> "lukasiewicz", "Straße" -> "strasse",
    "Ñúñez-Łukasiewicz" -> "nunez lukasiewicz", "O'Brien" -> "obrien". Letters and digits of
    any script survive (Greek, Cyrillic, CJK), so non-Latin names remain searchable.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = without_marks.translate(_FOLD_TABLE).translate(_APOSTROPHES)
    # casefold may not reach every extra letter (e.g. capital forms): fold again after.
    folded = folded.casefold().translate(_FOLD_TABLE)
    words = "".join(ch if ch.isalnum() else " " for ch in folded)
    return " ".join(words.split())


def _today() -> date:
    return datetime.now(UTC).astimezone().date()


def _full_year(two_digits: int, today: date) -> int:
    """A date of birth is never in the future: "90" is 1990, "05" is 2005 (until 2105)."""
    year = 2000 + two_digits
    return year if year <= today.year else year - 100


def parse_search_date(text: str, today: date | None = None) -> date | None:
    """Return the date if ``text`` is exactly a date of birth as people type it, else None.

    Accepted: ISO ``YYYY-MM-DD``; US ``MM/DD/YYYY`` and ``MM/DD/YY`` (slashes, dashes or dots;
    a two-digit year is the latest such year not after ``today``). Eight bare digits
    (``11291990``) are read by ``parse_digits_date``, since they may also be a phone or MRN.
    """
    stripped = text.strip()
    match = _ISO_DATE.fullmatch(stripped)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _US_DATE.fullmatch(stripped)
        if not match:
            return None
        month, day, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
        if len(match.group(4)) == 2:
            year = _full_year(year, today or _today())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_digits_date(digits: str) -> date | None:
    """Eight digits in US order without separators (``11291990`` = 11/29/1990), else None."""
    match = _US_DIGITS_DATE.fullmatch(digits)
    if not match:
        return None
    month, day, year = (int(g) for g in match.groups())
    if year < 1850:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True)
class SearchQuery:
    """What the search box asked for. Every set criterion must match (AND).

    - ``name_terms``: folded words; each must be a prefix of a word of the folded name.
    - ``dob``: an exact date of birth.
    - ``mrn_prefix``: canonical MRN prefix (``"KD-000"``); match MRNs starting with it.
    - ``mrn_suffix``: the last digits of an MRN (``"836"`` from "836" or "KD836").
    - ``phone_digits``: digits the phone number must contain (US leading 1 removed).

    A query of bare digits is ambiguous: "0000001" may be an MRN or a phone, "836" an MRN
    ending or part of a phone, "11291990" also a date of birth. Such a query sets every
    reading that fits and ``digits_only``; the roster matches any of them (OR). One or two
    digits are only an MRN ending (every phone contains them).
    """

    text: str
    name_terms: tuple[str, ...] = ()
    dob: date | None = None
    mrn_prefix: str | None = None
    mrn_suffix: str | None = None
    phone_digits: str | None = None
    digits_only: bool = False

    @property
    def is_empty(self) -> bool:
        """True when nothing was typed: show every patient."""
        return not (
            self.name_terms or self.dob or self.mrn_prefix or self.mrn_suffix or self.phone_digits
        )


def parse_search_query(text: str) -> SearchQuery:
    """Parse what was typed into the roster search box into a ``SearchQuery``.

    Recognises a whole-query date of birth (``1980-02-01``, ``02/01/1980``, ``2/1/80``,
    ``02011980``), an MRN, its prefix or its last digits (``KD-0000001``, ``kd0000``, ``KD836``,
    ``836``), a phone number or its digits (``(305) 555-0142``, ``555-01``), and otherwise name
    words. Mixed queries ("zoe 1980-02-01") combine name words with a date or MRN. Raises
    UserFacingError only for absurdly long input.
    """
    if len(text) > MAX_QUERY_LENGTH:
        raise UserFacingError(f"Search text is limited to {MAX_QUERY_LENGTH} characters.")
    stripped = " ".join(text.split())
    if not stripped:
        return SearchQuery(text="")

    whole_date = parse_search_date(stripped)
    if whole_date is not None:
        return SearchQuery(text=stripped, dob=whole_date)

    if _PHONEISH.fullmatch(stripped):
        digits = re.sub(r"[^0-9]", "", stripped)
        if digits:
            if len(digits) == 11 and digits.startswith("1"):
                digits = digits[1:]
            if digits != stripped:  # punctuation or spaces: a phone number
                return SearchQuery(text=stripped, phone_digits=digits)
            return _bare_digits_query(stripped)

    name_terms: list[str] = []
    dob: date | None = None
    mrn_prefix: str | None = None
    mrn_suffix: str | None = None
    for token in stripped.split(" "):
        token_date = parse_search_date(token)
        if token_date is not None and dob is None:
            dob = token_date
            continue
        mrn_match = _MRN_PREFIX.fullmatch(token)
        if mrn_match and mrn_prefix is None and mrn_suffix is None:
            typed = mrn_match.group(1)
            if typed and not typed.startswith("0") and len(typed) < MRN_DIGITS:
                mrn_suffix = typed  # "KD836": the significant digits, zeros left out
                continue
            if typed or "-" in token:
                mrn_prefix = "KD-" + typed
                continue
        name_terms.extend(fold_for_search(token).split())
    return SearchQuery(
        text=stripped,
        name_terms=tuple(name_terms),
        dob=dob,
        mrn_prefix=mrn_prefix,
        mrn_suffix=mrn_suffix,
    )


def _bare_digits_query(digits: str) -> SearchQuery:
    """Digits alone: an MRN (its start when zero-padded, else its ending), a phone (3+
    digits) and, for eight digits in US order, a date of birth; any may match."""
    mrn_prefix = mrn_suffix = None
    if len(digits) <= MRN_DIGITS:
        if len(digits) == MRN_DIGITS or (digits.startswith("0") and len(digits) > SHORT_DIGITS):
            mrn_prefix = "KD-" + digits
        else:
            mrn_suffix = digits
    return SearchQuery(
        text=digits,
        dob=parse_digits_date(digits),
        mrn_prefix=mrn_prefix,
        mrn_suffix=mrn_suffix,
        phone_digits=digits if len(digits) > SHORT_DIGITS else None,
        digits_only=True,
    )
