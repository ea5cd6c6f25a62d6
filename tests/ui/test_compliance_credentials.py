"""Prescribers' licences and DEA registrations, and the printable compliance worklist, on a
real encrypted database with real keys and clicks."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ketadesk.core.prescription_checks import CredentialKind
from ketadesk.storage.compliance.credentials import credentials_of, save_credential
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.qdate_conversion import local_today
from ketadesk.ui.compliance.compliance_tab import save_worklist_pdf
from ketadesk.ui.compliance.credentials_dialog import CredentialsDialog


def open_dialog(qtbot: QtBot, context: AppContext) -> CredentialsDialog:
    dialog = CredentialsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    return dialog


def test_a_physician_adds_a_registration_and_sees_the_60_day_warning(
    qtbot: QtBot, practice: Any
) -> None:
    today = local_today()  # the dialog's own day (the test may run across midnight)
    with practice.db.session() as s:
        save_credential(s, practice.physician, user_name=practice.physician.user_name,
                        kind=CredentialKind.STATE_LICENCE, state="FL", number="ME99881",
                        expires_on=today + timedelta(days=400))
    dialog = open_dialog(qtbot, AppContext(practice.db, practice.physician))
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    assert not dialog.expiry_warning.isVisible()
    # A wrong check digit is refused in words, and nothing is saved.
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("dea_registration"))
    qtbot.mouseClick(dialog.number, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.number, "AD1234564")
    qtbot.keyClick(dialog.number, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.expires, (today + timedelta(days=30)).strftime("%m/%d/%Y"))
    qtbot.keyClick(dialog.expires, Qt.Key.Key_Return)
    qtbot.waitUntil(dialog.problem.isVisible, timeout=10_000)
    assert "check digit" in dialog.problem.text()
    dialog.number.selectAll()
    qtbot.keyClicks(dialog.number, "AD1234563")
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        qtbot.keyClick(dialog.number, Qt.Key.Key_Return)
    assert dialog.table.rowCount() == 2
    assert dialog.expiry_warning.isVisible()
    assert "DEA registration AD1234563: expires in 30 days" in dialog.expiry_warning.text()
    with practice.db.session() as s:
        assert {c.number for c in credentials_of(s, practice.physician.user_name)} == {
            "ME99881", "AD1234563"}


def test_an_admin_without_user_management_keeps_no_credentials(
    qtbot: QtBot, practice: Any
) -> None:
    dialog = open_dialog(qtbot, AppContext(practice.db, practice.admin))
    qtbot.waitUntil(lambda: dialog.problem.isVisible(), timeout=10_000)
    assert "physicians only" in dialog.problem.text()
    assert not dialog.save_button.isEnabled()


def test_the_worklist_prints_to_a_pdf_that_reads_back(
    qtbot: QtBot, practice: Any, tmp_path: Path
) -> None:
    with practice.db.session() as s:
        save_credential(s, practice.physician, user_name=practice.physician.user_name,
                        kind=CredentialKind.STATE_LICENCE, state="NJ", number="25MA0001",
                        expires_on=local_today() + timedelta(days=20))
    context = AppContext(practice.db, practice.physician)
    target = tmp_path / "worklist.pdf"
    with qtbot.waitSignal(context.data_changed, timeout=10_000):
        save_worklist_pdf(context, target, None)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(target.read_bytes())).pages)
    assert "user drquill" in text and "NJ medical licence 25MA0001" in text
