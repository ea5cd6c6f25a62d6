"""The "Prescriptions & compliance" tab and the checklist before issuing, on a real encrypted
database, driven with real keys, clicks and wheel events: an admin cannot issue or void, a
blocked checklist names each error, acknowledged warnings let the physician issue, and the
printed prescription and consent form read back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
from ketadesk.storage.compliance.prescriptions import (
    PrescriptionRequest,
    issue_prescription,
    prescriptions_of,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.compliance.compliance_dialogs import PdmpDialog, ReasonDialog
from ketadesk.ui.compliance.compliance_tab import ComplianceTab
from ketadesk.ui.compliance.prescription_dialog import PrescriptionDialog
from tests.ui.test_wheel_guard import turn_wheel
from tests.unit.signed_protocol_patients import patient_with_signed_protocol
from tests.unit.test_prescription_storage import TODAY, ready_patient


def make_tab(qtbot: QtBot, context: AppContext, patient_id: int) -> ComplianceTab:
    tab = ComplianceTab(context, patient_id)
    qtbot.addWidget(tab)
    tab.resize(1200, 700)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.waitUntil(lambda: tab.view is not None, timeout=10_000)
    return tab


def open_checklist(qtbot: QtBot, tab: ComplianceTab, quantity: str, refills: int) -> Any:
    qtbot.mouseClick(tab.issue_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    assert isinstance(dialog, PrescriptionDialog)
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    qtbot.mouseClick(dialog.quantity, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.quantity, quantity)
    qtbot.keyClick(dialog.quantity, Qt.Key.Key_Tab)
    assert dialog.refills.hasFocus()
    dialog.refills.selectAll()
    qtbot.keyClicks(dialog.refills, str(refills))
    qtbot.waitUntil(lambda: dialog.refills.value() == refills, timeout=2_000)
    with qtbot.waitSignal(dialog.checklist_shown, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: dialog.checklist is not None and not dialog._recheck.isActive()
                    and not dialog._loading, timeout=10_000)
    return dialog


def test_an_admin_cannot_issue_or_void_but_records_a_lookup_as_designee(
    qtbot: QtBot, practice: Any
) -> None:
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    tab = make_tab(qtbot, AppContext(practice.db, practice.admin), pid)
    for button in (tab.issue_button, tab.void_button, tab.tele_button):
        assert not button.isEnabled() and "Only physicians" in button.toolTip()
    assert tab.role_note.isVisible() and "Only physicians issue or void" in tab.role_note.text()
    assert tab.pdmp_button.isEnabled() and tab.consent_button.isEnabled()

    tab.sections.setCurrentIndex(1)
    qtbot.mouseClick(tab.pdmp_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    assert isinstance(dialog, PdmpDialog)
    assert dialog.state_combo.currentData() == "FL"
    qtbot.keyClick(dialog.text, Qt.Key.Key_Return)  # nothing written: refused in words
    assert dialog.isVisible() and "own words" in dialog.problem.text()
    qtbot.keyClicks(dialog.text, "No other controlled prescriptions found")
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return)
    assert tab.pdmp_table.rowCount() == 1
    assert tab.pdmp_table.item(0, 2).text() == "frontdesk (designee)"
    assert tab.pdmp_table.item(0, 3).text() == "No other controlled prescriptions found"


def test_a_blocked_checklist_names_each_error(qtbot: QtBot, practice: Any) -> None:
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    tab = make_tab(qtbot, AppContext(practice.db, practice.physician), pid)
    dialog = open_checklist(qtbot, tab, "30", 6)
    levels = {str(r.code): str(r.level) for r in dialog.checklist.results}
    errors = {code for code, level in levels.items() if level == "error"}
    assert errors == {"pdmp", "consent", "state_licence", "dea_registration", "refills"}
    assert not dialog.issue_button.isEnabled()
    reason = dialog.blocked_label.text()
    for result in dialog.checklist.errors:
        assert result.message in reason
    assert dialog.warning_ticks == {}  # errors are never acknowledged away
    for result in dialog.checklist.results:  # each line shows its source
        if result.source:
            assert any(result.source in label.text()
                       for label in dialog.checks_box.findChildren(type(dialog.blocked_label)))
    # A quantity that is not a number is said in words, and blocks too.
    dialog.quantity.selectAll()
    qtbot.keyClicks(dialog.quantity, "thirty")
    assert "must be a number" in dialog.field_problem.text()
    assert "must be a number" in dialog.blocked_label.text()


def test_the_wheel_does_not_change_the_refills_unless_clicked(qtbot: QtBot, practice: Any) -> None:
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    tab = make_tab(qtbot, AppContext(practice.db, practice.physician), pid)
    qtbot.mouseClick(tab.issue_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    turn_wheel(dialog.refills, 120)
    assert dialog.refills.value() == 0
    qtbot.mouseClick(dialog.refills, Qt.MouseButton.LeftButton)
    turn_wheel(dialog.refills, 120)
    assert dialog.refills.value() == 1
    # The new refills start a checklist read: let it end before the practice is closed.
    qtbot.waitUntil(lambda: dialog.checklist is not None and not dialog._recheck.isActive()
                    and not dialog._loading, timeout=10_000)


def test_acknowledged_warnings_let_the_physician_issue_then_print_and_void(
    qtbot: QtBot, practice: Any, tmp_path: Path
) -> None:
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        record_pdmp_check(s, practice.admin, pid, state="FL", not_checked_reason="outage")
        issue_prescription(s, practice.physician, pid, PrescriptionRequest(30, 0))
        record_pdmp_check(s, practice.admin, pid, state="FL", not_checked_reason="outage again")
    tab = make_tab(qtbot, AppContext(practice.db, practice.physician), pid)
    dialog = open_checklist(qtbot, tab, "30", 2)
    assert [str(w.code) for w in dialog.checklist.warnings] == ["pdmp"]
    assert not dialog.checklist.errors
    assert not dialog.issue_button.isEnabled()
    assert "Acknowledge each warning (pdmp)" in dialog.blocked_label.text()
    tick = dialog.warning_ticks["pdmp"]
    qtbot.mouseClick(tick, Qt.MouseButton.LeftButton, pos=QPoint(8, tick.height() // 2))
    assert tick.isChecked() and dialog.issue_button.isEnabled()
    with qtbot.waitSignal(tab.prescription_issued, timeout=10_000):
        qtbot.mouseClick(dialog.issue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.rx_table.rowCount() == 2, timeout=10_000)
    with practice.db.session() as s:
        newest = prescriptions_of(s, pid)[0]
    assert newest.acknowledged_warnings == ("pdmp",) and newest.refills == 2
    assert tab.rx_table.item(0, 3).text() == "2 of 2"
    assert tab.rx_table.item(0, 4).text() == "180 days left"

    target = tmp_path / "out" / "rx.pdf"
    target.parent.mkdir()
    tab.choose_pdf_path = lambda parent, suggested: target
    tab.rx_table.selectRow(0)
    with qtbot.waitSignal(tab.pdf_saved, timeout=10_000):
        qtbot.mouseClick(tab.print_rx_button, Qt.MouseButton.LeftButton)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(target.read_bytes())).pages)
    assert "Dr. Rowan Quill" in text and "AD1234563" in text and newest.product in text

    qtbot.mouseClick(tab.void_button, Qt.MouseButton.LeftButton)
    void = tab.open_dialog
    assert isinstance(void, ReasonDialog)
    ok = void.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert "Write the reason" in void.problem.text()
    qtbot.keyClicks(void.text, "Wrong quantity")
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        qtbot.keyClick(void.text, Qt.Key.Key_Return)
    assert tab.rx_table.item(0, 7).text() == "Void: Wrong quantity"


def test_the_consent_form_prints_and_a_signed_consent_is_recorded(
    qtbot: QtBot, practice: Any, tmp_path: Path
) -> None:
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    tab = make_tab(qtbot, AppContext(practice.db, practice.admin), pid)
    tab.sections.setCurrentIndex(2)
    target = tmp_path / "consent.pdf"
    tab.choose_pdf_path = lambda parent, suggested: target
    with qtbot.waitSignal(tab.pdf_saved, timeout=10_000):
        qtbot.mouseClick(tab.print_consent_button, Qt.MouseButton.LeftButton)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(target.read_bytes())).pages)
    assert "Testperson" in text and "ketamine" in text.lower()
    qtbot.mouseClick(tab.consent_button, Qt.MouseButton.LeftButton)
    dialog = tab.open_dialog
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        qtbot.keyClick(dialog.signed, Qt.Key.Key_Return)
    assert tab.consent_table.rowCount() == 1
    assert tab.consent_table.item(0, 1).text() == "Version 1"
    assert tab.consent_table.item(0, 2).text() == "Signed on paper"
