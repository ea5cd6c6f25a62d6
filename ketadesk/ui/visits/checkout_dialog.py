"""Check patients out for a home visit: a visit pack of only them, for a laptop with no network.

The same service as ``visit checkout`` (storage/visits/visit_checkout.py) does the work, off the
GUI thread; the dialog asks what the command asks (the patients, the pack file, the lease, the
user's own password, which opens the pack, and optionally a physician who may also open it with
their own password) and says what happened, or why nothing was done. Enter checks out (when the
form is complete; otherwise it says what is missing); in the MRN field it adds the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import normalise_mrn
from ketadesk.core.permissions import Role
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.security.keyslots import WRONG_CREDENTIALS
from ketadesk.storage.security.users import list_users
from ketadesk.storage.visits.visit_checkout import (
    MAX_PATIENTS_PER_PACK,
    CheckoutResult,
    check_out_patients,
)
from ketadesk.storage.visits.visit_practice import check_own_password
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel, make_enter_press, password_field
from ketadesk.ui.common.qdate_conversion import local_time_text

_MrnRole = Qt.ItemDataRole.UserRole + 1
INTRO = (
    "A visit pack is an encrypted copy of these patients only, for a laptop with no network. "
    "It opens with your password, and with a physician's own password if you choose one "
    "below (they can then open it, sign there and return it). The fewer patients and days it "
    "holds, the less a lost laptop exposes. Until the pack is returned, the roster shows "
    "these patients as on a visit."
)
NO_PHYSICIAN = "No one else"
NO_OTHER_PHYSICIAN = "No other physician in this practice"


@dataclass(frozen=True)
class PatientChoice:
    """A patient offered for check-out: the MRN the service takes and the words shown."""

    mrn: str
    words: str


def checkout_summary(result: CheckoutResult) -> str:
    """The dialog's words once the pack is written."""
    until = local_time_text(result.expires_at)
    noun = "patient" if result.patient_count == 1 else "patients"
    opens = "your password" + (
        f" or {result.physician}'s" if result.physician else ""
    )
    return (
        f"Checked out {result.patient_count} {noun} ({result.record_count:,} records) to "
        f"{result.path}. The lease runs until {until}. Copy the file to the visit laptop and "
        f"open it there with KetaDesk and {opens}; bring it back and return it to the "
        f"practice when the visits are done. Pack number: {result.pack_id}."
    )


class CheckOutDialog(QDialog):
    """Pick patients, a pack file, the lease and your password; writes the pack on a worker.
    ``checked_out`` is emitted with the result once the pack is written."""

    checked_out = Signal(object)

    def __init__(
        self,
        context: AppContext,
        patients: list[PatientChoice],
        parent: QWidget | None = None,
        *,
        suggested_path: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.result_: CheckoutResult | None = None
        self._running = False
        self.setWindowTitle("Check out for a home visit")
        self.setMinimumWidth(620)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)

        self.patient_list = QListWidget()
        self.patient_list.setAccessibleName("Patients to check out")
        self.patient_list.setMinimumHeight(120)
        for choice in patients:
            self._add_item(choice)
        self.mrn_edit = QLineEdit()
        self.mrn_edit.setAccessibleName("Add a patient by MRN")
        self.mrn_edit.setPlaceholderText("Type an MRN and press Enter to add that patient")
        self.path_edit = QLineEdit(str(suggested_path or _default_pack_path()))
        self.path_edit.setAccessibleName("Visit pack file")
        self.browse_button = QPushButton("Choose…")
        self.browse_button.setAccessibleName("Choose the visit pack file")
        self.browse_button.setAutoDefault(False)  # Enter checks out, never opens a file dialog
        self.days = QSpinBox()
        self.days.setAccessibleName("Lease in days")
        self.days.setRange(1, 30)
        self.days.setSuffix(" days")
        with context.db.read_session() as session:
            self.days.setValue(int(get_setting(session, "visit_lease_days")))
        self.password = password_field("Your password")
        self.password.setPlaceholderText(f"the password of {context.actor.user_name}")
        self.physician_choice = QComboBox()
        self.physician_choice.setAccessibleName("Also open by physician")
        self.physician_choice.addItem(NO_PHYSICIAN, None)
        for user in list_users(context.db):
            if (user.role == Role.PHYSICIAN and user.is_active and not user.is_row_unsigned
                    and user.user_name != context.actor.user_name):
                self.physician_choice.addItem(
                    f"{user.full_name} ({user.user_name})", user.user_name
                )
        if self.physician_choice.count() == 1:  # nothing to choose: said, and not offered
            self.physician_choice.setItemText(0, NO_OTHER_PHYSICIAN)
            self.physician_choice.setEnabled(False)
        self.physician_password = password_field("The physician's password")
        self.physician_password.setPlaceholderText("choose a physician above first")
        self.physician_password.setEnabled(False)

        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Patients (untick to leave out):", self.patient_list)
        form.addRow("Add a patient:", self.mrn_edit)
        form.addRow("Visit pack file:", path_row)
        form.addRow("Lease:", self.days)
        form.addRow("Your password:", self.password)
        form.addRow("Also open by physician:", self.physician_choice)
        form.addRow("Their password:", self.physician_password)

        self.progress = QProgressBar()
        self.progress.setAccessibleName("Writing the visit pack")
        self.progress.setRange(0, 0)  # busy: the service reports no steps
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("What happened")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()
        self.problem = ProblemLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.check_out_button = self.buttons.addButton(
            "Check out", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.check_out_button.setAccessibleName("Check out for a home visit")
        make_enter_press(self.check_out_button, self.buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self._connect_signals()
        self.password.setFocus()

    def _connect_signals(self) -> None:
        self.buttons.rejected.connect(self.reject)
        self.check_out_button.clicked.connect(self.check_out)
        self.browse_button.clicked.connect(self._browse)
        # Enter in the MRN field adds the patient and goes no further (not a check-out).
        self.mrn_edit.installEventFilter(self)
        self.physician_choice.currentIndexChanged.connect(self._physician_chosen)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.mrn_edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            self._add_typed_mrn()
            return True
        return super().eventFilter(watched, event)

    # --- the physician who may also open the pack ------------------------------------------
    def chosen_physician(self) -> str | None:
        chosen = self.physician_choice.currentData()
        return None if chosen is None else str(chosen)

    def _physician_chosen(self) -> None:
        name = self.chosen_physician()
        self.physician_password.clear()
        self.physician_password.setEnabled(name is not None)
        self.physician_password.setPlaceholderText(
            "choose a physician above first" if name is None
            else f"the password of {name}, typed by them"
        )

    # --- patients ------------------------------------------------------------------------
    def _add_item(self, choice: PatientChoice) -> None:
        item = QListWidgetItem(choice.words)
        item.setData(_MrnRole, choice.mrn)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        self.patient_list.addItem(item)

    def chosen_mrns(self) -> list[str]:
        items = (self.patient_list.item(i) for i in range(self.patient_list.count()))
        return [
            str(item.data(_MrnRole)) for item in items
            if item.checkState() == Qt.CheckState.Checked
        ]

    def _add_typed_mrn(self) -> None:
        typed = self.mrn_edit.text().strip()
        if not typed:
            return
        try:
            mrn = normalise_mrn(typed)
        except UserFacingError as error:
            self.problem.say(error.message)
            return
        known = [
            self.patient_list.item(i).data(_MrnRole) for i in range(self.patient_list.count())
        ]
        if mrn not in known:
            self._add_item(PatientChoice(mrn, f"MRN {mrn}"))
        self.mrn_edit.clear()
        self.problem.hide()

    def _browse(self) -> None:
        chosen, _filter = QFileDialog.getSaveFileName(
            self, "Save the visit pack", self.path_edit.text(), "KetaDesk database (*.db)"
        )
        if chosen:
            self.path_edit.setText(chosen)

    # --- checking out --------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._running

    def check_out(self) -> None:
        """Check the answers, then write the pack on a worker (the practice is unchanged if
        anything is refused or fails)."""
        if self._running or self.result_ is not None:
            return
        mrns = self.chosen_mrns()
        path_text = self.path_edit.text().strip()
        password = self.password.text()
        if not mrns:
            self.problem.say("Tick at least one patient to check out.")
            return
        if len(mrns) > MAX_PATIENTS_PER_PACK:
            self.problem.say(f"A visit pack holds at most {MAX_PATIENTS_PER_PACK} patients.")
            return
        if not path_text:
            self.problem.say("Choose where to save the visit pack.")
            return
        if not password:
            self.problem.say("Type your password: the visit pack opens with it.")
            self.password.setFocus()
            return
        physician = self.chosen_physician()
        physician_password = self.physician_password.text() if physician else None
        if physician is not None and not physician_password:
            self.problem.say(
                f"Ask {physician} to type their password: the visit pack opens with it too "
                f"(or choose “{NO_PHYSICIAN}”)."
            )
            self.physician_password.setFocus()
            return
        path = Path(path_text).expanduser()
        if not path.parent.is_dir():
            self.problem.say(f"The folder {path.parent} does not exist; choose another place.")
            return
        db, actor, days = self._context.db, self._context.actor, self.days.value()

        def work() -> CheckoutResult:
            check_own_password(db, actor, password)  # a wrong one raises
            return check_out_patients(
                db, actor, mrns, path, password, days=days, physician=physician,
                physician_password=physician_password,
            )

        self._set_running(True)
        self._context.ops.run(work, self._done, on_failure=self._failed, changes="visits")

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.progress.setVisible(running)
        for widget in (self.check_out_button, self.patient_list, self.mrn_edit, self.path_edit,
                       self.browse_button, self.days, self.password):
            widget.setEnabled(not running)
        self.physician_choice.setEnabled(not running and self.physician_choice.count() > 1)
        self.physician_password.setEnabled(not running and self.chosen_physician() is not None)
        if running:
            self.problem.hide()
            self.status.setText("Writing the visit pack…")
            self.status.show()

    def _done(self, result: CheckoutResult) -> None:
        self._set_running(False)
        self.result_ = result
        self.password.clear()
        self.physician_password.clear()
        self.status.setText(checkout_summary(result))
        self._fit_height()
        self.check_out_button.setEnabled(False)
        for widget in (self.patient_list, self.mrn_edit, self.path_edit, self.browse_button,
                       self.days, self.password, self.physician_choice,
                       self.physician_password):
            widget.setEnabled(False)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        close.setText("Close")
        close.setDefault(True)
        close.setFocus()
        self.checked_out.emit(result)

    def _failed(self, error: BaseException) -> None:
        self._set_running(False)
        self.status.hide()
        if isinstance(error, UserFacingError) and error.message == WRONG_CREDENTIALS:
            self.problem.say(
                f"That is not the password of {self._context.actor.user_name}; nothing was "
                "checked out."
            )
        elif isinstance(error, UserFacingError):
            words = error.message
            if "nothing" not in words.lower():
                words += " Nothing was checked out."
            self.problem.say(words)
        else:
            self.problem.say(
                f"The visit pack could not be written ({type(error).__name__}); nothing was "
                "checked out."
            )
        self._fit_height()
        physician = self.chosen_physician()
        wrong_field = (
            self.physician_password
            if physician is not None and isinstance(error, UserFacingError)
            and f"password of {physician}" in error.message
            else self.password
        )
        wrong_field.selectAll()
        wrong_field.setFocus()

    def _fit_height(self) -> None:
        """Grow to show the whole of a wrapped summary or problem (never shrink)."""
        layout = self.layout()
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def reject(self) -> None:
        if self._running:  # the pack is being written: closing now would hide its outcome
            return
        super().reject()


def _default_pack_path() -> Path:
    folder = Path.home() / "Documents"
    if not folder.is_dir():
        folder = Path.home()
    return folder / f"visit-pack-{datetime.now().astimezone().date().isoformat()}.db"
