"""Reading JSON someone hands KetaDesk (a file, standard input) without letting its shape
do harm: the size is checked before reading, the nesting depth before parsing, and list
lengths and text (no lone surrogates, which cannot be printed or stored) before any work."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import IO

from ketadesk.core.errors import UserFacingError

MAX_JSON_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32
MAX_LIST_ITEMS = 10_000
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def read_capped_text(
    source: str | Path | IO[str], *, limit: int = MAX_JSON_BYTES, what: str | None = None
) -> str:
    """The text of a file (or of ``-``/a stream: standard input), refusing more than
    ``limit`` bytes before reading them all (a device such as /dev/zero is never slurped).

    ``what`` names the file in messages ("template file"); without it, "the input".
    """
    if isinstance(source, str) and source == "-":
        source = sys.stdin
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        except OSError as error:
            from ketadesk.core.os_errors import os_error_in_words

            why = os_error_in_words(error)
            if what:
                raise UserFacingError(f"Cannot read the {what} {path.name}: {why}.") from None
            if isinstance(error, FileNotFoundError):
                raise UserFacingError(f"Input file not found: {path}") from None
            raise UserFacingError(f"Could not read {path.name}: {why}.") from None
        if len(data) > limit:
            if what:
                raise UserFacingError(f"{path.name} is too large to be a {what}.")
            raise UserFacingError(_too_big(limit))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserFacingError(f"{path.name} is not a text (UTF-8) file.") from None
    text = source.read(limit + 1)
    if len(text) > limit:
        raise UserFacingError(_too_big(limit))
    return text


def _too_big(limit: int) -> str:
    return f"The input is larger than {limit // (1024 * 1024)} MB; nothing was done with it."


def parse_json_capped(text: str, *, max_depth: int = MAX_DEPTH,
                      max_items: int = MAX_LIST_ITEMS, name: str = "The input") -> object:
    """``json.loads`` after checking the nesting depth; then every list's length and every
    string is checked. Raises UserFacingError naming the problem."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise UserFacingError(
                f"{name} is nested more than {max_depth} levels deep; this is not a "
                "KetaDesk input."
            )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserFacingError(
            f"{name} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})."
        ) from None
    _check_values(value, max_items)
    return value


def _check_values(value: object, max_items: int) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                raise UserFacingError(
                    "The input holds a broken character (a lone UTF-16 surrogate such as "
                    "\\ud800); fix the text and try again."
                )
        elif isinstance(item, list):
            if len(item) > max_items:
                raise UserFacingError(
                    f"A list in the input has {len(item):,} entries; at most {max_items:,} "
                    "are accepted."
                )
            stack.extend(item)
        elif isinstance(item, dict):
            if len(item) > max_items:
                raise UserFacingError(f"An object in the input has more than {max_items:,} fields.")
            stack.extend(item.keys())
            stack.extend(item.values())


def _has_lone_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)
