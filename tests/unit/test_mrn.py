from __future__ import annotations

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import (
    format_mrn,
    is_valid_mrn,
    luhn_check_digit,
    mrn_sequence_number,
    normalise_mrn,
)


def test_format_mrn_pads_and_appends_luhn_digit() -> None:
    assert format_mrn(1) == "KD-00000018"
    assert format_mrn(9_999_999) == "KD-99999997"
    assert format_mrn(1234567) == "KD-12345674"


def test_luhn_check_digit_matches_the_classic_example() -> None:
    # Standard worked example: 7992739871 has check digit 3.
    assert luhn_check_digit("7992739871") == 3


@pytest.mark.parametrize("number", [0, -5, 10_000_000])
def test_format_mrn_refuses_out_of_range(number: int) -> None:
    with pytest.raises(ValueError):
        format_mrn(number)


def test_every_single_digit_typo_is_detected() -> None:
    mrn = format_mrn(4_203_117)
    digits = mrn[3:]
    for position in range(len(digits)):
        for replacement in "0123456789":
            if replacement == digits[position]:
                continue
            typo = "KD-" + digits[:position] + replacement + digits[position + 1 :]
            assert not is_valid_mrn(typo), typo


def test_adjacent_swaps_are_detected_except_09_90() -> None:
    mrn = format_mrn(1_357_246)
    digits = mrn[3:]
    for position in range(len(digits) - 1):
        a, b = digits[position], digits[position + 1]
        if a == b or {a, b} == {"0", "9"}:
            continue
        swapped = digits[:position] + b + a + digits[position + 2 :]
        assert not is_valid_mrn("KD-" + swapped)


@pytest.mark.parametrize(
    "text", ["", "KD-0000001", "kd-00000018", "KD00000018", "KD-000000018", "KD-00000000", "X"]
)
def test_is_valid_mrn_is_strict(text: str) -> None:
    assert not is_valid_mrn(text)


def test_normalise_mrn_accepts_typed_variants() -> None:
    assert normalise_mrn(" kd 0000001-8 ") == "KD-00000018"
    assert normalise_mrn("KD00000018") == "KD-00000018"


def test_normalise_mrn_explains_wrong_check_digit() -> None:
    with pytest.raises(UserFacingError, match="mistyped"):
        normalise_mrn("KD-00000019")
    with pytest.raises(UserFacingError, match="KD- followed by 8 digits"):
        normalise_mrn("12345")


def test_sequence_number_round_trips() -> None:
    for number in (1, 42, 9_999_999):
        assert mrn_sequence_number(format_mrn(number)) == number
