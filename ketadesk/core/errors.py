"""Errors whose message is meant for the person at the keyboard."""

from __future__ import annotations


class UserFacingError(Exception):
    """An expected failure with a plain-English message (wrong password, bad file, ...).

    The CLI prints ``str(error)`` as one line on stderr and exits with ``exit_code``;
    the UI shows it in a dialog. It never carries patient data or a traceback.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])
