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
from datetime import date

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
_US_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_MRN_PREFIX = re.compile(r"KD-?([0-9]{0,8})", re.IGNORECASE)
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


def parse_search_date(text: str) -> date | None:
    """Return the date if ``text`` is exactly ``YYYY-MM-DD`` or US ``MM/DD/YYYY``, else None."""
    stripped = text.strip()
    match = _ISO_DATE.fullmatch(stripped)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _US_DATE.fullmatch(stripped)
        if not match:
            return None
        month, day, year = (int(g) for g in match.groups())
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
    - ``phone_digits``: digits the phone number must contain (US leading 1 removed).

    A query of bare digits (e.g. ``"0000001"``) sets both ``mrn_prefix`` and ``phone_digits``;
    the roster should match either of those two (OR) for such a query (``digits_only`` is True).
    """

    text: str
    name_terms: tuple[str, ...] = ()
    dob: date | None = None
    mrn_prefix: str | None = None
    phone_digits: str | None = None
    digits_only: bool = False

    @property
    def is_empty(self) -> bool:
        """True when nothing was typed: show every patient."""
        return not (self.name_terms or self.dob or self.mrn_prefix or self.phone_digits)


def parse_search_query(text: str) -> SearchQuery:
    """Parse what was typed into the roster search box into a ``SearchQuery``.

    Recognises a whole-query date of birth (``1980-02-01`` or ``02/01/1980``), an MRN or MRN
    prefix (``KD-0000001``, ``kd0000``), a phone number or its digits (``(305) 555-0142``,
    ``555-01``), and otherwise name words. Mixed queries ("zoe 1980-02-01") combine name words
    with a date or MRN. Raises UserFacingError only for absurdly long input.
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
            only_digits = digits == stripped
            mrn = f"KD-{digits}" if only_digits and len(digits) <= 8 else None
            return SearchQuery(
                text=stripped, phone_digits=digits, mrn_prefix=mrn, digits_only=only_digits
            )

    name_terms: list[str] = []
    dob: date | None = None
    mrn_prefix: str | None = None
    for token in stripped.split(" "):
        token_date = parse_search_date(token)
        if token_date is not None and dob is None:
            dob = token_date
            continue
        mrn_match = _MRN_PREFIX.fullmatch(token)
        if mrn_match and mrn_prefix is None and (mrn_match.group(1) or "-" in token):
            mrn_prefix = "KD-" + mrn_match.group(1)
            continue
        name_terms.extend(fold_for_search(token).split())
    return SearchQuery(text=stripped, name_terms=tuple(name_terms), dob=dob, mrn_prefix=mrn_prefix)
