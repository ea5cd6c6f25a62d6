"""Live updates on a practice server: triggers that say what changed, and a listener.

Every workstation on a server sees the others' changes within about a second, through
PostgreSQL's ``LISTEN/NOTIFY``. Triggers put in by ``server init`` send one notification on
``ketadesk_changes`` per changed row of a patient's chart, a safety alert (check-ins,
questionnaires and their item-9 acknowledgements, home doses and their breach alerts), an
interaction review or a protocol, when the transaction commits. The payload carries only
ids and kinds and the acting user's name, never patient data:

    {"k": "alert", "p": 42, "by": "drquill", "o": "3f…"}

``k`` is the kind (``CHANGE_KINDS``), ``p`` the patient's id (null when the row's patient is
already gone), ``by`` the database role that made the change, ``o`` the origin token of the
workstation that made it (``ketadesk.origin``, set on each of its connections), so that a
workstation can skip what it did itself and has already shown.

``ChangeListener`` listens on a connection of its own, over the same verified TLS as the
workstation's sessions, on a thread of its own (no Qt here: the UI wraps it); it hands on
what arrives within ``GATHER_SECONDS`` of a first note as one batch (commit to batch: about
50 ms on loopback TLS), and reconnects when the server goes away (then says so, since
notifications sent meanwhile were lost). A practice file has no NOTIFY: one workstation,
whose own screens already refresh each other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "ketadesk_changes"
ORIGIN_SETTING = "ketadesk.origin"
POLL_SECONDS = 0.25  # how often the listener looks whether it should stop
GATHER_SECONDS = 0.05  # what arrives this soon after a first note goes out with it
ALIVE_CHECK_SECONDS = 10.0  # a quiet connection is checked this often
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 5.0

PATIENT = "patient"
ALERT = "alert"
REVIEW = "review"
PROTOCOL = "protocol"
CHANGE_KINDS = (PATIENT, ALERT, REVIEW, PROTOCOL)

# table -> (kind, how to find the patient): a column of the row itself, or (parent table,
# the row's column naming the parent) for a row that belongs to a patient through its parent.
WATCHED_TABLES: dict[str, tuple[str, str | tuple[str, str]]] = {
    "patients": (PATIENT, "id"),
    "patient_medications": (PATIENT, "patient_id"),
    "patient_conditions": (PATIENT, "patient_id"),
    "patient_allergies": (PATIENT, "patient_id"),
    "vital_signs": (PATIENT, "patient_id"),
    "patient_status_changes": (PATIENT, "patient_id"),
    "checkins": (ALERT, "patient_id"),
    "checkin_symptoms": (ALERT, ("checkins", "checkin_id")),
    "questionnaire_responses": (ALERT, "patient_id"),
    "safety_alert_acks": (ALERT, ("questionnaire_responses", "response_id")),
    "dose_log": (ALERT, "patient_id"),
    "dose_breach_alerts": (ALERT, "patient_id"),
    "interaction_reviews": (REVIEW, "patient_id"),
    "review_decisions": (REVIEW, ("interaction_reviews", "review_id")),
    "patient_protocols": (PROTOCOL, "patient_id"),
    "protocol_versions": (PROTOCOL, ("patient_protocols", "protocol_id")),
}

# One argument after the kind: the row's patient column; two: the parent table and the row's
# column naming its parent. AFTER triggers: the notification goes out only if the change
# commits, and says nothing a reader of the row could not read.
_NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_notify_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    changed jsonb;
    patient bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    IF TG_NARGS = 2 THEN
        patient := (changed ->> TG_ARGV[1])::bigint;
    ELSE
        EXECUTE format('SELECT patient_id FROM %I WHERE id = $1', TG_ARGV[1])
            INTO patient USING (changed ->> TG_ARGV[2])::bigint;
    END IF;
    PERFORM pg_notify('{NOTIFY_CHANNEL}', json_build_object(
        'k', TG_ARGV[0], 'p', patient, 'by', session_user,
        'o', current_setting('{ORIGIN_SETTING}', true))::text);
    RETURN NULL;
END $$
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def live_update_statements(existing_tables: set[str]) -> list[str]:
    """The notifying function and one trigger per watched table that exists (as the owner)."""
    statements = [_NOTIFY_FUNCTION]
    for table, (kind, patient) in WATCHED_TABLES.items():
        if table not in existing_tables:
            continue
        where = [patient] if isinstance(patient, str) else list(patient)
        arguments = ", ".join(_literal(a) for a in (kind, *where))
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE "
            f'ON "{table}" FOR EACH ROW EXECUTE FUNCTION ketadesk_notify_change({arguments})'
        )
    return statements


def apply_live_update_triggers(connection: Any) -> None:
    """Install the notifying triggers, on a SQLAlchemy connection of the schema's owner."""
    from sqlalchemy import inspect

    existing = set(inspect(connection).get_table_names())
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for statement in live_update_statements(existing):
            cursor.execute(statement)
    finally:
        cursor.close()


@dataclass(frozen=True)
class ChangeNote:
    """One change another workstation (or a ``psql`` session) committed."""

    kind: str
    patient_id: int | None
    by_user: str  # the database role, i.e. the KetaDesk user name
    by_name: str  # their full name, or the user name when the practice has none for it
    at: datetime  # when it arrived here (local time)
    origin: str | None = None


def read_note(payload: str, at: datetime) -> ChangeNote | None:
    """The note in a notification's payload; None for one that is not KetaDesk's own shape."""
    try:
        data = json.loads(payload)
        kind = data["k"]
        patient = data["p"]
        by_user = data["by"]
        origin = data.get("o")
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in CHANGE_KINDS or not isinstance(by_user, str):
        return None
    if patient is not None and not isinstance(patient, int):
        return None
    return ChangeNote(
        kind, patient, by_user, by_user, at, origin if isinstance(origin, str) else None
    )


_TAGGED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def tag_connections(engine: Any, origin: str) -> None:
    """Set ``ketadesk.origin`` on each connection ``engine`` hands out (once per connection),
    so the triggers can say which workstation made a change."""
    from sqlalchemy import event

    if _TAGGED.get(engine) == origin:
        return
    _TAGGED[engine] = origin

    def tag(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get(ORIGIN_SETTING) == origin:
            return
        # At check-out the connection is idle: the setting is committed at once, so a later
        # rollback of the session's own work cannot undo it.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT set_config(%s, %s, false)", (ORIGIN_SETTING, origin))
        finally:
            cursor.close()
        dbapi_connection.commit()
        record.info[ORIGIN_SETTING] = origin

    event.listen(engine, "checkout", tag)


@dataclass
class ListenerState:
    """What the listener has done (read by tests and the status line)."""

    connections: int = 0  # LISTENs made, the first included
    backend_pid: int | None = None
    is_listening: bool = False
    names: dict[str, str] = field(default_factory=dict)


class ChangeListener:
    """Listens for ``NOTIFY ketadesk_changes`` on a connection of its own, on its own thread.

    ``connect()`` returns a new psycopg connection (the listener owns and closes it);
    ``on_notes(notes)`` gets each batch of other workstations' changes (never this one's:
    notes whose origin is ``origin`` and whose user is the connection's are dropped; anyone
    can set the origin, so a copied token does not hide another user's change);
    ``on_reconnected()`` is called after the connection was lost and made again, since what
    was sent meanwhile is not repeated. Both are called on the listener's thread.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        origin: str,
        on_notes: Callable[[list[ChangeNote]], None],
        on_reconnected: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._origin = origin
        self._on_notes = on_notes
        self._on_reconnected = on_reconnected
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self.state = ListenerState()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ketadesk-live-updates",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (returns within about ``POLL_SECONDS``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while not self._stop.is_set():
            try:
                connection = self._connect()
            except Exception as error:  # the server is away: try again, a little later each time
                log.info("live updates: cannot connect (%s)", type(error).__name__)
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = RECONNECT_FIRST_SECONDS
            try:
                self._listen(connection)
            except Exception as error:
                log.info("live updates: connection lost (%s)", type(error).__name__)
            finally:
                self.state.is_listening = False
                try:
                    connection.close()
                except Exception:  # already gone
                    pass
            self._stop.wait(RECONNECT_FIRST_SECONDS)

    def _listen(self, connection: Any) -> None:
        connection.autocommit = True
        user = connection.info.user
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.state.backend_pid = connection.info.backend_pid
        self.state.connections += 1
        self.state.is_listening = True
        if self.state.connections > 1:
            self._on_reconnected()
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            first = list(connection.notifies(timeout=POLL_SECONDS, stop_after=1))
            if first:  # and what the same burst brings right after it
                first += connection.notifies(timeout=GATHER_SECONDS)
            arrived = [(n.payload, datetime.now().astimezone()) for n in first]
            if arrived:
                quiet_since = time.monotonic()
                notes = [
                    note
                    for payload, at in arrived
                    if (note := read_note(payload, at)) is not None
                    and not (note.origin == self._origin and note.by_user == user)
                ]
                if notes:
                    self._on_notes(self._named(connection, notes))
            elif time.monotonic() - quiet_since > ALIVE_CHECK_SECONDS:
                connection.execute("SELECT 1")  # a server gone quietly raises here
                quiet_since = time.monotonic()

    def _named(self, connection: Any, notes: list[ChangeNote]) -> list[ChangeNote]:
        """The notes with each user's full name (users' names are not patient data)."""
        names = self.state.names
        unknown = sorted({n.by_user for n in notes} - names.keys())
        if unknown:
            rows = connection.execute(
                "SELECT user_name, full_name FROM users WHERE user_name = ANY(%s)", (unknown,)
            ).fetchall()
            names.update({str(user): str(full) for user, full in rows})
            names.update({user: user for user in unknown if user not in names})
        return [
            ChangeNote(n.kind, n.patient_id, n.by_user, names[n.by_user], n.at, n.origin)
            for n in notes
        ]
