"""Return a visit pack to the practice: the same service as ``visit return``
(storage/visits/visit_return.py), off the GUI thread, with the same report in words.

The dialog asks what the command asks (the pack file and the password it was checked out
with), offers a check that changes nothing, and says what was applied, what waits for a
physician (with the way to the conflict review) and what was refused and why. A pack whose
lease was revoked is held: the dialog says who revoked it and when, and a physician may release
it there (tick, the pack's password again, Return), as ``visit return --release-revoked`` does.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.visits.visit_return import ReturnReport, return_visit_pack
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel, make_enter_press, password_field

INTRO = (
    "Bring a visit laptop's records back into the practice. The pack is checked first: a pack "
    "whose own audit trail does not verify is refused and nothing changes. New records and "
    "edits made only on the laptop are applied; a record also changed here waits for a "
    "physician, side by side. Tick \u201cCheck only\u201d to see what would happen without "
    "changing anything."
)


RELEASE_WORDS = "Release this revoked pack and apply its records"
ONLY_PHYSICIANS_RELEASE = (
    "Only a physician can release a revoked pack; it waits for one under Visit conflicts."
)
HOW_TO_RELEASE = (
    "If the laptop is back in the practice's hands and you have gone through the pack with "
    "the person who took it, tick \u201c" + RELEASE_WORDS + "\u201d, type the pack's password "
    "again and press Return: its records are then merged as any return's, and the release is "
    "recorded in the audit trail."
)


def _when(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else moment.astimezone().strftime(
        "%Y-%m-%d %H:%M"
    )


def held_words(report: ReturnReport) -> str:
    """Why a revoked pack's return is held: who revoked the lease and when."""
    would = "would be" if report.dry_run else "was"
    return (
        f"Visit pack {report.pack_id} is held: its lease was revoked by "
        f"{report.revoked_by or 'a user'} on {_when(report.revoked_at)} (a pack is revoked "
        f"when its laptop is lost or stolen). Nothing in it {would} applied; it waits, whole, "
        "for a physician's review under Visit conflicts."
    )


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def return_summary(report: ReturnReport) -> str:
    """The report the command prints, in the dialog's words."""
    prefix = "Check only, nothing was changed. " if report.dry_run else ""
    if report.held_for_review:
        return prefix + held_words(report)
    added = sum(report.added.values())
    applied = sum(report.applied.values())
    removed = sum(report.deleted.values())
    waiting = len(report.conflicts)
    if not (added or applied or removed or waiting or report.audit_events_appended):
        return (
            f"{prefix}Nothing changed: every record of visit pack {report.pack_id} is already "
            "in the practice (was it returned before?)."
        )
    lines = [
        f"{prefix}Visit pack {report.pack_id}: "
        f"{_count(added, 'new record', 'new records')} added, "
        f"{_count(applied, 'edit', 'edits')} applied, "
        f"{_count(removed, 'removal', 'removals')} applied; "
        f"{_count(report.unchanged, 'record was', 'records were')} already in the practice; "
        f"{_count(report.audit_events_appended, 'audit event', 'audit events')} from the "
        "laptop appended to the practice's trail.",
    ]
    if waiting:
        lines.append(
            f"{_count(waiting, 'record waits', 'records wait')} for a physician (nothing was "
            "decided for you; each says why):"
        )
        lines.extend(f"  \u2022 {item.words}" for item in report.conflicts)
    else:
        lines.append("Nothing waits for a physician.")
    if report.refused:
        lines.append(
            f"{_count(len(report.refused), 'change was', 'changes were')} not brought back:"
        )
        lines.extend(f"  \u2022 {item.words}" for item in report.refused)
    if report.returned_after_lease:
        lines.append("The pack came back after its lease had ended.")
    if report.released_revoked:
        lines.append(
            f"Its lease had been revoked by {report.revoked_by or 'a user'} on "
            f"{_when(report.revoked_at)}; a physician released it"
            + (" (check only: not yet)." if report.dry_run else ", as the audit trail records.")
        )
    return "\n".join(lines)


class ReturnDialog(QDialog):
    """Pick the pack file and its password; merges it on a worker. ``returned`` is emitted
    with the report; ``conflicts_requested`` when the user asks to review what waits."""

    returned = Signal(object)
    conflicts_requested = Signal()

    def __init__(
        self, context: AppContext, parent: QWidget | None = None, *,
        suggested_path: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.report: ReturnReport | None = None
        self._running = False
        self.setWindowTitle("Return a visit pack")
        self.setMinimumWidth(620)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.path_edit = QLineEdit(str(suggested_path) if suggested_path else "")
        self.path_edit.setAccessibleName("Visit pack file")
        self.path_edit.setPlaceholderText("the visit pack's .db file (its .keys.json beside it)")
        self.browse_button = QPushButton("Choose…")
        self.browse_button.setAccessibleName("Choose the visit pack file")
        self.browse_button.setAutoDefault(False)  # Enter returns the pack, never browses
        self.password = password_field("Password for the visit pack")
        self.password.setPlaceholderText(
            f"the password that opens the pack for {context.actor.user_name}"
        )
        self.check_only = QCheckBox("Check only (change nothing)")
        self.check_only.setAccessibleName("Check only, change nothing")
        # Shown once a return was held because the pack's lease was revoked.
        self.release_check = QCheckBox(RELEASE_WORDS)
        self.release_check.setAccessibleName("Release the revoked visit pack (physicians)")
        self.release_check.hide()
        self.release_note = QLabel()
        self.release_note.setWordWrap(True)
        self.release_note.setAccessibleName("Releasing a revoked visit pack")
        self.release_note.hide()
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Visit pack file:", path_row)
        form.addRow("Password for the pack:", self.password)
        form.addRow("", self.check_only)
        form.addRow("", self.release_check)

        self.progress = QProgressBar()
        self.progress.setAccessibleName("Returning the visit pack")
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("What happened")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()
        self.problem = ProblemLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.review_button = self.buttons.addButton(
            "Review the conflicts…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.review_button.setAccessibleName("Open the visit conflicts to review")
        self.review_button.hide()
        self.return_button = self.buttons.addButton(
            "Return", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.return_button.setAccessibleName("Return the visit pack")
        make_enter_press(self.return_button, self.buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.release_note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self._connect_signals()
        (self.password if suggested_path else self.path_edit).setFocus()

    def _connect_signals(self) -> None:
        self.buttons.rejected.connect(self.reject)
        self.return_button.clicked.connect(self.return_pack)
        self.review_button.clicked.connect(self._review)
        self.browse_button.clicked.connect(self._browse)
        self.release_check.toggled.connect(self._release_toggled)
        self.path_edit.textChanged.connect(self._withdraw_release)

    def _release_toggled(self, checked: bool) -> None:
        self.return_button.setText("Release and return" if checked else "Return")

    def _withdraw_release(self) -> None:
        """A release is offered for the pack whose hold was shown, never for another file."""
        self.release_check.setChecked(False)
        self.release_check.hide()
        self.release_note.hide()

    def _browse(self) -> None:
        chosen, _filter = QFileDialog.getOpenFileName(
            self, "Choose the visit pack", self.path_edit.text(), "KetaDesk database (*.db)"
        )
        if chosen:
            self.path_edit.setText(chosen)

    @property
    def is_running(self) -> bool:
        return self._running

    def return_pack(self) -> None:
        """Check the answers, then return the pack on a worker (one transaction: refused or
        failed, the practice is as it was)."""
        if self._running:
            return
        path_text = self.path_edit.text().strip()
        password = self.password.text()
        if not path_text:
            self.problem.say("Choose the visit pack file to return.")
            self.path_edit.setFocus()
            return
        if not password:
            self.problem.say("Type the password the visit pack was checked out with.")
            self.password.setFocus()
            return
        path = Path(path_text).expanduser()
        db, actor, dry_run = self._context.db, self._context.actor, self.check_only.isChecked()
        release = self.release_check.isVisible() and self.release_check.isChecked()
        if release and actor.role != Role.PHYSICIAN:
            self.problem.say(ONLY_PHYSICIANS_RELEASE)
            return

        def work() -> ReturnReport:
            return return_visit_pack(
                db, actor, path, password, dry_run=dry_run, release_revoked=release
            )

        self._set_running(True)
        self._context.ops.run(
            work, self._done, on_failure=self._failed,
            changes=None if dry_run else "visits",
        )

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.progress.setVisible(running)
        for widget in (self.return_button, self.path_edit, self.browse_button, self.password,
                       self.check_only, self.review_button, self.release_check):
            widget.setEnabled(not running)
        if running:
            self.problem.hide()
            self.status.setText("Checking the visit pack\u2026")
            self.status.show()

    def _done(self, report: ReturnReport) -> None:
        self._set_running(False)
        self.report = report
        self.status.setText(return_summary(report))
        waits = not report.dry_run and (bool(report.conflicts) or report.held_for_review)
        self.review_button.setVisible(waits)
        may_release = report.held_for_review and self._context.actor.role == Role.PHYSICIAN
        self._offer_release(report)
        if report.dry_run:
            self.password.setFocus()  # a real return may follow
        else:
            self.password.clear()
            if not self.release_check.isChecked():
                self.return_button.setText("Return again")
            self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")
            if may_release:
                self.password.setFocus()  # the release needs the pack's password again
            elif waits:
                make_enter_press(self.review_button, self.buttons)
                self.review_button.setFocus()
        self._fit_height()
        if not report.dry_run:
            self.returned.emit(report)

    def _offer_release(self, report: ReturnReport) -> None:
        """After a held return: a physician may release the pack; others are told who can."""
        held = report.held_for_review
        is_physician = self._context.actor.role == Role.PHYSICIAN
        # A check-only release is followed by the real one: the tick stays.
        offered = is_physician and (held or (report.dry_run and report.released_revoked))
        self.release_check.setVisible(offered)
        if not offered:
            self.release_check.setChecked(False)
        self.release_note.setText(HOW_TO_RELEASE if is_physician else ONLY_PHYSICIANS_RELEASE)
        self.release_note.setVisible(held)

    def _failed(self, error: BaseException) -> None:
        self._set_running(False)
        self.status.hide()
        if isinstance(error, UserFacingError):
            words = error.message
            if "nothing" not in words.lower():
                words += " Nothing was changed."
        else:
            words = (
                f"The visit pack could not be returned ({type(error).__name__}); nothing was "
                "changed in the practice."
            )
        self.problem.say(words)
        self._fit_height()
        self.password.selectAll()
        self.password.setFocus()

    def _review(self) -> None:
        self.conflicts_requested.emit()
        self.accept()

    def _fit_height(self) -> None:
        layout = self.layout()
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def reject(self) -> None:
        if self._running:  # the return is one transaction under way: let it finish
            return
        super().reject()
