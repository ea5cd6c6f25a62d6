"""Two workstations save the same chart: the conflict screen, driven with real keys and clicks
(on a practice file and on a practice server). Nothing typed is lost, whatever is chosen."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from ketadesk.core.demographics import PatientDemographics
from ketadesk.storage.patients import patients as service
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.edit_conflict_dialog import BOTH_CHANGED
from tests.conftest import PASSWORD
from tests.workstations import front_desk_workstation

TODAY = date(2026, 3, 15)
DRAFT = PatientDemographics(
    first_name="Zoë", last_name="Quillon", dob=date(1980, 2, 1), sex="female", state="FL",
    county="Alachua", phone="(352) 555-0101", email="zoe@example.org",
)


@pytest.fixture
def chart(practice_on, qtbot):
    with practice_on.db.session() as s:
        pid = service.create_patient(s, practice_on.physician, DRAFT, today=TODAY).id
    chart = PatientChart(AppContext(practice_on.db, practice_on.physician), pid)
    # Closing at the end of a test discards what is left (no question box to wait on).
    chart.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(chart)
    chart.show()
    chart.activateWindow()
    # Activation arrives later (an event); Ctrl+S only works in the active window.
    qtbot.waitUntil(chart.isActiveWindow)
    return chart


def _front_desk_saves(practice, patient_id, **changes):
    """The admin, on the other workstation, saves the chart as it was opened (version 1)."""
    with front_desk_workstation(practice, PASSWORD) as (db, actor), db.session() as s:
        record = service.get_patient_record(s, actor, patient_id)
        service.update_demographics(
            s, actor, patient_id, replace(record.demographics, **changes), today=TODAY,
            expected_version=record.version,
        )


def _type_into(qtbot, editor, text):
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def _stored(practice, patient_id):
    with practice.db.read_session() as s:
        return service.patient_record_unaudited(s, practice.physician, patient_id)


def _press_ctrl_s(qtbot, chart):
    assert chart.isActiveWindow(), "Ctrl+S only works in the active window"
    qtbot.keyClick(chart.focusWidget() or chart, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)


def _wait_for_conflict_screen(qtbot, chart):
    def shown():
        assert chart.conflict_dialog is not None, chart.banner.text()
        assert chart.conflict_dialog.isVisible()

    qtbot.waitUntil(shown)
    return chart.conflict_dialog


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def test_choose_field_by_field_then_enter_saves_the_merge(practice_on, qtbot, chart) -> None:
    pid = chart.patient_id
    _front_desk_saves(practice_on, pid, phone="(352) 555-0199", city="Gainesville",
                      email="front@example.org")
    _type_into(qtbot, chart.form.editors["phone"], "(352) 555-0123")  # both changed it
    _type_into(qtbot, chart.form.editors["email"], "rowan@example.org")  # both changed it
    _type_into(qtbot, chart.form.editors["address_line1"], "12 Cypress Lane")  # only mine
    _press_ctrl_s(qtbot, chart)
    dialog = _wait_for_conflict_screen(qtbot, chart)
    assert "Sam Frontdesk saved Quillon, Zoë's details at" in dialog.headline.text()
    assert [d.name for d in dialog.differences] == ["phone", "email", "address_line1", "city"]
    # Side by side: what was typed here and what the front desk saved; the starting choice
    # keeps what was typed and takes what only they changed.
    assert dialog.mine_buttons["phone"].text() == "(352) 555-0123"
    assert dialog.theirs_buttons["phone"].text() == "(352) 555-0199"
    assert dialog.mine_buttons["city"].text() == "(empty)"
    assert dialog.choices() == {"phone": "mine", "email": "mine", "city": "theirs",
                                "address_line1": "mine"}
    phone_label = dialog.findChildren(type(dialog.headline))
    assert any(BOTH_CHANGED in label.text() and "Phone" in label.text() for label in phone_label)
    # Nothing is saved while the screen is open.
    assert _stored(practice_on, pid).demographics.email == "front@example.org"
    # Their phone, by mouse; then the keyboard: focus their email and press Space.
    _click(qtbot, dialog.theirs_buttons["phone"])
    dialog.theirs_buttons["email"].setFocus()
    qtbot.keyClick(dialog.theirs_buttons["email"], Qt.Key.Key_Space)
    assert dialog.choices()["email"] == "theirs"
    # Changed my mind on the email: back to mine with a click.
    _click(qtbot, dialog.mine_buttons["email"])
    assert dialog.choices() == {"phone": "theirs", "email": "mine", "city": "theirs",
                                "address_line1": "mine"}
    with qtbot.waitSignal(chart.patient_saved):
        qtbot.keyClick(dialog.mine_buttons["email"], Qt.Key.Key_Return)
    assert not dialog.isVisible() and chart.conflict_dialog is None
    stored = _stored(practice_on, pid)
    assert stored.version == 3
    assert stored.updated_by == practice_on.physician.user_name
    d = stored.demographics
    assert (d.phone, d.email, d.city, d.address_line1) == (
        "(352) 555-0199", "rowan@example.org", "Gainesville", "12 Cypress Lane",
    )
    assert chart.form.value("phone") == "(352) 555-0199" and not chart.is_dirty
    assert not chart.banner.isVisible()


def test_escape_keeps_everything_typed_and_saves_nothing(practice_on, qtbot, chart) -> None:
    pid = chart.patient_id
    _front_desk_saves(practice_on, pid, city="Ocala")
    _type_into(qtbot, chart.form.editors["city"], "Micanopy")
    _type_into(qtbot, chart.form.editors["address_line1"], "12 Cypress Lane")
    chart.body.set_value("weight", "61.5")
    typed = chart.demographics_tab.typed_values()
    _press_ctrl_s(qtbot, chart)
    dialog = _wait_for_conflict_screen(qtbot, chart)
    assert dialog.choices() == {"city": "mine", "address_line1": "mine"}
    _click(qtbot, dialog.theirs_buttons["city"])
    qtbot.keyClick(dialog.theirs_buttons["city"], Qt.Key.Key_Escape)
    assert not dialog.isVisible() and chart.conflict_dialog is None
    assert chart.demographics_tab.typed_values() == typed  # nothing typed lost, not even weight
    assert chart.is_dirty
    assert "Not saved: Sam Frontdesk saved this patient's details meanwhile" in chart.banner.text()
    stored = _stored(practice_on, pid)
    assert (stored.version, stored.demographics.city, stored.latest_weight_kg) == (2, "Ocala", None)
    # Saving again compares again; "Keep all mine" then the Save button keeps what was typed.
    assert chart.save() is False
    dialog = chart.conflict_dialog
    assert dialog is not None
    _click(qtbot, dialog.take_all_theirs)
    assert set(dialog.choices().values()) == {"theirs"}
    _click(qtbot, dialog.keep_all_mine)
    with qtbot.waitSignal(chart.patient_saved):
        _click(qtbot, dialog.save_button)
    stored = _stored(practice_on, pid)
    assert (stored.demographics.city, stored.demographics.address_line1) == (
        "Micanopy", "12 Cypress Lane",
    )
    assert stored.latest_weight_kg == pytest.approx(61.5)


def test_a_change_elsewhere_on_the_chart_saves_without_asking(practice_on, qtbot, chart) -> None:
    pid = chart.patient_id
    with practice_on.db.session() as s:  # the status, from another window of this practice
        service.change_status(s, practice_on.physician, pid, "active", "Screened")
    _type_into(qtbot, chart.form.editors["city"], "Ocala")
    with qtbot.waitSignal(chart.patient_saved):
        _press_ctrl_s(qtbot, chart)
    assert chart.conflict_dialog is None
    stored = _stored(practice_on, pid)
    assert (stored.demographics.city, stored.status, stored.version) == ("Ocala", "active", 3)
    assert QApplication.activeModalWidget() is None


def test_conflict_screen_at_1280_by_800(practice_on, qtbot, chart, tmp_path) -> None:
    if practice_on.back_end != "file":
        pytest.skip("one picture is enough")
    pid = chart.patient_id
    _front_desk_saves(practice_on, pid, phone="(352) 555-0199", city="Gainesville",
                      sitter_name="Marisol Quillon", sitter_phone="(352) 555-0144", state="NJ",
                      county="Bergen")
    _type_into(qtbot, chart.form.editors["phone"], "(352) 555-0123")
    _type_into(qtbot, chart.form.editors["email"], "rowan.q@example.org")
    _type_into(qtbot, chart.form.editors["address_line1"], "12 Cypress Lane")
    chart.resize(1280, 800)
    assert chart.save() is False
    dialog = chart.conflict_dialog
    qtbot.waitExposed(dialog)
    assert chart.window().grab().save(str(tmp_path / "chart.png"))
    assert dialog.grab().save(str(tmp_path / "conflict.png"))  # looked at when it changes
    assert dialog.width() <= 1280 and dialog.height() <= 800


def test_adding_a_medication_while_editing_still_compares_on_save(
    practice_on, qtbot, chart
) -> None:
    """The list entry reloads the chart under the unsaved details: their change must not
    become the base those details are saved over."""
    pid = chart.patient_id
    _front_desk_saves(practice_on, pid, city="Gainesville")
    _type_into(qtbot, chart.form.editors["phone"], "(352) 555-0123")
    _type_into(qtbot, chart.med_text, "sertraline 50 mg daily")
    qtbot.keyClick(chart.med_text, Qt.Key.Key_Return)
    assert [m.entered_text for m in chart.record.medications] == ["sertraline 50 mg daily"]
    assert chart.form.value("phone") == "(352) 555-0123" and chart.form.value("city") == ""
    _press_ctrl_s(qtbot, chart)
    dialog = _wait_for_conflict_screen(qtbot, chart)
    assert dialog.choices() == {"phone": "mine", "city": "theirs"}
    with qtbot.waitSignal(chart.patient_saved):
        qtbot.keyClick(dialog.save_button, Qt.Key.Key_Return)
    d = _stored(practice_on, pid).demographics
    assert (d.phone, d.city) == ("(352) 555-0123", "Gainesville")
