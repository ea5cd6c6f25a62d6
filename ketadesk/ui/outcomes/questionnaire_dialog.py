"""Item-by-item entry of one questionnaire (PHQ-9, GAD-7), built from its data file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.questionnaires import Instrument, score_questionnaire
from ketadesk.ui.common.date_entry import DateEntry
from ketadesk.ui.common.qdate_conversion import local_today
from ketadesk.ui.roster.safety_banner import CRISIS_LINE_TEXT

BLANK_ANSWER = "— not answered —"


class QuestionnaireDialog(QDialog):
    """Item-by-item entry of one questionnaire, built from the instrument's data file.

    A question left on "not answered" is saved as blank and the form as incomplete. The
    running total, band and any item-9 warning are shown while typing.
    """

    def __init__(self, instrument: Instrument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.instrument = instrument
        self.setWindowTitle(f"Enter {instrument.name}")
        self.setMinimumWidth(720)
        layout = QVBoxLayout(self)
        intro = QLabel(f"<b>{instrument.title}</b><br>{instrument.instructions}", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        top = QFormLayout()
        self.date_edit = DateEntry("Date taken", is_past=True, parent=self)
        self.date_edit.set_date(local_today())
        top.addRow("Date taken:", self.date_edit)
        layout.addLayout(top)

        grid_holder = QWidget(self)
        grid = QGridLayout(grid_holder)
        grid.setColumnStretch(0, 1)
        self.answer_boxes: list[QComboBox] = []
        for item in instrument.items:
            prompt = QLabel(f"{item.number}. {item.prompt}", grid_holder)
            prompt.setWordWrap(True)
            box = QComboBox(grid_holder)
            box.addItem(BLANK_ANSWER, None)
            for option in instrument.response_options:
                box.addItem(f"{option.value} — {option.label}", option.value)
            box.setAccessibleName(f"{instrument.name} question {item.number}")
            grid.addWidget(prompt, item.number, 0)
            grid.addWidget(box, item.number, 1)
            self.answer_boxes.append(box)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_holder)
        layout.addWidget(scroll, 1)

        self.total_label = QLabel(self)
        self.total_label.setWordWrap(True)
        self.alert_label = QLabel(self)
        self.alert_label.setWordWrap(True)
        self.alert_label.setStyleSheet("color: #B00020; font-weight: bold;")
        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #B00020;")
        self.problem_label.setAccessibleName("Problem")
        layout.addWidget(self.total_label)
        layout.addWidget(self.alert_label)
        layout.addWidget(self.problem_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        layout.addWidget(self.buttons)
        self._connect_signals()
        self._update_total()

    def _connect_signals(self) -> None:
        for box in self.answer_boxes:
            box.currentIndexChanged.connect(self._update_total)
        self.buttons.accepted.connect(self._accept_if_dated)
        self.buttons.rejected.connect(self.reject)

    def set_answers(self, answers: Sequence[int | None]) -> None:
        """Fill in the answers (points per item, ``None`` = not answered)."""
        for box, answer in zip(self.answer_boxes, answers, strict=True):
            box.setCurrentIndex(box.findData(answer) if answer is not None else 0)

    def answers(self) -> list[int | None]:
        return [box.currentData() for box in self.answer_boxes]

    def taken_on(self) -> date:
        """The date taken (call after the dialog is accepted: it is then readable)."""
        return self.date_edit.date_value() or local_today()

    def _accept_if_dated(self) -> None:
        try:
            taken = self.date_edit.date_value()
            if taken is None:
                raise UserFacingError("Enter the date the questionnaire was taken (MM/DD/YYYY).")
            if taken > local_today():
                raise UserFacingError("That date is in the future. Use the date it was taken.")
        except UserFacingError as error:
            self.problem_label.setText(f"Date taken: {error.message}")
            self.date_edit.setFocus()
            return
        self.accept()

    def _update_total(self) -> None:
        score = score_questionnaire(self.instrument, self.answers())
        if score.is_complete:
            self.total_label.setText(f"Total: <b>{score.total}</b> ({score.band})")
        else:
            missing = ", ".join(str(n) for n in score.missing_items)
            self.total_label.setText(
                f"Incomplete: question(s) {missing} not answered. It will be saved as "
                "incomplete, with no total or severity."
            )
        self.alert_label.setText(
            f"⚠ {score.safety_message} {CRISIS_LINE_TEXT}." if score.safety_alert else ""
        )
        self.alert_label.setVisible(score.safety_alert)
