"""The top of the protocol editor: what is shown, the review state, and the template picker.

The first line says which version is shown and whether it can be changed, beside "Edit (new
draft)" and "Discontinue…". The second says whether the interaction review allows signing,
beside the template picker and "Use template".
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ketadesk.core.protocol_templates import ProtocolTemplate
from ketadesk.storage.protocols import protocols as store


class ProtocolHeader(QWidget):
    """Status line with Edit / Discontinue, review line with the template picker.

    ``template_chosen`` carries the template's name when "Use template" is clicked.
    """

    template_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.status_label = QLabel("Loading…")
        self.status_label.setObjectName("protocolStatus")
        self.status_label.setStyleSheet("font-weight: 600;")
        self.status_label.setWordWrap(True)
        top.addWidget(self.status_label, 1)
        self.edit_button = QPushButton("Edit (new draft)")
        self.discontinue_button = QPushButton("Discontinue…")
        top.addWidget(self.edit_button)
        top.addWidget(self.discontinue_button)
        box.addLayout(top)
        second = QHBoxLayout()
        self.review_label = QLabel()
        self.review_label.setWordWrap(True)
        second.addWidget(self.review_label, 1)
        second.addWidget(QLabel("Template:"))
        self.template_combo = QComboBox()
        self.template_combo.setMinimumWidth(260)
        second.addWidget(self.template_combo)
        self.use_template_button = QPushButton("Use template")
        second.addWidget(self.use_template_button)
        box.addLayout(second)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.use_template_button.clicked.connect(self._use_selected_template)

    def _use_selected_template(self) -> None:
        name = self.template_combo.currentData()
        if isinstance(name, str):
            self.template_chosen.emit(name)

    def show_templates(self, templates: tuple[ProtocolTemplate, ...]) -> None:
        """List the templates (examples marked), keeping the current choice when still there."""
        current = self.template_combo.currentText()
        self.template_combo.clear()
        for template in templates:
            words = template.name + (" (example values)" if template.example_values else "")
            self.template_combo.addItem(words, template.name)
        index = self.template_combo.findText(current)
        if index >= 0:
            self.template_combo.setCurrentIndex(index)

    def select_template(self, name: str) -> None:
        """Show ``name`` in the picker when it is listed."""
        index = self.template_combo.findData(name)
        if index >= 0:
            self.template_combo.setCurrentIndex(index)

    def set_template_choice_enabled(self, enabled: bool) -> None:
        self.use_template_button.setEnabled(enabled)
        self.template_combo.setEnabled(enabled)

    def show_review(self, review: store.ReviewGate) -> None:
        """Say whether the patient's interaction review allows signing."""
        self.review_label.setText(_review_words(review))


def _review_words(review: store.ReviewGate) -> str:
    if review.allows_signing:
        return "Interaction review: current and signed."
    if review.state == "stale":
        return "Interaction review: stale — review interactions again before signing."
    return "Interaction review: none signed yet."
