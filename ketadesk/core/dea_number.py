"""DEA registration numbers: shape and check digit.

A DEA number is two letters and seven digits ("AB1234563"). The first letter says what kind of
registrant it is; the second is usually the initial of the registrant's last name (``9`` is
used by some business registrants). The seventh digit is a check digit: add the 1st, 3rd and
5th digits, add twice the sum of the 2nd, 4th and 6th, and the last digit of the total must
equal the 7th digit.
"""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^[A-Z][A-Z9][0-9]{7}$")


def normalised_dea_number(text: str) -> str:
    """``text`` without spaces or dashes, in capitals (no check made)."""
    return re.sub(r"[\s-]+", "", text).upper()


def dea_check_digit(six_digits: str) -> int:
    """The check digit (0-9) for the first six digits of a DEA number."""
    if len(six_digits) != 6 or not six_digits.isascii() or not six_digits.isdigit():
        raise ValueError("dea_check_digit needs six ASCII digits")
    d = [int(c) for c in six_digits]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10


def dea_number_problem(text: str) -> str | None:
    """A sentence saying what is wrong with a DEA number, or ``None`` when it is valid."""
    number = normalised_dea_number(text)
    if not number:
        return "Enter the DEA registration number."
    if not _SHAPE.match(number):
        return "A DEA number is two letters followed by seven digits (for example AB1234563)."
    if dea_check_digit(number[2:8]) != int(number[8]):
        return (
            f"The DEA number {number} is not valid: its last digit does not match the check "
            "digit. Check it against the registration certificate."
        )
    return None


def is_valid_dea_number(text: str) -> bool:
    """True when ``text`` has the shape of a DEA number and its check digit matches."""
    return dea_number_problem(text) is None
