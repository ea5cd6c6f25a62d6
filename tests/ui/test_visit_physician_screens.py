"""Home visits in the app, continued: a pack that a physician may also open (chosen in the
check-out dialog, their password checked before anything is written), Enter in the check-out
dialog, a physician releasing a revoked pack's held return, and the audit viewer showing the
practice's patient and record ids for the laptop's events. Real encrypted practices, a real
pack, real keys.

KETADESK_SCREENSHOTS=folder keeps a PNG of each new screen at 1,280 × 800.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.visits import VisitConflict
from ketadesk.storage.patients.patients import add_vitals
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.users import change_own_password
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_leases import revoke_lease
from ketadesk.ui.visits.checkout_dialog import NO_OTHER_PHYSICIAN, NO_PHYSICIAN
from ketadesk.ui.visits.return_dialog import (
    HOW_TO_RELEASE,
    ONLY_PHYSICIANS_RELEASE,
    RELEASE_WORDS,
    ReturnDialog,
)
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.ui.layout_check import layout_problems
from tests.ui.test_visit_screens import (  # the fixtures and helpers of the first screens
    SIZE,
    _close,
    _lease_status,
    _open_checkout,
    _open_return,
    _return_with,
    _screenshot,
    _window,
    visit_practice,
    visit_practice_files,
)
from tests.visit_pack_data import opened, patient_id

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
        assert dialog.focusWidget() is dialog.browse_button
        opened: list[str] = []
        watcher = QTimer(dialog)
        watcher.timeout.connect(lambda: _close_any_file_dialog(opened))
        watcher.start(50)
        qtbot.keyClick(dialog.browse_button, Qt.Key.Key_Return)
        watcher.stop()
        assert opened == []
        assert dialog.problem.text() == "Type your password: the visit pack opens with it."
        assert dialog.focusWidget() is dialog.password and dialog.result_ is None

        qtbot.keyClicks(dialog.password, ADMIN_PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Tab)
        assert dialog.focusWidget() is dialog.physician_choice
        qtbot.keyClick(dialog.physician_choice, Qt.Key.Key_Down)
        assert dialog.chosen_physician() == PHYSICIAN and dialog.physician_password.isEnabled()
        qtbot.keyClick(dialog.physician_choice, Qt.Key.Key_Return)
        assert dialog.problem.text() == (
            f"Ask {PHYSICIAN} to type their password: the visit pack opens with it too "
            f"(or choose \u201c{NO_PHYSICIAN}\u201d)."
        )
        assert dialog.focusWidget() is dialog.physician_password

        qtbot.keyClicks(dialog.physician_password, "not the physician's")
        qtbot.keyClick(dialog.physician_password, Qt.Key.Key_Return)
        assert dialog.is_running
        qtbot.waitUntil(lambda: not dialog.is_running, timeout=30_000)
        assert dialog.problem.text() == (
            f"That is not the password of {PHYSICIAN} (the physician who would also open the "
            "pack); nothing was checked out."
        )
        assert not pack.exists() and not KeySlotFile.path_for(pack).exists()
        assert dialog.focusWidget() is dialog.physician_password

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
    choice says so and is not offered (nor a wheel target); the pack opens with their
    password only, as before."""
    path, mrns = visit_practice
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        dialog = _open_checkout(qtbot, window)
        assert [dialog.physician_choice.itemText(i)
                for i in range(dialog.physician_choice.count())] == [NO_OTHER_PHYSICIAN]
        assert not dialog.physician_choice.isEnabled()
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


# --- a revoked pack's held return, released by a physician ------------------------------------
def _revoked_pack(path: Path, mrn: str, pack: Path) -> str:
    """A pack the admin took for the physician, a vitals reading on it, its lease revoked."""
    from datetime import UTC, datetime

    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    try:
        result = check_out_patients(db, outcome.actor, [mrn], pack, PASSWORD,
                                    physician=PHYSICIAN, physician_password=PASSWORD)
    finally:
        db.close()
    with opened(pack) as (pack_db, physician), pack_db.session() as s:
        add_vitals(s, physician, patient_id(s, mrn), measured_at=datetime.now(UTC),
                   systolic=122, diastolic=78)
    with opened(path) as (db, physician), db.session() as s:
        revoke_lease(s, physician, result.pack_id)
    return result.pack_id


def _return_pack_at(qtbot, window, pack: Path, password: str) -> ReturnDialog:
    dialog = _open_return(qtbot, window)
    dialog.path_edit.setFocus()
    qtbot.keyClicks(dialog.path_edit, str(pack))
    _return_with(qtbot, dialog, password)
    return dialog


def test_a_physician_releases_a_revoked_pack_that_an_admin_cannot(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    path, mrns = visit_practice
    pack = tmp_path / "visit.db"
    pack_id = _revoked_pack(path, mrns[0], pack)

    # The admin's return is held; they are told who revoked it and who may release it.
    db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        dialog = _return_pack_at(qtbot, window, pack, PASSWORD)
        summary = dialog.status.text()
        assert summary.startswith(
            f"Visit pack {pack_id} is held: its lease was revoked by {PHYSICIAN} on "
        ), summary
        assert "Nothing in it was applied" in summary
        assert not dialog.release_check.isVisible()
        assert dialog.release_note.isVisible()
        assert dialog.release_note.text() == ONLY_PHYSICIANS_RELEASE
        assert _lease_status(db) == {"revoked"}
        _screenshot(dialog, "visit-return-held-admin")
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    finally:
        _close(window)

    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    window = _window(qtbot, db, outcome.actor)
    try:
        dialog = _return_pack_at(qtbot, window, pack, PASSWORD)
        assert dialog.status.text().startswith(f"Visit pack {pack_id} is held: its lease was ")
        assert dialog.release_check.isVisible() and not dialog.release_check.isChecked()
        assert dialog.release_check.text() == RELEASE_WORDS
        assert dialog.release_note.text() == HOW_TO_RELEASE
        assert dialog.focusWidget() is dialog.password and dialog.password.text() == ""
        assert _lease_status(db) == {"revoked"}
        _screenshot(dialog, "visit-return-held")
        assert layout_problems("Return dialog (held)", dialog, dialog, SIZE) == []

        # Another file withdraws the offer; the held pack's again brings it back after a
        # check (nothing applied).
        dialog.path_edit.setFocus()
        qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Backspace)
        assert not dialog.release_check.isVisible() and not dialog.release_note.isVisible()
        qtbot.keyClicks(dialog.path_edit, "b")
        dialog.check_only.setChecked(True)
        _return_with(qtbot, dialog, PASSWORD)
        assert dialog.release_check.isVisible() and _lease_status(db) == {"revoked"}
        dialog.check_only.setChecked(False)

        # The tick (Space), the pack's password again and Enter release it.
        dialog.release_check.setFocus()
        qtbot.keyClick(dialog.release_check, Qt.Key.Key_Space)
        assert dialog.release_check.isChecked()
        assert dialog.return_button.text() == "Release and return"
        with qtbot.waitSignal(dialog.returned, timeout=30_000):
            _return_with(qtbot, dialog, PASSWORD)
        summary = dialog.status.text()
        assert "1 new record added" in summary, summary
        assert f"Its lease had been revoked by {PHYSICIAN} on " in summary
        assert "a physician released it, as the audit trail records." in summary
        assert not dialog.release_check.isVisible() and not dialog.release_note.isVisible()
        assert _lease_status(db) == {"returned"}
        with db.read_session() as s:
            returned = s.execute(
                select(AuditEvent).where(AuditEvent.action == audit_actions.VISIT_PACK_RETURNED)
            ).scalar_one()
            assert returned.user_name == PHYSICIAN
            assert returned.detail.endswith("(revoked pack released by a physician)")
            held = s.execute(select(AuditEvent.user_name).where(
                AuditEvent.action == audit_actions.VISIT_PACK_HELD)).scalars().all()
            assert held == [ADMIN, PHYSICIAN]
            hold = s.execute(select(VisitConflict).where(
                VisitConflict.pack_id == pack_id)).scalar_one()
            assert (hold.status, hold.resolution, hold.resolved_by) == (
                "resolved", "visit", PHYSICIAN)
        _screenshot(dialog, "visit-return-released")
    finally:
        _close(window)


def test_the_audit_viewer_shows_the_practices_patient_for_a_laptop_event(
    qtbot, visit_practice, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from ketadesk.models.patients import VitalSign
    from ketadesk.storage.visits.visit_return import return_visit_pack
    from ketadesk.ui.admin.audit_table_model import AuditColumn
    from ketadesk.ui.admin.audit_viewer import AuditViewer
    from ketadesk.ui.common.context import AppContext

    path, mrns = visit_practice
    pack = tmp_path / "visit.db"
    with opened(path) as (db, physician):
        check_out_patients(db, physician, [mrns[0]], pack, PASSWORD)
    with opened(pack) as (pack_db, physician), pack_db.session() as s:
        add_vitals(s, physician, patient_id(s, mrns[0]), measured_at=datetime.now(UTC),
                   systolic=131, diastolic=84)
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        return_visit_pack(db, outcome.actor, pack, PASSWORD)
        with db.read_session() as s:
            office_vitals = s.execute(
                select(VitalSign.id).where(VitalSign.systolic == 131)
            ).scalar_one()
        viewer = AuditViewer(AppContext(db, outcome.actor))
        qtbot.addWidget(viewer)
        viewer.show()
        qtbot.waitExposed(viewer)
        viewer.patient_edit.setFocus()
        qtbot.keyClicks(viewer.patient_edit, mrns[0].lower())
        qtbot.keyClick(viewer.patient_edit, Qt.Key.Key_Return)
        rows = viewer.model.rows()
        laptop = [r for r in rows if r.detail.startswith("laptop #")]
        assert laptop and {r.patient_mrn for r in rows} == {mrns[0]}
        added = [r for r in laptop if r.detail.endswith(f"vitals {office_vitals} added")]
        assert len(added) == 1, [r.detail for r in laptop]
        shown = viewer.model.index(rows.index(added[0]), AuditColumn.PATIENT).data()
        assert shown == mrns[0]
        viewer.close()
    finally:
        db.close()
