"""The practice server restarted (or stopped) under a connected workstation.

A throwaway cluster of its own (the session's shared one must keep running for the other
tests) holds one practice. A workstation logged in to it keeps working across a restart: the
next action reconnects by itself (the pool sees on its own socket that the server closed a
connection, without a round trip). While the server is down, each action says so in words and
saves nothing; the chart keeps everything typed, and saving again once the server is back
stores it.
"""

from __future__ import annotations

from datetime import date

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import Patient
from ketadesk.storage.patients import patients as service
from ketadesk.storage.server.dev_cluster import (
    start_dev_cluster,
    stop_dev_cluster,
)
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.roster.roster_table_model import RosterColumn
from ketadesk.ui.roster.roster_view import RosterView
from tests.conftest import PASSWORD
from tests.server_practice import cluster_of_its_own

pytestmark = pytest.mark.slow

PHYSICIAN = "drrestart"
DOES_NOT_ANSWER = "does not answer, so nothing was saved or read. What you typed is still here"
DRAFT = PatientDemographics(
    first_name="Rena",
    last_name="Restart",
    dob=date(1981, 4, 9),
    sex="female",
    state="FL",
    county="Alachua",
)


@pytest.fixture(scope="module")
def restartable(tmp_path_factory):
    """A cluster of this module's own, holding one practice; yields (folder, address, ca)."""
    folder = tmp_path_factory.mktemp("restartable-server")
    with cluster_of_its_own(folder, PHYSICIAN, "Dr Rena Quill", PASSWORD) as (address, ca):
        yield folder, address, ca


@pytest.fixture
def workstation(restartable):
    folder, address, ca = restartable
    start_dev_cluster(folder)  # a test that failed half-way may have left it stopped
    practice = ServerPractice.log_in(address, ca, PHYSICIAN, PASSWORD)
    yield folder, practice
    start_dev_cluster(folder)
    practice.close()


def _patients(practice: ServerPractice) -> int:
    with practice.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Patient)) or 0)


def _add_patient(practice: ServerPractice) -> int:
    with practice.session() as session:
        return service.create_patient(
            session, practice.actor, DRAFT, today=date(2026, 3, 15), allow_duplicate=True
        ).id


def test_the_next_action_after_a_restart_reconnects_by_itself(workstation):
    folder, practice = workstation
    before = _patients(practice)  # the pool now holds a connection the restart will cut
    stop_dev_cluster(folder)
    start_dev_cluster(folder)
    patient_id = _add_patient(practice)
    assert _patients(practice) == before + 1
    assert practice.verify_audit_trail().is_intact
    with practice.read_session() as session:
        assert session.get(Patient, patient_id) is not None


def test_while_the_server_is_down_each_action_says_so_and_nothing_half_saves(workstation):
    folder, practice = workstation
    before = _patients(practice)
    stop_dev_cluster(folder)
    with pytest.raises(UserFacingError, match=DOES_NOT_ANSWER) as refused:
        _add_patient(practice)
    address = practice.address
    assert f"{address.host}:{address.port}" in refused.value.message
    with pytest.raises(UserFacingError, match=DOES_NOT_ANSWER):
        _patients(practice)
    start_dev_cluster(folder)
    assert _patients(practice) == before
    _add_patient(practice)
    assert _patients(practice) == before + 1
    assert practice.verify_audit_trail().is_intact


def test_a_server_stopped_in_the_middle_of_a_save_rolls_it_back(workstation):
    folder, practice = workstation
    before = _patients(practice)
    with pytest.raises(UserFacingError, match=DOES_NOT_ANSWER), practice.session() as session:
        service.create_patient(
            session, practice.actor, DRAFT, today=date(2026, 3, 15), allow_duplicate=True
        )
        session.flush()  # the row is on the server, uncommitted
        stop_dev_cluster(folder)
        session.execute(select(func.count()).select_from(Patient))
    start_dev_cluster(folder)
    assert _patients(practice) == before
    assert practice.verify_audit_trail().is_intact


def _open_chart(qtbot, practice: ServerPractice) -> PatientChart:
    patient_id = _add_patient(practice)
    chart = PatientChart(AppContext(practice, practice.actor), patient_id)
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    return chart


def _type_city(qtbot, chart: PatientChart, city: str) -> None:
    editor = chart.form.editors["city"]
    editor.setFocus()
    qtbot.keyClicks(editor, city)
    assert chart.is_dirty


def _saved_city(practice: ServerPractice, patient_id: int) -> str:
    with practice.read_session() as session:
        return str(session.get(Patient, patient_id).city or "")


def test_the_chart_keeps_what_was_typed_while_the_server_is_down_then_saves_it(
    qtbot, workstation, tmp_path
):
    folder, practice = workstation
    chart = _open_chart(qtbot, practice)
    _type_city(qtbot, chart, "Gainesville")
    stop_dev_cluster(folder)
    qtbot.mouseClick(chart.save_button, Qt.MouseButton.LeftButton)
    assert chart.banner.isVisible()
    assert DOES_NOT_ANSWER in chart.banner.text()
    assert chart.form.value("city") == "Gainesville" and chart.is_dirty
    chart.grab().save(str(tmp_path / "chart-server-down.png"))
    start_dev_cluster(folder)
    with qtbot.waitSignal(chart.patient_saved):
        qtbot.mouseClick(chart.save_button, Qt.MouseButton.LeftButton)
    assert not chart.banner.isVisible() and not chart.is_dirty
    assert _saved_city(practice, chart.patient_id) == "Gainesville"


def test_the_chart_saves_after_a_restart_without_a_word(qtbot, workstation):
    folder, practice = workstation
    chart = _open_chart(qtbot, practice)
    _type_city(qtbot, chart, "Ocala")
    stop_dev_cluster(folder)
    start_dev_cluster(folder)
    with qtbot.waitSignal(chart.patient_saved):
        qtbot.mouseClick(chart.save_button, Qt.MouseButton.LeftButton)
    assert not chart.banner.isVisible()
    assert _saved_city(practice, chart.patient_id) == "Ocala"


def test_a_search_right_after_a_restart_answers_without_a_word(qtbot, workstation, tmp_path):
    """The roster's search reads outside a transaction on a connection the restart cut: the
    pool replaces it before the search is sent, so the next key just finds the patients."""
    folder, practice = workstation
    _add_patient(practice)
    context = AppContext(practice, practice.actor)
    view = RosterView(context)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitExposed(view)
    view.search.setFocus()
    qtbot.keyClicks(view.search, "rest")
    qtbot.waitUntil(lambda: view.model.roster_filter.search_text == "rest", timeout=5000)
    found = view.model.rowCount()
    assert found >= 1
    stop_dev_cluster(folder)
    start_dev_cluster(folder)
    qtbot.keyClicks(view.search, "a")
    qtbot.waitUntil(lambda: view.model.roster_filter.search_text == "resta", timeout=5000)
    assert view.problem_label.isHidden()
    assert view.model.rowCount() == found
    assert all(
        "Restart" in view.model.data(view.model.index(row, RosterColumn.NAME))
        for row in range(found)
    )
    view.grab().save(str(tmp_path / "roster-after-restart.png"))
    stop_dev_cluster(folder)
    qtbot.keyClicks(view.search, "r")  # and while it is down, the roster says so in words
    qtbot.waitUntil(lambda: not view.problem_label.isHidden(), timeout=5000)
    assert DOES_NOT_ANSWER in view.problem_label.text()
    context.ops.wait_for_done()
