"""The outcome charts panel: questionnaire totals above, blood pressure below."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from ketadesk.ui.outcomes.blood_pressure_chart import BloodPressureChart, BpChartData
from ketadesk.ui.outcomes.questionnaire_chart import OutcomeChartData, QuestionnaireChart


class OutcomeChartsPanel(QWidget):
    """The two charts stacked: questionnaire totals above, blood pressure below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.questionnaire_chart = QuestionnaireChart(self)
        self.blood_pressure_chart = BloodPressureChart(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.questionnaire_chart)
        layout.addWidget(self.blood_pressure_chart)

    def set_data(self, outcomes: OutcomeChartData, blood_pressure: BpChartData) -> None:
        self.questionnaire_chart.set_data(outcomes)
        self.blood_pressure_chart.set_data(blood_pressure)
