"""Practice settings, built from the one registry of settings and their defaults.

Save stores the settings changed here over the values shown; one changed on another
workstation meanwhile opens the conflict screen (``ui/common/edit_conflict_flow``) for the
settings this user may change. Those they may not change simply show the stored value.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.core.settings import SETTINGS, SettingSpec
from ketadesk.storage.practice.settings_store import (
    SettingsChangedError,
    get_setting,
    set_settings,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import lay_out_dialog
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog
from ketadesk.ui.common.edit_conflict_flow import ConflictScreen, not_saved_words

READ_ONLY_NOTE = (
    "You can read the practice settings here; only users who manage users (the practice's "
    "physicians) may change them."
)


def _editor_for(spec: SettingSpec, value: Any) -> QWidget:
    if spec.choices:
        combo = QComboBox()
        labels = spec.choice_labels or spec.choices
        for choice, label in zip(spec.choices, labels, strict=True):
            combo.addItem(label, choice)
        combo.setCurrentIndex(max(combo.findData(str(value)), 0))
        combo.setAccessibleName(spec.label)
        return combo
    if isinstance(spec.default, int) and not isinstance(spec.default, bool):
        box = QSpinBox()
        box.setRange(
            spec.minimum if spec.minimum is not None else -1_000_000,
            spec.maximum if spec.maximum is not None else 1_000_000,
        )
        box.setValue(int(value))
        box.setAccessibleName(spec.label)
        return box
    edit = QLineEdit("" if value is None else str(value))
    edit.setAccessibleName(spec.label)
    return edit


def _show_value(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QComboBox):
        widget.setCurrentIndex(max(widget.findData(str(value)), 0))
    elif isinstance(widget, QSpinBox):
        widget.setValue(int(value))
    else:
        assert isinstance(widget, QLineEdit)
        widget.setText("" if value is None else str(value))


def _value_of(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QSpinBox):
        return widget.value()
    assert isinstance(widget, QLineEdit)
    return widget.text()


class SettingsDialog(QDialog):
    """Every registered simple setting, one row each; users without rights see them read-only."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Practice settings")
        self.setMinimumWidth(680)
        self.editors: dict[str, QWidget] = {}
        self._initial: dict[str, Any] = {}
        form = QFormLayout()
        with context.db.session() as session:
            for key, spec in SETTINGS.items():
                if not isinstance(spec.default, (int, str)):
                    continue  # structured settings have their own pages
                value = get_setting(session, key)
                editor = _editor_for(spec, value)
                if spec.physicians_edit:
                    allowed = context.can(Permission.EDIT_CLINICAL)
                    why = "Only physicians may change this."
                else:
                    allowed = context.actor.can_manage_users or not spec.manage_users_only
                    why = "Only users who manage users may change this."
                editor.setEnabled(allowed)
                if not allowed:
                    editor.setToolTip(why)
                self.editors[key] = editor
                self._initial[key] = value
                label = QLabel(spec.label)
                label.setWordWrap(True)
                label.setMinimumWidth(300)
                label.setBuddy(editor)
                form.addRow(label, editor)
        self.read_only_note = QLabel(READ_ONLY_NOTE)
        self.read_only_note.setWordWrap(True)
        self.read_only_note.setAccessibleName("Why these settings cannot be changed")
        self.read_only_note.setStyleSheet(
            "background: #fff4d6; color: #5c4200; padding: 6px; border-radius: 4px;"
        )
        form.insertRow(0, self.read_only_note)
        self.error = lay_out_dialog(
            self, form, self.save, accept_button=QDialogButtonBox.StandardButton.Save
        )
        buttons = self.findChild(QDialogButtonBox)
        assert buttons is not None
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        # Nothing this user may change: say so, and offer no Save that would do nothing.
        may_change = any(editor.isEnabled() for editor in self.editors.values())
        self.read_only_note.setVisible(not may_change)
        self.save_button.setEnabled(may_change)
        self.save_button.setToolTip("" if may_change else READ_ONLY_NOTE)
        if not may_change:
            buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")

        self._conflicts = ConflictScreen(self, "Someone else changed the settings", "the settings")

    @property
    def conflict_dialog(self) -> EditConflictDialog | None:
        """The open "Someone else changed the settings" screen, if any."""
        return self._conflicts.dialog

    def save(self) -> None:
        changed = {
            k: _value_of(w)
            for k, w in self.editors.items()
            if w.isEnabled() and _value_of(w) != self._initial[k]
        }
        try:
            with self.context.db.session() as session:
                set_settings(session, self.context.actor, changed, self._initial)
        except SettingsChangedError as error:
            self._compare_with_stored(error)
            return
        except UserFacingError as error:
            self.error.say(error.message)
            return
        if changed:
            self.context.data_changed.emit("settings")
        self.accept()

    def _compare_with_stored(self, error: SettingsChangedError) -> None:
        """The settings this user may change, side by side with those stored now."""
        editable = [k for k, w in self.editors.items() if w.isEnabled()]
        labels = [(k, SETTINGS[k].label) for k in editable]
        words = {
            k: dict(zip(SETTINGS[k].choices, SETTINGS[k].choice_labels, strict=True))
            for k in editable
            if SETTINGS[k].choice_labels
        }
        base = {k: str(self._initial[k]) for k in editable}
        mine = {k: str(_value_of(self.editors[k])) for k in editable}
        theirs = {k: str(error.current[k]) for k in editable}
        opened = self._conflicts.compare(
            error, "the practice settings", (base, mine, theirs), labels, words,
            lambda merged: self._save_merged(error, merged),
            lambda: self.error.say(
                not_saved_words(error, "the practice settings", "press Save")
            ),
        )
        if not opened:  # they chose what was typed here: saving loses nothing of theirs
            self._save_merged(error, mine)
            return
        self.error.say(error.message)

    def _save_merged(self, error: SettingsChangedError, merged: dict[str, str]) -> None:
        """Show the stored values with the chosen ones of this user's on top, and save them
        over the stored version (every change checked and audited again)."""
        for key, editor in self.editors.items():
            _show_value(editor, merged.get(key, error.current[key]))
        self._initial = dict(error.current)
        self.save()
