"""Two people saved the same record: what differs, and how to merge it field by field.

A form remembers what it showed (the *base*); when saving finds that someone else saved the
record since (its version moved on), the form holds *mine* (what was typed) and the database
holds *theirs*. Each field where mine and theirs differ is offered side by side. The default
choice keeps every field this user changed and takes every field they did not touch, so a
merge loses nobody's work unless both changed the same field (then the user decides).

Values are the form's text, exactly as shown or typed (no units are converted here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


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
