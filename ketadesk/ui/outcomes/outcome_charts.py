"""The outcome charts panel: questionnaire totals above, blood pressure below."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from ketadesk.ui.outcomes.blood_pressure_chart import BloodPressureChart, BpChartData
from ketadesk.ui.outcomes.questionnaire_chart import OutcomeChartData, QuestionnaireChart


class OutcomeChartsPanel(QScrollArea):
    """The two charts stacked: questionnaire totals above, blood pressure below.

    The charts keep a readable height and scroll when the window is short (at 1,280 × 800
    with both banners showing, the two charts asked for more height than the screen had and
    the window grew past it).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        content = QWidget(self)
        self.questionnaire_chart = QuestionnaireChart(content)
        self.blood_pressure_chart = BloodPressureChart(content)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.questionnaire_chart)
        layout.addWidget(self.blood_pressure_chart)
        self.setWidget(content)

    def set_data(self, outcomes: OutcomeChartData, blood_pressure: BpChartData) -> None:
        self.questionnaire_chart.set_data(outcomes)
        self.blood_pressure_chart.set_data(blood_pressure)
