"""The chart by keyboard: Enter adds a row in every list editor, dates typed in US or ISO form,
messages that go away once the field is fixed, and a new patient told why lists wait."""

from __future__ import annotations

from datetime import date

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ketadesk.core.demographics import PatientDemographics
from ketadesk.storage.patients import patients as service
from ketadesk.ui.chart.patient_chart import NEW_PATIENT_NOTE, SAVE_FIRST, PatientChart
from ketadesk.ui.common.context import AppContext

DRAFT = PatientDemographics(
    first_name="Ines",
    last_name="Varga",
    dob=date(1979, 6, 3),
    sex="female",
    state="NJ",
    county="Mercer",
    phone="(609) 555-0117",
)


@pytest.fixture
def patient_id(practice) -> int:
    with practice.db.session() as s:
        return service.create_patient(s, practice.physician, DRAFT, today=date(2026, 3, 15)).id


def open_chart(practice, qtbot, patient_id, actor=None) -> PatientChart:
    chart = PatientChart(AppContext(practice.db, actor or practice.physician), patient_id)
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    chart.activateWindow()  # (qtbot.waitActive is a context manager: called bare, it waits not)
    qtbot.waitUntil(chart.isActiveWindow, timeout=5000)
    return chart


def saved_record(practice, patient_id):
    with practice.db.session() as s:
        return service.get_patient_record(s, practice.physician, patient_id)


def type_and_enter(qtbot, widget, text: str) -> None:
    widget.setFocus()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_enter_adds_each_condition_as_its_own_row(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    chart.tabs.setCurrentWidget(chart.conditions_tab)
    typed = ["Insomnia", "Migraine", "Asthma", "Tinnitus"]
    for text in typed:
        type_and_enter(qtbot, chart.condition_text, text)
        assert chart.condition_text.text() == ""
    entered = [c.entered_text for c in saved_record(practice, patient_id).conditions]
    assert sorted(entered) == sorted(typed)
    assert chart.condition_table.rowCount() == 4


def test_enter_adds_an_allergy_from_either_field(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    chart.tabs.setCurrentWidget(chart.conditions_tab)
    chart.allergy_substance.setFocus()
    qtbot.keyClicks(chart.allergy_substance, "Penicillin")
    qtbot.keyClick(chart.allergy_substance, Qt.Key.Key_Tab)
    assert chart.focusWidget() is chart.allergy_reaction
    type_and_enter(qtbot, chart.allergy_reaction, "Hives")
    type_and_enter(qtbot, chart.allergy_substance, "Latex")
    allergies = {(a.substance, a.reaction) for a in saved_record(practice, patient_id).allergies}
    assert allergies == {("Penicillin", "Hives"), ("Latex", "")}


def test_enter_in_the_vitals_row_adds_the_measurement(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    chart.tabs.setCurrentWidget(chart.vitals_tab)
    chart.vitals_systolic.setFocus()
    qtbot.keyClicks(chart.vitals_systolic, "128")
    qtbot.keyClick(chart.vitals_systolic, Qt.Key.Key_Tab)
    qtbot.keyClicks(chart.vitals_diastolic, "84")
    qtbot.keyClick(chart.vitals_diastolic, Qt.Key.Key_Tab)
    type_and_enter(qtbot, chart.vitals_heart_rate, "71")
    vitals = saved_record(practice, patient_id).vitals
    assert [(v.systolic, v.diastolic, v.heart_rate) for v in vitals] == [(128, 84, 71)]
    assert chart.vitals_systolic.text() == "" and chart.vitals_table.rowCount() == 1
    # Enter on the time field adds too; a row that cannot be read says why and keeps the text.
    type_and_enter(qtbot, chart.vitals_weight, "abc")
    assert "weight" in chart.banner.text().lower() and chart.vitals_weight.text() == "abc"
    chart.vitals_weight.clear()
    qtbot.keyClicks(chart.vitals_weight, "70")
    chart.vitals_when.setFocus()
    qtbot.keyClick(chart.vitals_when, Qt.Key.Key_Return)
    assert len(saved_record(practice, patient_id).vitals) == 2


def test_enter_in_any_medication_field_adds_it_with_a_us_or_iso_start(
    practice, qtbot, patient_id
) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    chart.tabs.setCurrentWidget(chart.medications_tab)
    chart.med_text.setFocus()
    qtbot.keyClicks(chart.med_text, "Sertraline 50 mg daily")
    chart.med_start.setFocus()
    type_and_enter(qtbot, chart.med_start, "3/4/25")
    chart.med_text.setFocus()
    qtbot.keyClicks(chart.med_text, "Lamotrigine 100 mg")
    type_and_enter(qtbot, chart.med_start, "2024-11-02")
    starts = {m.entered_text: m.start_date for m in saved_record(practice, patient_id).medications}
    assert starts == {
        "Sertraline 50 mg daily": date(2025, 3, 4),
        "Lamotrigine 100 mg": date(2024, 11, 2),
    }
    # A bad date is named, nothing is added, and the typed line stays.
    qtbot.keyClicks(chart.med_text, "Bupropion")
    type_and_enter(qtbot, chart.med_start, "13/45/2024")
    assert "Start date" in chart.banner.text() and "month" in chart.banner.text()
    assert chart.med_text.text() == "Bupropion"
    assert len(saved_record(practice, patient_id).medications) == 2


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("11/29/1990", date(1990, 11, 29)), ("11/29/90", date(1990, 11, 29)),
     ("1990-11-29", date(1990, 11, 29)), ("2/3/05", date(2005, 2, 3))],
)
def test_date_of_birth_typed_in_any_accepted_form(
    practice, qtbot, patient_id, typed, expected
) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    dob = chart.form.editors["dob"]
    dob.setFocus()
    dob.selectAll()
    qtbot.keyClicks(dob, typed)
    assert chart.save()
    assert saved_record(practice, patient_id).demographics.dob == expected
    assert chart.form.value("dob") == expected.strftime("%m/%d/%Y")


def test_date_of_birth_picked_from_the_calendar_by_keyboard(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    dob = chart.form.editors["dob"]
    dob.setFocus()
    qtbot.keyClick(dob, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    popup = dob.popup
    assert popup is not None and popup.isVisible()
    calendar = popup.calendar
    assert calendar.selectedDate().toPython() == date(1979, 6, 3)
    qtbot.keyClick(calendar.focusWidget() or calendar, Qt.Key.Key_Right)
    qtbot.keyClick(calendar.focusWidget() or calendar, Qt.Key.Key_Return)
    assert not popup.isVisible()
    assert chart.form.value("dob") == "06/04/1979" and chart.is_dirty
    assert chart.save()
    assert saved_record(practice, patient_id).demographics.dob == date(1979, 6, 4)


def test_message_goes_away_once_the_field_is_fixed(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    phone = chart.form.editors["phone"]
    dob = chart.form.editors["dob"]
    for editor, text in ((phone, "12345"), (dob, "02/30/1980")):
        editor.setFocus()
        editor.selectAll()
        qtbot.keyClicks(editor, text)
    assert chart.save() is False
    assert "10 digits" in chart.form.message("phone")
    assert "does not exist" in chart.form.message("dob")
    phone.setFocus()
    phone.selectAll()
    qtbot.keyClicks(phone, "609 555 0142")
    assert chart.form.message("phone") == ""
    assert "does not exist" in chart.form.message("dob")  # still wrong: still said
    assert chart.banner.isVisible() and chart.banner.text().startswith("1 field needs attention")
    dob.setFocus()
    qtbot.keyClick(dob, Qt.Key.Key_Backspace)  # "02/30/198": not a date yet, message stays
    assert chart.form.message("dob") != ""
    dob.selectAll()
    qtbot.keyClicks(dob, "03/01/198")
    assert chart.form.message("dob") != ""
    qtbot.keyClicks(dob, "0")
    assert chart.form.value("dob") == "03/01/1980"
    assert chart.form.message("dob") == "" and not chart.banner.isVisible()
    assert chart.save()


def test_emergency_contact_with_relationship_in_brackets(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    for name, text in (
        ("emergency_contact_name", "Tomas Varga (husband)"),
        ("emergency_contact_phone", "609-555-0199"),
    ):
        editor = chart.contacts.editors[name]
        editor.setFocus()
        qtbot.keyClicks(editor, text)
    assert chart.save(), chart.contacts.message("emergency_contact_name")
    saved = saved_record(practice, patient_id).demographics
    assert saved.emergency_contact_name == "Tomas Varga (husband)"
    chart.contacts.set_value("emergency_contact_name", "Tomas 4 (husband)")
    assert not chart.save()
    assert "digits" in chart.contacts.message("emergency_contact_name")


def test_the_emergency_contact_relationship_is_picked_or_typed(practice, qtbot, patient_id) -> None:
    """Defect 16: after the contact's name, Tab reaches the relationship box; a suggestion is
    picked by typing its start, or any other word typed; both are saved and shown again."""
    chart = open_chart(practice, qtbot, patient_id)
    chart.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard  # closing at the end
    name = chart.contacts.editors["emergency_contact_name"]
    name.setFocus()
    qtbot.keyClicks(name, "Tomas Varga (husband)")
    qtbot.keyClick(name, Qt.Key.Key_Tab)
    relationship = chart.contacts.editors["emergency_contact_relationship"]
    assert relationship.hasFocus()
    qtbot.keyClicks(relationship, "spo")  # completes to "spouse"
    qtbot.keyClick(relationship, Qt.Key.Key_Tab)
    phone = chart.contacts.editors["emergency_contact_phone"]
    assert phone.hasFocus()
    qtbot.keyClicks(phone, "609-555-0199")
    assert chart.save(), chart.contacts.message("emergency_contact_relationship")
    saved = saved_record(practice, patient_id).demographics
    assert (saved.emergency_contact_name, saved.emergency_contact_relationship) == (
        "Tomas Varga (husband)", "spouse"
    )
    reopened = open_chart(practice, qtbot, patient_id)
    reopened.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    assert reopened.contacts.value("emergency_contact_relationship") == "spouse"
    relationship = reopened.contacts.editors["emergency_contact_relationship"]
    relationship.setFocus()
    relationship.lineEdit().selectAll()
    qtbot.keyClicks(relationship, "godmother")
    assert reopened.save()
    assert saved_record(practice, patient_id).demographics.emergency_contact_relationship == (
        "godmother"
    )


def test_new_patient_is_told_why_lists_wait_for_the_first_save(practice, qtbot) -> None:
    chart = PatientChart(AppContext(practice.db, practice.physician), None)
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    assert chart.new_patient_note.isVisible() and chart.new_patient_note.text() == NEW_PATIENT_NOTE
    for widget in (chart.med_add, chart.med_text, chart.condition_add, chart.vitals_add):
        assert not widget.isEnabled() and widget.toolTip() == SAVE_FIRST
    values = {
        "first_name": "Ada", "last_name": "Kerr", "dob": "4/5/88", "sex": "female",
        "phone": "6095550123", "state": "NJ",
    }
    for name, text in values.items():
        editor = chart.form.editors[name]
        if name in ("sex", "state"):
            chart.form.set_value(name, text)
            continue
        editor.setFocus()
        qtbot.keyClicks(editor, text)
    chart.form.set_value("county", "Mercer")
    assert chart.save(), chart.banner.text()
    assert not chart.new_patient_note.isVisible()
    assert chart.med_add.isEnabled() and chart.condition_text.isEnabled()
    type_and_enter(qtbot, chart.condition_text, "Insomnia")
    assert [c.entered_text for c in saved_record(practice, chart.patient_id).conditions] == [
        "Insomnia"
    ]
    assert saved_record(practice, chart.patient_id).demographics.dob == date(1988, 4, 5)


def test_new_status_box_starts_on_the_current_status(practice, qtbot, patient_id) -> None:
    chart = open_chart(practice, qtbot, patient_id)
    assert chart.status_combo.currentData() == "screening"
    chart.status_combo.setCurrentIndex(chart.status_combo.findData("active"))
    chart.status_reason.setFocus()
    qtbot.keyClicks(chart.status_reason, "Screening complete")
    qtbot.mouseClick(chart.status_button, Qt.MouseButton.LeftButton)
    assert saved_record(practice, patient_id).status == "active"
    assert chart.status_combo.currentData() == "active"
    chart.reload()
    assert chart.status_combo.currentText() == chart.status_label.text()


def test_vitals_measured_at_uses_the_shared_date_field(practice, qtbot, patient_id) -> None:
    """Defect 15: "measured on" is the shared date field (US or ISO typed, or picked with
    Alt+Down and Enter) with the time beside it; an earlier day needs its time."""
    from datetime import datetime, timedelta

    from PySide6.QtWidgets import QApplication

    from ketadesk.ui.common.date_entry import DateEntry
    from ketadesk.ui.common.qdate_conversion import local_today

    chart = open_chart(practice, qtbot, patient_id)
    chart.tabs.setCurrentWidget(chart.vitals_tab)
    assert isinstance(chart.vitals_when, DateEntry)
    yesterday = local_today() - timedelta(days=1)
    chart.vitals_when.setFocus()
    chart.vitals_when.selectAll()
    qtbot.keyClicks(chart.vitals_when, yesterday.strftime("%m/%d/%Y"))
    qtbot.keyClick(chart.vitals_when, Qt.Key.Key_Tab)
    assert chart.vitals_time.hasFocus()
    qtbot.keyClick(chart.vitals_time, Qt.Key.Key_Tab)
    qtbot.keyClicks(chart.vitals_systolic, "126")
    qtbot.keyClick(chart.vitals_systolic, Qt.Key.Key_Tab)
    type_and_enter(qtbot, chart.vitals_diastolic, "80")
    assert "time the vitals were measured" in chart.banner.text()
    assert saved_record(practice, patient_id).vitals == ()
    type_and_enter(qtbot, chart.vitals_time, "2:30 pm")
    two_days_ago = local_today() - timedelta(days=2)
    chart.vitals_when.setFocus()
    chart.vitals_when.selectAll()
    qtbot.keyClicks(chart.vitals_when, two_days_ago.isoformat())  # ISO is read too
    qtbot.keyClicks(chart.vitals_systolic, "131")
    qtbot.keyClicks(chart.vitals_diastolic, "85")
    type_and_enter(qtbot, chart.vitals_time, "08:10")
    # Picking: Alt+Down opens the month on the typed day, Left moves a day, Enter picks it.
    chart.vitals_when.setFocus()
    qtbot.keyClick(chart.vitals_when, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    popup = chart.vitals_when.popup
    assert popup is not None and popup.isVisible()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None
                    and popup.isAncestorOf(QApplication.focusWidget()))
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Left)  # the keys go where focus is
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    assert chart.vitals_when.date_value() == local_today() - timedelta(days=1)
    qtbot.keyClicks(chart.vitals_systolic, "119")
    qtbot.keyClicks(chart.vitals_diastolic, "77")
    type_and_enter(qtbot, chart.vitals_time, "7:05 am")
    measured = sorted(
        (v.measured_at.astimezone(), v.systolic) for v in saved_record(practice, patient_id).vitals
    )
    local = [(m.date(), m.hour, m.minute, bp) for m, bp in measured]
    assert local == [
        (two_days_ago, 8, 10, 131), (yesterday, 7, 5, 119), (yesterday, 14, 30, 126)
    ]
    assert all(isinstance(m, datetime) for m, _ in measured)
