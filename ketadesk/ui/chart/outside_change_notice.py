"""The chart's notice that someone at another workstation changed this patient.

Never a silent reload over unsaved edits: with edits under way the notice says who changed
the patient and when, keeps the edits, and offers Reload (theirs instead of mine); with
nothing being edited the chart has already reloaded, and the notice says so.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

_STYLE = (
    "#outsideChange { background: #fff4ce; border: 1px solid #c19c00; border-radius: 4px; }"
)


def outside_change_words(by_name: str, at: datetime, *, has_unsaved_edits: bool) -> str:
    """The notice's sentence (``at`` is shown as local hours and minutes)."""
    when = at.astimezone().strftime("%H:%M")
    if has_unsaved_edits:
        return (
            f"Changed by {by_name} at {when} on another computer. Your unsaved changes are "
            "still here and were not replaced; Reload shows theirs instead of yours."
        )
    return (
        f"Changed by {by_name} at {when} on another computer. Nothing was being edited "
        "here, so the chart was reloaded to show it."
    )


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

    def show_change(self, by_name: str, at: datetime, *, has_unsaved_edits: bool) -> None:
        self.message_label.setText(
            outside_change_words(by_name, at, has_unsaved_edits=has_unsaved_edits)
        )
        self.reload_button.setVisible(has_unsaved_edits)
        self.setVisible(True)
