"""The chart's notice that someone at another workstation changed this patient.

Never a silent reload over unsaved edits: with edits under way the notice says who changed
the patient and when, keeps the edits, and offers Reload (theirs instead of mine); with
nothing being edited the chart has already reloaded, and the notice says so.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ketadesk.storage.server.live_updates import ALERT, CHANGE_KINDS, PATIENT, PROTOCOL, REVIEW

_STYLE = (
    "#outsideChange { background: #fff4ce; border: 1px solid #c19c00; border-radius: 4px; }"
)


# What each kind of change touched, in the chart's words (live_updates.CHANGE_KINDS).
_WHAT = {
    PATIENT: "details, medications, conditions or vitals",
    ALERT: "check-ins, questionnaires or home doses",
    REVIEW: "the interaction review",
    PROTOCOL: "the protocol",
}


def outside_change_words(
    by_name: str, at: datetime, kinds: frozenset[str], *, has_unsaved_edits: bool
) -> str:
    """The notice's sentence (``at`` is shown as local hours and minutes)."""
    when = at.astimezone().strftime("%H:%M")
    what = "; ".join(_WHAT[k] for k in CHANGE_KINDS if k in kinds) or "this chart"
    said = f"Changed by {by_name} at {when} on another computer ({what})."
    if has_unsaved_edits:
        return (
            f"{said} Your unsaved changes are still here and were not replaced; Reload "
            "shows theirs instead of yours."
        )
    if PATIENT in kinds:
        return f"{said} Nothing was being edited here, so the chart was reloaded to show it."
    return f"{said} Shown here now; nothing you were editing was replaced."


class OutsideChangeNotice(QFrame):
    """Hidden until ``show_change``; ``reload_requested`` when Reload is clicked."""

    reload_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outsideChange")
        self.setStyleSheet(_STYLE)
        self.setAccessibleName("Changed on another computer")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Show the chart as saved now; your unsaved changes go.")
        self.dismiss_button = QPushButton("Dismiss")
        layout.addWidget(self.message_label, 1)
        layout.addWidget(self.reload_button)
        layout.addWidget(self.dismiss_button)
        self.setVisible(False)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.reload_button.clicked.connect(self.reload_requested)
        self.dismiss_button.clicked.connect(self.hide)

    def show_change(
        self, by_name: str, at: datetime, kinds: frozenset[str], *, has_unsaved_edits: bool
    ) -> None:
        self.message_label.setText(
            outside_change_words(by_name, at, kinds, has_unsaved_edits=has_unsaved_edits)
        )
        self.reload_button.setVisible(has_unsaved_edits)
        self.setVisible(True)
