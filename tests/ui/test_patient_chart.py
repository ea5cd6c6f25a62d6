"""The patient chart: edit, save, validation messages, unsaved-changes prompt, permissions."""

from __future__ import annotations

from datetime import date

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from ketadesk.core.demographics import PatientDemographics
from ketadesk.storage.patients import patients as service
from ketadesk.ui.chart.patient_chart import PHYSICIANS_ONLY, PatientChart
from ketadesk.ui.common.context import AppContext

DRAFT = PatientDemographics(
    first_name="Zoë",
    last_name="Quillon",
    dob=date(1980, 2, 1),
    sex="female",
    state="FL",
    county="Alachua",
    phone="(352) 555-0101",
)


@pytest.fixture
def patient_id(practice) -> int:
    with practice.db.session() as s:
        return service.create_patient(s, practice.physician, DRAFT, today=date(2026, 3, 15)).id


def chart_for(practice, qtbot, patient_id, actor=None):
    context = AppContext(practice.db, actor or practice.physician)
    chart = PatientChart(context, patient_id)
    qtbot.addWidget(chart)
    return chart


def test_edit_and_save_with_ctrl_s(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    assert chart.form.value("first_name") == "Zoë" and not chart.is_dirty
    qtbot.keyClicks(chart.form.editors["city"], "Gainesville")
    assert chart.is_dirty
    with qtbot.waitSignal(chart.patient_saved) as saved:
        assert chart._save_shortcut.key() == QKeySequence(QKeySequence.StandardKey.Save)
        chart._save_shortcut.activated.emit()
    assert saved.args == [patient_id] and not chart.is_dirty
    with practice.db.session() as s:
        assert service.get_patient_record(s, practice.physician, patient_id).demographics.city == (
            "Gainesville"
        )


def test_validation_messages_shown_and_nothing_lost(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.form.set_value("dob", "13/40/1980")
    chart.form.set_value("phone", "12345")
    chart.form.set_value("state", "")
    assert chart.save() is False
    assert "month" in chart.form.message("dob")
    assert "10 digits" in chart.form.message("phone")
    assert "Florida or New Jersey" in chart.form.message("state")
    assert chart.form.value("dob") == "13/40/1980" and chart.form.value("phone") == "12345"
    assert "nothing was saved" in chart.banner.text()


def test_weight_in_pounds_stored_in_kg(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.body.set_value("weight", "154")
    chart.body.set_value("weight_unit", "lb")
    assert chart.save()
    assert chart.record.latest_weight_kg == pytest.approx(154 * 0.45359237)
    chart.body.set_value("weight", "900")
    assert not chart.save()
    assert "Weight must be between" in chart.body.message("weight")


def test_under_18_needs_confirmation(practice, qtbot, monkeypatch) -> None:
    context = AppContext(practice.db, practice.admin)
    chart = PatientChart(context, None)
    qtbot.addWidget(chart)
    values = {
        "first_name": "Mateo",
        "last_name": "Brightwater",
        "dob": "2015-06-01",
        "sex": "male",
        "state": "NJ",
    }
    chart.form.set_values(values)
    chart._state_changed()
    chart.form.set_value("county", "Cape May")
    answers = iter([False, True])
    monkeypatch.setattr(chart, "ask_confirm_minor", lambda: next(answers))
    assert chart.save() is False and chart.patient_id is None
    assert chart.save() is True and chart.patient_id is not None


def test_unsaved_changes_prompt(practice, qtbot, patient_id, monkeypatch) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.form.set_value("city", "Ocala")
    chart._set_dirty(True)
    monkeypatch.setattr(chart, "ask_unsaved_changes", lambda: QMessageBox.StandardButton.Cancel)
    assert chart.may_close() is False
    monkeypatch.setattr(chart, "ask_unsaved_changes", lambda: QMessageBox.StandardButton.Save)
    assert chart.may_close() is True
    with practice.db.session() as s:
        assert service.get_patient_record(s, practice.physician, patient_id).demographics.city == (
            "Ocala"
        )


def test_medication_as_typed_and_admin_cannot_verify(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id, actor=practice.admin)
    assert not chart.med_verify.isEnabled() and chart.med_verify.toolTip() == PHYSICIANS_ONLY
    assert not chart.vitals_add.isEnabled() and not chart.status_button.isEnabled()
    chart.med_text.setText("Ativan 1 mg at bedtime")
    chart.entries.add_medication()
    assert chart.med_table.item(0, 0).text() == "Ativan 1 mg at bedtime"
    assert chart.med_table.item(0, 3).text() == "Patient-reported"
    physician = chart_for(practice, qtbot, patient_id)
    physician.med_table.selectRow(0)
    physician.entries.verify_medication()
    assert physician.med_table.item(0, 3).text().startswith("Verified")


def test_vitals_and_status_change(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.vitals_systolic.setText("128")
    chart.vitals_diastolic.setText("82")
    chart.vitals_heart_rate.setText("70")
    chart.entries.add_vitals()
    assert chart.vitals_table.item(0, 1).text() == "128/82"
    chart.status_combo.setCurrentIndex(chart.status_combo.findData("active"))
    chart.entries.change_status()
    assert "reason" in chart.banner.text()
    chart.status_reason.setText("screening complete")
    chart.entries.change_status()
    assert chart.status_label.text() == "Active"


def test_add_tab_for_later_features(practice, qtbot, patient_id) -> None:
    from PySide6.QtWidgets import QLabel

    chart = chart_for(practice, qtbot, patient_id)
    index = chart.add_tab("Protocol", QLabel("protocol"))
    assert chart.tabs.tabText(index) == "Protocol"


def test_problem_list_picker_stores_the_picked_code(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.resize(1280, 800)
    chart.show()
    chart.tabs.setCurrentWidget(chart.conditions_tab)
    line = chart.condition_text
    line.setFocus()
    qtbot.keyClicks(line, "hx of psych")
    popup = chart.condition_completer.popup()
    qtbot.waitUntil(popup.isVisible, timeout=10000)
    shown = [chart.conditions_tab.suggestion_model.item(row).text()
             for row in range(chart.conditions_tab.suggestion_model.rowCount())]
    assert shown[0] == "Psychotic disorder (psychosis) [F20]"
    qtbot.keyClick(popup, Qt.Key.Key_Down)
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert line.text() == "hx of Psychotic disorder"  # the qualifier typed first stays
    assert "F20" in chart.conditions_tab.condition_code_label.text()
    qtbot.mouseClick(chart.condition_add, Qt.MouseButton.LeftButton)
    assert line.text() == ""
    with practice.db.session() as s:
        record = service.get_patient_record(s, practice.physician, patient_id)
    (entry,) = record.conditions
    assert (entry.entered_text, entry.icd10, entry.concept_id) == (
        "hx of Psychotic disorder", "F20", "psychosis"
    )
    table = chart.condition_table
    assert [table.item(0, col).text() for col in range(2)] == ["hx of Psychotic disorder", "F20"]
    chart._context.ops.wait_for_done()


def test_free_text_stays_free_and_a_typed_code_is_stored(practice, qtbot, patient_id) -> None:
    chart = chart_for(practice, qtbot, patient_id)
    chart.show()
    chart.tabs.setCurrentWidget(chart.conditions_tab)
    line = chart.condition_text
    line.setFocus()
    qtbot.keyClicks(line, "hx of psych")
    qtbot.waitUntil(chart.condition_completer.popup().isVisible, timeout=10000)
    qtbot.keyClick(chart.condition_completer.popup(), Qt.Key.Key_Escape)
    qtbot.keyClicks(line, "iatric admission 2019")  # typed on: nothing picked, nothing coded
    qtbot.mouseClick(chart.condition_add, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(line, "I10 since 2015")
    qtbot.mouseClick(chart.condition_add, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        record = service.get_patient_record(s, practice.physician, patient_id)
    assert [(c.entered_text, c.icd10, c.concept_id) for c in record.conditions] == [
        ("hx of psychiatric admission 2019", None, None),
        ("I10 since 2015", "I10", "hypertension"),
    ]
    chart._context.ops.wait_for_done()
