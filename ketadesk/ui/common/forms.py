"""Forms built from a field description list, so repeated rows are not copy-pasted code.

``FormFields`` lays out one row per ``FieldSpec``: a label, an editor and, under the editor,
a message label that shows what is wrong with the field in words (hidden when fine).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.ui.common.date_entry import DateEntry

ERROR_STYLE = "color: #b00020;"
CONFIRM_STYLE = "color: #8a5a00;"


@dataclass(frozen=True)
class FieldSpec:
    """One form row. ``choices`` makes a combo box of (value, label) pairs; otherwise a line."""

    name: str
    label: str
    choices: Sequence[tuple[str, str]] | None = None
    placeholder: str = ""
    max_length: int = 200
    editable_combo: bool = False
    #: "any" or "past" makes a ``DateEntry`` (type or pick); "past" for dates not in the future.
    date_kind: str = ""


class FormFields(QWidget):
    """A form of labelled editors with per-field messages; emits ``edited`` on any change."""

    edited = Signal()

    def __init__(self, specs: Iterable[FieldSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs = {s.name: s for s in specs}
        self.editors: dict[str, QLineEdit | QComboBox] = {}
        self.messages: dict[str, QLabel] = {}
        self._loading = False
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in self._specs.values():
            editor = self._make_editor(spec)
            message = QLabel()
            message.setWordWrap(True)
            message.setStyleSheet(ERROR_STYLE)
            message.setVisible(False)
            message.setAccessibleName(f"{spec.label} problem")
            cell = QWidget()
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(editor)
            column.addWidget(message)
            label = QLabel(spec.label + ":")
            label.setBuddy(editor)
            layout.addRow(label, cell)
            self.editors[spec.name] = editor
            self.messages[spec.name] = message

    def _make_editor(self, spec: FieldSpec) -> QLineEdit | QComboBox:
        if spec.choices is not None:
            combo = QComboBox()
            combo.setEditable(spec.editable_combo)
            for value, label in spec.choices:
                combo.addItem(label, value)
            combo.setAccessibleName(spec.label)
            combo.currentIndexChanged.connect(self._changed)
            if spec.editable_combo:
                combo.editTextChanged.connect(self._changed)
            return combo
        line = (
            DateEntry(spec.label, is_past=spec.date_kind == "past")
            if spec.date_kind
            else QLineEdit()
        )
        if spec.placeholder:
            line.setPlaceholderText(spec.placeholder)
        line.setMaxLength(spec.max_length)
        line.setAccessibleName(spec.label)
        line.textEdited.connect(self._changed)
        return line

    def _changed(self, *_args: object) -> None:
        if not self._loading:
            self.edited.emit()

    # --- values ------------------------------------------------------------------------
    def value(self, name: str) -> str:
        editor = self.editors[name]
        if isinstance(editor, QComboBox):
            if editor.isEditable():
                return editor.currentText()
            data = editor.currentData()
            return "" if data is None else str(data)
        return editor.text()

    def values(self) -> dict[str, str]:
        return {name: self.value(name) for name in self.editors}

    def set_value(self, name: str, value: str) -> None:
        editor = self.editors[name]
        self._loading = True
        try:
            if isinstance(editor, QComboBox):
                index = editor.findData(value)
                if index < 0 and editor.isEditable():
                    editor.setEditText(value)
                else:
                    editor.setCurrentIndex(max(index, 0))
            else:
                editor.setText(value)
        finally:
            self._loading = False

    def set_values(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            if name in self.editors:
                self.set_value(name, value)

    def set_choices(self, name: str, choices: Sequence[tuple[str, str]]) -> None:
        """Replace a combo's items, keeping the current value when it is still offered."""
        editor = self.editors[name]
        assert isinstance(editor, QComboBox)
        current = self.value(name)
        self._loading = True
        try:
            editor.clear()
            for value, label in choices:
                editor.addItem(label, value)
        finally:
            self._loading = False
        self.set_value(name, current)

    # --- messages ----------------------------------------------------------------------
    def show_problems(self, problems: Mapping[str, tuple[str, bool]]) -> None:
        """Show ``{field: (message, is_confirmation)}``; clear every other field's message."""
        for name, label in self.messages.items():
            found = problems.get(name)
            label.setVisible(found is not None)
            label.setText(found[0] if found else "")
            label.setStyleSheet(CONFIRM_STYLE if found and found[1] else ERROR_STYLE)

    def keep_problems(self, problems: Mapping[str, tuple[str, bool]]) -> None:
        """Hide each shown message whose field is no longer in ``problems``; update the words of
        those still there. Shows no new message (that waits for the next full check)."""
        for name, label in self.messages.items():
            if label.isHidden():
                continue
            found = problems.get(name)
            if found is None:
                label.setVisible(False)
                label.setText("")
            else:
                label.setText(found[0])
                label.setStyleSheet(CONFIRM_STYLE if found[1] else ERROR_STYLE)

    def has_shown_messages(self) -> bool:
        return self.shown_message_count() > 0

    def shown_message_count(self) -> int:
        return sum(1 for label in self.messages.values() if not label.isHidden())

    def message(self, name: str) -> str:
        label = self.messages[name]
        return label.text() if not label.isHidden() else ""

    def set_read_only(self, read_only: bool, reason: str = "") -> None:
        for editor in self.editors.values():
            editor.setEnabled(not read_only)
            editor.setToolTip(reason if read_only else "")
