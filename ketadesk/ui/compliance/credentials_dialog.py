"""Prescribers' licences and DEA registrations, with their expiry dates.

A physician keeps their own; a user who manages users may keep any physician's. Each one due
to expire within 60 days (or already expired) is named in a warning above the list.
"""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.compliance_rules import STATES
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission, Role
from ketadesk.core.prescription_checks import CREDENTIAL_LABELS, CredentialKind
from ketadesk.storage.compliance.compliance_records import CredentialInfo
from ketadesk.storage.compliance.credentials import (
    credentials_of,
    remove_credential,
    save_credential,
)
from ketadesk.storage.security.users import list_users
from ketadesk.ui.chart.chart_record_table import fill_table, record_table, selected_entry_id
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.date_entry import DateEntry, date_text
from ketadesk.ui.common.dialog_parts import ProblemLabel
from ketadesk.ui.common.qdate_conversion import local_today

WARN_DAYS = 60


def expiry_text(expires_on: date, today: date) -> str:
    """"Expired N days ago", "Expires in N days" (within 60 days) or "Valid"."""
    days = (expires_on - today).days
    if days < 0:
        return f"Expired {-days} days ago"
    if days <= WARN_DAYS:
        return f"Expires in {days} days"
    return "Valid"


class CredentialsDialog(QDialog):
    """Licences and registrations of one physician (chosen when the user manages users)."""

    loaded = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.credentials: tuple[CredentialInfo, ...] = ()
        self.setWindowTitle("Licences and DEA registrations")
        self.setMinimumSize(760, 480)
        self.user_combo = QComboBox()
        self.user_combo.setAccessibleName("Physician")
        actor = context.actor
        if context.can(Permission.MANAGE_USERS):
            for user in list_users(context.db):
                if user.role is Role.PHYSICIAN and user.is_active:
                    self.user_combo.addItem(f"{user.full_name} ({user.user_name})",
                                            user.user_name)
        if self.user_combo.findData(actor.user_name) < 0 and actor.is_physician:
            self.user_combo.insertItem(0, f"{actor.full_name} ({actor.user_name})",
                                       actor.user_name)
        self.user_combo.setCurrentIndex(max(0, self.user_combo.findData(actor.user_name)))
        self.expiry_warning = QLabel()
        self.expiry_warning.setWordWrap(True)
        self.expiry_warning.setAccessibleName("Expiry warnings")
        self.expiry_warning.setStyleSheet(
            "background: #fff4d6; color: #5c4200; padding: 6px; border-radius: 4px;")
        self.expiry_warning.hide()
        self.table = record_table(("State", "Kind", "Number", "Expires on", "Status"),
                                  "Licences and registrations")
        self.kind_combo = QComboBox()
        self.kind_combo.setAccessibleName("Kind")
        for kind, words in CREDENTIAL_LABELS.items():
            self.kind_combo.addItem(words[0].upper() + words[1:], kind.value)
        self.state_combo = QComboBox()
        self.state_combo.setAccessibleName("State")
        self.state_combo.addItems(list(STATES))
        self.number = QLineEdit()
        self.number.setAccessibleName("Number")
        self.number.setPlaceholderText("e.g. ME12345 or AB1234563")
        self.expires = DateEntry("Expires on")
        self.save_button = QPushButton("Add or renew")
        self.remove_button = QPushButton("Remove selected")
        self.close_button = QPushButton("Close")
        self.problem = ProblemLabel()
        form = QFormLayout()
        form.addRow("Kind:", self.kind_combo)
        form.addRow("State:", self.state_combo)
        form.addRow("Number:", self.number)
        form.addRow("Expires on:", self.expires)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow("Physician:", self.user_combo)
        layout.addLayout(top)
        layout.addWidget(self.expiry_warning)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.save_button.setDefault(True)
        self.close_button.setAutoDefault(False)
        self.remove_button.setAutoDefault(False)
        self.user_combo.currentIndexChanged.connect(self.reload)
        self.save_button.clicked.connect(self.save)
        self.remove_button.clicked.connect(self.remove_selected)
        self.close_button.clicked.connect(self.accept)
        self.reload()

    @property
    def user_name(self) -> str:
        return str(self.user_combo.currentData() or "")

    def reload(self) -> None:
        context, user_name = self._context, self.user_name

        def load() -> tuple[CredentialInfo, ...]:
            with context.db.session() as s:
                return credentials_of(s, user_name) if user_name else ()

        context.ops.run(load, self._show, parent_widget=self)

    def _show(self, credentials: tuple[CredentialInfo, ...]) -> None:
        self.credentials = credentials
        today = local_today()
        fill_table(self.table, [
            (c.state, CREDENTIAL_LABELS[c.kind], c.number, date_text(c.expires_on),
             expiry_text(c.expires_on, today)) for c in credentials], [c.id for c in credentials])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        due = [f"{c.state} {CREDENTIAL_LABELS[c.kind]} {c.number}: "
               f"{expiry_text(c.expires_on, today).lower()}"
               for c in credentials if expiry_text(c.expires_on, today) != "Valid"]
        self.expiry_warning.setText("Renew soon — " + "; ".join(due) if due else "")
        self.expiry_warning.setVisible(bool(due))
        if not self.user_name:
            self.problem.say("Licences and DEA registrations are kept for physicians only.")
        self.save_button.setEnabled(bool(self.user_name))
        self.loaded.emit()

    def save(self) -> None:
        self.problem.hide()
        try:
            expires = self.expires.date_value()
        except UserFacingError as error:
            self.problem.say(f"Expires on: {error.message}")
            return
        if not self.number.text().strip():
            self.problem.say("Enter the licence or registration number.")
            self.number.setFocus()
            return
        if expires is None:
            self.problem.say("Enter the expiry date.")
            self.expires.setFocus()
            return
        context, actor, user_name = self._context, self._context.actor, self.user_name
        kind = CredentialKind(str(self.kind_combo.currentData()))
        state, number = self.state_combo.currentText(), self.number.text()

        def work() -> CredentialInfo:
            with context.db.session() as s:
                return save_credential(s, actor, user_name=user_name, kind=kind, state=state,
                                       number=number, expires_on=expires)

        context.ops.run(work, self._saved, on_failure=self._failed, changes="users",
                        parent_widget=self)

    def _saved(self, _info: CredentialInfo) -> None:
        self.number.clear()
        self.expires.clear()
        self.reload()

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, UserFacingError):
            self.problem.say(error.message)
            return
        raise error

    def remove_selected(self) -> None:
        chosen = selected_entry_id(self.table)
        if chosen is None:
            self.problem.say("Choose a licence or registration in the list first.")
            return
        context, actor = self._context, self._context.actor

        def work() -> None:
            with context.db.session() as s:
                remove_credential(s, actor, chosen)

        context.ops.run(work, self._removed, changes="users", parent_widget=self)

    def _removed(self, _result: object) -> None:
        self.reload()
