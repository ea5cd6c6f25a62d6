"""Practice-wide compliance screens on a real encrypted database: the consent texts (read by
all, a new version added by a physician, which asks for re-consent) and the two compliance
settings any physician may change but an admin may not."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QSpinBox
from pytestqt.qtbot import QtBot

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.storage.compliance.compliance_worklist import WorkKind, compliance_worklist
from ketadesk.storage.compliance.consent import consent_templates, record_consent
from ketadesk.storage.patients.patients import change_status
from ketadesk.storage.practice.settings_store import get_setting, set_setting
from ketadesk.storage.security.users import add_user, get_user
from ketadesk.ui.admin.settings_dialog import SettingsDialog
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.compliance.consent_templates_dialog import ConsentTemplatesDialog
from tests.conftest import PASSWORD
from tests.unit.signed_protocol_patients import patient_with_signed_protocol
from tests.unit.test_prescription_storage import TODAY


def show(qtbot: QtBot, dialog: Any) -> Any:
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    return dialog


def test_a_physician_adds_a_consent_version_and_signed_patients_must_consent_again(
    qtbot: QtBot, practice: Any
) -> None:
    dialog = show(qtbot, ConsentTemplatesDialog(AppContext(practice.db, practice.physician)))
    qtbot.waitUntil(lambda: dialog.versions.count() == 1, timeout=10_000)
    assert "Version 1 (current, example text)" in dialog.versions.item(0).text()
    assert dialog.text_view.toPlainText().strip()
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
        change_status(s, practice.physician, pid, "active", "Started treatment")
        record_consent(s, practice.admin, pid, template_id=consent_templates(s)[0].id,
                       signed_on=TODAY, method="paper", today=TODAY)
        assert not [i for i in compliance_worklist(s, TODAY) if i.kind.startswith("consent")]

    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert "title" in dialog.problem.text()
    qtbot.mouseClick(dialog.new_title, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.new_title, "Consent to at-home ketamine, 2027")
    qtbot.keyClick(dialog.new_title, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.new_text, "First paragraph in our words.")
    qtbot.keyClick(dialog.new_text, Qt.Key.Key_Return)
    qtbot.keyClick(dialog.new_text, Qt.Key.Key_Return)
    qtbot.keyClicks(dialog.new_text, "Second paragraph.")
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert dialog.versions.count() == 2
    assert dialog.versions.item(0).text().startswith("Version 2 (current)\nadded ")
    assert "Second paragraph." in dialog.text_view.toPlainText()
    with practice.db.session() as s:
        assert consent_templates(s)[-1].paragraphs == ("First paragraph in our words.",
                                                     "Second paragraph.")
        assert [i.patient_id for i in compliance_worklist(s, TODAY)
                if i.kind == WorkKind.CONSENT_OLD_VERSION] == [pid]


def test_an_admin_reads_the_consent_texts_but_adds_none(qtbot: QtBot, practice: Any) -> None:
    dialog = show(qtbot, ConsentTemplatesDialog(AppContext(practice.db, practice.admin)))
    qtbot.waitUntil(lambda: dialog.versions.count() == 1, timeout=10_000)
    assert not dialog.add_button.isEnabled()
    assert "Only physicians" in dialog.add_button.toolTip()


def test_any_physician_changes_the_compliance_settings_an_admin_does_not(
    qtbot: QtBot, practice: Any
) -> None:
    add_user(practice.db, practice.physician, user_name="drsecond", full_name="Dr. Second",
             role=Role.PHYSICIAN, password=PASSWORD)
    info = get_user(practice.db, "drsecond")
    second = Actor(info.user_id, "drsecond", info.full_name, Role.PHYSICIAN, False)
    dialog = show(qtbot, SettingsDialog(AppContext(practice.db, second)))
    months = dialog.editors["consent_valid_months"]
    lookup = dialog.editors["nj_ketamine_pdmp_lookup"]
    assert isinstance(months, QSpinBox) and isinstance(lookup, QComboBox)
    assert months.isEnabled() and lookup.isEnabled()
    assert not dialog.editors["auto_lock_minutes"].isEnabled()  # still manage-users only
    qtbot.mouseClick(months, Qt.MouseButton.LeftButton)
    months.selectAll()
    qtbot.keyClicks(months, "6")
    qtbot.keyClick(months, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5_000)
    with practice.db.session() as s:
        assert get_setting(s, "consent_valid_months") == 6
        with pytest.raises(UserFacingError, match="physicians"):
            set_setting(s, practice.admin, "consent_valid_months", 3)

    admin_view = show(qtbot, SettingsDialog(AppContext(practice.db, practice.admin)))
    assert not admin_view.editors["consent_valid_months"].isEnabled()
    assert "Only physicians" in admin_view.editors["nj_ketamine_pdmp_lookup"].toolTip()
