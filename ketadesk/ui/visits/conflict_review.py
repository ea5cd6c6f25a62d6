"""What a returned visit pack left for a physician: the conflict queue, side by side.

Each entry is one record changed both at the office and on the visit laptop (or removed on one
side and changed on the other). A physician keeps the office's copy, takes the laptop's, or
ticks the fields to take from the laptop (a text field's wording may be merged by hand first);
the same service as ``visit resolve`` (storage/visits/visit_conflicts.py) applies it and audits
it. Anyone else sees the queue but cannot settle a clinical record (the service's rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.checkins import LABELS as CHECKIN_LABELS
from ketadesk.core.demographics import FIELD_LABELS, SEX_LABELS
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.visits.visit_conflicts import ConflictInfo, list_conflicts, resolve_conflict
from ketadesk.storage.visits.visit_leases import LeaseInfo, list_leases
from ketadesk.storage.visits.visit_tables import BY_NAME
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel
from ketadesk.ui.common.qdate_conversion import local_time_text

PHYSICIANS_RESOLVE = (
    "Only a physician can settle what a visit pack brought back. You can see what waits; ask "
    "a physician to review it."
)
_ConflictIdRole = Qt.ItemDataRole.UserRole + 1
_FieldRole = Qt.ItemDataRole.UserRole + 2
# Columns of the queue and of the side-by-side fields.
QUEUE_HEADERS = ("Patient", "Record", "Checked out by", "Queued")
FIELD_HEADERS = ("Field (tick to take the laptop's)", "At the office", "On the visit laptop")


# Stored codes shown in the words the forms use ("as_prescribed" -> "Taken as prescribed").
_CODE_WORDS: dict[str, Mapping[str, str]] = {
    "adherence": CHECKIN_LABELS,
    "mode": CHECKIN_LABELS,
    "symptom": CHECKIN_LABELS,
    "severity": {"none": "None", "mild": "Mild", "moderate": "Moderate", "severe": "Severe"},
    "sex": SEX_LABELS,
}


def value_words(value: Any, name: str = "") -> str:
    """A stored value as a clinician reads it (empty values say so; codes in words)."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and name in _CODE_WORDS:
        return _CODE_WORDS[name].get(value, value)
    return str(value)


def field_words(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def identity_columns(table: str) -> frozenset[str]:
    """Columns that only tie records together (a record's unique id, the patient or record it
    belongs to): 32 hex digits that mean nothing to the physician choosing between copies."""
    spec = BY_NAME.get(table)
    if spec is None:
        return frozenset()
    return frozenset({spec.key, spec.via, *spec.links, "version"} - {""})


class ConflictReview(QWidget):
    """The queue on the left, the chosen record's two copies on the right. ``conflict_resolved``
    is emitted with the conflict's id once the service has applied a physician's choice."""

    conflict_resolved = Signal(int)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._conflicts: list[ConflictInfo] = []
        self._leases: dict[str, LeaseInfo] = {}
        self.setWindowTitle("Visit conflicts")

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("What waits for a physician")
        self.summary.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.role_note = QLabel(PHYSICIANS_RESOLVE)
        self.role_note.setWordWrap(True)
        self.role_note.setStyleSheet(
            "background: #fff4ce; border: 1px solid #c19c00; padding: 6px;"
        )
        self.queue = QTableWidget(0, len(QUEUE_HEADERS))
        self.queue.setAccessibleName("Conflicts waiting")
        self.queue.setHorizontalHeaderLabels(QUEUE_HEADERS)
        self.queue.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.queue.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.queue.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.queue.verticalHeader().setVisible(False)
        self.queue.horizontalHeader().setStretchLastSection(True)
        self.queue.setWordWrap(False)

        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setAccessibleName("The chosen conflict")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fields = QTableWidget(0, len(FIELD_HEADERS))
        self.fields.setAccessibleName("The two copies, field by field")
        self.fields.setHorizontalHeaderLabels(FIELD_HEADERS)
        self.fields.verticalHeader().setVisible(False)
        self.fields.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.fields.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        header = self.fields.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.edit_note = QLabel(
            "To merge wording by hand, edit the laptop's text (F2), tick the field and take "
            "the ticked fields."
        )
        self.edit_note.setWordWrap(True)
        self.keep_office_button = QPushButton("&Keep the office's copy")
        self.take_visit_button = QPushButton("Take the laptop's cop&y")
        self.take_fields_button = QPushButton("Take the ticked fi&elds")
        self.problem = ProblemLabel()
        self.done_label = QLabel()
        self.done_label.setWordWrap(True)
        self.done_label.setAccessibleName("Last decision")

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.queue)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.detail)
        right_layout.addWidget(self.fields, 1)
        right_layout.addWidget(self.edit_note)
        buttons = QHBoxLayout()
        for button in (self.keep_office_button, self.take_visit_button, self.take_fields_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        right_layout.addLayout(buttons)
        right_layout.addWidget(self.problem)
        right_layout.addWidget(self.done_label)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([500, 750])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.role_note)
        layout.addWidget(splitter, 1)
        self._connect_signals()
        self._apply_permissions()
        self.reload()

    def _connect_signals(self) -> None:
        self.queue.currentCellChanged.connect(lambda *_: self._show_current())
        self.keep_office_button.clicked.connect(lambda: self.resolve("office"))
        self.take_visit_button.clicked.connect(lambda: self.resolve("visit"))
        self.take_fields_button.clicked.connect(lambda: self.resolve("fields"))
        self._context.actor_changed.connect(self._apply_permissions)
        self._context.data_changed.connect(self._on_data_changed)

    @property
    def may_resolve(self) -> bool:
        return self._context.actor.role == Role.PHYSICIAN

    def _apply_permissions(self) -> None:
        self.role_note.setVisible(not self.may_resolve)
        self.edit_note.setVisible(self.may_resolve)
        self._update_buttons()

    def _on_data_changed(self, what: str) -> None:
        if what == "visits":
            self.reload()

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the open queue again (the chosen conflict stays chosen while it waits)."""
        chosen = self.current_conflict()
        with self._context.db.read_session() as session:
            self._conflicts = list(list_conflicts(session))
            self._leases = {lease.pack_id: lease for lease in list_leases(session)}
        count = len(self._conflicts)
        if count:
            noun = "record waits" if count == 1 else "records wait"
            self.summary.setText(
                f"{count} {noun} for a physician (each says why on the right). Nothing was "
                "decided for you."
            )
        else:
            self.summary.setText("Nothing waits: every returned visit pack was merged.")
        self.queue.setRowCount(count)
        for row, conflict in enumerate(self._conflicts):
            lease = self._leases.get(conflict.pack_id)
            who = lease.checked_out_by if lease else "—"
            cells = (
                conflict.patient_mrn or "—",
                conflict.label,
                who,
                local_time_text(conflict.created_at),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{text}: {conflict.reason_words}" if column == 1 else text)
                item.setData(_ConflictIdRole, conflict.id)
                self.queue.setItem(row, column, item)
        self.queue.resizeColumnsToContents()
        for column in range(len(QUEUE_HEADERS) - 1):
            self.queue.setColumnWidth(column, min(self.queue.columnWidth(column), 220))
        rows = [i for i, c in enumerate(self._conflicts) if chosen and c.id == chosen.id]
        if count:
            self.queue.setCurrentCell(rows[0] if rows else 0, 0)
        self._show_current()

    def current_conflict(self) -> ConflictInfo | None:
        row = self.queue.currentRow() if hasattr(self, "queue") else -1
        return self._conflicts[row] if 0 <= row < len(self._conflicts) else None

    def _show_current(self) -> None:
        conflict = self.current_conflict()
        self.problem.hide()
        self.fields.setRowCount(0)
        if conflict is None:
            self.detail.setText("Choose a record on the left to see both copies.")
            self._update_buttons()
            return
        lease = self._leases.get(conflict.pack_id)
        taken = (
            f" It was checked out by {lease.checked_out_by} on "
            f"{local_time_text(lease.checked_out_at)}."
            if lease else ""
        )
        self.detail.setText(
            f"Patient {conflict.patient_mrn or '—'}: the {conflict.label} was "
            f"{conflict.reason_words}.{taken} Queued {local_time_text(conflict.created_at)} "
            f"from visit pack {conflict.pack_id[:8]}."
        )
        names = self._shown_fields(conflict)
        self.fields.setRowCount(len(names))
        office = conflict.office or {}
        visit = conflict.visit if isinstance(conflict.visit, dict) else {}
        for row, name in enumerate(names):
            label = QTableWidgetItem(field_words(name))
            label.setData(_FieldRole, name)
            label.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            label.setCheckState(Qt.CheckState.Unchecked)
            office_item = QTableWidgetItem(value_words(office.get(name), name))
            office_item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            visit_value = visit.get(name)
            visit_item = QTableWidgetItem(
                visit_value
                if isinstance(visit_value, str) and name not in _CODE_WORDS
                else value_words(visit_value, name)
            )
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            if self._is_text(conflict, name) and self.may_resolve:
                flags |= Qt.ItemFlag.ItemIsEditable
            visit_item.setFlags(flags)
            for column, item in enumerate((label, office_item, visit_item)):
                item.setToolTip(item.text())
                self.fields.setItem(row, column, item)
        self._update_buttons()

    @staticmethod
    def _shown_fields(conflict: ConflictInfo) -> list[str]:
        """The differing fields, or every field of a record only one side has; the columns
        that only tie records together are left out unless nothing else differs."""
        if conflict.differing_fields:
            names = list(conflict.differing_fields)
        else:
            side = conflict.office or (conflict.visit if isinstance(conflict.visit, dict) else {})
            names = sorted(side or {})
        hidden = identity_columns(conflict.table)
        return [n for n in names if n not in hidden] or names

    @staticmethod
    def _is_text(conflict: ConflictInfo, name: str) -> bool:
        """A free-text field, whose wording may be merged by hand (a code is chosen, not
        typed: it is shown in words and never edited here)."""
        if name in _CODE_WORDS:
            return False
        sides = [
            (conflict.office or {}).get(name),
            (conflict.visit if isinstance(conflict.visit, dict) else {}).get(name),
        ]
        return all(isinstance(v, str | None) for v in sides) and any(
            isinstance(v, str) for v in sides
        )

    def _update_buttons(self) -> None:
        conflict = self.current_conflict()
        allowed = self.may_resolve and conflict is not None
        whole_pack = conflict is not None and conflict.table == "visit_pack"
        both_sides = (
            conflict is not None and conflict.office is not None
            and isinstance(conflict.visit, dict)
        )
        self.keep_office_button.setEnabled(allowed)
        self.take_visit_button.setEnabled(allowed and not whole_pack)
        self.take_fields_button.setEnabled(allowed and not whole_pack and both_sides)

    # --- deciding ------------------------------------------------------------------------
    def ticked_fields(self) -> tuple[list[str], dict[str, str]]:
        """The ticked fields, and the wording typed for ticked text fields that was changed."""
        conflict = self.current_conflict()
        visit = conflict.visit if conflict and isinstance(conflict.visit, dict) else {}
        fields: list[str] = []
        merged: dict[str, str] = {}
        for row in range(self.fields.rowCount()):
            label = self.fields.item(row, 0)
            if label.checkState() != Qt.CheckState.Checked:
                continue
            name = str(label.data(_FieldRole))
            fields.append(name)
            typed = self.fields.item(row, 2).text()
            original = visit.get(name)
            if conflict is not None and self._is_text(conflict, name) and typed != (
                original if isinstance(original, str) else value_words(original)
            ):
                merged[name] = typed
        return fields, merged

    def resolve(self, choice: str) -> None:
        """Apply a physician's choice to the chosen conflict, in one transaction."""
        conflict = self.current_conflict()
        if conflict is None:
            return
        if not self.may_resolve:
            self.problem.say(PHYSICIANS_RESOLVE)
            return
        fields: list[str] = []
        merged: dict[str, str] = {}
        if choice == "fields":
            fields, merged = self.ticked_fields()
            if not fields:
                self.problem.say("Tick the fields to take from the laptop's copy.")
                return
        try:
            with self._context.db.session() as session:
                resolve_conflict(
                    session, self._context.actor, conflict.id, choice, fields,
                    merged_text=merged,
                )
        except UserFacingError as error:
            self.problem.say(error.message)
            return
        said = {
            "office": "the office's copy was kept",
            "visit": "the laptop's copy was taken",
            "fields": "the laptop's "
            + ", ".join(field_words(f).lower() for f in fields)
            + " taken",
        }[choice]
        self.done_label.setText(
            f"Settled: patient {conflict.patient_mrn or '—'}, {conflict.label}: {said}."
        )
        self.conflict_resolved.emit(conflict.id)
        self._context.data_changed.emit("visits")
        if conflict.patient_id is not None:
            self._context.data_changed.emit(f"patient:{conflict.patient_id}")
