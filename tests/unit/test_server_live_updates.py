"""Live updates on a real practice server: what the triggers send and what the listener hears.

Two workstations on one copy of the template practice: the physician listens, the front desk
(an admin, another database role) enters an item-9 answer. The notification carries ids, the
kind and the user's name, never patient data; the physician's own changes are skipped; a
rolled-back change sends nothing; a connection the server drops is made again.
"""

from __future__ import annotations

import json
import queue
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from ketadesk.storage.outcomes.outcomes import acknowledge_safety_alert, record_questionnaire
from ketadesk.storage.server.live_updates import (
    ALERT,
    NOTIFY_CHANNEL,
    PATIENT,
    WATCHED_TABLES,
    ChangeNote,
    read_note,
)
from ketadesk.storage.server.server_practice import ServerPractice
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of
from tests.conftest import PASSWORD
from tests.server_practice import owner_connection
from tests.unit.test_outcomes_storage import PHQ_ITEM9
from tests.unit.test_review_storage import add_patient

TODAY = datetime.now(UTC).astimezone().date()
WAIT_S = 5.0  # a generous ceiling for a loaded CI machine; the UI test holds the 2 s goal


@pytest.fixture
def two_desks(practice_server, server_template):
    """The physician's and the front desk's connections to one fresh copy of the practice."""
    address = copy_of(practice_server, server_template[0])
    ca = practice_server.ca_certificate
    physician = ServerPractice.log_in(address, ca, SERVER_PHYSICIAN, PASSWORD)
    front_desk = ServerPractice.log_in(address, ca, SERVER_ADMIN, PASSWORD)
    yield physician, front_desk
    physician.close()
    front_desk.close()
    server_template[1].drop_later(address)


class Heard:
    """What a listener delivered, batch by batch, and each reconnection."""

    def __init__(self) -> None:
        self.batches: queue.Queue[list[ChangeNote]] = queue.Queue()
        self.reconnections = 0

    def notes(self, batch: list[ChangeNote]) -> None:
        self.batches.put(batch)

    def reconnected(self) -> None:
        self.reconnections += 1

    def next_batch(self) -> list[ChangeNote]:
        return self.batches.get(timeout=WAIT_S)


def _wait_listening(listener) -> None:
    deadline = time.monotonic() + WAIT_S
    while not listener.state.is_listening:
        assert time.monotonic() < deadline, "the listener never started listening"
        time.sleep(0.02)


def test_an_item9_answer_at_the_front_desk_reaches_the_physician_and_back(two_desks) -> None:
    physician, front_desk = two_desks
    with physician.session() as session:
        patient_id = add_patient(session, mrn="KD-LIVE-1")
    heard, heard_at_desk = Heard(), Heard()
    listener = physician.change_listener(heard.notes, heard.reconnected)
    desk_listener = front_desk.change_listener(heard_at_desk.notes, heard_at_desk.reconnected)
    listener.start()
    desk_listener.start()
    try:
        _wait_listening(listener)
        _wait_listening(desk_listener)
        # The physician's own change is skipped on the physician's workstation (already shown
        # there); what the front desk commits next arrives, and nothing before it.
        with physician.session() as session:
            record_questionnaire(
                session, physician.actor, patient_id, "PHQ-9", [0] * 9, TODAY, today=TODAY
            )
        with front_desk.session() as session:
            form = record_questionnaire(
                session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
            )
        batch = heard.next_batch()
        assert [(n.kind, n.patient_id, n.by_user) for n in batch] == [
            (ALERT, patient_id, SERVER_ADMIN)
        ]
        assert batch[0].by_name == "Sam Frontdesk"
        assert batch[0].origin == front_desk.origin != physician.origin
        # The front desk heard the physician's questionnaire, not its own.
        assert [(n.by_user, n.by_name) for n in heard_at_desk.next_batch()] == [
            (SERVER_PHYSICIAN, "Dr. Rowan Quill")
        ]
        # The physician acknowledges: the front desk hears it (found through the form).
        with physician.session() as session:
            acknowledge_safety_alert(session, physician.actor, form.id, "Called; safe plan")
        assert [(n.kind, n.patient_id) for n in heard_at_desk.next_batch()] == [
            (ALERT, patient_id)
        ]
        assert heard.batches.empty() and heard_at_desk.batches.empty()
    finally:
        listener.stop()
        desk_listener.stop()
    assert not listener.is_running and not desk_listener.is_running


def test_the_payload_names_ids_kinds_and_the_user_only(two_desks, practice_server) -> None:
    physician, front_desk = two_desks
    with owner_connection(practice_server, physician.address.database) as psql:
        psql.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with physician.session() as session:
            patient_id = add_patient(
                session, mrn="KD-LIVE-2", meds=(), conditions=(), vitals=None
            )
        with front_desk.session() as session:
            form = record_questionnaire(
                session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
            )
        # An acknowledgement names no patient itself: found through its questionnaire.
        with physician.session() as session:
            acknowledge_safety_alert(session, physician.actor, form.id, "Called; safe plan")
        payloads = [n.payload for n in psql.notifies(timeout=WAIT_S, stop_after=3)]
    notes = [json.loads(p) for p in payloads]
    assert all(set(note) == {"k", "p", "by", "o"} for note in notes)
    # add_patient adds the chart's medication, condition and vitals too, one note each row;
    # identical notes of one transaction arrive once (PostgreSQL folds them).
    assert [(n["k"], n["p"], n["by"]) for n in notes] == [
        (PATIENT, patient_id, SERVER_PHYSICIAN),
        (ALERT, patient_id, SERVER_ADMIN),
        (ALERT, patient_id, SERVER_PHYSICIAN),
    ]
    for words in ("Zoë", "Testperson", "KD-LIVE-2", "1980", "safe plan"):
        assert all(words not in payload for payload in payloads)


def test_a_rolled_back_change_sends_nothing_and_psql_changes_are_heard(
    two_desks, practice_server
) -> None:
    physician, front_desk = two_desks
    with physician.session() as session:
        patient_id = add_patient(session, mrn="KD-LIVE-3")
    heard = Heard()
    listener = physician.change_listener(heard.notes, heard.reconnected)
    listener.start()
    try:
        _wait_listening(listener)
        with pytest.raises(RuntimeError), front_desk.session() as session:
            record_questionnaire(
                session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
            )
            raise RuntimeError("the workstation fails before commit")
        # Someone at psql (no KetaDesk origin) is heard like any other workstation.
        with owner_connection(practice_server, physician.address.database) as psql:
            psql.execute("UPDATE patients SET city = 'Ocala' WHERE id = %s", (patient_id,))
        batch = heard.next_batch()
        assert [(n.kind, n.patient_id, n.origin) for n in batch] == [(PATIENT, patient_id, None)]
    finally:
        listener.stop()


def test_a_copied_origin_does_not_hide_another_users_change(two_desks) -> None:
    physician, front_desk = two_desks
    with physician.session() as session:
        patient_id = add_patient(session, mrn="KD-LIVE-5")
    heard = Heard()
    listener = physician.change_listener(heard.notes, heard.reconnected)
    listener.start()
    try:
        _wait_listening(listener)
        # Anyone may set ketadesk.origin, and every listener sees the physician's token.
        with front_desk.session() as session:
            session.execute(
                text("SELECT set_config('ketadesk.origin', :origin, true)"),
                {"origin": physician.origin},
            )
            record_questionnaire(
                session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
            )
        batch = heard.next_batch()
        assert [(n.by_user, n.origin) for n in batch] == [(SERVER_ADMIN, physician.origin)]
    finally:
        listener.stop()


def test_the_listener_survives_a_dropped_connection(two_desks, practice_server) -> None:
    physician, front_desk = two_desks
    with physician.session() as session:
        patient_id = add_patient(session, mrn="KD-LIVE-4")
    heard = Heard()
    listener = physician.change_listener(heard.notes, heard.reconnected)
    listener.start()
    try:
        _wait_listening(listener)
        first_pid = listener.state.backend_pid
        with owner_connection(practice_server) as psql:
            psql.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        deadline = time.monotonic() + WAIT_S * 2
        while listener.state.connections < 2 or not listener.state.is_listening:
            assert time.monotonic() < deadline, "the listener did not connect again"
            time.sleep(0.05)
        assert listener.state.backend_pid != first_pid
        assert heard.reconnections == 1  # the UI refreshes everything: notes were lost
        with front_desk.session() as session:
            record_questionnaire(
                session, front_desk.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
            )
        assert [(n.kind, n.patient_id) for n in heard.next_batch()] == [(ALERT, patient_id)]
    finally:
        listener.stop()


def test_a_locked_practice_does_not_listen(two_desks) -> None:
    physician, _ = two_desks
    heard = Heard()
    physician.lock(physician.actor)
    listener = physician.change_listener(heard.notes, heard.reconnected)
    listener.start()
    time.sleep(0.3)
    assert not listener.state.is_listening and listener.state.connections == 0
    listener.stop()


def test_notes_not_in_ketadesk_shape_are_ignored() -> None:
    at = datetime.now(UTC)
    assert read_note("not json", at) is None
    assert read_note(json.dumps({"k": "gossip", "p": 1, "by": "x"}), at) is None
    assert read_note(json.dumps({"k": ALERT, "p": "1", "by": "x"}), at) is None
    note = read_note(json.dumps({"k": ALERT, "p": None, "by": "x", "o": None}), at)
    assert note == ChangeNote(ALERT, None, "x", "x", at, None)


def test_every_watched_table_is_a_table() -> None:
    from ketadesk.models.base import Base

    tables = set(Base.metadata.tables)
    assert set(WATCHED_TABLES) <= tables
    for _kind, patient in WATCHED_TABLES.values():
        if not isinstance(patient, str):
            assert patient[0] in tables
