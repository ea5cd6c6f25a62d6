"""The "Check & sign" side of the protocol editor: doses, sig, checks, and the sign buttons.

Shows the ladder doses in mg and mg/kg (from the chart weight, with its date), the 30-day supply,
the sig as the patient will read it, and every check in words. Errors cannot be ticked; each
warning is ticked to acknowledge it (one tick acknowledges every message with the same code).
The line above the buttons says why Sign is disabled, or that it is ready.
"""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.dosing_calendar import units_per_30_days
from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_validation import ValidationMessage, weight_basis_text
from ketadesk.core.protocols import (
    Protocol,
    WeightReading,
    ladder_doses_mg,
    maintenance_dose_mg,
    number_text,
    sig_text,
)
from ketadesk.ui.protocol.protocol_form_fields import ERROR_STYLE, WARNING_STYLE


class ProtocolSignPanel(QWidget):
    """Doses, sig, the list of checks with a tick per warning, and Save draft / Sign.

    ``acknowledgements_changed`` fires when the physician ticks or unticks a warning.
    """

    acknowledgements_changed = Signal()
    #: The physician followed the link to the page where the practice's limits are set.
    practice_limits_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._acknowledged: set[str] = set()
        self._updating_list = False
        outer = QVBoxLayout(self)
        # Doses, sig and checks scroll together: at 1,280 × 800 a long sig was cut off.
        self.details = QScrollArea(self)
        self.details.setObjectName("signPanelDetails")
        self.details.setWidgetResizable(True)
        self.details.setFrameShape(QFrame.Shape.NoFrame)
        self.details.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget(self.details)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        self.details.setWidget(content)
        outer.addWidget(self.details, 1)
        dose_box = QGroupBox("Doses")
        dose_layout = QVBoxLayout(dose_box)
        self.dose_label = QLabel()
        self.dose_label.setWordWrap(True)
        self.dose_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weight_label = QLabel()
        self.weight_label.setWordWrap(True)
        self.supply_label = QLabel()
        self.supply_label.setWordWrap(True)
        dose_layout.addWidget(self.dose_label)
        dose_layout.addWidget(self.weight_label)
        dose_layout.addWidget(self.supply_label)
        layout.addWidget(dose_box)

        sig_box = QGroupBox("Sig (as the patient will read it)")
        sig_layout = QVBoxLayout(sig_box)
        self.sig_label = QLabel()
        self.sig_label.setWordWrap(True)
        self.sig_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sig_layout.addWidget(self.sig_label)
        layout.addWidget(sig_box)

        messages_box = QGroupBox("Checks (errors block signing; tick each warning to "
                                 "acknowledge it)")
        messages_layout = QVBoxLayout(messages_box)
        self.message_list = QListWidget()
        self.message_list.setWordWrap(True)
        self.message_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.message_list.setMinimumHeight(110)
        self.message_list.setSpacing(2)
        messages_layout.addWidget(self.message_list)
        self.limits_link = QLabel(
            '<a href="practice-limits">Set the practice limits…</a>'
        )
        self.limits_link.setObjectName("practiceLimitsLink")
        self.limits_link.setAccessibleName("Open Practice limits for protocols")
        self.limits_link.setToolTip("Opens Practice ▸ Practice limits for protocols…")
        self.limits_link.setTextFormat(Qt.TextFormat.RichText)
        self.limits_link.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.limits_link.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.limits_link.setVisible(False)
        layout.addWidget(messages_box, 1)

        self.sign_reason_label = QLabel()
        self.sign_reason_label.setObjectName("signReason")
        self.sign_reason_label.setWordWrap(True)
        outer.addWidget(self.sign_reason_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.limits_link)  # beside the buttons: it costs no height
        buttons.addStretch(1)
        self.save_button = QPushButton("Save draft")
        self.sign_button = QPushButton("Sign protocol")
        self.sign_button.setStyleSheet("font-weight: 600;")
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.sign_button)
        outer.addLayout(buttons)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.message_list.itemChanged.connect(self._on_message_ticked)
        self.limits_link.linkActivated.connect(lambda _href: self.practice_limits_requested.emit())

    # ------------------------------------------------------------------ acknowledgements

    @property
    def acknowledged(self) -> frozenset[str]:
        """The codes of the warnings the physician has ticked."""
        return frozenset(self._acknowledged)

    def clear_acknowledgements(self) -> None:
        self._acknowledged = set()

    def acknowledge(self, codes: set[str]) -> None:
        """Add ``codes`` to the ticked warnings (shown at the next ``show_checks``)."""
        self._acknowledged |= codes

    # ------------------------------------------------------------------ showing

    def show_doses(self, protocol: Protocol | None, weight: WeightReading | None,
                   start: date | None, today: date) -> None:
        """The ladder in mg and mg/kg, the maintenance dose, the sig and the 30-day supply."""
        self.weight_label.setText(
            f"mg/kg uses the chart weight: {weight_basis_text(weight, today)}.")
        if protocol is None:
            self.dose_label.setText("Fix the fields marked in red to see the doses.")
            self.sig_label.setText("—")
            self.supply_label.setText("")
            return

        def both(mg: float) -> str:
            if weight is None or weight.kg <= 0:
                return f"{number_text(mg)} mg"
            return f"{number_text(mg)} mg ({round(mg / weight.kg, 2):.2f} mg/kg)"

        try:
            doses = ladder_doses_mg(protocol.ladder)
            lines = ["Ladder: " + " → ".join(both(d) for d in doses),
                     f"Maximum: {both(protocol.ladder.max_dose_mg)}",
                     f"Maintenance: {both(maintenance_dose_mg(protocol))}"]
            self.dose_label.setText("\n".join(lines))
            self.sig_label.setText(sig_text(protocol))
        except (ValueError, ZeroDivisionError, UserFacingError):
            self.dose_label.setText("The ladder cannot be worked out from these values.")
            self.sig_label.setText("—")
        try:
            units = units_per_30_days(protocol, start or today)
            refills = protocol.supply.refills
            self.supply_label.setText(
                f"Supply: {units} {_plural(protocol.unit_name or 'unit', units)} per 30 days "
                f"(from the calendar); {refills} refill{'s' if refills != 1 else ''}.")
        except (UserFacingError, ValueError, ZeroDivisionError):
            self.supply_label.setText("Supply: cannot be computed from these values.")

    def show_checks(self, parse_problems: list[tuple[str, str]],
                    messages: list[ValidationMessage], *, may_acknowledge: bool) -> None:
        """List unreadable fields and validation messages; warnings get a tick box when
        ``may_acknowledge`` (an editable form and a user who may sign)."""
        self._updating_list = True
        try:
            self.message_list.clear()
            for _path, text in parse_problems:
                self._add_message_item("error", "unreadable", text, None, may_acknowledge)
            for message in messages:
                self._add_message_item(message.level, message.code, message.message,
                                       message.source, may_acknowledge)
            # A limit the practice has not set is fixed elsewhere: offer the way there.
            self.limits_link.setVisible(any(m.code == "limit_not_set" for m in messages))
            if not parse_problems and not messages:
                item = QListWidgetItem("No problems found.")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.message_list.addItem(item)
        finally:
            self._updating_list = False

    def _add_message_item(self, level: str, code: str, text: str, source: str | None,
                          may_acknowledge: bool) -> None:
        words = ("Error: " if level == "error" else "Warning: ") + text
        item = QListWidgetItem(words)
        item.setData(Qt.ItemDataRole.UserRole, code)
        if source:
            item.setToolTip(f"Source of this limit: {source}")
        if level == "error":
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(QBrush(QColor("#a4161a")))
        else:
            flags = Qt.ItemFlag.ItemIsEnabled
            if may_acknowledge:
                flags |= Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags)
            item.setForeground(QBrush(QColor("#7a4f00")))
            item.setCheckState(Qt.CheckState.Checked if code in self._acknowledged
                               else Qt.CheckState.Unchecked)
        self.message_list.addItem(item)

    def _on_message_ticked(self, item: QListWidgetItem) -> None:
        if self._updating_list:
            return
        code = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self._acknowledged.add(code)
        else:
            self._acknowledged.discard(code)
        self._updating_list = True
        try:  # one tick acknowledges every message with the same code
            for row in range(self.message_list.count()):
                other = self.message_list.item(row)
                if other.data(Qt.ItemDataRole.UserRole) == code and other is not item and \
                        other.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                    other.setCheckState(item.checkState())
        finally:
            self._updating_list = False
        self.acknowledgements_changed.emit()

    def show_sign_state(self, reasons: list[str], *, editable: bool) -> None:
        """Enable Sign when nothing blocks it; otherwise say why (red while editable)."""
        self.sign_button.setEnabled(not reasons)
        if reasons:
            self.sign_reason_label.setStyleSheet(ERROR_STYLE if editable else WARNING_STYLE)
            self.sign_reason_label.setText("Cannot sign yet: " + " ".join(reasons))
        else:
            self.sign_reason_label.setStyleSheet("color: #1b5e20;")
            self.sign_reason_label.setText("Ready to sign: every check passed and the "
                                           "interaction review is current.")


def _plural(unit: str, count: int) -> str:
    if count == 1 or unit.endswith("s") or unit.lower() == "ml":
        return unit
    return unit + "s"
