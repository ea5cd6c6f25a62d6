from __future__ import annotations

from datetime import time

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.time_of_day import parse_time_of_day


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("14:05", time(14, 5)), ("9:30", time(9, 30)), ("0930", time(9, 30)),
        ("2:05 pm", time(14, 5)), ("2 PM", time(14, 0)), ("12 am", time(0, 0)),
        ("12:15 p.m.", time(12, 15)), (" 07:45 ", time(7, 45)),
    ],
)
def test_times_are_read_as_people_type_them(typed: str, meant: time) -> None:
    assert parse_time_of_day(typed) == meant


@pytest.mark.parametrize(
    ("typed", "words"),
    [("14", "HH:MM"), ("25:00", "does not exist"), ("9:75", "does not exist"),
     ("13 pm", "1 to 12"), ("noonish", "HH:MM"), ("", "HH:MM")],
)
def test_unreadable_times_are_refused_in_words(typed: str, words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        parse_time_of_day(typed)
