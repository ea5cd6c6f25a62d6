"""Medical record numbers: ``KD-`` + 7 digits + 1 Luhn check digit, e.g. ``KD-00000018``.

The check digit catches every single mistyped digit and almost every swap of two
neighbouring digits, so a mistyped MRN is refused instead of opening the wrong chart.
Uniqueness is the database's job; this module only formats and checks.
"""

from __future__ import annotations

import re

from ketadesk.core.errors import UserFacingError

MRN_PREFIX = "KD-"
MRN_BODY_DIGITS = 7
MAX_MRN_NUMBER = 10**MRN_BODY_DIGITS - 1

_CANONICAL = re.compile(r"KD-[0-9]{8}")
# What people type: any case, optional hyphen or spaces, e.g. "kd 0000001 8".
_LENIENT = re.compile(r"\s*KD[\s-]*((?:[0-9][\s-]*){8})\s*", re.IGNORECASE)


def luhn_check_digit(digits: str) -> int:
    """Return the Luhn check digit (0-9) that completes ``digits`` (a string of ASCII digits)."""
    if not digits or not all("0" <= ch <= "9" for ch in digits):
        raise ValueError("luhn_check_digit needs ASCII digits")
    total = 0
    # Double every second digit counting from the right of the payload (the check
    # digit will sit to its right).
    for index, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def format_mrn(number: int) -> str:
    """Return the MRN for sequence ``number`` (1 to 9,999,999); 1 gives ``"KD-00000018"``."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError("MRN sequence number must be an int")
    if not 1 <= number <= MAX_MRN_NUMBER:
        raise ValueError(f"MRN sequence number must be between 1 and {MAX_MRN_NUMBER}")
    body = f"{number:0{MRN_BODY_DIGITS}d}"
    return f"{MRN_PREFIX}{body}{luhn_check_digit(body)}"


def is_valid_mrn(text: str) -> bool:
    """True if ``text`` is a canonical MRN (``KD-`` + 8 digits) with a valid check digit."""
    if not isinstance(text, str) or not _CANONICAL.fullmatch(text):
        return False
    body, check = text[3:-1], text[-1]
    return body != "0" * MRN_BODY_DIGITS and luhn_check_digit(body) == int(check)


def normalise_mrn(text: str) -> str:
    """Return the canonical MRN for what someone typed (``"kd 0000001-8"`` -> ``"KD-00000018"``).

    Raises UserFacingError when it is not an MRN or its check digit is wrong.
    """
    match = _LENIENT.fullmatch(text)
    if match is None:
        raise UserFacingError(
            "That is not a KetaDesk MRN. An MRN is KD- followed by 8 digits, e.g. KD-00000018."
        )
    candidate = MRN_PREFIX + re.sub(r"[\s-]", "", match.group(1))
    if not is_valid_mrn(candidate):
        raise UserFacingError(
            "That MRN's last digit does not match the others; it was probably mistyped."
        )
    return candidate


def mrn_sequence_number(mrn: str) -> int:
    """Return the sequence number inside a valid MRN (``"KD-00000018"`` -> 1)."""
    if not is_valid_mrn(mrn):
        raise ValueError("not a valid MRN")
    return int(mrn[3:-1])
