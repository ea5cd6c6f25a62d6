"""The check-ins tab on a real encrypted database, driven offscreen with qtbot."""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes.safety_alerts import open_safety_alerts
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
from ketadesk.ui.outcomes.questionnaire_dialog import QuestionnaireDialog
from ketadesk.ui.roster.safety_banner import SafetyBanner

PHQ9_ITEM9_ONE = [1, 2, 1, 0, 1, 0, 1, 0, 1]


def add_patient(practice: Any) -> int:
    with practice.db.session() as s:
        patient = Patient(
            mrn="KD-00000018",
            first_name="Zoë",
            last_name="Example",
            dob=date(1988, 3, 4),
            state="FL",
            status="active",
        )
        s.add(patient)
        s.flush()
        return patient.id


def make_tab(qtbot: QtBot, context: AppContext, patient_id: int) -> CheckInsTab:
    tab = CheckInsTab(context, patient_id)
    qtbot.addWidget(tab)
    tab.resize(1200, 800)
    tab.show()
    qtbot.waitUntil(lambda: tab.outcomes() is not None, timeout=10000)
    return tab


def enter_phq9(qtbot: QtBot, tab: CheckInsTab, answers: list[int | None]) -> None:
    tab.phq9_button.click()
    dialog = tab.open_dialog
    assert isinstance(dialog, QuestionnaireDialog)
    dialog.set_answers(answers)
    assert dialog.alert_label.isVisible() == bool(answers[8])
    assert "988" in dialog.alert_label.text() or not answers[8]
    with qtbot.waitSignal(tab.outcomes_loaded, timeout=10000):
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()


def test_item9_answer_shows_banner_and_physician_acknowledges(qtbot: QtBot, practice: Any) -> None:
    patient_id = add_patient(practice)
    context = AppContext(practice.db, practice.physician)
    tab = make_tab(qtbot, context, patient_id)
    banner = SafetyBanner(context)
    qtbot.addWidget(banner)
    assert not tab.urgent_banner.isVisible()

    enter_phq9(qtbot, tab, PHQ9_ITEM9_ONE)
    assert tab.urgent_banner.isVisible()
    assert "988" in tab.urgent_label.text()
    assert tab.acknowledge_button.isEnabled()
    assert tab.questionnaire_table.item(0, 2).text() == "7"
    assert "NOT acknowledged" in tab.questionnaire_table.item(0, 4).text()
    qtbot.waitUntil(lambda: banner.patient_ids() == [patient_id], timeout=10000)
    assert "1 patient has" in banner.message_label.text()

    tab.acknowledge_button.click()
    dialog = tab.ack_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    # OK stays disabled, and says why, until the note has words in it.
    assert not dialog.ok_button().isEnabled()
    assert "what was done" in dialog.hint_label.text().lower()
    dialog.note_edit.setFocus()
    qtbot.keyClicks(dialog.note_edit, "   ")
    qtbot.keyClick(dialog.note_edit, Qt.Key.Key_Return)
    assert not dialog.ok_button().isEnabled()
    assert dialog.isVisible()
    qtbot.keyClicks(dialog.note_edit, "Phoned patient; safety plan reviewed")
    assert dialog.ok_button().isEnabled()
    assert not dialog.hint_label.isVisible()
    with qtbot.waitSignal(tab.safety_alert_acknowledged, timeout=10000):
        qtbot.keyClick(dialog.note_edit, Qt.Key.Key_Tab)
        assert dialog.focusWidget() is dialog.ok_button()
        qtbot.keyClick(dialog.ok_button(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not tab.urgent_banner.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: banner.patient_ids() == [], timeout=10000)
    assert banner.isHidden()
    assert "acknowledged by drquill" in tab.questionnaire_table.item(0, 4).text()
    with practice.db.session() as s:
        assert open_safety_alerts(s) == set()
        events = (
            s.execute(
                select(AuditEvent.user_name).where(
                    AuditEvent.action == audit_actions.SAFETY_ALERT_ACKNOWLEDGED,
                    AuditEvent.patient_id == patient_id,
                )
            )
            .scalars()
            .all()
        )
    assert events == ["drquill"]


def test_admin_sees_banner_but_cannot_acknowledge(qtbot: QtBot, practice: Any) -> None:
    patient_id = add_patient(practice)
    context = AppContext(practice.db, practice.admin)
    tab = make_tab(qtbot, context, patient_id)
    assert not tab.new_checkin_button.isEnabled()  # check-ins are physicians' work
    enter_phq9(qtbot, tab, PHQ9_ITEM9_ONE)  # staff may enter patient-reported forms
    assert tab.urgent_banner.isVisible()
    assert not tab.acknowledge_button.isEnabled()
    assert "Physician" in tab.acknowledge_button.text()
    with practice.db.session() as s:
        assert open_safety_alerts(s) == {patient_id}


def test_incomplete_phq9_is_listed_as_not_scored(qtbot: QtBot, practice: Any) -> None:
    patient_id = add_patient(practice)
    tab = make_tab(qtbot, AppContext(practice.db, practice.physician), patient_id)
    tab.phq9_button.click()
    dialog = tab.open_dialog
    assert isinstance(dialog, QuestionnaireDialog)
    dialog.set_answers([1, 1, None, 1, 1, 1, 1, 1, 0])
    assert "not answered" in dialog.total_label.text()
    with qtbot.waitSignal(tab.outcomes_loaded, timeout=10000):
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert tab.questionnaire_table.item(0, 2).text() == "—"
    assert "Incomplete" in tab.questionnaire_table.item(0, 3).text()
    assert not tab.urgent_banner.isVisible()
    assert tab.charts.questionnaire_chart.is_empty()  # incomplete forms are not plotted


def type_in(qtbot: QtBot, dialog: Any, text: str) -> None:
    """Type into the dialog's focused field, then Tab on to the next one."""
    widget = dialog.focusWidget()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Tab)


def test_log_home_dose_by_keyboard_lands_each_value_in_its_field(
    qtbot: QtBot, practice: Any
) -> None:
    """Defect 3: Tab goes field to field; odd doses are questioned, impossible ones refused."""
    from datetime import UTC, datetime, timedelta

    from ketadesk.ui.outcomes.dose_dialog import DoseDialog
    from tests.unit.signed_protocol_patients import patient_with_signed_protocol

    start = datetime.now(UTC).date() - timedelta(days=14)
    with practice.db.session() as s:
        patient_id = patient_with_signed_protocol(s, practice.physician, start)
    tab = make_tab(qtbot, AppContext(practice.db, practice.admin), patient_id)
    tab.dose_button.click()
    dialog = tab.open_dialog
    assert isinstance(dialog, DoseDialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    assert dialog.focusWidget() is dialog.taken_edit

    # What was typed in the defect: a date 11 months before the protocol, 104 mg, 88/95.
    early = start - timedelta(days=335)
    type_in(qtbot, dialog, early.strftime("%Y-%m-%d 08:15"))
    assert dialog.focusWidget() is dialog.dose_spin  # Tab left the date, not its year part
    type_in(qtbot, dialog, "104")
    type_in(qtbot, dialog, "88")
    type_in(qtbot, dialog, "95")
    entry = dialog.entry()
    assert entry.taken_at.strftime("%Y-%m-%d %H:%M") == early.strftime("%Y-%m-%d 08:15")
    assert (entry.dose_mg, entry.bp_before_systolic, entry.bp_before_diastolic) == (104, 88, 95)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.confirmation is None
    assert "88/95" in dialog.problem_label.text() and dialog.problem_label.isVisible()

    # Correct the diastolic (Shift+Tab back to it); the odd date and dose are then asked about.
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Backtab)
    assert dialog.focusWidget() is dialog.readings["bp_before_diastolic"]
    dialog.readings["bp_before_diastolic"].selectAll()
    qtbot.keyClicks(dialog.focusWidget(), "60")
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)
    box = dialog.confirmation
    assert box is not None and box.isVisible()
    words = box.informativeText()
    assert f"before the first session of this patient's protocol ({start.isoformat()})" in words
    assert "104 mg is above the protocol's maximum single dose of 30 mg" in words
    qtbot.keyClick(box, Qt.Key.Key_Escape)  # "Go back and correct" is the safe default
    assert dialog.isVisible() and dialog.focusWidget() is dialog.taken_edit

    # Put the dose on today's session: saved without a question.
    dialog.taken_edit.setSelectedSection(dialog.taken_edit.Section.YearSection)
    today_text = (datetime.now(UTC).astimezone() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    type_in(qtbot, dialog, today_text)
    dialog.dose_spin.selectAll()
    qtbot.keyClicks(dialog.dose_spin, "20")
    qtbot.keyClick(dialog.dose_spin, Qt.Key.Key_Tab)
    with qtbot.waitSignal(tab.dose_logged, timeout=10000):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(tab.outcomes() and tab.outcomes().dose_log), timeout=10000)
    saved = tab.outcomes().dose_log[0].entry
    assert (saved.dose_mg, saved.bp_before_systolic, saved.bp_before_diastolic) == (20, 88, 60)
    assert saved.taken_at.astimezone().strftime("%Y-%m-%d %H:%M") == today_text


def test_a_blood_pressure_breach_reaches_the_banners_and_a_physician_acknowledges(
    qtbot: QtBot, practice: Any
) -> None:
    """Defect 5: a dose at 168/102 against a 140/90 hold limit is an urgent alert in the
    chart and in the main-window banner until a physician acknowledges it with a note."""
    from datetime import UTC, datetime, timedelta

    from ketadesk.core.dose_log import DoseLogEntry
    from ketadesk.storage.outcomes.outcomes import record_dose
    from tests.unit.signed_protocol_patients import patient_with_signed_protocol

    with practice.db.session() as s:
        patient_id = patient_with_signed_protocol(
            s, practice.physician, datetime.now(UTC).date() - timedelta(days=14)
        )
    context = AppContext(practice.db, practice.physician)
    tab = make_tab(qtbot, context, patient_id)
    banner = SafetyBanner(context)
    qtbot.addWidget(banner)
    banner.refresh()
    qtbot.waitUntil(lambda: banner.alerts_seen is not None, timeout=10000)
    assert banner.isHidden() and not tab.dose_alert_banner.isVisible()

    entry = DoseLogEntry(taken_at=datetime.now(UTC) - timedelta(hours=3), dose_mg=20,
                         bp_before_systolic=168, bp_before_diastolic=102, sitter_present=True)
    with practice.db.session() as s:
        record_dose(s, practice.admin, patient_id, entry)
    with qtbot.waitSignal(tab.outcomes_loaded, timeout=10000):
        context.data_changed.emit("checkins")
    assert tab.dose_alert_banner.isVisible()
    assert "blood pressure above the hold limit" in tab.dose_alert_label.text()
    assert "20 mg on" in tab.dose_alert_label.text()
    qtbot.waitUntil(lambda: banner.patient_ids() == [patient_id], timeout=10000)
    assert "a home dose outside the protocol's safety limits" in banner.message_label.text()
    assert "PHQ-9" not in banner.message_label.text()
    _save_shot(tab, "dose_alert_chart.png")
    _save_shot(banner, "dose_alert_banner.png")

    tab.acknowledge_dose_button.click()
    dialog = tab.ack_dialog
    assert dialog is not None and not dialog.ok_button().isEnabled()
    qtbot.keyClicks(dialog.note_edit, "Phoned: hold next dose, recheck BP tomorrow")
    with qtbot.waitSignal(tab.dose_alert_acknowledged, timeout=10000):
        qtbot.keyClick(dialog.note_edit, Qt.Key.Key_Tab)
        qtbot.keyClick(dialog.ok_button(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not tab.dose_alert_banner.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: banner.patient_ids() == [], timeout=10000)
    with practice.db.session() as s:
        assert open_safety_alerts(s) == set()


def _save_shot(widget: Any, name: str) -> None:
    """Screenshots for a person to look at, only when KETADESK_SHOTS names a folder."""
    import os
    from pathlib import Path

    folder = os.environ.get("KETADESK_SHOTS")
    if folder:
        widget.grab().save(str(Path(folder) / name))


def test_a_banner_read_still_under_way_at_log_out_does_not_come_back(
    qtbot: QtBot, practice: Any
) -> None:
    """Log-out clears the banner while a read may still be on a worker: its late answer is
    dropped, so no item-9 alert reappears on the window behind the log-in dialog."""
    patient_id = add_patient(practice)
    context = AppContext(practice.db, practice.physician)
    tab = make_tab(qtbot, context, patient_id)
    enter_phq9(qtbot, tab, PHQ9_ITEM9_ONE)
    banner = SafetyBanner(context)
    qtbot.addWidget(banner)
    banner.refresh()  # answered on the GUI thread only once the event loop runs again
    banner.clear()
    assert context.ops.wait_for_done(10_000)
    qtbot.wait(100)  # the worker's queued answer is delivered here
    assert banner.patient_ids() == [] and banner.message_label.text() == ""
    assert banner.isHidden()
    banner.refresh()  # a read started after the clear is shown as usual
    qtbot.waitUntil(lambda: banner.patient_ids() == [patient_id], timeout=10000)
