"""Small pieces every KetaDesk dialog uses: the problem label and the standard layout."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)


class ProblemLabel(QLabel):
    """Bold dark-red words saying what is wrong; hidden until there is something to say."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setStyleSheet("color: #a40000; font-weight: bold;")
        self.setAccessibleName("Problem")
        self.hide()

    def say(self, message: str) -> None:
        self.setText(message)
        self.show()


def make_enter_press(button: QPushButton, buttons: QDialogButtonBox) -> None:
    """Enter anywhere in the dialog presses ``button``; no other button of ``buttons`` takes it.

    A Cancel button made by QDialogButtonBox is an "auto default" button, and Qt made it the
    dialog's default once the dialog was shown: Enter in a password field then cancelled.
    """
    for other in buttons.buttons():
        if isinstance(other, QPushButton) and other is not button:
            other.setAutoDefault(False)
            other.setDefault(False)
    button.setAutoDefault(True)
    button.setDefault(True)


def password_field(accessible_name: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setAccessibleName(accessible_name)
    return edit


def lay_out_dialog(
    dialog: QDialog,
    body: QLayout,
    on_accept: Callable[[], None],
    *,
    accept_button: QDialogButtonBox.StandardButton = QDialogButtonBox.StandardButton.Ok,
) -> ProblemLabel:
    """Body, then a problem label, then OK/Save and Cancel; returns the problem label."""
    problem = ProblemLabel()
    buttons = QDialogButtonBox(accept_button | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(on_accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(body)
    layout.addWidget(problem)
    layout.addWidget(buttons)
    return problem


def form_of(rows: list[tuple[str, QLineEdit]]) -> QFormLayout:
    form = QFormLayout()
    for label, widget in rows:
        form.addRow(label, widget)
    return form
