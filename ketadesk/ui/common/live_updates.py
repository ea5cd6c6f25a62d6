"""Live updates on the GUI thread: the other workstations' changes, in coalesced batches.

``ketadesk.storage.server.live_updates.ChangeListener`` hears the practice server's
notifications on a thread of its own; this adapter carries them to the GUI thread (a signal
emitted from that thread is queued to this object's) and hands them on at most once a
``THROTTLE_MS``: the first change after a quiet spell goes out at once, the rest of a burst (a
CSV import at the front desk) waits for the next turn, so screens refresh once per burst and
still within 2 s. A practice file has no listener: ``start`` returns False and nothing runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from ketadesk.storage.server.live_updates import ALERT, PATIENT, ChangeListener, ChangeNote

THROTTLE_MS = 1000


@dataclass(frozen=True)
class ChangeBatch:
    """What changed elsewhere since the last batch."""

    by_patient: dict[int, ChangeNote]  # the latest note for each patient
    kinds: frozenset[str]
    kinds_by_patient: dict[int, frozenset[str]] = field(default_factory=dict)
    has_unknown_patient: bool = False  # a row whose patient was already gone
    is_resync: bool = False  # the connection was lost and made again: anything may have changed

    @property
    def touches_alerts(self) -> bool:
        """True when the safety banner may read differently."""
        return self.is_resync or self.has_unknown_patient or bool({ALERT, PATIENT} & self.kinds)


class LiveUpdates(QObject):
    """``changes_arrived(ChangeBatch)`` on the GUI thread while ``start``ed on a server."""

    changes_arrived = Signal(object)
    _heard = Signal(object)  # emitted on the listener's thread, received on this one
    _reconnected = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._listener: ChangeListener | None = None
        self._pending: list[ChangeNote] = []
        self._pending_resync = False
        self._last_delivery = float("-inf")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self._heard.connect(self._queue_notes)
        self._reconnected.connect(self._queue_resync)
        self._timer.timeout.connect(self._deliver)

    @property
    def listener(self) -> ChangeListener | None:
        return self._listener

    def start(self, db: object) -> bool:
        """Listen on ``db`` if it is a practice server (True); a practice file has no NOTIFY."""
        make = getattr(db, "change_listener", None)
        if make is None:
            return False
        self.stop()
        self._listener = make(self._heard.emit, self._reconnected.emit)
        self._listener.start()
        return True

    def stop(self) -> None:
        """Stop listening (at lock and log-out); what is pending is dropped."""
        if self._listener is not None:
            # Not a long wait on the GUI thread: a listener still connecting to a server that
            # is away finishes on its own (its thread is a daemon) and delivers nothing.
            self._listener.stop(timeout=1.0)
            self._listener = None
        self._timer.stop()
        self._pending = []
        self._pending_resync = False

    def _queue_notes(self, notes: list[ChangeNote]) -> None:
        if self._listener is None:
            return  # heard just before ``stop``
        self._pending.extend(notes)
        self._schedule()

    def _queue_resync(self) -> None:
        if self._listener is None:
            return
        self._pending_resync = True
        self._schedule()

    def _schedule(self) -> None:
        if self._timer.isActive():
            return  # this burst goes out with the batch already waiting
        since_ms = (time.monotonic() - self._last_delivery) * 1000
        self._timer.start(int(max(0.0, THROTTLE_MS - since_ms)))

    def _deliver(self) -> None:
        notes, self._pending = self._pending, []
        resync, self._pending_resync = self._pending_resync, False
        if not notes and not resync:
            return
        self._last_delivery = time.monotonic()
        by_patient = {n.patient_id: n for n in notes if n.patient_id is not None}
        kinds_by_patient = {
            pid: frozenset(n.kind for n in notes if n.patient_id == pid) for pid in by_patient
        }
        self.changes_arrived.emit(
            ChangeBatch(
                by_patient=by_patient,
                kinds=frozenset(n.kind for n in notes),
                kinds_by_patient=kinds_by_patient,
                has_unknown_patient=any(n.patient_id is None for n in notes),
                is_resync=resync,
            )
        )
