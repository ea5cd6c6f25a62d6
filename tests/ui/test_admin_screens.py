"""Users, audit viewer and practice settings screens on a real encrypted database."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt

from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.users import list_users
from ketadesk.ui.admin.audit_viewer import AuditViewer
from ketadesk.ui.admin.settings_dialog import SettingsDialog
from ketadesk.ui.admin.users_dialog import ChangePasswordDialog, UserFormDialog, UsersDialog
from ketadesk.ui.common.context import AppContext
from tests.conftest import ADMIN, PASSWORD


@pytest.fixture
def context(practice):
    return AppContext(practice.db, practice.physician)


def test_add_user_form_shows_problems_in_words(qtbot, context):
    dialog = UserFormDialog(context)
    qtbot.addWidget(dialog)
    dialog.user_edit.setText("drnew")
    dialog.name_edit.setText("Dr. New Colleague")
    dialog.password_edit.setText("short")
    dialog.save()
    assert "at least 10 characters" in dialog.error.text()
    dialog.password_edit.setText("a long enough password")
    dialog.npi_edit.setText("1234567890")
    dialog.save()
    assert "NPI" in dialog.error.text()
    dialog.npi_edit.setText("1234567893")
    dialog.fl_box.setChecked(True)
    dialog.save()
    assert dialog.result() == dialog.DialogCode.Accepted
    added = {u.user_name: u for u in list_users(context.db)}["drnew"]
    assert added.npi == "1234567893" and added.licence_states == ("FL",)


def test_users_dialog_lists_and_removes(qtbot, context, monkeypatch):
    dialog = UsersDialog(context)
    qtbot.addWidget(dialog)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert any("frontdesk" in t and "Admin" in t for t in texts)
    dialog._remove()
    assert dialog.error.text() == "Choose a user first."
    for i in range(dialog.list.count()):
        if "frontdesk" in dialog.list.item(i).text():
            dialog.list.setCurrentRow(i)
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog._remove()
    assert any("removed" in dialog.list.item(i).text() for i in range(dialog.list.count()))
    context.db.close()
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(context.db.path, ADMIN, PASSWORD)


def test_audit_viewer_filters_and_exports(qtbot, context, tmp_path):
    viewer = AuditViewer(context)
    qtbot.addWidget(viewer)
    total = viewer.model.rowCount()
    assert total >= 4
    viewer.action_combo.setCurrentText("user_added")
    assert 0 < viewer.model.rowCount() < total
    assert all(r.action == "user_added" for r in viewer.model.rows())
    viewer.patient_edit.setText("KD-00000018")
    viewer.refresh()
    assert "No patient has the MRN KD-00000018" in viewer.status.text()
    viewer.patient_edit.clear()
    viewer.refresh()
    out = tmp_path / "audit.csv"
    count = viewer.export_csv(str(out))
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0][0] == "#" and len(rows) == count + 1
    with context.db.session() as session:
        assert session.query(AuditEvent).filter_by(action="audit_exported").count() == 1
    qtbot.mouseClick(viewer.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "audit chain intact" in viewer.status.text(), timeout=10_000)
    with context.db.session() as session:  # the result is recorded: a new checkpoint
        newest = session.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
        assert newest.action == "audit_verified" and newest.detail.startswith("events 1-")
    assert viewer.verify_button.isEnabled()


def test_audit_viewer_dates_are_the_shared_date_field(qtbot, context):
    """Defect 15: the audit filter's dates are typed (US or ISO) or picked like every other
    date; typing one turns the date filter on, Enter applies it, a reversed range is named."""
    from datetime import timedelta

    from ketadesk.ui.common.date_entry import DateEntry
    from ketadesk.ui.common.qdate_conversion import local_today

    viewer = AuditViewer(context)
    qtbot.addWidget(viewer)
    viewer.show()
    viewer.activateWindow()
    qtbot.waitUntil(viewer.isActiveWindow, timeout=5000)
    assert isinstance(viewer.from_date, DateEntry) and isinstance(viewer.to_date, DateEntry)
    total = viewer.model.rowCount()
    assert total > 0 and not viewer.use_dates.isChecked()
    tomorrow = local_today() + timedelta(days=1)
    viewer.from_date.setFocus()
    viewer.from_date.selectAll()
    qtbot.keyClicks(viewer.from_date, (local_today() - timedelta(days=3)).strftime("%m/%d/%y"))
    assert viewer.use_dates.isChecked()
    qtbot.keyClick(viewer.from_date, Qt.Key.Key_Return)
    assert viewer.model.rowCount() == total  # everything happened today
    viewer.from_date.selectAll()
    qtbot.keyClicks(viewer.from_date, local_today().isoformat())
    viewer.to_date.setFocus()
    viewer.to_date.selectAll()
    qtbot.keyClicks(viewer.to_date, (local_today() - timedelta(days=1)).isoformat())
    qtbot.keyClick(viewer.to_date, Qt.Key.Key_Return)
    assert viewer.status.text() == "The first date is after the second; swap them."
    viewer.to_date.selectAll()
    qtbot.keyClicks(viewer.to_date, "13/45/2026")
    qtbot.keyClick(viewer.to_date, Qt.Key.Key_Return)
    assert viewer.status.text().startswith("To date:")
    viewer.to_date.selectAll()
    qtbot.keyClicks(viewer.to_date, local_today().strftime("%m/%d/%Y"))
    qtbot.keyClick(viewer.to_date, Qt.Key.Key_Return)
    assert viewer.model.rowCount() == total
    assert tomorrow > local_today()


def test_audit_viewer_refused_for_admins(qtbot, practice):
    with pytest.raises(UserFacingError, match="Only users who manage users"):
        AuditViewer(AppContext(practice.db, practice.admin))


def test_settings_dialog_changes_auto_lock_and_audits(qtbot, context):
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(context.data_changed, timeout=2000) as signal:
        dialog.editors["auto_lock_minutes"].setValue(3)
        dialog.save()
    assert signal.args == ["settings"]
    with context.db.session() as session:
        assert get_setting(session, "auto_lock_minutes") == 3
        event = session.query(AuditEvent).filter_by(action="setting_changed").one()
    assert event.detail == "auto_lock_minutes: 10 -> 3"


def test_settings_are_read_only_for_admins(qtbot, practice):
    dialog = SettingsDialog(AppContext(practice.db, practice.admin))
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.editors["auto_lock_minutes"].isEnabled()
    # Save would do nothing: it is disabled, and the dialog says why in words.
    assert not dialog.save_button.isEnabled()
    assert dialog.read_only_note.isVisible()
    assert "only users who manage users" in dialog.read_only_note.text()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_settings_dialog_for_a_physician_has_save_and_no_read_only_note(qtbot, context):
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.save_button.isEnabled() and not dialog.read_only_note.isVisible()


def test_change_my_password(qtbot, context):
    dialog = ChangePasswordDialog(context)
    qtbot.addWidget(dialog)
    dialog.old.setText("wrong one entirely")
    dialog.new.setText("another good password")
    dialog.repeat.setText("another good password")
    dialog.save()
    assert dialog.error.text() == "Wrong user name or password."
    dialog.old.setText(PASSWORD)
    dialog.save()
    assert dialog.result() == dialog.DialogCode.Accepted


def test_choice_settings_use_a_drop_down(qtbot, context):
    from PySide6.QtWidgets import QComboBox

    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    combo = dialog.editors["interaction_interrupt_threshold"]
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "contraindicated", "major", "moderate", "minor"]
    combo.setCurrentText("moderate")
    dialog.save()
    with context.db.session() as session:
        assert get_setting(session, "interaction_interrupt_threshold") == "moderate"


def test_the_plan_date_style_is_chosen_in_words_and_stored_as_its_key(qtbot, context):
    """Defect 7: the practice chooses how plan dates are written (US by default)."""
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    combo = dialog.editors["plan_date_format"]
    assert combo.currentText() == "MM/DD/YYYY (12/02/2026)"  # the default
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "MM/DD/YYYY (12/02/2026)", "YYYY-MM-DD (2026-12-02)", "Month D, YYYY (December 2, 2026)"]
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText().startswith("Month D, YYYY")
    dialog.save()
    with context.db.session() as session:
        assert get_setting(session, "plan_date_format") == "long"


def test_audit_table_model_passes_qtmodeltester(qtmodeltester, context):
    from ketadesk.storage.security import audit_log
    from ketadesk.ui.admin.audit_table_model import SEQ_ROLE, AuditTableModel

    model = AuditTableModel()
    with context.db.session() as session:
        rows = audit_log.find_events(session, audit_log.AuditFilter())
    model.set_rows(rows)
    assert model.rowCount() == len(rows) > 0
    assert model.index(0, 0).data(SEQ_ROLE) == rows[0].seq
    qtmodeltester.check(model)


def test_users_dialog_flags_a_row_changed_outside_ketadesk(qtbot, context, practice, tmp_path):
    from ketadesk.storage.security.engine import raw_connection

    connection = raw_connection(practice.path, practice.db.database_key())
    connection.execute(
        "UPDATE users SET role = 'physician', can_manage_users = 1 WHERE user_name = ?", (ADMIN,)
    )
    connection.commit()
    connection.close()
    dialog = UsersDialog(context)
    qtbot.addWidget(dialog)
    dialog.resize(760, 300)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    admin_line = next(t for t in texts if ADMIN in t)
    assert "Admin" in admin_line and "manages users" not in admin_line
    assert "record changed outside KetaDesk" in admin_line
    dialog.grab().save(str(tmp_path / "users_dialog_unsigned_row.png"))
