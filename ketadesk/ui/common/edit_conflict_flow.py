"""One form's way through a save that met someone else's newer version.

The form says what it loaded (``base``), what is typed (``mine``) and what is stored now
(``theirs``), all as the form's own text. When they changed nothing this form shows, the form
takes the stored version as its new base and saves at once (nothing of theirs is lost). Else
the conflict screen opens; Save chosen values hands the merged text back to the form (which
shows it and saves it through its normal checks and audit), Cancel (Esc) leaves everything
typed in place. Nothing is written until the form saves again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from PySide6.QtWidgets import QWidget

from ketadesk.core.edit_conflicts import RecordChangedError, differing_fields, merged_values
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog


class ConflictScreen:
    """The conflict screen of one form (``parent``); ``dialog`` is the open screen, if any."""

    def __init__(self, parent: QWidget, title: str, back_to: str) -> None:
        self._parent = parent
        self._title = title
        self._back_to = back_to
        self.dialog: EditConflictDialog | None = None

    def compare(
        self,
        error: RecordChangedError,
        what: str,
        values: tuple[Mapping[str, str], Mapping[str, str], Mapping[str, str]],
        labels: Sequence[tuple[str, str]],
        shown: Mapping[str, Mapping[str, str]],
        on_merged: Callable[[dict[str, str]], None],
        on_kept: Callable[[], None],
    ) -> bool:
        """Open the screen over ``values`` = (base, mine, theirs); False (nothing opened) when
        they changed none of these fields. ``on_merged`` gets every typed value with the
        chosen ones of theirs put back; ``on_kept`` runs after Cancel."""
        base, mine, theirs = values
        differences = differing_fields(base, mine, theirs, labels)
        if not any(d.changed_by_them for d in differences):
            return False
        dialog = EditConflictDialog(
            self._title, what, self._back_to, error.changed_by, error.changed_at, differences,
            shown, self._parent,
        )
        self.dialog = dialog
        typed = dict(mine)

        def merged() -> None:
            self.dialog = None
            on_merged(merged_values(typed, dialog.differences, dialog.choices()))

        def kept() -> None:
            self.dialog = None
            on_kept()

        dialog.accepted.connect(merged)
        dialog.rejected.connect(kept)
        dialog.open()
        return True


def not_saved_words(error: RecordChangedError, what: str, again: str) -> str:
    """The banner after Cancel: "Not saved: NAME saved WHAT meanwhile. …"."""
    return (
        f"Not saved: {error.who} saved {what} meanwhile. What you typed is still here; "
        f"{again} to compare again."
    )
