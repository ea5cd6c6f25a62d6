"""Live updates in the app on a real practice server, within 2 s, on real widgets.

The physician's main window runs on one copy of the template practice; the front desk (an
admin: another database role on another connection, as on another computer) changes things
through the same services. An item-9 answer reaches the physician's banner; a change to a
patient open with unsaved edits shows "Changed by …" and keeps the edits (Reload shows
theirs); a chart with nothing edited reloads and says so; the roster shows a new patient; the
listener comes back after the server drops it. A practice file has no NOTIFY and works as
before.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ketadesk.core.demographics import PatientDemographics
from ketadesk.storage.outcomes.outcomes import record_questionnaire
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.patient_medications import add_medication
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.chart.outside_change_notice import OutsideChangeNotice
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.live_updates import THROTTLE_MS
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD
from tests.server_practice import owner_connection
from tests.unit.test_outcomes_storage import PHQ_ITEM9

TODAY = datetime.now(UTC).astimezone().date()
WITHIN_MS = 2000  # the goal: another workstation's change on screen within 2 s
DRAFT = PatientDemographics(
    first_name="Rosa", last_name="Tell", dob=date(1975, 8, 9), sex="female", state="FL",
    county="Alachua", phone="(352) 555-0180",
)


@pytest.fixture
def two_desks(practice_server, server_template):
    """The physician's main window and the front desk's connection, on one fresh practice
    with one patient (Rosa Tell); the window listens before the test begins."""
    address = copy_of(practice_server, server_template[0])
    ca = practice_server.ca_certificate
    physician = ServerPractice.log_in(address, ca, SERVER_PHYSICIAN, PASSWORD)
    front_desk = ServerPractice.log_in(address, ca, SERVER_ADMIN, PASSWORD)
    with physician.session() as session:
        patient_id = service.create_patient(session, physician.actor, DRAFT, today=TODAY).id
    window = MainWindow(AppContext(physician, physician.actor))
    window.show()
    listener = window.live_updates.listener
    assert listener is not None
    deadline = time.monotonic() + 10
    while not listener.state.is_listening:
        assert time.monotonic() < deadline, "the window never started listening"
        time.sleep(0.02)
    yield window, front_desk, patient_id
    window.live_updates.stop()
    window.context.ops.wait_for_done(10_000)
    window.hide()
    window.deleteLater()
    physician.close()
    front_desk.close()
    server_template[1].drop_later(address)


def _front_desk_item9(front_desk: ServerPractice, patient_id: int) -> None:
    with front_desk.session() as session:
        record_questionnaire(
            session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
        )


def test_an_item9_answer_at_the_front_desk_reaches_the_physicians_banner(
    qtbot, two_desks
) -> None:
    window, front_desk, patient_id = two_desks
    qtbot.waitUntil(lambda: window.safety_banner.alerts_seen is not None, timeout=10_000)
    assert not window.safety_banner.isVisible()
    _front_desk_item9(front_desk, patient_id)
    qtbot.waitUntil(lambda: window.safety_banner.isVisible(), timeout=WITHIN_MS)
    assert window.safety_banner.patient_ids() == [patient_id]
    assert "suicid" in window.safety_banner.message_label.text().lower()


def test_a_change_to_a_chart_with_unsaved_edits_shows_who_and_keeps_the_edits(
    qtbot, two_desks, tmp_path: Path
) -> None:
    window, front_desk, patient_id = two_desks
    chart = window.open_patient(patient_id)
    city = chart.form.editors["city"]
    city.setFocus()
    qtbot.keyClicks(city, "Gainesville")
    assert chart.is_dirty
    with front_desk.session() as session:
        add_medication(session, front_desk.actor, patient_id, "Xanax 0.5 mg twice daily")
    notice = chart.findChild(OutsideChangeNotice)
    qtbot.waitUntil(notice.isVisible, timeout=WITHIN_MS)
    words = notice.message_label.text()
    assert words.startswith("Changed by Sam Frontdesk at ")
    assert "unsaved changes are still here" in words
    assert notice.reload_button.isVisible()
    # Never a silent reload over unsaved edits: the typed city and the dirty mark stay, the
    # new medication is not shown yet.
    assert city.text() == "Gainesville" and chart.is_dirty
    assert chart.med_table.rowCount() == 0
    _keep_screenshot(window, tmp_path / "outside-change-unsaved.png")
    qtbot.mouseClick(notice.reload_button, Qt.MouseButton.LeftButton)
    assert not notice.isVisible() and not chart.is_dirty
    assert city.text() == "" and chart.med_table.rowCount() == 1


def test_an_alert_for_a_chart_with_unsaved_edits_is_shown_and_keeps_them(
    qtbot, two_desks, tmp_path: Path
) -> None:
    window, front_desk, patient_id = two_desks
    chart = window.open_patient(patient_id)
    checkins = chart.findChild(CheckInsTab)
    qtbot.waitUntil(lambda: checkins.questionnaire_table.rowCount() == 0, timeout=10_000)
    city = chart.form.editors["city"]
    city.setFocus()
    qtbot.keyClicks(city, "Gainesville")
    _front_desk_item9(front_desk, patient_id)
    notice = chart.findChild(OutsideChangeNotice)
    qtbot.waitUntil(notice.isVisible, timeout=WITHIN_MS)
    # The questionnaire is shown in its own tab; the typed details were not touched, so
    # there is nothing to reload over them.
    assert "(check-ins, questionnaires or home doses)" in notice.message_label.text()
    assert not notice.reload_button.isVisible()
    assert city.text() == "Gainesville" and chart.is_dirty
    qtbot.waitUntil(lambda: checkins.questionnaire_table.rowCount() == 1, timeout=WITHIN_MS)
    qtbot.waitUntil(window.safety_banner.isVisible, timeout=WITHIN_MS)
    _keep_screenshot(window, tmp_path / "outside-change-alert.png")


def test_a_chart_with_nothing_edited_reloads_and_says_so(qtbot, two_desks, tmp_path) -> None:
    window, front_desk, patient_id = two_desks
    chart = window.open_patient(patient_id)
    assert chart.med_table.rowCount() == 0
    with front_desk.session() as session:
        add_medication(session, front_desk.actor, patient_id, "Xanax 0.5 mg twice daily")
    qtbot.waitUntil(lambda: chart.med_table.rowCount() == 1, timeout=WITHIN_MS)
    notice = chart.findChild(OutsideChangeNotice)
    assert notice.isVisible() and not notice.reload_button.isVisible()
    assert "so the chart was reloaded" in notice.message_label.text()
    _keep_screenshot(window, tmp_path / "outside-change-reloaded.png")
    qtbot.mouseClick(notice.dismiss_button, Qt.MouseButton.LeftButton)
    assert not notice.isVisible()


def test_the_roster_shows_a_patient_added_at_the_front_desk(qtbot, two_desks) -> None:
    window, front_desk, _ = two_desks
    model = window.roster.model
    qtbot.waitUntil(lambda: model.total == 1, timeout=10_000)
    second = PatientDemographics(
        first_name="Ana", last_name="Quintero", dob=date(1981, 2, 3), sex="female",
        state="NJ", county="Essex", phone="(973) 555-0111",
    )
    with front_desk.session() as session:
        service.create_patient(session, front_desk.actor, second, today=TODAY)
    qtbot.waitUntil(lambda: model.total == 2, timeout=WITHIN_MS)
    assert window.roster.count_label.text() == "2 patients"


def test_a_burst_at_the_front_desk_refreshes_the_roster_once_or_twice(qtbot, two_desks) -> None:
    window, front_desk, _ = two_desks
    model = window.roster.model
    qtbot.waitUntil(lambda: model.total == 1, timeout=10_000)
    batches: list[object] = []
    window.live_updates.changes_arrived.connect(batches.append)
    started = time.monotonic()
    for number in range(25):  # an import: one transaction per patient, as fast as it goes
        with front_desk.session() as session:
            service.create_patient(
                session,
                front_desk.actor,
                PatientDemographics(
                    first_name="Burst", last_name="Patient" + "abcdefghijklmnopqrstuvwxy"[number],
                    dob=date(1980, 1, 2), sex="male", state="FL", county="Alachua",
                    phone="(352) 555-0100",
                ),
                today=TODAY,
            )
    qtbot.waitUntil(
        lambda: sum(len(b.by_patient) for b in batches) == 25, timeout=WITHIN_MS
    )
    took_s = time.monotonic() - started
    assert model.total == 26
    # One refresh per throttle interval (the first at once), not one per patient, however
    # slowly the loaded machine ran the 25 transactions.
    assert len(batches) <= int(took_s / (THROTTLE_MS / 1000)) + 2 < 25


def test_the_workstations_own_changes_show_no_notice(qtbot, two_desks) -> None:
    window, front_desk, patient_id = two_desks
    chart = window.open_patient(patient_id)
    chart.med_text.setFocus()
    qtbot.keyClicks(chart.med_text, "Zoloft 50 mg daily")
    qtbot.keyClick(chart.med_text, Qt.Key.Key_Return)
    assert chart.med_table.rowCount() == 1
    heard: list[object] = []
    window.live_updates.changes_arrived.connect(heard.append)
    with front_desk.session() as session:  # afterwards, to another patient
        other = service.create_patient(
            session, front_desk.actor,
            PatientDemographics(
                first_name="Ana", last_name="Quintero", dob=date(1981, 2, 3), sex="female",
                state="NJ", county="Essex", phone="(973) 555-0111",
            ),
            today=TODAY,
        ).id
    qtbot.waitUntil(lambda: bool(heard), timeout=WITHIN_MS)
    # Notes arrive in commit order: the physician's own medication would have come first.
    assert [set(b.by_patient) for b in heard] == [{other}]
    assert not chart.findChild(OutsideChangeNotice).isVisible()


def test_the_window_hears_again_after_the_server_drops_its_listener(
    qtbot, two_desks, practice_server
) -> None:
    window, front_desk, patient_id = two_desks
    listener = window.live_updates.listener
    first_pid = listener.state.backend_pid
    with owner_connection(practice_server) as psql:
        psql.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
    qtbot.waitUntil(
        lambda: listener.state.connections == 2 and listener.state.is_listening, timeout=10_000
    )
    # What was sent while it was away is not repeated: the roster and banner read again.
    qtbot.waitUntil(
        lambda: "made again" in window.statusBar().currentMessage(), timeout=WITHIN_MS
    )
    _front_desk_item9(front_desk, patient_id)
    qtbot.waitUntil(lambda: window.safety_banner.isVisible(), timeout=WITHIN_MS)


def test_locking_stops_listening_and_unlocking_reads_what_changed(qtbot, two_desks) -> None:
    window, front_desk, patient_id = two_desks
    qtbot.waitUntil(lambda: window.safety_banner.alerts_seen is not None, timeout=10_000)
    window.lock()
    assert window.live_updates.listener is None
    _front_desk_item9(front_desk, patient_id)  # while the physician's screen is locked
    window.lock_screen.unlock_requested.emit(SERVER_PHYSICIAN, PASSWORD)
    qtbot.waitUntil(lambda: not window.is_locked, timeout=10_000)
    qtbot.waitUntil(lambda: window.safety_banner.isVisible(), timeout=WITHIN_MS)
    assert window.live_updates.listener is not None


def test_a_practice_file_has_no_listener_and_still_refreshes_its_own_screens(
    qtbot, practice
) -> None:
    with practice.db.session() as s:
        patient_id = service.create_patient(s, practice.physician, DRAFT, today=TODAY).id
    window = MainWindow(AppContext(practice.db, practice.physician))
    qtbot.addWidget(window)
    window.show()
    assert window.live_updates.listener is None
    qtbot.waitUntil(lambda: window.safety_banner.alerts_seen is not None, timeout=10_000)
    with practice.db.session() as s:
        record_questionnaire(s, practice.admin, patient_id, "PHQ-9", PHQ_ITEM9, TODAY,
                             today=TODAY)
    window.context.data_changed.emit("checkins")  # as the check-ins tab does after saving
    qtbot.waitUntil(lambda: window.safety_banner.isVisible(), timeout=WITHIN_MS)
    window.context.ops.wait_for_done(10_000)


def _keep_screenshot(window: MainWindow, path: Path) -> None:
    folder = os.environ.get("KETADESK_SCREENSHOTS")
    target = Path(folder) / path.name if folder else path
    assert window.grab().save(str(target))
