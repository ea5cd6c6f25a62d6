"""The banner over a protocol whose values are still a template's examples."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class ExampleValuesBanner(QFrame):
    """Says the values are a template's examples, with "I have reviewed every value"
    (``confirm_button``). Hidden until shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exampleBanner")
        self.setStyleSheet(
            "#exampleBanner { background: #fff4d6; border: 1px solid #e0b84c; border-radius: 4px; }"
        )
        banner = QHBoxLayout(self)
        text = QLabel("These values are a template's <b>examples</b>. Review every value; "
                      "the protocol cannot be signed until you confirm them.")
        text.setWordWrap(True)
        banner.addWidget(text, 1)
        self.confirm_button = QPushButton("I have reviewed every value")
        banner.addWidget(self.confirm_button)
        self.hide()
