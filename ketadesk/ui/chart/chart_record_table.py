"""The read-only tables of the patient chart: one row per entry, the entry's id on each cell."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


def record_table(headers: tuple[str, ...], name: str) -> QTableWidget:
    """A single-selection, read-only table with ``headers`` and accessible ``name``."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.setAccessibleName(name)
    table.setAlternatingRowColors(True)
    return table


def fill_table(table: QTableWidget, rows: list[tuple[str, ...]], ids: list[int]) -> None:
    """Show ``rows``; each cell carries the id of its row's entry."""
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setData(Qt.ItemDataRole.UserRole, ids[r])
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)


def selected_entry_id(table: QTableWidget) -> int | None:
    """The id of the selected row's entry, or None when no row is selected."""
    item = table.item(table.currentRow(), 0) if table.currentRow() >= 0 else None
    return int(item.data(Qt.ItemDataRole.UserRole)) if item else None


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


EntryT = TypeVar("EntryT", bound=_HasId)


def selected_entry(table: QTableWidget, entries: Iterable[EntryT]) -> EntryT | None:
    """The entry (of those the table shows) on the selected row, or None when no row is
    selected or the entry is no longer among ``entries``."""
    entry_id = selected_entry_id(table)
    return next((e for e in entries if e.id == entry_id), None) if entry_id is not None else None
