"""Before signing: the physician confirms having read each line the software did not check.

Each not-checked line has its own checkbox; "I have read all of these" ticks them all at once.
Signing stays disabled until every line is ticked; the confirmed lines go to ``sign_review``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

INTRO_TEXT = (
    "The software did not check the lines below against the knowledge base. Read each one "
    "yourself; the signed review and the patient's plan will say that you read them."
)


class UnreadLinesDialog(QDialog):
    """Lists the not-checked lines with a checkbox each; accepted only when all are ticked."""

    def __init__(self, lines: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Lines not checked by the software")
        self.lines = tuple(lines)
        self.line_boxes: list[QCheckBox] = []
        self._build()
        self._connect_signals()
        self._update()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(INTRO_TEXT)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        holder = QWidget()
        rows = QVBoxLayout(holder)
        rows.setContentsMargins(4, 4, 4, 4)
        for line in self.lines:
            box = QCheckBox(f"I have read: {line}")
            box.setAccessibleName(f"Read {line}")
            rows.addWidget(box)
            self.line_boxes.append(box)
        rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.StyledPanel)
        scroll.setWidget(holder)
        layout.addWidget(scroll, 1)
        self.all_box = QCheckBox("I have read all of these")
        self.all_box.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.all_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_button = QPushButton("Confirm and sign")
        self.buttons.addButton(self.sign_button, QDialogButtonBox.ButtonRole.AcceptRole)
        layout.addWidget(self.buttons)
        self.resize(560, min(160 + 28 * len(self.lines), 520))

    def _connect_signals(self) -> None:
        for box in self.line_boxes:
            box.toggled.connect(self._update)
        self.all_box.clicked.connect(self._set_all)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _set_all(self, checked: bool) -> None:
        for box in self.line_boxes:
            box.setChecked(checked)

    def _update(self) -> None:
        done = all(box.isChecked() for box in self.line_boxes)
        self.all_box.setCheckState(
            Qt.CheckState.Checked if done else Qt.CheckState.Unchecked
        )
        self.sign_button.setEnabled(done)

    def confirmed(self) -> tuple[str, ...]:
        """The lines ticked as read, in the order shown."""
        return tuple(
            line for line, box in zip(self.lines, self.line_boxes, strict=True) if box.isChecked()
        )

    def accept(self) -> None:
        if len(self.confirmed()) == len(self.lines):
            super().accept()
