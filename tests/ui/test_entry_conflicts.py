"""Two workstations change the same medication or condition line: the chart compares its
change with theirs side by side (real clicks and keys, on a practice file and on a server),
never overwrites silently, keeps a typed stop reason, and lets no admin merge past a
physician's decision."""

from __future__ import annotations

from datetime import date

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.patient_medications import (
    add_medication,
    stop_medication,
    verify_medication,
)
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.common.context import AppContext
from tests.conftest import PASSWORD
from tests.workstations import other_workstation

TODAY = date(2026, 3, 15)
DRAFT = PatientDemographics(
    first_name="Rosa", last_name="Tell", dob=date(1975, 8, 9), sex="female", state="FL",
    county="Alachua", phone="(352) 555-0180",
)
LINE = "sertraline 50 mg daily"
#: The screen's code is the same on both back ends; the escape path runs on a file only.
FILE_ONLY = pytest.mark.parametrize("practice_on", ["file"], indirect=True)


@pytest.fixture
def patient_id(practice_on):
    with practice_on.db.session() as s:
        pid = service.create_patient(s, practice_on.physician, DRAFT, today=TODAY).id
        add_medication(s, practice_on.physician, pid, LINE)
        service.add_condition(s, practice_on.physician, pid, "Major depressive disorder")
        service.add_allergy(s, practice_on.physician, pid, "Penicillin", "hives")
    return pid


def _open_chart(qtbot, practice, actor, patient_id):
    chart = PatientChart(AppContext(practice.db, actor), patient_id)
    chart.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(chart)
    chart.resize(1280, 800)
    chart.show()
    chart.activateWindow()
    qtbot.waitUntil(chart.isActiveWindow)
    return chart


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def _elsewhere(practice, *, physician):
    return other_workstation(practice, PASSWORD, physician=physician)


def _medication_id(practice, patient_id):
    return _stored(practice, patient_id).medications[0].id


def _stored(practice, patient_id):
    with practice.db.read_session() as s:
        return service.patient_record_unaudited(s, practice.physician, patient_id)


def _stop_by_keyboard(qtbot, chart, reason, note):
    chart.tabs.setCurrentWidget(chart.medications_tab)
    chart.med_table.selectRow(0)
    _click(qtbot, chart.med_stop)
    dialog = chart.stop_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.reason_combo.setFocus()
    while dialog.reason_combo.currentData() != reason:
        qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Down)
    dialog.note_edit.setFocus()
    dialog.note_edit.selectAll()
    qtbot.keyClicks(dialog.note_edit, note)
    qtbot.keyClick(dialog.note_edit, Qt.Key.Key_Return)
    assert not dialog.isVisible()


def _screen(chart):
    dialog = chart.entry_conflicts.dialog
    assert dialog is not None and dialog.isVisible(), chart.banner.text()
    return dialog


def test_verifying_a_line_the_front_desk_stopped_meanwhile_merges_both(
    practice_on, qtbot, patient_id, tmp_path
) -> None:
    chart = _open_chart(qtbot, practice_on, practice_on.physician, patient_id)
    med_id = _medication_id(practice_on, patient_id)
    with _elsewhere(practice_on, physician=False) as (db, admin), db.session() as s:
        stop_medication(s, admin, med_id, reason="patient_stopped")
    chart.tabs.setCurrentWidget(chart.medications_tab)
    chart.med_table.selectRow(0)
    _click(qtbot, chart.med_verify)
    dialog = _screen(chart)
    assert dialog.headline.text().startswith("Sam Frontdesk saved this medication line at")
    assert [d.name for d in dialog.differences] == ["status", "stop_reason", "source"]
    assert dialog.choices() == {"status": "theirs", "stop_reason": "theirs", "source": "mine"}
    assert (dialog.mine_buttons["status"].text(), dialog.theirs_buttons["status"].text()) == (
        "Yes (active)", "No (stopped)")
    assert dialog.theirs_buttons["stop_reason"].text() == "The patient no longer takes it"
    if practice_on.back_end == "file":
        assert chart.window().grab().save(str(tmp_path / "chart.png"))
        assert dialog.grab().save(str(tmp_path / "medication-conflict.png"))
        assert dialog.width() <= 1280 and dialog.height() <= 800
    assert _stored(practice_on, patient_id).medications[0].source == "patient_reported"
    qtbot.keyClick(dialog.mine_buttons["source"], Qt.Key.Key_Return)
    assert chart.entry_conflicts.dialog is None and not dialog.isVisible()
    stored = _stored(practice_on, patient_id).medications[0]
    assert (stored.is_active, stored.stop_reason, stored.source, stored.verified_by) == (
        False, "patient_stopped", "verified", practice_on.physician.user_name)
    assert chart.record.medications[0] == stored and not chart.banner.isVisible()


@FILE_ONLY
def test_escape_keeps_a_typed_stop_reason_for_the_next_stop(
    practice_on, qtbot, patient_id
) -> None:
    chart = _open_chart(qtbot, practice_on, practice_on.physician, patient_id)
    med_id = _medication_id(practice_on, patient_id)
    with _elsewhere(practice_on, physician=False) as (db, admin), db.session() as s:
        stop_medication(s, admin, med_id, reason="patient_stopped")
    _stop_by_keyboard(qtbot, chart, "replaced", "Switched to escitalopram")
    dialog = _screen(chart)
    assert [d.name for d in dialog.differences] == ["stop_reason", "stop_note"]
    assert dialog.choices() == {"stop_reason": "mine", "stop_note": "mine"}
    qtbot.keyClick(dialog.mine_buttons["stop_reason"], Qt.Key.Key_Escape)
    assert "Not saved: Sam Frontdesk saved this medication line meanwhile" in chart.banner.text()
    stored = _stored(practice_on, patient_id).medications[0]
    assert (stored.stop_reason, stored.stopped_by) == ("patient_stopped",
                                                       practice_on.admin.user_name)
    # Stop again: what was typed is back, and now recorded over their stop.
    chart.med_table.selectRow(0)
    _click(qtbot, chart.med_stop)
    stop = chart.stop_dialog
    assert (stop.reason_combo.currentData(), stop.note_edit.text()) == (
        "replaced", "Switched to escitalopram")
    qtbot.keyClick(stop.note_edit, Qt.Key.Key_Return)
    stored = _stored(practice_on, patient_id).medications[0]
    assert (stored.stop_reason, stored.stop_note, stored.stopped_by) == (
        "replaced", "Switched to escitalopram", practice_on.physician.user_name)
    assert not chart.entry_conflicts.unsaved_stops


def test_an_admin_cannot_merge_past_a_physicians_verification(
    practice_on, qtbot, patient_id
) -> None:
    chart = _open_chart(qtbot, practice_on, practice_on.admin, patient_id)
    med_id = _medication_id(practice_on, patient_id)
    with _elsewhere(practice_on, physician=True) as (db, physician), db.session() as s:
        verify_medication(s, physician, med_id)
    _stop_by_keyboard(qtbot, chart, "patient_stopped", "")
    dialog = _screen(chart)
    assert dialog.choices() == {"status": "mine", "stop_reason": "mine", "source": "theirs"}
    qtbot.keyClick(dialog.theirs_buttons["source"], Qt.Key.Key_Return)  # stop their verified
    assert "physician" in chart.banner.text().lower()
    stored = _stored(practice_on, patient_id).medications[0]
    assert (stored.is_active, stored.source) == (True, "verified")
    # Nor by keeping all of theirs own: the verification stays the physician's.
    _stop_by_keyboard(qtbot, chart, "patient_stopped", "")
    assert chart.entry_conflicts.dialog is None  # the chart now shows their version
    assert "physician" in chart.banner.text().lower()
    assert _stored(practice_on, patient_id).medications[0].is_active


def test_a_condition_resolved_or_an_allergy_removed_elsewhere_says_who(
    practice_on, qtbot, patient_id
) -> None:
    chart = _open_chart(qtbot, practice_on, practice_on.physician, patient_id)
    condition_id = chart.record.conditions[0].id
    allergy_id = chart.record.allergies[0].id
    with _elsewhere(practice_on, physician=True) as (db, physician), db.session() as s:
        service.resolve_condition(s, physician, condition_id)
    chart.tabs.setCurrentWidget(chart.conditions_tab)
    chart.condition_table.selectRow(0)
    _click(qtbot, chart.condition_resolve)
    assert chart.entry_conflicts.dialog is None  # the same change: nothing to ask
    assert chart.banner.text().startswith(
        "Dr. Rowan Quill had already made this change to this condition at")
    assert not chart.record.conditions[0].is_active
    # An allergy is only added or removed: one removed elsewhere names who removed it, and
    # the chart is read again so the line does not linger.
    with _elsewhere(practice_on, physician=True) as (db, physician), db.session() as s:
        service.remove_allergy(s, physician, allergy_id)
    assert chart.allergy_table.rowCount() == 1
    chart.allergy_table.selectRow(0)
    _click(qtbot, chart.allergy_remove)
    assert chart.banner.text() == (
        "Dr. Rowan Quill removed this allergy meanwhile; nothing else was changed.")
    assert chart.banner.isVisible()
    assert _stored(practice_on, patient_id).allergies == ()
    assert chart.allergy_table.rowCount() == 0
    with practice_on.db.read_session() as s:
        resolved = s.execute(
            select(AuditEvent.detail).where(
                AuditEvent.action == audit_actions.PATIENT_UPDATED,
                AuditEvent.detail == f"condition {condition_id} resolved",
            )
        ).scalars().all()
    assert len(resolved) == 1  # not recorded twice
