"""Defect 15: check-in and questionnaire dates typed like every other date (US or ISO, or
picked), with a clear message for a date that cannot be read or is in the future."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes.outcomes import list_checkins, list_questionnaires
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.qdate_conversion import local_today
from ketadesk.ui.outcomes.checkin_dialog import CheckInDialog
from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
from ketadesk.ui.outcomes.questionnaire_dialog import QuestionnaireDialog


@pytest.fixture
def context(practice: Any) -> Iterator[AppContext]:
    context = AppContext(practice.db, practice.physician)
    yield context
    # The tab reloads on a worker after a save: that must end before the practice closes,
    # or it fails on the closed database and its error dialog opens during teardown.
    context.ops.wait_for_done()


def open_tab(qtbot: QtBot, practice: Any, context: AppContext) -> tuple[CheckInsTab, int]:
    with practice.db.session() as s:
        patient = Patient(mrn="KD-00000031", first_name="Ivo", last_name="Example",
                          dob=date(1981, 1, 2), state="NJ", status="active")
        s.add(patient)
        s.flush()
        patient_id = patient.id
    tab = CheckInsTab(context, patient_id)
    qtbot.addWidget(tab)
    tab.resize(1200, 800)
    tab.show()
    qtbot.waitUntil(lambda: tab.outcomes() is not None, timeout=10000)
    return tab, patient_id


def retype(qtbot: QtBot, field: Any, text: str) -> None:
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, text)


def test_check_in_date_typed_us_short_form(
    qtbot: QtBot, practice: Any, context: AppContext
) -> None:
    tab, patient_id = open_tab(qtbot, practice, context)
    qtbot.mouseClick(tab.new_checkin_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    assert isinstance(dialog, CheckInDialog)
    today = local_today()
    assert dialog.date_edit.text() == today.strftime("%m/%d/%Y")  # today where the user is
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    retype(qtbot, dialog.date_edit, "13/02/2026")
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "month" in dialog.problems_label.text()
    tomorrow = today + timedelta(days=1)
    retype(qtbot, dialog.date_edit, tomorrow.strftime("%Y-%m-%d"))
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "future" in dialog.problems_label.text()
    earlier = today - timedelta(days=3)
    retype(qtbot, dialog.date_edit, f"{earlier.month}/{earlier.day}/{earlier.year % 100:02d}")
    with qtbot.waitSignal(tab.checkin_saved, timeout=10000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        assert [c.checked_on for c in list_checkins(s, patient_id)] == [earlier]


def test_questionnaire_date_typed_iso_or_refused(
    qtbot: QtBot, practice: Any, context: AppContext
) -> None:
    tab, patient_id = open_tab(qtbot, practice, context)
    qtbot.mouseClick(tab.gad7_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    assert isinstance(dialog, QuestionnaireDialog)
    dialog.set_answers([1, 1, 0, 0, 1, 0, 0])
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    retype(qtbot, dialog.date_edit, "yesterday")
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "MM/DD/YYYY" in dialog.problem_label.text()
    tomorrow = local_today() + timedelta(days=1)
    retype(qtbot, dialog.date_edit, tomorrow.strftime("%m/%d/%Y"))
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "future" in dialog.problem_label.text()
    earlier = local_today() - timedelta(days=10)
    retype(qtbot, dialog.date_edit, earlier.isoformat())
    with qtbot.waitSignal(tab.questionnaire_saved, timeout=10000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        assert [q.taken_on for q in list_questionnaires(s, patient_id)] == [earlier]
