"""Two people saved the same record: what differs, and how to merge it field by field.

A form remembers what it showed (the *base*); when saving finds that someone else saved the
record since (its version moved on), the form holds *mine* (what was typed) and the database
holds *theirs*. Each field where mine and theirs differ is offered side by side. The default
choice keeps every field this user changed and takes every field they did not touch, so a
merge loses nobody's work unless both changed the same field (then the user decides).

Values are the form's text, exactly as shown or typed (no units are converted here).

Every editable record works this way (patient details, protocol drafts, practice settings):
storage refuses a save over a newer version with a ``RecordChangedError`` naming who saved it
and when; the form compares, merges and saves again over the version it was shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ketadesk.core.errors import UserFacingError


class RecordChangedError(UserFacingError):
    """Someone saved this record after it was shown here; nothing of this save was stored.

    ``changed_by`` is the full name of whoever saved last (None: not recorded), ``changed_at``
    when (UTC). Each kind of record adds the record as stored now (``current``)."""

    def __init__(self, message: str, changed_by: str | None, changed_at: datetime) -> None:
        self.changed_by = changed_by
        self.changed_at = changed_at
        super().__init__(message)

    @property
    def who(self) -> str:
        """The saver's name for a sentence ("Someone else" when not recorded)."""
        return self.changed_by or "Someone else"


class Choice(StrEnum):
    """Which side's value a field keeps."""

    MINE = "mine"
    THEIRS = "theirs"


@dataclass(frozen=True)
class FieldDifference:
    """One field whose typed value (``mine``) differs from the stored one (``theirs``)."""

    name: str
    label: str
    base: str
    mine: str
    theirs: str

    @property
    def changed_by_me(self) -> bool:
        return self.mine != self.base

    @property
    def changed_by_them(self) -> bool:
        return self.theirs != self.base

    @property
    def changed_by_both(self) -> bool:
        """Both changed the field, differently: only the user can say which is right."""
        return self.changed_by_me and self.changed_by_them

    @property
    def suggested(self) -> Choice:
        """Keep what this user typed; take theirs where this user left the field alone."""
        return Choice.MINE if self.changed_by_me else Choice.THEIRS


def differing_fields(
    base: Mapping[str, str],
    mine: Mapping[str, str],
    theirs: Mapping[str, str],
    labels: Sequence[tuple[str, str]],
) -> tuple[FieldDifference, ...]:
    """The fields, in the order of ``labels`` ((name, label) pairs), whose typed value differs
    from the stored one. A field missing from a mapping counts as empty text."""
    found = []
    for name, label in labels:
        mine_value, theirs_value = mine.get(name, ""), theirs.get(name, "")
        if mine_value != theirs_value:
            found.append(
                FieldDifference(name, label, base.get(name, ""), mine_value, theirs_value)
            )
    return tuple(found)


def theirs_as_shown(
    base_stored: Mapping[str, str], base_shown: Mapping[str, str], stored: Mapping[str, str]
) -> dict[str, str]:
    """The stored values in the form's own spelling: a field they left alone (its stored text
    is the one this form loaded) shows as the form showed it, so a form that tidies a value
    on display (a phone number, a number's decimals) never counts as their change."""
    names = set(base_stored) | set(stored)
    return {
        name: base_shown.get(name, "")
        if stored.get(name, "") == base_stored.get(name, "")
        else stored.get(name, "")
        for name in names
    }


def suggested_choices(differences: Sequence[FieldDifference]) -> dict[str, Choice]:
    """The starting choice of every differing field (see ``FieldDifference.suggested``)."""
    return {d.name: d.suggested for d in differences}


def merged_values(
    mine: Mapping[str, str],
    differences: Sequence[FieldDifference],
    choices: Mapping[str, Choice],
) -> dict[str, str]:
    """What the form holds after the merge: everything typed, with ``theirs`` put back in each
    differing field chosen so. A differing field without a choice keeps its suggestion."""
    merged = dict(mine)
    for difference in differences:
        choice = choices.get(difference.name, difference.suggested)
        merged[difference.name] = (
            difference.theirs if choice is Choice.THEIRS else difference.mine
        )
    return merged
