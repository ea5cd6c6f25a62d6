"""The protocol form against another workstation's save (``ui/common/edit_conflict_flow``):
the version the form was loaded from, and the compare, merge and keep-typing steps of a save
that met a newer one (a draft saved or signed elsewhere meanwhile)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ketadesk.storage.protocols.draft_versions import (
    NO_VERSION_SHOWN,
    DraftChangedError,
    VersionMark,
    version_mark,
)
from ketadesk.storage.protocols.protocol_versions import ProtocolVersionInfo
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog
from ketadesk.ui.common.edit_conflict_flow import ConflictScreen, not_saved_words
from ketadesk.ui.protocol.protocol_form import ProtocolForm

if TYPE_CHECKING:
    from ketadesk.ui.protocol.protocol_editor import ProtocolEditor


def _texts_of(version: ProtocolVersionInfo) -> dict[str, str]:
    """``version`` as the protocol form would show it (a form of its own, never shown)."""
    form = ProtocolForm()
    form.load(version.protocol, version.start_date)
    texts = form.texts()
    form.deleteLater()
    return texts


class ProtocolConflicts:
    """What a protocol editor's next save names, and what happens when that moved on."""

    def __init__(self, editor: ProtocolEditor) -> None:
        self._editor = editor
        self._screen = ConflictScreen(editor, "Someone else saved this protocol", "the protocol")
        self.mark: VersionMark = NO_VERSION_SHOWN
        self._base: dict[str, str] = {}

    @property
    def dialog(self) -> EditConflictDialog | None:
        return self._screen.dialog

    def remember(self, version: ProtocolVersionInfo | None) -> None:
        """The form now shows ``version`` (None: no protocol yet): the base of the next save."""
        self.mark = version_mark(version)
        self._base = self._editor.form.texts()

    def compare_with_stored(self, error: DraftChangedError) -> None:
        """Show what differs between the form and the version stored now; nothing is saved
        until the physician chooses (Esc keeps everything typed)."""
        editor, current = self._editor, error.current
        theirs = _texts_of(current)
        signed = " (now signed)" if current.is_signed else ""
        opened = self._screen.compare(
            error,
            f"version {current.number} of this protocol{signed}",
            (self._base, editor.form.texts(), theirs),
            editor.form.labels(),
            editor.form.shown_words(),
            lambda merged: self._save_merged(current, theirs, merged),
            lambda: editor.show_note(
                not_saved_words(error, "this protocol", "press Save draft")
            ),
        )
        if not opened:  # they changed nothing the form shows: saving loses nothing of theirs
            self.mark, self._base = version_mark(current), theirs
            editor.save_draft()
            return
        editor.show_note(error.message)

    def _save_merged(
        self, current: ProtocolVersionInfo, theirs: dict[str, str], merged: dict[str, str]
    ) -> None:
        editor = self._editor
        editor.form.load(current.protocol, current.start_date)  # what only they hold
        editor.form.set_texts(merged)
        self.mark, self._base = version_mark(current), theirs
        editor.save_draft()
