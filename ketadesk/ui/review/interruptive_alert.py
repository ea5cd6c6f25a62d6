"""The interruptive alert shown before a protocol is signed.

Lists the interaction flags at or above the practice threshold (setting
``interaction_interrupt_threshold``; read it with
``ketadesk.storage.reviews.interaction_reviews.interrupt_threshold``). Lower-severity flags are not
shown here; they stay on the review screen. Nothing is shown when no flag reaches the
threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.knowledge_base import severity_rank
from ketadesk.ui.review.review_severity_icons import SEVERITY_COLOUR, SEVERITY_TEXT, severity_badge


class AlertFlag(Protocol):
    """Anything flag-shaped: ``core.interaction_check.Flag`` or a signed ``SnapshotFlag``."""

    @property
    def severity(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def management(self) -> str: ...
    @property
    def entered_as(self) -> str: ...


def flags_at_or_above(flags: Sequence[AlertFlag], threshold: str) -> list[AlertFlag]:
    """Flags whose severity is ``threshold`` or more severe, most severe first."""
    limit = severity_rank(threshold)
    chosen = [f for f in flags if severity_rank(f.severity) <= limit]
    return sorted(chosen, key=lambda f: severity_rank(f.severity))


class InterruptiveAlertDialog(QDialog):
    """Modal list of serious findings; "Continue" is enabled only after ticking the box."""

    def __init__(
        self, flags: Sequence[AlertFlag], threshold: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.flags = flags_at_or_above(flags, threshold)
        self.setWindowTitle("Serious interaction findings")
        self.setModal(True)
        self.resize(720, 520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"<b>{len(self.flags)} finding{'s' if len(self.flags) != 1 else ''} at or above "
            f"{SEVERITY_TEXT.get(threshold, threshold).lower()} severity</b> (the practice's "
            "threshold for interrupting). Read each before signing this protocol."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        panel = QWidget()
        rows = QVBoxLayout(panel)
        rows.setSpacing(8)
        for flag in self.flags:
            rows.addWidget(_flag_row(flag))
        rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        layout.addWidget(scroll, 1)

        self.confirm_box = QCheckBox(
            "I have read these findings and my decisions on them are recorded in the signed "
            "interaction review."
        )
        layout.addWidget(self.confirm_box)
        buttons = QDialogButtonBox()
        self.back_button = QPushButton("Go back")
        self.continue_button = QPushButton("Continue to sign")
        self.continue_button.setEnabled(False)
        buttons.addButton(self.back_button, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.addButton(self.continue_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.back_button.setDefault(True)
        layout.addWidget(buttons)
        self._buttons = buttons
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.confirm_box.toggled.connect(self.continue_button.setEnabled)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)


def _flag_row(flag: AlertFlag) -> QFrame:
    frame = QFrame()
    frame.setObjectName("alertFlag")
    colour = SEVERITY_COLOUR.get(flag.severity, "#555")
    frame.setStyleSheet(
        f"QFrame#alertFlag {{ border: 1px solid #c8c8c8; border-left: 6px solid {colour}; }}"
    )
    layout = QVBoxLayout(frame)
    header = QHBoxLayout()
    header.addWidget(severity_badge(flag.severity), 0, Qt.AlignmentFlag.AlignTop)
    title = QLabel(flag.title)
    title.setWordWrap(True)
    title.setStyleSheet("font-weight: bold;")
    header.addWidget(title, 1)
    layout.addLayout(header)
    for caption, text in (("From", flag.entered_as), ("Management", flag.management)):
        label = QLabel(f"<b>{caption}:</b> {_escape(text)}")
        label.setWordWrap(True)
        layout.addWidget(label)
    return frame


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def confirm_interruptive_flags(
    parent: QWidget | None, flags: Sequence[AlertFlag], threshold: str
) -> bool:
    """Show the modal when any flag is at or above ``threshold``; True to go on signing.

    Returns True at once (no dialog) when no flag reaches the threshold.
    """
    if not flags_at_or_above(flags, threshold):
        return True
    dialog = InterruptiveAlertDialog(flags, threshold, parent)
    return dialog.exec() == QDialog.DialogCode.Accepted
