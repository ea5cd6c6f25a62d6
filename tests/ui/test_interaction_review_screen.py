"""The interaction review screen and the interruptive alert, driven as a user would (offscreen)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QLabel

from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign
from ketadesk.storage.reviews.interaction_reviews import (
    latest_signed_review,
    review_status,
    run_review,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.review.interaction_review import READ_ONLY_TEXT, ReviewScreen
from ketadesk.ui.review.interruptive_alert import (
    InterruptiveAlertDialog,
    confirm_interruptive_flags,
)


def add_patient(practice, meds, conditions, vitals=(128, 82, 70, 80.0)) -> int:
    with practice.db.session() as s:
        patient = Patient(mrn="KD-UI-1", first_name="Ñúñez", last_name="Łukasiewicz",
                          dob=date(1975, 1, 2), state="NJ", status="active")
        s.add(patient)
        s.flush()
        for text in meds:
            s.add(PatientMedication(patient_id=patient.id, entered_text=text))
        for text in conditions:
            s.add(PatientCondition(patient_id=patient.id, entered_text=text))
        s.add(VitalSign(patient_id=patient.id, measured_at=datetime.now(UTC) - timedelta(days=1),
                        systolic=vitals[0], diastolic=vitals[1], heart_rate=vitals[2],
                        weight_kg=vitals[3], entered_by="drquill"))
        return patient.id


def open_screen(qtbot, practice, actor, patient_id) -> tuple[ReviewScreen, AppContext]:
    context = AppContext(practice.db, actor)
    screen = ReviewScreen(context, patient_id)
    qtbot.addWidget(screen)
    screen.resize(1280, 860)
    screen.show()
    qtbot.waitUntil(lambda: screen.is_loaded, timeout=10000)
    return screen, context


def labels(screen, name: str) -> list[QLabel]:
    return [w for w in screen.findChildren(QLabel, name) if w.isVisibleTo(screen)]


@pytest.fixture
def patient_id(practice) -> int:
    return add_patient(
        practice, ("Ativan 0.5 mg daily", "Zyntrobix 10 mg daily", "lamotrigine 100 mg bid"),
        ("glaucoma",),
    )


def test_flags_show_severity_as_text_and_unread_lines_as_not_checked(
    qtbot, practice, patient_id
) -> None:
    screen, context = open_screen(qtbot, practice, practice.physician, patient_id)
    severities = [label.text() for label in labels(screen, "severityText")]
    assert severities == ["MAJOR", "MODERATE", "MINOR"]  # most severe first, in words
    titles = [card.title_label.text() for card in screen.flag_cards()]
    assert titles[0] == "Glaucoma or raised intraocular pressure"
    not_checked = [label.text() for label in labels(screen, "notChecked")]
    assert any(text.startswith("not checked") for text in not_checked)
    read_as = [label.text() for label in labels(screen, "readAs")]
    assert "read as: lorazepam" in read_as
    assert any(
        "Zyntrobix 10 mg daily" == label.text() for label in screen.findChildren(QLabel)
    )
    assert "no signed review" in screen.status_label.text()
    assert not screen.read_only_label.isVisible()
    context.ops.wait_for_done()


def test_physician_decides_and_signs_then_status_is_current(qtbot, practice, patient_id) -> None:
    screen, context = open_screen(qtbot, practice, practice.physician, patient_id)
    assert not screen.sign_button.isEnabled()  # decisions are still missing
    required = [card for card in screen.flag_cards() if card.item.needs_decision]
    assert len(required) == 2
    overview = [label.text() for label in labels(screen, "overviewRow")]
    assert len(overview) == 3
    assert sum("needs a decision" in text for text in overview) == 2
    for card in required:
        card.decision_combo.setCurrentIndex(card.decision_combo.findData("adjust_protocol"))
    overview = [label.text() for label in labels(screen, "overviewRow")]
    assert not any("needs a decision" in text for text in overview)
    required[0].note_edit.setText("start at the lowest dose")
    assert screen.sign_button.isEnabled()
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    dialog = screen.unread_dialog  # Zyntrobix was not checked: confirm it was read
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(screen.review_signed, timeout=10000) as signed:
        qtbot.mouseClick(dialog.all_box, Qt.MouseButton.LeftButton, pos=QPoint(8, 8))
        qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    assert signed.args == [patient_id]
    qtbot.waitUntil(lambda: "current" in screen.status_label.text(), timeout=10000)
    assert "Dr. Rowan Quill" in screen.status_label.text()
    with practice.db.session() as s:
        assert review_status(s, patient_id).state == "current"
        view = run_review(s, patient_id)
    carried = [f.carried for f in view.flags if f.needs_decision]
    assert all(c is not None and c.decision == "adjust_protocol" for c in carried)
    qtbot.waitUntil(lambda: screen.is_loaded, timeout=10000)
    acknowledged = [c.acknowledged_label.text() for c in screen.flag_cards()
                    if c.acknowledged_label.isVisibleTo(screen)]
    assert len(acknowledged) == 2
    assert all("acknowledged on" in text and "Dr. Rowan Quill" in text for text in acknowledged)
    context.ops.wait_for_done()


def test_contraindication_needs_an_override_reason_before_signing(qtbot, practice) -> None:
    pid = add_patient(practice, (), ("abdominal aortic aneurysm",))
    screen, context = open_screen(qtbot, practice, practice.physician, pid)
    card = screen.flag_cards()[0]
    assert card.item.flag.severity == "contraindicated"
    assert card.override_edit.isVisibleTo(screen)
    card.decision_combo.setCurrentIndex(card.decision_combo.findData("continue_with_monitoring"))
    assert not screen.sign_button.isEnabled()
    card.override_edit.setText("Repaired in 2019; vascular surgeon agrees")
    assert screen.sign_button.isEnabled()
    card.override_edit.clear()
    card.decision_combo.setCurrentIndex(card.decision_combo.findData("hold_ketamine"))
    assert screen.sign_button.isEnabled()
    context.ops.wait_for_done()


def test_admin_sees_the_review_read_only(qtbot, practice, patient_id) -> None:
    screen, context = open_screen(qtbot, practice, practice.admin, patient_id)
    assert screen.read_only_label.isVisible()
    assert screen.read_only_label.text() == READ_ONLY_TEXT
    assert not screen.sign_button.isVisible()
    assert screen.flag_cards()
    for card in screen.flag_cards():
        assert not card.decision_combo.isEnabled()
        assert not card.note_edit.isEnabled()
    severities = [label.text() for label in labels(screen, "severityText")]
    assert severities == ["MAJOR", "MODERATE", "MINOR"]
    context.ops.wait_for_done()


class _LinkCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toString())


def test_source_links_open_in_the_browser(qtbot, practice, patient_id) -> None:
    screen, context = open_screen(qtbot, practice, practice.physician, patient_id)
    catcher = _LinkCatcher()
    QDesktopServices.setUrlHandler("https", catcher, "open")
    try:
        card = screen.flag_cards()[0]
        link = next(s.link for s in card.item.flag.sources if s.link)
        assert f'href="{link}"' in card.sources_label.text()
        card.sources_label.linkActivated.emit(link)
    finally:
        QDesktopServices.unsetUrlHandler("https")
    assert catcher.opened == [link]
    context.ops.wait_for_done()


def test_interruptive_alert_lists_only_flags_at_or_above_threshold(
    qtbot, practice, patient_id
) -> None:
    with practice.db.session() as s:
        flags = [f.flag for f in run_review(s, patient_id).flags]
    dialog = InterruptiveAlertDialog(flags, "moderate")
    qtbot.addWidget(dialog)
    assert [f.severity for f in dialog.flags] == ["major", "moderate"]
    assert not dialog.continue_button.isEnabled()
    dialog.confirm_box.setChecked(True)
    assert dialog.continue_button.isEnabled()
    # Nothing at or above "contraindicated": no dialog, signing goes on.
    assert confirm_interruptive_flags(None, flags, "contraindicated") is True


@pytest.mark.parametrize(("accept", "expected"), [(True, True), (False, False)])
def test_confirm_interruptive_flags_returns_the_choice(
    qtbot, practice, patient_id, accept, expected
) -> None:
    with practice.db.session() as s:
        flags = [f.flag for f in run_review(s, patient_id).flags]

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, InterruptiveAlertDialog)
        if accept:
            dialog.confirm_box.setChecked(True)
            dialog.continue_button.click()
        else:
            dialog.back_button.click()

    QTimer.singleShot(0, answer)
    assert confirm_interruptive_flags(None, flags, "major") is expected


def test_signing_with_unread_lines_asks_line_by_line_and_records_it(qtbot, practice) -> None:
    pid = add_patient(practice, ("Zyntrobix 10 mg daily", "sertraline 50 mg"),
                      ("BPD", "denies SI", "HTN, moyamoya disease"))
    screen, context = open_screen(qtbot, practice, practice.physician, pid)
    for card in screen.flag_cards():
        if card.item.needs_decision:
            card.decision_combo.setCurrentIndex(card.decision_combo.findData("adjust_protocol"))
    assert screen.sign_button.isEnabled()
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    dialog = screen.unread_dialog
    assert dialog is not None and dialog.isVisible()
    assert [box.text() for box in dialog.line_boxes] == [
        "I have read: Zyntrobix 10 mg daily",
        "I have read: BPD",
        "I have read: HTN, moyamoya disease — part not checked: moyamoya disease",
    ]
    assert not dialog.sign_button.isEnabled()
    # Cancel signs nothing.
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    with practice.db.session() as s:
        assert review_status(s, pid).state == "none"
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    dialog = screen.unread_dialog
    assert dialog is not None
    for box in dialog.line_boxes[:2]:  # tick with the keyboard, one line at a time
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Space)
    assert not dialog.sign_button.isEnabled()
    assert not dialog.all_box.isChecked()
    dialog.line_boxes[2].setFocus()
    qtbot.keyClick(dialog.line_boxes[2], Qt.Key.Key_Space)
    assert dialog.all_box.isChecked() and dialog.sign_button.isEnabled()
    with qtbot.waitSignal(screen.review_signed, timeout=10000):
        qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        signed = latest_signed_review(s, pid)
    assert signed is not None
    assert signed.read_by_physician == (
        "Zyntrobix 10 mg daily", "BPD",
        "HTN, moyamoya disease — part not checked: moyamoya disease",
    )
    context.ops.wait_for_done()


def test_condition_readings_are_shown_in_words(qtbot, practice, tmp_path) -> None:
    pid = add_patient(practice, ("ketoconazole 2% shampoo twice weekly",),
                      ("hx of AAA repair", "denies SI", "FHx bipolar disorder", "BPD",
                       "HTN, moyamoya disease"))
    screen, context = open_screen(qtbot, practice, practice.physician, pid)
    read_as = [label.text() for label in labels(screen, "readAs")]
    assert "read as: Aneurysmal vascular disease (history)" in read_as
    assert "read as: no suicidal ideation (negated)" in read_as
    assert "read as: family history of bipolar disorder (family)" in read_as
    assert ("read as: ketoconazole (shampoo: acts locally, no systemic interaction)"
            in read_as)
    not_checked = [label.text() for label in labels(screen, "notChecked")]
    assert any(t.startswith("not checked: BPD is ambiguous (bipolar disorder") for t in not_checked)
    assert "not checked: moyamoya disease" in not_checked
    assert screen.grab().save(str(tmp_path / "interaction_review_readings.png"))
    context.ops.wait_for_done()


def test_a_note_is_marked_for_the_patient_from_the_keyboard_and_kept(
    qtbot, practice, patient_id
) -> None:
    """Defect 7: after the note, Tab reaches "For the patient" and Space marks it; the mark is
    signed with the decision, and an unmarked note stays unmarked."""
    screen, context = open_screen(qtbot, practice, practice.physician, patient_id)
    screen.activateWindow()
    qtbot.waitUntil(screen.isActiveWindow, timeout=5000)
    required = [card for card in screen.flag_cards() if card.item.needs_decision]
    for card in required:
        card.decision_combo.setCurrentIndex(card.decision_combo.findData("continue_with_monitoring"))
    marked, unmarked = required
    unmarked.note_edit.setText("pt vague about dose; recheck PDMP")
    marked.note_edit.setFocus()
    qtbot.waitUntil(marked.note_edit.hasFocus)
    qtbot.keyClicks(marked.note_edit, "Take no lorazepam on dosing days.")
    qtbot.keyClick(marked.note_edit, Qt.Key.Key_Tab)
    assert marked.for_patient_check.hasFocus()
    qtbot.keyClick(marked.for_patient_check, Qt.Key.Key_Space)
    assert marked.decision_input().note_for_patient
    assert not unmarked.decision_input().note_for_patient
    qtbot.mouseClick(screen.sign_button, Qt.MouseButton.LeftButton)
    dialog = screen.unread_dialog
    assert dialog is not None
    with qtbot.waitSignal(screen.review_signed, timeout=10000):
        qtbot.mouseClick(dialog.all_box, Qt.MouseButton.LeftButton, pos=QPoint(8, 8))
        qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        signed = latest_signed_review(s, patient_id)
    assert signed is not None
    notes = {d.note: d.note_for_patient for d in signed.decisions if d.note}
    assert notes == {
        "Take no lorazepam on dosing days.": True, "pt vague about dose; recheck PDMP": False,
    }
    context.ops.wait_for_done()
