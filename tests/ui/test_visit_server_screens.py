"""The check-out and return dialogs on a practice server, at 1,280 × 800: a front-desk admin
checks a patient out for the physician (both passwords checked by the server; a wrong one says
so and writes nothing), the pack is written on this computer, the roster marks the patient, and
the pack comes back into the server: what the server lets only a physician write waits for one,
in words. Real cluster, real encrypted pack, real keys.

KETADESK_SCREENSHOTS=folder keeps a PNG of each screen.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from sqlalchemy import select

from ketadesk.core.checkins import CheckInDraft
from ketadesk.models.outcomes import CheckIn
from ketadesk.models.visits import VisitConflict, VisitLease
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.server.server_engine import parse_server_url
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.roster.roster_table_model import RosterColumn
from ketadesk.ui.visits.checkout_dialog import CheckOutDialog
from ketadesk.ui.visits.conflict_review import ConflictReview
from ketadesk.ui.visits.return_dialog import ReturnDialog
from tests.conftest import PASSWORD
from tests.ui.layout_check import layout_problems
from tests.unit.signed_protocol_patients import patient_with_signed_protocol
from tests.visit_pack_data import patient_id, today

SIZE = (1280, 800)
pytestmark = pytest.mark.parametrize("practice_on", ["server"], indirect=True)


def _screenshot(widget: QWidget, name: str) -> None:
    folder = os.environ.get("KETADESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"{name}-{SIZE[0]}x{SIZE[1]}.png"))


def _dialog(qtbot, window: MainWindow, action: Any, kind: type) -> Any:
    action.trigger()
    dialog = window.findChild(kind)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # Xvfb has no window manager; the keys below go to the fields
    return dialog


def _type_password(qtbot, field: Any, password: str) -> None:
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, password)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def test_an_admin_checks_out_for_a_physician_and_returns_through_the_dialogs_on_a_server(
    qtbot, practice_on: Any, tmp_path: Path
) -> None:
    practice = practice_on
    physician = practice.physician.user_name
    start = datetime.now(UTC).date() - timedelta(days=15)
    with practice.db.session() as s:
        patient_with_signed_protocol(s, practice.physician, start, last_name="Serverdialog")
    desk = ServerPractice.log_in(
        parse_server_url(practice.url), practice.ca, practice.admin.user_name, PASSWORD
    )
    window = MainWindow(AppContext(desk, desk.actor))
    window.resize(*SIZE)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    model = window.roster.model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=10_000)
    try:
        assert window.visit_checkout_action.isVisible()
        window.roster.table.selectRow(0)
        dialog = _dialog(qtbot, window, window.visit_checkout_action, CheckOutDialog)
        [mrn] = dialog.chosen_mrns()
        pack = tmp_path / "laptop" / "visit.db"
        pack.parent.mkdir()
        dialog.path_edit.setText(str(pack))
        dialog.physician_choice.setFocus()
        qtbot.keyClick(dialog.physician_choice, Qt.Key.Key_Down)
        assert dialog.chosen_physician() == physician
        qtbot.keyClicks(dialog.physician_password, PASSWORD)

        # The server checks the admin's own password: a wrong one writes nothing.
        _type_password(qtbot, dialog.password, "not my password")
        qtbot.waitUntil(lambda: dialog.problem.isVisible(), timeout=20_000)
        assert dialog.problem.text() == (
            f"That is not the password of {desk.actor.user_name}; nothing was checked out."
        )
        assert not pack.exists()

        _type_password(qtbot, dialog.password, PASSWORD)
        qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=30_000)
        assert dialog.status.text().startswith("Checked out 1 patient (")
        assert f"your password or {physician}'s" in dialog.status.text()
        assert pack.exists() and not dialog.problem.isVisible()
        _screenshot(dialog, "visit-checkout-server-done")
        problems = layout_problems("Check-out dialog on a server", dialog, dialog, SIZE)
        assert not problems, "\n".join(problems)
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: window.findChild(CheckOutDialog) is None, timeout=5_000)
        qtbot.waitUntil(lambda: model.visit_marker(0) is not None, timeout=10_000)
        assert model.data(model.index(0, RosterColumn.STATUS)) == "On visit"

        # At the patient's home the physician opens the pack with their own password.
        laptop, outcome = PracticeDatabase.unlock(pack, physician, PASSWORD)
        try:
            with laptop.session() as s:
                outcomes.record_checkin(
                    s, outcome.actor, patient_id(s, mrn),
                    CheckInDraft(today(), "home_visit", "Dr. Rowan Quill", (),
                                 "as_prescribed", "Seen at home."),
                )
        finally:
            laptop.close()

        # The admin brings it back: the server lets only physicians record a check-in, so it
        # waits for one, said in words; the return itself goes through.
        back = _dialog(qtbot, window, window.visit_return_action, ReturnDialog)
        back.path_edit.setText(str(pack))
        with qtbot.waitSignal(back.returned, timeout=30_000):
            _type_password(qtbot, back.password, PASSWORD)
        qtbot.waitUntil(lambda: not back.is_running, timeout=10_000)
        summary = back.status.text()
        assert "1 record waits for a physician" in summary, summary
        assert "check-in: refused by the practice server to the user who returned" in summary
        assert not back.problem.isVisible() and back.review_button.isVisible()
        _screenshot(back, "visit-return-server-waits")
        problems = layout_problems("Return dialog on a server", back, back, SIZE)
        assert not problems, "\n".join(problems)
        with practice.db.read_session() as s:
            assert s.execute(select(VisitLease.status)).scalar_one() == "returned"
            assert s.execute(select(CheckIn.id)).first() is None
            assert s.execute(select(VisitConflict.reason)).scalars().all() == [
                "server_refused"
            ]
        # Enter opens the review: the check-in waits there, with the reason, for a physician.
        assert back.review_button.hasFocus()
        qtbot.keyClick(back.review_button, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.findChild(ReturnDialog) is None, timeout=5_000)
        review = window.tabs.currentWidget()
        assert isinstance(review, ConflictReview)
        assert review.queue.rowCount() == 1 and review.queue.item(0, 0).text() == mrn
        assert review.role_note.isVisible() and not review.take_visit_button.isEnabled()
        # The laptop's check-in in the words of the form: no record ids, no stored codes.
        fields = review.fields
        shown = {
            fields.item(r, 0).text(): fields.item(r, 2).text() for r in range(fields.rowCount())
        }
        assert shown["Adherence"] == "Taken as prescribed" and shown["Mode"] == "Home visit"
        assert shown["Notes"] == "Seen at home."
        assert not {"Uid", "Patient id"} & set(shown), shown
        _screenshot(window, "visit-conflicts-server-admin")
        qtbot.waitUntil(lambda: model.visit_marker(0) is None, timeout=10_000)
    finally:
        window.close()
        window.deleteLater()
        window.context.ops.wait_for_done(10_000)
        desk.close()
