"""The conflict screen: someone saved a record (a chart, a protocol draft, the practice
settings) while it was being edited here.

Each field where what was typed here differs from what is stored now is shown side by side,
one choice per field (yours or theirs), starting on ``core/edit_conflicts``' suggestion: keep
what you changed, take what they changed that you left alone. Fields you both changed are
marked. Enter saves the chosen values; Escape (Cancel) goes back to the form with everything
typed still there and nothing saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.edit_conflicts import Choice, FieldDifference, suggested_choices
from ketadesk.ui.common.dialog_parts import make_enter_press

EMPTY = "(empty)"
BOTH_CHANGED = "changed by both"


def when_words(moment: datetime, now: datetime | None = None) -> str:
    """"at 3:02 PM today" or "at 3:02 PM on 12/01/2026", in this computer's time zone."""
    local = moment.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"at {clock} today" if local.date() == today else (
        f"at {clock} on {local.strftime('%m/%d/%Y')}"
    )


class EditConflictDialog(QDialog):
    """Choose, field by field, between the values typed here and those saved by someone else.

    ``what`` names the record in a sentence ("Quillon, Zoë's details", "this protocol draft"),
    ``back_to`` the place Cancel goes back to ("the chart"); ``shown`` maps a field's stored text
    to the words shown for it (a choice's label, e.g. "FL" -> "Florida"); ``choices()`` is the
    answer once accepted.
    """

    def __init__(
        self,
        title: str,
        what: str,
        back_to: str,
        changed_by: str | None,
        changed_at: datetime,
        differences: Sequence[FieldDifference],
        shown: Mapping[str, Mapping[str, str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(True)
        self.differences = tuple(differences)
        self._shown = shown or {}
        who = changed_by or "Someone else"
        headline = QLabel(
            f"{who} saved {what} {when_words(changed_at)}, while you were editing it here."
        )
        headline.setWordWrap(True)
        headline.setStyleSheet("font-size: 13pt; font-weight: 600;")
        headline.setAccessibleName("Who changed it")
        self.headline = headline
        explain = QLabel(
            "Nothing you typed has been saved yet, and nothing is lost. For each field below, "
            "choose the value to keep, then press Save chosen values (Enter). Cancel (Esc) goes "
            f"back to {back_to} with what you typed."
        )
        explain.setWordWrap(True)

        grid_page = QWidget()
        grid = QGridLayout(grid_page)
        grid.setHorizontalSpacing(18)
        for column, title in enumerate(("Field", "Yours (typed here)", f"Theirs ({who})")):
            header = QLabel(title)
            header.setStyleSheet("font-weight: 600;")
            grid.addWidget(header, 0, column)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        grid.addWidget(line, 1, 0, 1, 3)
        self.groups: dict[str, QButtonGroup] = {}
        self.mine_buttons: dict[str, QRadioButton] = {}
        self.theirs_buttons: dict[str, QRadioButton] = {}
        suggested = suggested_choices(self.differences)
        for row, difference in enumerate(self.differences, start=2):
            name = difference.name
            label = QLabel(difference.label)
            if difference.changed_by_both:
                label.setText(f"{difference.label}\n({BOTH_CHANGED})")
                label.setStyleSheet("color: #8a4b00; font-weight: 600;")
            mine = QRadioButton(self._words(name, difference.mine))
            theirs = QRadioButton(self._words(name, difference.theirs))
            mine.setAccessibleName(f"{difference.label}: keep yours")
            theirs.setAccessibleName(f"{difference.label}: take theirs")
            group = QButtonGroup(self)
            group.setExclusive(True)
            group.addButton(mine)
            group.addButton(theirs)
            (mine if suggested[name] is Choice.MINE else theirs).setChecked(True)
            self.groups[name] = group
            self.mine_buttons[name] = mine
            self.theirs_buttons[name] = theirs
            grid.addWidget(label, row, 0)
            grid.addWidget(mine, row, 1)
            grid.addWidget(theirs, row, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        grid.setRowStretch(len(self.differences) + 2, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_page)
        scroll.setFrameShape(QFrame.Shape.NoFrame)

        self.keep_all_mine = QPushButton("Keep all mine")
        self.take_all_theirs = QPushButton("Take all theirs")
        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton(
            "Save chosen values", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.keep_all_mine, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.take_all_theirs, QDialogButtonBox.ButtonRole.ActionRole)
        make_enter_press(self.save_button, self.buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(explain)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.buttons)
        self._connect_signals()
        self.resize(900, min(640, 220 + 44 * len(self.differences)))
        first = self.differences[0].name if self.differences else None
        if first is not None:
            self.groups[first].checkedButton().setFocus(Qt.FocusReason.OtherFocusReason)

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.keep_all_mine.clicked.connect(lambda: self._choose_all(Choice.MINE))
        self.take_all_theirs.clicked.connect(lambda: self._choose_all(Choice.THEIRS))

    def _words(self, name: str, value: str) -> str:
        if not value:
            return EMPTY
        return self._shown.get(name, {}).get(value, value)

    def _choose_all(self, choice: Choice) -> None:
        buttons = self.mine_buttons if choice is Choice.MINE else self.theirs_buttons
        for button in buttons.values():
            button.setChecked(True)

    def choices(self) -> dict[str, Choice]:
        """The side chosen for each differing field."""
        return {
            name: Choice.MINE if self.mine_buttons[name].isChecked() else Choice.THEIRS
            for name in self.groups
        }
