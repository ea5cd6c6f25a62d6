"""Form rows built from a field description, so repeated rows are not copy-pasted.

A ``FieldSpec`` names a dotted path into ``protocol_to_dict`` output ("ladder.start_dose_mg"),
a label, a kind and a unit. ``FieldForm`` builds one row per spec (label, editor, unit and a
message line under the editor), reads values back into a nested dict, and shows validation
messages next to the field they concern.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocols import number_text
from ketadesk.ui.common.date_entry import DateEntry

FieldKind = Literal["number", "optional_number", "integer", "optional_integer", "text",
                    "long_text", "choice", "flag", "date", "optional_date", "number_list"]

ERROR_STYLE = "color: #a4161a;"
UNIT_WIDTH = 92
#: Labels share one width so the editors of several forms line up under each other.
LABEL_WIDTH = 150
READ_ONLY_STYLE = (
    "QLineEdit[readOnly=\"true\"], QPlainTextEdit[readOnly=\"true\"] "
    "{ background: #f1f1f1; color: #303030; }"
)
WARNING_STYLE = "color: #8a5a00;"


@dataclass(frozen=True)
class FieldSpec:
    """One form row: ``path`` into the protocol dict, ``label``, ``kind``, ``unit`` shown after
    the editor, ``choices`` as (stored value, words) for a choice, ``placeholder``."""

    path: str
    label: str
    kind: FieldKind
    unit: str = ""
    choices: tuple[tuple[Any, str], ...] = ()
    placeholder: str = ""


class FieldParseError(ValueError):
    """A field's text is not a value of its kind; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``path`` "a.b", creating groups as needed."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def get_path(data: dict[str, Any], path: str) -> Any:
    """The value at ``path`` "a.b" in ``data`` (None when a group or the value is missing)."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class _Row:
    def __init__(self, spec: FieldSpec, editor: QWidget, message: QLabel, row: QWidget) -> None:
        self.spec = spec
        self.editor = editor
        self.message = message
        self.row = row


class FieldForm(QWidget):
    """A QFormLayout of rows built from ``FieldSpec``s. ``changed`` fires on any edit."""

    changed = Signal()

    def __init__(self, specs: Sequence[FieldSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: dict[str, _Row] = {}
        self._labels: dict[str, QLabel] = {}
        self._loading = False
        self.setStyleSheet(READ_ONLY_STYLE)
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.setVerticalSpacing(4)
        for spec in specs:
            editor = self._editor(spec)
            editor.setObjectName(f"field:{spec.path}")
            message = QLabel()
            message.setWordWrap(True)
            message.setObjectName(f"message:{spec.path}")
            message.hide()
            row = QWidget()
            box = QVBoxLayout(row)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(1)
            line = QHBoxLayout()
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(editor, 1)
            if spec.kind != "flag":
                unit = QLabel(spec.unit)  # an empty unit keeps the editors aligned
                unit.setFixedWidth(UNIT_WIDTH)
                line.addWidget(unit)
            box.addLayout(line)
            box.addWidget(message)
            label = QLabel(spec.label if spec.kind != "flag" else "")
            label.setFixedWidth(LABEL_WIDTH)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            label.setWordWrap(True)
            self._labels[spec.path] = label
            layout.addRow(label, row)
            self._rows[spec.path] = _Row(spec, editor, message, row)

    # ------------------------------------------------------------------ building

    def _editor(self, spec: FieldSpec) -> QWidget:
        notify: Callable[..., None] = self._notify
        if spec.kind == "choice":
            combo = QComboBox()
            for value, words in spec.choices:
                combo.addItem(words, value)
            combo.currentIndexChanged.connect(notify)
            return combo
        if spec.kind == "flag":
            check = QCheckBox(spec.label)
            check.toggled.connect(notify)
            return check
        if spec.kind in ("date", "optional_date"):
            entry = DateEntry(spec.label.rstrip(":"))
            entry.textChanged.connect(notify)
            return entry
        if spec.kind == "long_text":
            text = QPlainTextEdit()
            text.setTabChangesFocus(True)  # Tab moves on, as in every other field
            text.setFixedHeight(54)
            text.setPlaceholderText(spec.placeholder)
            text.textChanged.connect(notify)
            return text
        edit = QLineEdit()
        edit.setPlaceholderText(spec.placeholder)
        edit.textChanged.connect(notify)
        return edit

    def _notify(self, *_args: object) -> None:
        if not self._loading:
            self.changed.emit()

    # ------------------------------------------------------------------ access

    def editor(self, path: str) -> QWidget:
        return self._rows[path].editor

    def paths(self) -> list[str]:
        return list(self._rows)

    def set_row_visible(self, path: str, visible: bool) -> None:
        self._rows[path].row.setVisible(visible)
        self._labels[path].setVisible(visible)

    def set_read_only(self, read_only: bool) -> None:
        for row in self._rows.values():
            editor = row.editor
            if isinstance(editor, QLineEdit | QPlainTextEdit):
                editor.setReadOnly(read_only)
            else:
                editor.setEnabled(not read_only)

    def load(self, data: dict[str, Any]) -> None:
        """Show the values at each field's path in ``data`` (no ``changed`` signal)."""
        self._loading = True
        try:
            for path, row in self._rows.items():
                _show(row, get_path(data, path))
        finally:
            self._loading = False

    def read_into(self, data: dict[str, Any]) -> list[FieldParseError]:
        """Write every field's value into ``data`` at its path; return the fields that could
        not be read (their paths keep the value already in ``data``)."""
        problems: list[FieldParseError] = []
        for path, row in self._rows.items():
            try:
                set_path(data, path, _read(row))
            except FieldParseError as problem:
                problems.append(problem)
        return problems

    def show_messages(self, messages: Iterable[tuple[str, str, str]]) -> set[str]:
        """Show (path, level, text) messages under their fields; returns the paths that had a
        row (others are for the caller to show elsewhere)."""
        by_path: dict[str, list[tuple[str, str]]] = {}
        for path, level, text in messages:
            by_path.setdefault(path, []).append((level, text))
        shown: set[str] = set()
        for path, row in self._rows.items():
            found = by_path.get(path)
            if not found:
                row.message.hide()
                row.message.clear()
                continue
            shown.add(path)
            is_error = any(level == "error" for level, _ in found)
            row.message.setStyleSheet(ERROR_STYLE if is_error else WARNING_STYLE)
            row.message.setText("\n".join(text for _, text in found))
            row.message.show()
        return shown

    def texts(self) -> dict[str, str]:
        """Every field as its text: what is typed, a choice's stored value, a tick "yes"/"no"
        (compared and merged when someone else saved meanwhile, ``core/edit_conflicts``)."""
        return {path: _text(row.editor) for path, row in self._rows.items()}

    def set_texts(self, texts: dict[str, str]) -> None:
        """Put back texts from ``texts()`` (fields not named keep theirs); ``changed`` fires."""
        for path, text in texts.items():
            row = self._rows.get(path)
            if row is not None:
                _set_text(row.editor, text)

    def labels(self) -> list[tuple[str, str]]:
        """(path, "label (unit)") of each field, in the form's order."""
        return [
            (path, row.spec.label.strip() + (f" ({row.spec.unit})" if row.spec.unit else ""))
            for path, row in self._rows.items()
        ]

    def shown_words(self) -> dict[str, dict[str, str]]:
        """For each choice and tick: its text -> the words the form shows for it."""
        words: dict[str, dict[str, str]] = {}
        for path, row in self._rows.items():
            if row.spec.kind == "choice":
                words[path] = {str(value): label for value, label in row.spec.choices}
            elif row.spec.kind == "flag":
                words[path] = {"yes": "Yes", "no": "No"}
        return words

    def message_text(self, path: str) -> str:
        row = self._rows[path]
        return row.message.text() if row.message.isVisible() or row.message.text() else ""


def _text(editor: QWidget) -> str:
    if isinstance(editor, QComboBox):
        return str(editor.currentData())
    if isinstance(editor, QCheckBox):
        return "yes" if editor.isChecked() else "no"
    if isinstance(editor, QPlainTextEdit):
        return editor.toPlainText()
    assert isinstance(editor, QLineEdit)
    return editor.text()


def _set_text(editor: QWidget, text: str) -> None:
    if isinstance(editor, QComboBox):
        index = next((i for i in range(editor.count()) if str(editor.itemData(i)) == text), -1)
        if index >= 0:
            editor.setCurrentIndex(index)
    elif isinstance(editor, QCheckBox):
        editor.setChecked(text == "yes")
    elif isinstance(editor, QPlainTextEdit):
        if editor.toPlainText() != text:
            editor.setPlainText(text)
    elif isinstance(editor, QLineEdit) and editor.text() != text:
        editor.setText(text)


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return number_text(float(value))
    return str(value)


def _as_date(value: Any) -> date | None:
    """A protocol dict's date (a ``date`` or its ISO text) as a ``date``; None otherwise."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _show(row: _Row, value: Any) -> None:
    editor = row.editor
    kind = row.spec.kind
    if isinstance(editor, QComboBox):
        index = editor.findData(value)
        editor.setCurrentIndex(max(0, index))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QPlainTextEdit):
        editor.setPlainText("" if value is None else str(value))
    elif isinstance(editor, DateEntry):
        editor.set_date(_as_date(value))
    elif isinstance(editor, QLineEdit):
        if kind in ("number", "optional_number", "integer", "optional_integer"):
            editor.setText(_number_text(value))
        elif isinstance(value, list | tuple):
            editor.setText(", ".join(_number_text(v) for v in value))
        else:
            editor.setText("" if value is None else str(value))


def _read(row: _Row) -> Any:
    spec = row.spec
    editor = row.editor
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QPlainTextEdit):
        return editor.toPlainText().strip()
    assert isinstance(editor, QLineEdit)
    text = editor.text().strip()
    label = spec.label.rstrip(":").lower()
    if isinstance(editor, DateEntry):
        try:
            typed = editor.date_value()
        except UserFacingError as error:
            raise FieldParseError(spec.path, error.message) from None
        if typed is None:
            if spec.kind == "optional_date":
                return None
            raise FieldParseError(spec.path, f"Enter the {label} (MM/DD/YYYY).")
        return typed.isoformat()
    if spec.kind in ("number", "optional_number"):
        if not text:
            if spec.kind == "optional_number":
                return None
            raise FieldParseError(spec.path, f"Enter the {label}.")
        try:
            return float(text.replace(",", "."))
        except ValueError:
            raise FieldParseError(spec.path, f"\"{text}\" is not a number.") from None
    if spec.kind == "number_list":
        try:
            return parse_number_list(text)
        except ValueError as error:
            raise FieldParseError(spec.path, str(error)) from None
    if spec.kind in ("integer", "optional_integer"):
        if not text:
            if spec.kind == "optional_integer":
                return None
            raise FieldParseError(spec.path, f"Enter the {label}.")
        try:
            return int(text)
        except ValueError:
            raise FieldParseError(spec.path, f"\"{text}\" is not a whole number.") from None
    return text


def parse_number_list(text: str) -> list[float]:
    """Read "15, 20, 25" (or spaces / semicolons between) as a list of numbers."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    values: list[float] = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(f"\"{part.strip()}\" is not a number.") from None
    return values
