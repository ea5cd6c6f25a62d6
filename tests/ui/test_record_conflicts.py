"""Two workstations save the same protocol draft or the same practice settings: the conflict
screen, driven with real keys and clicks (on a practice file and on a practice server).
Nothing typed is lost, whatever is chosen; the final save is checked and audited as usual."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.demographics import PatientDemographics
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.patients import patients as service
from ketadesk.storage.practice.practice_templates import all_templates
from ketadesk.storage.practice.settings_store import get_setting, set_settings
from ketadesk.storage.protocols.draft_versions import version_mark
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocol,
    current_protocol,
)
from ketadesk.storage.protocols.protocols import create_draft_from_template, save_draft
from ketadesk.ui.admin.settings_dialog import SettingsDialog
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.protocol.protocol_editor import ProtocolEditor
from tests.conftest import PASSWORD
from tests.workstations import other_workstation

#: The screen's code is the same on both back ends; the escape paths run on a file only.
FILE_ONLY = pytest.mark.parametrize("practice_on", ["file"], indirect=True)
TODAY = date(2026, 3, 15)
START = date(2026, 3, 20)
PATIENT = PatientDemographics(
    first_name="Zoë", last_name="Quillon", dob=date(1980, 2, 1), sex="female", state="FL",
    county="Alachua", phone="(352) 555-0101",
)


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def _type_over(qtbot, editor, text):
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


# --------------------------------------------------------------------------- protocol drafts


@pytest.fixture
def editor(practice_on, qtbot):
    with practice_on.db.session() as s:
        pid = service.create_patient(s, practice_on.physician, PATIENT, today=TODAY).id
        template = all_templates(s)[0]
        create_draft_from_template(s, practice_on.physician, pid, template, START)
    editor = ProtocolEditor(AppContext(practice_on.db, practice_on.physician), pid)
    qtbot.addWidget(editor)
    editor.resize(1280, 800)
    editor.show()
    # A loaded machine (2 cores, xdist) can take seconds to run the first read off the GUI thread.
    qtbot.waitUntil(lambda: editor.is_loaded and editor.save_button.isEnabled(), timeout=30000)
    return editor


def _field(editor, path):
    for form in editor.forms:
        if path in form.paths():
            return form.editor(path)
    raise AssertionError(path)


def _other_physician_saves_draft(practice, patient_id, *, start_dose, notes):
    """The physician at another workstation saves the draft as it was opened there."""
    with other_workstation(practice, PASSWORD, physician=True) as (db, actor), db.session() as s:
        draft = current_protocol(s, patient_id).draft
        protocol = replace(
            draft.protocol, notes=notes,
            ladder=replace(draft.protocol.ladder, start_dose_mg=start_dose),
        )
        save_draft(s, actor, patient_id, protocol, draft.start_date,
                   template_name=draft.template_name, expected=version_mark(draft))


def _stored_draft(practice, patient_id):
    with practice.db.read_session() as s:
        return current_protocol(s, patient_id).draft


def _wait_for_screen(qtbot, owner):
    def shown():
        assert owner.conflict_dialog is not None
        assert owner.conflict_dialog.isVisible()

    qtbot.waitUntil(shown, timeout=10000)
    return owner.conflict_dialog


def test_protocol_draft_saved_elsewhere_is_merged_field_by_field(
    practice_on, qtbot, editor, tmp_path
) -> None:
    pid = editor.patient_id
    _other_physician_saves_draft(practice_on, pid, start_dose=15, notes="Their note")
    refills, notes = _field(editor, "supply.refills"), _field(editor, "notes")
    assert isinstance(refills, QLineEdit) and isinstance(notes, QPlainTextEdit)
    _type_over(qtbot, refills, "2")  # only mine
    notes.setFocus()
    qtbot.keyClick(notes, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(notes, "My note")  # both changed it
    _click(qtbot, editor.save_button)
    dialog = _wait_for_screen(qtbot, editor)
    assert "Dr. Rowan Quill saved version 1 of this protocol at" in dialog.headline.text()
    assert [d.name for d in dialog.differences] == [
        "ladder.start_dose_mg", "supply.refills", "notes",
    ]
    assert dialog.differences[0].label == "Titration ladder: Start dose (mg)"
    assert dialog.choices() == {"ladder.start_dose_mg": "theirs", "supply.refills": "mine",
                                "notes": "mine"}
    assert (dialog.mine_buttons["notes"].text(), dialog.theirs_buttons["notes"].text()) == (
        "My note", "Their note")
    if practice_on.back_end == "file":
        assert dialog.grab().save(str(tmp_path / "protocol-conflict.png"))
        assert dialog.width() <= 1280 and dialog.height() <= 800
    assert _stored_draft(practice_on, pid).protocol.notes == "Their note"  # nothing saved yet
    dialog.theirs_buttons["notes"].setFocus()
    qtbot.keyClick(dialog.theirs_buttons["notes"], Qt.Key.Key_Space)
    with qtbot.waitSignal(editor.protocol_saved, timeout=10000):
        qtbot.keyClick(dialog.theirs_buttons["notes"], Qt.Key.Key_Return)
    stored = _stored_draft(practice_on, pid)
    assert (stored.protocol.ladder.start_dose_mg, stored.protocol.supply.refills,
            stored.protocol.notes) == (15, 2, "Their note")
    assert stored.number == 1  # the same draft, saved over (not a new version)
    with practice_on.db.read_session() as s:
        saves = s.execute(
            select(AuditEvent.user_name).where(
                AuditEvent.patient_id == pid,
                AuditEvent.action == audit_actions.PROTOCOL_DRAFT_SAVED,
            ).order_by(AuditEvent.seq)
        ).scalars().all()
    assert saves == [practice_on.physician.user_name] * 2  # theirs, then the merge
    assert not editor.note.isVisible()


@FILE_ONLY
def test_escape_keeps_the_protocol_as_typed_then_keep_all_mine_saves_it(
    practice_on, qtbot, editor
) -> None:
    pid = editor.patient_id
    _other_physician_saves_draft(practice_on, pid, start_dose=15, notes="Their note")
    _type_over(qtbot, _field(editor, "supply.refills"), "3")
    typed = editor.form.texts()
    _click(qtbot, editor.save_button)
    dialog = _wait_for_screen(qtbot, editor)
    _click(qtbot, dialog.theirs_buttons["supply.refills"])
    qtbot.keyClick(dialog.theirs_buttons["supply.refills"], Qt.Key.Key_Escape)
    assert not dialog.isVisible() and editor.conflict_dialog is None
    assert editor.form.texts() == typed
    assert editor.note.isVisible()
    assert "Not saved: Dr. Rowan Quill saved this protocol meanwhile" in editor.note.text()
    assert _stored_draft(practice_on, pid).protocol.supply.refills == 0
    _click(qtbot, editor.save_button)  # saving again compares again
    dialog = _wait_for_screen(qtbot, editor)
    _click(qtbot, dialog.keep_all_mine)
    with qtbot.waitSignal(editor.protocol_saved, timeout=10000):
        _click(qtbot, dialog.save_button)
    stored = _stored_draft(practice_on, pid).protocol
    assert (stored.ladder.start_dose_mg, stored.supply.refills, stored.notes) == (
        pytest.approx(float(typed["ladder.start_dose_mg"])), 3, "")


def test_sign_over_a_draft_saved_elsewhere_signs_nothing_until_the_physician_has_seen_it(
    practice_on, qtbot
) -> None:
    """Sign saves and signs in one step; when the draft moved on meanwhile nothing is signed:
    the same screen compares, the merge is saved as a draft, and signing is asked again."""
    from datetime import UTC, datetime, timedelta

    from ketadesk.storage.practice.practice_limits_store import set_practice_limits
    from ketadesk.storage.reviews.interaction_reviews import sign_review
    from tests.ui.test_protocol_editor import limits

    with practice_on.db.session() as s:
        set_practice_limits(s, practice_on.physician, limits(2.0))
        pid = service.create_patient(s, practice_on.physician, PATIENT, today=TODAY).id
        service.add_vitals(s, practice_on.physician, pid, weight_kg=70.0, systolic=118,
                           diastolic=76, measured_at=datetime.now(UTC) - timedelta(days=1))
        sign_review(s, practice_on.physician, pid)
        create_draft_from_template(s, practice_on.physician, pid, all_templates(s)[0], START)
    editor = ProtocolEditor(AppContext(practice_on.db, practice_on.physician), pid)
    qtbot.addWidget(editor)
    editor.resize(1280, 800)
    editor.show()
    qtbot.waitUntil(lambda: editor.is_loaded and editor.save_button.isEnabled(), timeout=30000)
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    assert editor.sign_blockers() == []

    _other_physician_saves_draft(practice_on, pid, start_dose=15, notes="Their note")
    _type_over(qtbot, _field(editor, "supply.refills"), "2")
    editor.acknowledge_all_warnings()
    _click(qtbot, editor.sign_button)
    dialog = _wait_for_screen(qtbot, editor)
    assert "Dr. Rowan Quill saved version 1 of this protocol at" in dialog.headline.text()
    with practice_on.db.read_session() as s:
        assert active_signed_protocol(s, pid) is None  # nothing signed
    assert _stored_draft(practice_on, pid).protocol.notes == "Their note"
    with qtbot.waitSignal(editor.protocol_saved, timeout=10000):
        _click(qtbot, dialog.save_button)  # their start dose and note, my refills
    stored = _stored_draft(practice_on, pid)
    assert (stored.protocol.ladder.start_dose_mg, stored.protocol.supply.refills,
            stored.protocol.notes) == (15, 2, "Their note")
    with practice_on.db.read_session() as s:
        assert active_signed_protocol(s, pid) is None  # the merge is a draft, not signed
    qtbot.waitUntil(lambda: editor.is_loaded, timeout=30000)
    editor.confirm_example_values()
    editor.acknowledge_all_warnings()
    with qtbot.waitSignal(editor.protocol_signed, timeout=10000):
        _click(qtbot, editor.sign_button)
    with practice_on.db.read_session() as s:
        signed = active_signed_protocol(s, pid)
    assert signed is not None and signed.protocol.ladder.start_dose_mg == 15


# --------------------------------------------------------------------------- practice settings


def _other_physician_saves_settings(practice, **changes):
    with other_workstation(practice, PASSWORD, physician=True) as (db, actor), db.session() as s:
        shown = {key: get_setting(s, key) for key in changes}
        set_settings(s, actor, changes, shown)


def test_settings_saved_elsewhere_escape_then_merge(practice_on, qtbot) -> None:
    context = AppContext(practice_on.db, practice_on.physician)
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    _other_physician_saves_settings(
        practice_on, practice_phone="(352) 555-0199", practice_name="Cypress Ketamine Care",
    )
    _type_over(qtbot, dialog.editors["practice_phone"], "(352) 555-0123")
    dialog.editors["auto_lock_minutes"].setFocus()
    qtbot.keyClick(dialog.editors["auto_lock_minutes"], Qt.Key.Key_Down)
    _click(qtbot, dialog.save_button)
    screen = _wait_for_screen(qtbot, dialog)
    assert "Dr. Rowan Quill saved the practice settings at" in screen.headline.text()
    assert screen.choices() == {"auto_lock_minutes": "mine", "practice_name": "theirs",
                                "practice_phone": "mine"}
    # Escape: back to the settings with everything typed, nothing saved.
    qtbot.keyClick(screen.mine_buttons["practice_phone"], Qt.Key.Key_Escape)
    assert dialog.isVisible() and dialog.conflict_dialog is None
    assert dialog.editors["practice_phone"].text() == "(352) 555-0123"
    assert "Not saved: Dr. Rowan Quill saved the practice settings meanwhile" in (
        dialog.error.text())
    with practice_on.db.read_session() as s:
        assert get_setting(s, "practice_phone") == "(352) 555-0199"
    # Save again: compared again; their phone by mouse, then Enter.
    _click(qtbot, dialog.save_button)
    screen = _wait_for_screen(qtbot, dialog)
    _click(qtbot, screen.theirs_buttons["practice_phone"])
    with qtbot.waitSignal(context.data_changed, timeout=5000):
        qtbot.keyClick(screen.theirs_buttons["practice_phone"], Qt.Key.Key_Return)
    assert not dialog.isVisible()
    with practice_on.db.read_session() as s:
        assert (get_setting(s, "practice_phone"), get_setting(s, "practice_name"),
                get_setting(s, "auto_lock_minutes")) == (
            "(352) 555-0199", "Cypress Ketamine Care", 9)
        changed = s.execute(
            select(AuditEvent.detail).where(AuditEvent.action == audit_actions.SETTING_CHANGED)
            .order_by(AuditEvent.seq)
        ).scalars().all()
    # Theirs (two), then only the setting this user kept of their own: nothing overwritten.
    assert [d.split(":")[0] for d in changed] == [
        "practice_phone", "practice_name", "auto_lock_minutes"]
