"""The informed-consent text: a title and paragraphs, and the example shipped in
``resources/compliance/consent_example.json`` (marked as an example the practice must have
its counsel confirm before use)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ketadesk.core.errors import UserFacingError

TITLE_MAX = 200
PARAGRAPH_MAX = 4000
PARAGRAPHS_MAX = 60


@dataclass(frozen=True)
class ConsentText:
    title: str
    paragraphs: tuple[str, ...]
    is_example: bool = False
    example_notice: str = ""


def checked_consent_text(title: str, paragraphs: Sequence[str]) -> ConsentText:
    """A practice's own consent text, trimmed; refused when empty or too long."""
    title = title.strip()
    kept = tuple(p.strip() for p in paragraphs if p.strip())
    if not title:
        raise UserFacingError("Give the consent a title.")
    if len(title) > TITLE_MAX:
        raise UserFacingError(f"The consent title is too long (at most {TITLE_MAX} characters).")
    if not kept:
        raise UserFacingError("The consent has no text.")
    if len(kept) > PARAGRAPHS_MAX or any(len(p) > PARAGRAPH_MAX for p in kept):
        raise UserFacingError(
            f"The consent text is too long (at most {PARAGRAPHS_MAX} paragraphs of "
            f"{PARAGRAPH_MAX} characters)."
        )
    return ConsentText(title, kept)


def example_consent_text() -> ConsentText:
    """The example consent shipped with KetaDesk (``is_example`` is always true)."""
    from ketadesk.resources import load_resource_json

    data = load_resource_json("compliance", "consent_example.json")
    text = checked_consent_text(str(data["title"]), [str(p) for p in data["paragraphs"]])
    return ConsentText(text.title, text.paragraphs, True, str(data["example_notice"]))
