"""A red banner for the roster or main window: patients with an open safety alert (an
unacknowledged PHQ-9 item 9 answer, or a home dose outside the protocol's safety limits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ketadesk.ui.common.context import AppContext

if TYPE_CHECKING:
    from ketadesk.storage.outcomes.safety_alerts import OpenSafetyAlerts

# A banner that would appear (or go) while the user works with the pointer on what it would
# move waits until that ends (the pointer leaves or rests), at most this long: a click meant
# for one patient's row must not land on the next one's because the rows moved under it.
HOLD_AT_MOST_MS = 15_000
_HOLD_CHECK_MS = 150

CRISIS_LINE_TEXT = "988 Suicide & Crisis Lifeline: call or text 988"

BANNER_STYLE = (
    "QFrame#urgentBanner { background: #B00020; border-radius: 4px; }"
    "QFrame#urgentBanner QLabel { color: white; }"
    "QFrame#urgentBanner QPushButton { background: white; color: #B00020; font-weight: bold;"
    " border-radius: 3px; padding: 5px 12px; }"
    "QFrame#urgentBanner QPushButton:disabled { background: #E8B4BC; color: #5A0010; }"
)


def _who(count: int) -> str:
    return "1 patient has" if count == 1 else f"{count} patients have"


def banner_text(count: int, dose_breach_count: int = 0) -> str:
    """The banner's sentences: ``count`` patients with a suicide-risk answer not yet
    acknowledged, ``dose_breach_count`` with a home dose outside the protocol's safety limits
    not yet acknowledged (singular/plural; a kind with no patients is left out)."""
    parts = []
    if count:
        parts.append(
            f"<b>URGENT: {_who(count)} an unacknowledged suicide-risk answer (PHQ-9 item 9).</b>"
        )
    if dose_breach_count:
        parts.append(
            f"<b>URGENT: {_who(dose_breach_count)} a home dose outside the protocol's safety "
            "limits</b> (blood pressure over the hold limit, dose over the maximum or doses "
            "too close together)."
        )
    crisis = f" {CRISIS_LINE_TEXT}." if count else ""
    return " ".join(parts) + f" A physician must review and acknowledge each one.{crisis}"


class SafetyBanner(QFrame):
    """Hidden while no safety alert is open; otherwise a red bar with the counts (suicide-risk
    answers, home-dose breaches) and a "Show" button.

    ``patients_requested(list[int])`` is emitted with the patient ids when "Show patients" is
    clicked (the main window can filter the roster to them). ``refresh()`` re-reads the
    database off the GUI thread; it also runs whenever ``data_changed`` says check-ins or a
    patient changed.
    """

    patients_requested = Signal(list)
    alerts_changed = Signal(int)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._patient_ids: list[int] = []
        self.alerts_seen: OpenSafetyAlerts | None = None  # the last read (None before it)
        # Bumped by ``clear``: a read started before it (still on a worker when the user logs
        # out) must not put the alerts back on the window behind the log-in dialog.
        self._generation = 0
        # Set by the window: True while the user works with the pointer on what the banner
        # would move (then showing or hiding it waits; see ``set_alerts``).
        self.keeps_still: Callable[[], bool] = lambda: False
        self._held: OpenSafetyAlerts | None = None  # read, not shown yet (``set_alerts``)
        self._held_for = QElapsedTimer()
        self._hold_timer = QTimer(self)
        self._hold_timer.setInterval(_HOLD_CHECK_MS)
        self.setObjectName("urgentBanner")
        self.setStyleSheet(BANNER_STYLE)
        self.setAccessibleName("Urgent safety alert")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.RichText)
        self.show_button = QPushButton("Show patients", self)
        layout.addWidget(self.message_label, 1)
        layout.addWidget(self.show_button)
        self.setVisible(False)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.show_button.clicked.connect(
            lambda: self.patients_requested.emit(list(self._patient_ids))
        )
        self._context.data_changed.connect(self._on_data_changed)
        self._hold_timer.timeout.connect(self._show_held)

    def _on_data_changed(self, what: str) -> None:
        if what in ("checkins", "patients") or what.startswith("patient:"):
            self.refresh()

    def refresh(self) -> None:
        """Re-read which patients have an open safety alert (worker thread)."""
        db = self._context.db

        def load() -> tuple[int, OpenSafetyAlerts]:
            # Imported here, on the worker: the outcomes modules are not needed to show
            # the roster, and loading them on the GUI thread would delay its first paint.
            from ketadesk.storage.outcomes.safety_alerts import open_safety_alert_kinds

            with db.session() as session:
                return generation, open_safety_alert_kinds(session)

        generation = self._generation
        self._context.ops.run(load, self._read_done, parent_widget=self)

    def read_now(self) -> None:
        """Read the open alerts on this thread and show them (the main window's first read,
        before its first paint: the banner is in the first frame, so it never appears under
        the user's eyes and mouse a moment later, moving the roster down)."""
        from ketadesk.storage.outcomes.safety_alerts import open_safety_alert_kinds

        self._generation += 1  # a refresh still under way must not overwrite this read
        with self._context.db.read_session() as session:
            alerts = open_safety_alert_kinds(session)
        self.set_alerts(alerts)

    def _read_done(self, result: tuple[int, OpenSafetyAlerts]) -> None:
        generation, alerts = result
        if generation == self._generation:  # else: cleared (logged out) while it read
            self.set_alerts(alerts)

    def clear(self) -> None:
        """Empty and hide the banner, and drop any read still under way (log-out)."""
        from ketadesk.storage.outcomes.safety_alerts import OpenSafetyAlerts

        self._generation += 1
        self._held = None
        self._hold_timer.stop()
        self.set_alerts(OpenSafetyAlerts())
        self.message_label.clear()
        self.hide()

    def set_alerts(self, alerts: OpenSafetyAlerts) -> None:
        """Show the banner for these patients (hide it when there are none). When that would
        show or hide it while ``keeps_still()``, it waits until that ends (at most
        ``HOLD_AT_MOST_MS``)."""
        if bool(alerts.patient_ids) == self.isHidden() and self.keeps_still():
            if self._held is None:
                self._held_for.start()
                self._hold_timer.start()
            self._held = alerts
            return
        self._held = None
        self._hold_timer.stop()
        self._show(alerts)

    def _show_held(self) -> None:
        if self._held is None:
            self._hold_timer.stop()
        elif not self.keeps_still() or self._held_for.elapsed() >= HOLD_AT_MOST_MS:
            alerts, self._held = self._held, None
            self._hold_timer.stop()
            self._show(alerts)

    def _show(self, alerts: OpenSafetyAlerts) -> None:
        self.alerts_seen = alerts
        self._patient_ids = sorted(alerts.patient_ids)
        count = len(self._patient_ids)
        self.message_label.setText(
            banner_text(len(alerts.suicide_risk), len(alerts.dose_breach))
        )
        self.setVisible(count > 0)
        self.alerts_changed.emit(count)

    def patient_ids(self) -> list[int]:
        return list(self._patient_ids)
