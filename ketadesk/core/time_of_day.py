"""Reading a time of day as people type it: 24-hour "14:05", or "2:05 pm", "2 pm", "1405"."""

from __future__ import annotations

import re
from datetime import time

from ketadesk.core.errors import UserFacingError

TIME_HINT = "Enter the time as HH:MM (24-hour, e.g. 14:05) or with am/pm (2:05 pm)."
_TIME = re.compile(
    r"^(?P<hour>\d{1,2})(?::?(?P<minute>\d{2}))?\s*(?P<half>[ap]\.?\s*m\.?)?$", re.IGNORECASE
)


def parse_time_of_day(text: str) -> time:
    """The time of day ``text`` names (hours and minutes, no zone); UserFacingError in words.

    Without am/pm the hour is read on the 24-hour clock, and minutes are required ("14:05",
    "1405"); with am/pm, "2 pm" is 14:00 and "12 am" is midnight.
    """
    match = _TIME.match(text.strip())
    if match is None:
        raise UserFacingError(TIME_HINT)
    hour = int(match["hour"])
    minute = int(match["minute"] or 0)
    half = (match["half"] or "").lower()
    if not half and match["minute"] is None:
        raise UserFacingError(TIME_HINT)
    if half:
        if not 1 <= hour <= 12:
            raise UserFacingError("With am/pm the hour must be 1 to 12. " + TIME_HINT)
        hour = hour % 12 + (12 if half.startswith("p") else 0)
    if hour > 23 or minute > 59:
        raise UserFacingError("That time does not exist. " + TIME_HINT)
    return time(hour, minute)
