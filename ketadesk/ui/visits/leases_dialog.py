"""The visit packs out of the practice, as ``visit leases`` lists them, and revoking one (a lost
or stolen laptop) through the same service as ``visit revoke`` (storage/visits/visit_leases.py),
which checks who may and audits it."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.visits.visit_leases import LeaseInfo, list_leases, revoke_lease
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel
from ketadesk.ui.common.qdate_conversion import local_time_text

LEASE_HEADERS = ("Pack", "Patients", "Checked out by", "Since", "Until", "State")
WHO_REVOKES = (
    "Only a physician or a user who manages users can revoke a visit pack. You can see the "
    "packs that are out."
)
# The README's words on what revoking can and cannot do (section "What revoking can and cannot
# do"), said before anyone revokes.
REVOKE_CAN = (
    "Revoking marks the lease revoked in the practice: if this pack is ever returned, nothing "
    "in it is applied; it waits, whole, for a physician to review it. The revocation is "
    "audited."
)
REVOKE_CANNOT = (
    "Revoking does not reach the file on a lost or stolen laptop: there is no network and no "
    "remote wipe. The pack stays encrypted under the checking-out user's password, so whoever "
    "knows that password can still read it, with or without the lease. After a loss, also "
    "change that user's practice password (the pack keeps the old one)."
)
STATE_WORDS = {
    "out": "out",
    "expired": "out, lease ended",
    "revoked": "revoked",
    "returned": "returned",
}


class LeasesDialog(QDialog):
    """The leases, newest first; a physician (or a user manager) revokes the chosen one after
    a confirmation. ``lease_revoked`` is emitted with the pack id."""

    lease_revoked = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._leases: list[LeaseInfo] = []
        self.setWindowTitle("Visit packs out")
        self.setMinimumSize(880, 420)  # the six columns without a scroll bar
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Visit packs")
        self.role_note = QLabel(WHO_REVOKES)
        self.role_note.setWordWrap(True)
        self.role_note.setStyleSheet(
            "background: #fff4ce; border: 1px solid #c19c00; padding: 6px;"
        )
        self.table = QTableWidget(0, len(LEASE_HEADERS))
        self.table.setAccessibleName("Visit packs and their leases")
        self.table.setHorizontalHeaderLabels(LEASE_HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.problem = ProblemLabel()
        self.done_label = QLabel()
        self.done_label.setWordWrap(True)
        self.done_label.setAccessibleName("Last revocation")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.revoke_button = self.buttons.addButton(
            "&Revoke this pack…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.revoke_button.setAccessibleName("Revoke the chosen visit pack")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.role_note)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.done_label)
        layout.addWidget(self.buttons)
        self._connect_signals()
        self.role_note.setVisible(not self.may_revoke)
        self.reload()
        self.table.setFocus()

    def _connect_signals(self) -> None:
        self.buttons.rejected.connect(self.reject)
        self.revoke_button.clicked.connect(self.revoke_current)
        self.table.currentCellChanged.connect(lambda *_: self._update_buttons())

    @property
    def may_revoke(self) -> bool:
        """The service's rule (``revoke_lease``): physicians, and users who manage users."""
        actor = self._context.actor
        return actor.role == Role.PHYSICIAN or actor.can_manage_users

    def reload(self) -> None:
        chosen = self.current_lease()
        with self._context.db.read_session() as session:
            self._leases = list(list_leases(session))
        now = datetime.now(UTC)
        out = sum(1 for lease in self._leases if lease.status_at(now) in ("out", "expired"))
        if not self._leases:
            self.summary.setText("No visit packs were checked out of this practice.")
        else:
            noun = "pack is" if out == 1 else "packs are"
            self.summary.setText(f"{out} visit {noun} out of the practice; newest first.")
        self.table.setRowCount(len(self._leases))
        for row, lease in enumerate(self._leases):
            state = STATE_WORDS.get(lease.status_at(now), lease.status_at(now))
            if lease.status == "revoked" and lease.revoked_by:
                state += f" by {lease.revoked_by}"
            cells = (
                lease.pack_id,
                str(len(lease.patient_ids)),
                lease.checked_out_by,
                local_time_text(lease.checked_out_at),
                local_time_text(lease.expires_at),
                state,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 1:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        rows = [i for i, x in enumerate(self._leases) if chosen and x.pack_id == chosen.pack_id]
        if self._leases:
            self.table.setCurrentCell(rows[0] if rows else 0, 0)
        self._update_buttons()

    def current_lease(self) -> LeaseInfo | None:
        row = self.table.currentRow() if hasattr(self, "table") else -1
        return self._leases[row] if 0 <= row < len(self._leases) else None

    def _update_buttons(self) -> None:
        lease = self.current_lease()
        self.revoke_button.setEnabled(
            self.may_revoke and lease is not None and lease.status == "out"
        )

    def confirm(self, lease: LeaseInfo) -> bool:
        """Say plainly what revoking can and cannot do; Revoke only when asked for."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Revoke a visit pack")
        box.setText(
            f"Revoke visit pack {lease.pack_id} ({len(lease.patient_ids)} patients, checked "
            f"out by {lease.checked_out_by} on {local_time_text(lease.checked_out_at)})?"
        )
        box.setInformativeText(f"{REVOKE_CAN}\n\n{REVOKE_CANNOT}")
        revoke = box.addButton("Revoke", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        return box.clickedButton() is revoke

    def revoke_current(self) -> None:
        lease = self.current_lease()
        if lease is None:
            return
        if not self.may_revoke:
            self.problem.say(WHO_REVOKES)
            return
        if not self.confirm(lease):
            return
        try:
            with self._context.db.session() as session:
                info = revoke_lease(session, self._context.actor, lease.pack_id)
        except UserFacingError as error:
            self.problem.say(error.message)
            return
        self.problem.hide()
        self.done_label.setText(
            f"Visit pack {info.pack_id} revoked: if it is ever returned, its records wait for "
            "a physician's review instead of being applied."
        )
        self.reload()
        self.lease_revoked.emit(info.pack_id)
        self._context.data_changed.emit("visits")
