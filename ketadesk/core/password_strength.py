"""How hard a new password would be to guess, in plain words (zxcvbn's estimate).

The same rule serves log-in passwords and PDF passwords: zxcvbn scores a password from 0
(guessed at once) to 4 (very hard), counting the user's own name, the practice's name and
the program's name as easy guesses. A score below ``MIN_SCORE`` is refused with zxcvbn's
own warning and suggestions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

#: The lowest acceptable zxcvbn score (3 = "safely unguessable": about 10^10 guesses).
MIN_SCORE = 3
MIN_LENGTH = 10
#: zxcvbn's work grows with length; past this many characters only the start is scored
#: (a password this long is not refused for its tail).
SCORED_CHARACTERS = 72
MAX_LENGTH = 1024
PROGRAM_WORDS = ("ketadesk", "keta", "desk", "ketamine")


def password_weakness(
    password: str,
    *,
    user_name: str = "",
    practice_name: str = "",
    current_password: str | None = None,
    extra_words: Iterable[str] = (),
    what: str = "password",
) -> str | None:
    """A sentence saying why ``password`` may not be used, or None when it is strong enough.

    ``what`` names the password in the message ("password", "PDF password").
    """
    if len(password) < MIN_LENGTH:
        return f"The {what} must be at least {MIN_LENGTH} characters long."
    if len(password) > MAX_LENGTH:
        return f"The {what} must be at most {MAX_LENGTH} characters long."
    if password.strip() != password:
        return f"The {what} must not start or end with a space."
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        return f"The {what} must not contain control characters (such as tab or new line)."
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in password):
        return f"The {what} contains a character that cannot be stored; type it again."
    if user_name and password.casefold() == user_name.casefold():
        return f"The {what} must not be the same as the user name."
    if current_password is not None and password == current_password:
        return f"The new {what} must be different from the current one."
    inputs = [w for w in (user_name, practice_name, *PROGRAM_WORDS, *extra_words) if w]
    # Names are also offered word by word ("Quill Family Practice" -> "quill", ...; a user
    # name "rowan.quill" or "r_quill" -> "rowan", "quill").
    inputs += [part for w in list(inputs) for part in re.split(r"[\s._-]+", w) if part]
    result = zxcvbn(password[:SCORED_CHARACTERS], user_inputs=inputs)
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    hints = [str(feedback.get("warning") or "").strip()]
    hints += [str(s).strip() for s in feedback.get("suggestions") or []]
    advice = " ".join(h if h.endswith(".") else h + "." for h in hints if h)
    return f"That {what} is too easy to guess. " + (
        advice or "A few unrelated words make a strong one."
    )
