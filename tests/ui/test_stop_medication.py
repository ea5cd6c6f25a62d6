"""Defect 14: stopping a medication asks why, records who and when, and shows both."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt
from sqlalchemy import select

from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.patient_medications import add_medication
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.common.context import AppContext

TODAY = date(2026, 3, 15)
DRAFT = PatientDemographics(
    first_name="Rosa", last_name="Tell", dob=date(1975, 8, 9), sex="female", state="FL",
    county="Alachua", phone="(352) 555-0180",
)


def test_admin_stops_a_physician_entered_line_only_with_a_reason(practice, qtbot) -> None:
    with practice.db.session() as s:
        patient_id = service.create_patient(s, practice.physician, DRAFT, today=TODAY).id
        add_medication(s, practice.physician, patient_id, "Xanax 0.5 mg twice daily")
    chart = PatientChart(AppContext(practice.db, practice.admin), patient_id)
    qtbot.addWidget(chart)
    chart.show()
    chart.activateWindow()
    qtbot.waitUntil(chart.isActiveWindow)  # waitActive only waits as a context manager
    chart.tabs.setCurrentWidget(chart.medications_tab)
    chart.med_table.selectRow(0)
    qtbot.mouseClick(chart.med_stop, Qt.MouseButton.LeftButton)
    dialog = chart.stop_dialog
    assert dialog is not None and dialog.isVisible()
    assert "Xanax 0.5 mg twice daily" in dialog.line_label.text()
    assert "(entered by drquill)" in dialog.line_label.text()
    # Enter straight away: no reason chosen, nothing stopped, the dialog says why.
    qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Choose why" in dialog.problem.text()
    assert chart.record.medications[0].is_active
    # Choose "Other" by keyboard without a note: asked for the note.
    dialog.reason_combo.setFocus()
    while dialog.reason_combo.currentData() != "other":
        qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Down)
    qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Return)
    assert dialog.isVisible() and "short note" in dialog.problem.text()
    assert dialog.focusWidget() is dialog.note_edit
    qtbot.keyClicks(dialog.note_edit, "Patient tapered off with her PCP")
    qtbot.keyClick(dialog.note_edit, Qt.Key.Key_Return)
    assert not dialog.isVisible()
    stopped = chart.record.medications[0]
    assert not stopped.is_active and stopped.stopped_by == "frontdesk"
    assert stopped.stop_reason == "other" and stopped.stopped_at is not None
    cells = [chart.med_table.item(0, c).text() for c in range(chart.med_table.columnCount())]
    assert "Stopped" in cells
    when = stopped.stopped_at.astimezone().strftime("%m/%d/%Y %H:%M")
    assert f"{when} by frontdesk · Other reason (see the note): Patient tapered off" in cells[-1]
    with practice.db.session() as s:
        details = [e.detail for e in s.execute(select(AuditEvent)).scalars()]
    assert "medication stopped: alprazolam (reason: other)" in details
    assert not any("tapered" in d or "Xanax" in d for d in details)


def test_cancel_leaves_the_medication_current(practice, qtbot) -> None:
    with practice.db.session() as s:
        patient_id = service.create_patient(s, practice.physician, DRAFT, today=TODAY).id
        add_medication(s, practice.physician, patient_id, "Zoloft 50 mg")
    chart = PatientChart(AppContext(practice.db, practice.physician), patient_id)
    qtbot.addWidget(chart)
    chart.show()
    chart.med_table.selectRow(0)
    qtbot.mouseClick(chart.med_stop, Qt.MouseButton.LeftButton)
    dialog = chart.stop_dialog
    qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Down)
    qtbot.keyClick(dialog.reason_combo, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    with practice.db.session() as s:
        record = service.get_patient_record(s, practice.physician, patient_id)
    assert record.medications[0].is_active
