"""The protocol editor on a real encrypted practice database, driven by qtbot (offscreen)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from sqlalchemy import select

from ketadesk.core.practice_limits import LimitValue, PracticeLimits, RouteLimits
from ketadesk.core.protocols import Route
from ketadesk.models.patients import Patient, PatientStatusChange, VitalSign
from ketadesk.storage.practice.practice_limits_store import (
    set_practice_limits,
)
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocol,
    current_protocol,
    get_version,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.protocol.protocol_editor import ProtocolEditor

SOURCE = "Test practice policy (synthetic)"


def limits(mg_per_kg: float) -> PracticeLimits:
    route = RouteLimits(
        max_single_dose_mg_per_kg=LimitValue(mg_per_kg, SOURCE),
        max_single_dose_mg=LimitValue(300, SOURCE),
        max_daily_mg=LimitValue(300, SOURCE),
        min_interval_hours=LimitValue(24, SOURCE),
        max_sessions_per_week=LimitValue(7, SOURCE),
    )
    return PracticeLimits(routes={r: route for r in Route},
                          weight_max_age_days=LimitValue(90, SOURCE))


@pytest.fixture
def patient_id(practice: Any) -> int:
    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, limits(2.0))
        patient = Patient(mrn="KD-UI1", first_name="Zoë", last_name="Test", dob=date(1985, 1, 2),
                          state="FL", status="active")
        s.add(patient)
        s.flush()
        s.add(VitalSign(patient_id=patient.id, weight_kg=50.0, systolic=118, diastolic=76,
                        entered_by="drquill", measured_at=datetime.now(UTC) - timedelta(days=2)))
        return patient.id


def open_editor(qtbot: Any, practice: Any, actor: Any, patient_id: int) -> ProtocolEditor:
    context = AppContext(practice.db, actor)
    editor = ProtocolEditor(context, patient_id)
    qtbot.addWidget(editor)
    qtbot.waitUntil(lambda: editor.is_loaded, timeout=10000)
    return editor


def type_into(qtbot: Any, editor: ProtocolEditor, path: str, text: str) -> None:
    for form in editor.forms:
        if path in form.paths():
            field = form.editor(path)
            assert isinstance(field, QLineEdit)
            field.selectAll()
            qtbot.keyClicks(field, text)
            editor.revalidate()
            return
    raise AssertionError(path)


def field_message(editor: ProtocolEditor, path: str) -> str:
    for form in editor.forms:
        if path in form.paths():
            return form.message_text(path)
    raise AssertionError(path)


def sign_review(practice: Any, patient_id: int) -> None:
    from ketadesk.storage.reviews.interaction_reviews import sign_review as sign

    with practice.db.session() as s:
        sign(s, practice.physician, patient_id)


def test_typing_an_over_limit_dose_shows_the_message_next_to_the_field(
    qtbot: Any, practice: Any, patient_id: int
) -> None:
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    assert editor.example_banner.isVisibleTo(editor)  # a built-in template's examples
    type_into(qtbot, editor, "ladder.max_dose_mg", "150")
    message = field_message(editor, "ladder.max_dose_mg")
    assert "Dose 3 mg/kg exceeds the practice maximum of 2 mg/kg for sublingual" in message
    assert "50 kg weighed on" in message
    assert not editor.sign_button.isEnabled()
    assert "must be fixed first" in editor.sign_reason_label.text()
    type_into(qtbot, editor, "ladder.max_dose_mg", "abc")
    assert "\"abc\" is not a number." in field_message(editor, "ladder.max_dose_mg")
    assert "Fix the fields marked in red." in editor.sign_reason_label.text()


def test_sign_is_disabled_for_an_admin_and_the_form_is_read_only(
    qtbot: Any, practice: Any, patient_id: int
) -> None:
    sign_review(practice, patient_id)
    editor = open_editor(qtbot, practice, practice.admin, patient_id)
    assert not editor.sign_button.isEnabled()
    assert "Only physicians may sign a protocol." in editor.sign_reason_label.text()
    assert not editor.save_button.isEnabled()
    field = editor.forms[1].editor("ladder.start_dose_mg")
    assert isinstance(field, QLineEdit) and field.isReadOnly()
    assert editor.status_label.text().startswith("Read-only")


def test_sign_needs_a_current_review_then_signing_makes_an_immutable_version(
    qtbot: Any, practice: Any, patient_id: int
) -> None:
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    assert not editor.sign_button.isEnabled()
    assert "no signed interaction review yet" in editor.sign_reason_label.text()

    sign_review(practice, patient_id)
    editor.reload()
    qtbot.waitUntil(lambda: editor.review_label.text().endswith("current and signed."))
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    assert editor.sign_blockers() == []
    assert editor.sign_button.isEnabled()
    with qtbot.waitSignal(editor.protocol_signed, timeout=10000) as signal:
        qtbot.mouseClick(editor.sign_button, Qt.MouseButton.LeftButton)
    assert signal.args == [patient_id]
    qtbot.waitUntil(lambda: editor.edit_button.isVisibleTo(editor), timeout=10000)
    with practice.db.session() as s:
        signed = active_signed_protocol(s, patient_id)
    assert signed is not None and signed.number == 1
    assert not signed.protocol.example_values
    assert "signed" in editor.status_label.text()
    assert not editor.sign_button.isEnabled()
    field = editor.forms[1].editor("ladder.start_dose_mg")
    assert isinstance(field, QLineEdit) and field.isReadOnly()

    # Edit -> a new draft; the signed version is untouched; the diff names the change.
    with qtbot.waitSignal(editor.protocol_saved, timeout=10000):
        qtbot.mouseClick(editor.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "version 2" in editor.status_label.text(), timeout=10000)
    type_into(qtbot, editor, "ladder.start_dose_mg", "7.5")
    with qtbot.waitSignal(editor.protocol_loaded, timeout=10000):
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert editor.history_list.count() == 2
    with practice.db.session() as s:
        assert get_version(s, signed.version_id) == signed
        course = current_protocol(s, patient_id)
    assert course is not None and [v.status for v in course.versions] == ["signed", "draft"]
    diff = editor.show_diff(1, 2)
    assert "Start dose: 10 mg → 7.5 mg" in diff
    assert editor.history_list.item(0).text().startswith("Version 1 — signed ")
    assert "Dr. Rowan Quill" in editor.history_list.item(0).text()


def test_discontinue_with_a_reason(qtbot: Any, practice: Any, patient_id: int) -> None:
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    editor.save_draft()
    qtbot.waitUntil(lambda: editor.discontinue_button.isVisibleTo(editor), timeout=10000)
    with qtbot.waitSignal(editor.protocol_discontinued, timeout=10000):
        editor.discontinue("Patient asked to stop")
    qtbot.waitUntil(lambda: "discontinued on" in editor.status_label.text(), timeout=10000)
    assert "Reason: Patient asked to stop" in editor.course_label.text()


def test_calendar_and_sig_follow_the_form(qtbot: Any, practice: Any, patient_id: int) -> None:
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    rows = editor.calendar_table.rowCount()
    assert rows > 0
    first_dose = editor.calendar_table.item(0, 3).text()
    assert editor.calendar_table.item(0, 4).text() == f"{float(first_dose) / 50:.2f}"
    type_into(qtbot, editor, "duration_weeks", "2")
    assert 0 < editor.calendar_table.rowCount() < rows
    type_into(qtbot, editor, "ladder.start_dose_mg", "12.5")
    assert "12.5 mg" in editor.sig_label.text()
    assert "12.5 mg (0.25 mg/kg)" in editor.dose_label.text()


def test_flags_at_the_practice_threshold_interrupt_signing(
    qtbot: Any, practice: Any, patient_id: int, monkeypatch: Any
) -> None:
    from ketadesk.storage.reviews.interaction_reviews import DecisionInput, run_review
    from ketadesk.storage.reviews.interaction_reviews import sign_review as sign
    from ketadesk.ui.review import interruptive_alert

    with practice.db.session() as s:  # uncontrolled blood pressure: a "major" flag
        s.add(VitalSign(patient_id=patient_id, weight_kg=50.0, systolic=152, diastolic=96,
                        entered_by="drquill", measured_at=datetime.now(UTC)))
    with practice.db.session() as s:
        view = run_review(s, patient_id)
        decisions = [DecisionInput(item.flag.carry_forward_key, "continue_with_monitoring")
                     for item in view.flags if item.needs_decision]
        assert any(item.flag.severity == "major" for item in view.flags)
        sign(s, practice.physician, patient_id, decisions)
    shown: list[tuple[list[str], str]] = []

    def refuse(parent: Any, flags: Any, threshold: str) -> bool:
        shown.append(([f.severity for f in flags], threshold))
        return False

    monkeypatch.setattr(interruptive_alert, "confirm_interruptive_flags", refuse)
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    assert editor.sign_blockers() == []
    editor.sign()
    assert shown and "major" in shown[0][0] and shown[0][1] == "major"
    editor.context.ops.wait_for_done()
    with practice.db.session() as s:
        assert active_signed_protocol(s, patient_id) is None  # declined: not signed


def test_signing_for_a_screening_patient_offers_to_mark_them_active(
    qtbot: Any, practice: Any, patient_id: int
) -> None:
    """Defect 4: the offer to start treatment; Enter takes the default "Mark Active"."""
    with practice.db.session() as s:
        s.get(Patient, patient_id).status = "screening"
    sign_review(practice, patient_id)
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    qtbot.waitUntil(lambda: editor.review_label.text().endswith("current and signed."))
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    with qtbot.waitSignal(editor.protocol_signed, timeout=10000):
        qtbot.mouseClick(editor.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.activation_question is not None, timeout=10000)
    box = editor.activation_question
    assert box is not None
    assert "still marked \"Screening\"" in box.text()
    assert "apply from" in box.informativeText()
    with qtbot.waitSignal(editor.patient_activated, timeout=10000):
        qtbot.keyClick(box, Qt.Key.Key_Return)
    with practice.db.session() as s:
        assert s.get(Patient, patient_id).status == "active"
        changes = s.execute(
            select(PatientStatusChange.reason).where(PatientStatusChange.patient_id == patient_id)
        ).scalars().all()
    assert changes == ["Protocol version 1 signed; treatment starting"]


def test_no_offer_when_the_patient_is_already_active(
    qtbot: Any, practice: Any, patient_id: int
) -> None:
    sign_review(practice, patient_id)
    editor = open_editor(qtbot, practice, practice.physician, patient_id)
    qtbot.waitUntil(lambda: editor.review_label.text().endswith("current and signed."))
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    with qtbot.waitSignal(editor.protocol_signed, timeout=10000):
        qtbot.mouseClick(editor.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.edit_button.isVisibleTo(editor), timeout=10000)
    assert editor.activation_question is None
