"""Qt table model over audit rows (frozen dataclasses, never live ORM rows)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from ketadesk.storage.security.audit_log import AuditRow

Index = QModelIndex | QPersistentModelIndex


class AuditColumn(IntEnum):
    SEQ = 0
    TIME = 1
    USER = 2
    ROLE = 3
    ACTION = 4
    PATIENT = 5
    DETAIL = 6


HEADERS = {
    AuditColumn.SEQ: "#",
    AuditColumn.TIME: "Time (local)",
    AuditColumn.USER: "User",
    AuditColumn.ROLE: "Role",
    AuditColumn.ACTION: "Action",
    AuditColumn.PATIENT: "Patient MRN",
    AuditColumn.DETAIL: "Detail",
}
SEQ_ROLE = Qt.ItemDataRole.UserRole + 1


class AuditTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._rows: list[AuditRow] = []

    def set_rows(self, rows: list[AuditRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[AuditRow]:
        return list(self._rows)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(AuditColumn)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[AuditColumn(section)]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == SEQ_ROLE:
            return row.seq
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        column = AuditColumn(index.column())
        if column is AuditColumn.SEQ:
            return row.seq
        if column is AuditColumn.TIME:
            return row.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if column is AuditColumn.USER:
            return row.user_name
        if column is AuditColumn.ROLE:
            return row.role
        if column is AuditColumn.ACTION:
            return row.action.replace("_", " ")
        if column is AuditColumn.PATIENT:
            return row.patient_mrn or ""
        return row.detail
