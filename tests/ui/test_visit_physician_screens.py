"""Home visits in the app, continued: a pack that a physician may also open (chosen in the
check-out dialog, their password checked before anything is written), Enter in the check-out
dialog, and a physician releasing a revoked pack's held return. Real encrypted practices, a
real pack, real keys.

KETADESK_SCREENSHOTS=folder keeps a PNG of each new screen at 1,280 × 800.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.users import change_own_password
from ketadesk.ui.visits.checkout_dialog import NO_PHYSICIAN
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.ui.layout_check import layout_problems
from tests.ui.test_visit_screens import (  # the fixtures and helpers of the first screens
    SIZE,
    _close,
    _open_checkout,
    _screenshot,
    _window,
    visit_practice,
    visit_practice_files,
)

__all__ = ["visit_practice", "visit_practice_files"]  # fixtures, used by name

ADMIN_PASSWORD = "front desk staple lantern"


def _admin_window(qtbot, path: Path):
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    change_own_password(db, outcome.actor, PASSWORD, ADMIN_PASSWORD)
    return _window(qtbot, db, outcome.actor)


def _close_any_file_dialog(opened: list[str]) -> None:
    """A file dialog that Enter must not open: closed (and noted) if it ever appears."""
    modal = QApplication.activeModalWidget()
    if isinstance(modal, QFileDialog):
        opened.append(modal.windowTitle())
        modal.reject()


def test_an_admin_checks_out_a_pack_that_the_physician_also_opens(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    path, mrns = visit_practice
    window = _admin_window(qtbot, path)
    try:
        dialog = _open_checkout(qtbot, window)
        qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=5_000)
        dialog.patient_list.clear()
        dialog.mrn_edit.setFocus()
        qtbot.keyClicks(dialog.mrn_edit, mrns[0])
        qtbot.keyClick(dialog.mrn_edit, Qt.Key.Key_Return)  # adds the patient, nothing more
        assert dialog.chosen_mrns() == [mrns[0]] and not dialog.problem.isVisible()
        choices = [dialog.physician_choice.itemText(i)
                   for i in range(dialog.physician_choice.count())]
        assert choices == [NO_PHYSICIAN, f"Dr. Rowan Quill ({PHYSICIAN})"]
        assert not dialog.physician_password.isEnabled()

        # Enter on "Choose…" (reached with Tab) checks the form, never opens a file dialog.
        pack = tmp_path / "laptop" / "visit.db"
        pack.parent.mkdir()
        dialog.path_edit.setFocus()
        dialog.path_edit.selectAll()
        qtbot.keyClicks(dialog.path_edit, str(pack))
        qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Tab)
        assert dialog.browse_button.hasFocus()
        opened: list[str] = []
        watcher = QTimer(dialog)
        watcher.timeout.connect(lambda: _close_any_file_dialog(opened))
        watcher.start(50)
        qtbot.keyClick(dialog.browse_button, Qt.Key.Key_Return)
        watcher.stop()
        assert opened == []
        assert dialog.problem.text() == "Type your password: the visit pack opens with it."
        assert dialog.password.hasFocus() and dialog.result_ is None

        qtbot.keyClicks(dialog.password, ADMIN_PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Tab)
        assert dialog.physician_choice.hasFocus()
        qtbot.keyClick(dialog.physician_choice, Qt.Key.Key_Down)
        assert dialog.chosen_physician() == PHYSICIAN and dialog.physician_password.isEnabled()
        qtbot.keyClick(dialog.physician_choice, Qt.Key.Key_Return)
        assert dialog.problem.text() == (
            f"Ask {PHYSICIAN} to type their password: the visit pack opens with it too "
            f"(or choose \u201c{NO_PHYSICIAN}\u201d)."
        )
        assert dialog.physician_password.hasFocus()

        qtbot.keyClicks(dialog.physician_password, "not the physician's")
        qtbot.keyClick(dialog.physician_password, Qt.Key.Key_Return)
        assert dialog.is_running
        qtbot.waitUntil(lambda: not dialog.is_running, timeout=30_000)
        assert dialog.problem.text() == (
            f"That is not the password of {PHYSICIAN} (the physician who would also open the "
            "pack); nothing was checked out."
        )
        assert not pack.exists() and not KeySlotFile.path_for(pack).exists()
        assert dialog.physician_password.hasFocus()

        qtbot.keyClicks(dialog.physician_password, PASSWORD)  # the wrong one was selected
        _screenshot(dialog, "visit-checkout-physician")
        qtbot.keyClick(dialog.physician_password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=30_000)
        assert dialog.result_.physician == PHYSICIAN
        assert f"open it there with KetaDesk and your password or {PHYSICIAN}'s" in (
            dialog.status.text()
        )
        _screenshot(dialog, "visit-checkout-physician-done")
        assert layout_problems("Check-out with a physician (done)", dialog, dialog, SIZE) == []
        dialog.reject()
    finally:
        _close(window)

    # The physician opens the pack with their own password, as a physician.
    pack_db, outcome = PracticeDatabase.unlock(pack, PHYSICIAN, PASSWORD)
    try:
        assert outcome.actor.role == "physician"
        assert pack_db.visit_pack is not None and pack_db.visit_pack.checked_out_by == ADMIN
    finally:
        pack_db.close()
    pack_db, outcome = PracticeDatabase.unlock(pack, ADMIN, ADMIN_PASSWORD)
    pack_db.close()


def test_the_physician_list_leaves_out_the_user_and_no_one_else_writes_one_slot(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    """A physician checking out sees no other physician here (the practice has one): the
    pack opens with their password only, as before."""
    path, mrns = visit_practice
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        dialog = _open_checkout(qtbot, window)
        assert [dialog.physician_choice.itemText(i)
                for i in range(dialog.physician_choice.count())] == [NO_PHYSICIAN]
        dialog.patient_list.clear()
        dialog.mrn_edit.setFocus()
        qtbot.keyClicks(dialog.mrn_edit, mrns[1])
        qtbot.keyClick(dialog.mrn_edit, Qt.Key.Key_Return)
        pack = tmp_path / "solo.db"
        dialog.path_edit.setText(str(pack))
        dialog.password.setFocus()
        qtbot.keyClicks(dialog.password, PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=30_000)
        assert dialog.result_.physician is None
        slots = KeySlotFile.load(pack)
        assert [s.user_name for s in slots.slots if s.kind == "user"] == [PHYSICIAN]
        dialog.reject()
    finally:
        _close(window)
