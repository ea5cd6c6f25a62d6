"""The audit viewer (manage_users only): filter, verify the chain, export CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.csv_safety import spreadsheet_safe
from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import normalise_mrn
from ketadesk.core.output_paths import check_output_path
from ketadesk.core.permissions import Permission, require
from ketadesk.core.private_files import write_private_bytes
from ketadesk.models.patients import Patient
from ketadesk.storage.security import audit_log
from ketadesk.ui.admin.audit_table_model import HEADERS, AuditColumn, AuditTableModel
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.date_entry import DateEntry
from ketadesk.ui.common.qdate_conversion import local_today

ALL = "(all)"


def _typed_day(entry: DateEntry) -> date:
    try:
        day = entry.date_value()
    except UserFacingError as error:
        raise UserFacingError(f"{entry.label}: {error.message}") from None
    if day is None:
        raise UserFacingError(f"{entry.label}: enter a date (MM/DD/YYYY), or clear 'Between'.")
    return day


def _local_midnight(day: date) -> datetime:
    """The start of ``day`` in this computer's time zone (its own offset, DST included), UTC."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


class AuditViewer(QWidget):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        require(context.actor, Permission.MANAGE_USERS, "view the audit log")
        self.context = context
        self.user_combo = QComboBox()
        self.user_combo.setAccessibleName("Filter by user")
        self.action_combo = QComboBox()
        self.action_combo.setAccessibleName("Filter by action")
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("MRN, e.g. KD-00000018")
        self.patient_edit.setAccessibleName("Filter by patient MRN")
        self.use_dates = QCheckBox("Between")
        # The shared date field: typed (US or ISO) or picked; typing a date turns the filter on.
        self.from_date = DateEntry("From date", is_past=True)
        self.to_date = DateEntry("To date", is_past=True)
        self.from_date.set_date(local_today() - timedelta(days=30))
        self.to_date.set_date(local_today())
        self.apply_button = QPushButton("Show")
        self.verify_button = QPushButton("Verify chain")
        self.export_button = QPushButton("Export CSV…")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.model = AuditTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Audit events")
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            AuditColumn.DETAIL, QHeaderView.ResizeMode.Stretch
        )
        filters = QHBoxLayout()
        for label, widget in (
            ("User", self.user_combo),
            ("Action", self.action_combo),
            ("Patient", self.patient_edit),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(widget)
        filters.addWidget(self.use_dates)
        filters.addWidget(self.from_date)
        filters.addWidget(QLabel("and"))
        filters.addWidget(self.to_date)
        filters.addWidget(self.apply_button)
        filters.addStretch()
        filters.addWidget(self.verify_button)
        filters.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        self._fill_choices()
        self._connect_signals()
        self.refresh()

    def _connect_signals(self) -> None:
        self.apply_button.clicked.connect(self.refresh)
        self.patient_edit.returnPressed.connect(self.refresh)
        for entry in (self.from_date, self.to_date):
            entry.returnPressed.connect(self.refresh)
            entry.textEdited.connect(lambda _text: self.use_dates.setChecked(True))
        self.use_dates.toggled.connect(lambda _on: self.refresh())
        self.user_combo.currentIndexChanged.connect(self.refresh)
        self.action_combo.currentIndexChanged.connect(self.refresh)
        self.verify_button.clicked.connect(self.verify)
        self.export_button.clicked.connect(self._export_clicked)

    def _fill_choices(self) -> None:
        with self.context.db.session() as session:
            users = audit_log.audit_user_names(session)
            actions = audit_log.audit_action_names(session)
        self.user_combo.addItem(ALL)
        self.user_combo.addItems(users)
        self.action_combo.addItem(ALL)
        self.action_combo.addItems(actions)

    def current_filter(self) -> audit_log.AuditFilter:
        user = self.user_combo.currentText()
        action = self.action_combo.currentText()
        patient_id = None
        typed = self.patient_edit.text().strip()
        since = until = None
        if self.use_dates.isChecked():
            first, last = _typed_day(self.from_date), _typed_day(self.to_date)
            if first > last:
                raise UserFacingError("The first date is after the second; swap them.")
            since = _local_midnight(first)
            until = _local_midnight(last + timedelta(days=1))
        if typed:
            mrn = normalise_mrn(typed)
            with self.context.db.session() as session:
                patient = session.query(Patient.id).filter(Patient.mrn == mrn).one_or_none()
            if patient is None:
                raise UserFacingError(f"No patient has the MRN {mrn}.")
            patient_id = patient[0]
        return audit_log.AuditFilter(
            user_name=None if user == ALL else user,
            action=None if action == ALL else action,
            patient_id=patient_id,
            since=since,
            until=until,
        )

    def refresh(self) -> None:
        try:
            wanted = self.current_filter()
        except UserFacingError as error:
            self.status.setText(error.message)
            return
        with self.context.db.session() as session:
            rows = audit_log.find_events(session, wanted)
        self.model.set_rows(rows)
        self.table.resizeColumnsToContents()
        more = " (newest 5,000 shown)" if len(rows) >= wanted.limit else ""
        self.status.setText(f"{len(rows)} events{more}")

    def verify(self) -> None:
        """Walk the whole trail on a worker (a minute at a million events); its result is
        recorded like the background check's after log-in."""
        self.verify_button.setEnabled(False)
        self.status.setText("Checking the whole audit trail…")
        db, actor = self.context.db, self.context.actor
        self.context.ops.run(
            lambda: db.check_whole_audit_trail(actor), self._verified, parent_widget=self
        )

    def _verified(self, verdict: ChainVerdict) -> None:
        self.verify_button.setEnabled(True)
        self.status.setText(("✔ " if verdict.is_intact else "⚠ ") + verdict.describe())
        self.refresh_keeping_status()

    def refresh_keeping_status(self) -> None:
        status = self.status.text()
        self.refresh()
        self.status.setText(status)

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export audit events", "audit-log.csv", "CSV files (*.csv)"
        )
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> int:
        rows = self.model.rows()
        # The save dialog already asked before replacing a file; the database's own files
        # and devices are still refused.
        target = check_output_path(
            Path(path),
            protected_databases=[p for p in [self.context.db.path] if p is not None],
            overwrite=True,
            what="audit export",
        )
        handle = io.StringIO(newline="")
        writer = csv.writer(handle)
        writer.writerow([HEADERS[c] for c in AuditColumn])
        for row in rows:
            writer.writerow(
                spreadsheet_safe(cell)
                for cell in (
                    row.seq,
                    row.occurred_at.isoformat(),
                    row.user_name,
                    row.role,
                    row.action,
                    row.patient_mrn or "",
                    row.detail,
                )
            )
        write_private_bytes(target, handle.getvalue().encode("utf-8"))
        with self.context.db.session() as session:
            audit_log.record_event(
                session,
                self.context.actor,
                audit_actions.AUDIT_EXPORTED,
                detail=f"{len(rows)} events to CSV",
            )
        self.status.setText(f"Exported {len(rows)} events.")
        return len(rows)
