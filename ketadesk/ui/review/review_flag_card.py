"""One interaction finding as a card: severity, what it is, what to do, sources, decision."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.interaction_check import Flag
from ketadesk.storage.reviews.interaction_reviews import DECISION_LABELS, DecisionInput, FlagView
from ketadesk.ui.review.review_severity_icons import SEVERITY_COLOUR, severity_badge
from ketadesk.ui.review.review_text_labels import bold_label, wrapping_label

_CHOOSE = "Choose a decision…"


def sources_html(flag: Flag) -> str:
    """Numbered source links (title, section) as rich text."""
    items = []
    for number, source in enumerate(flag.sources, start=1):
        title = html.escape(source.title)
        section = html.escape(source.section)
        label = f"{title}" + (f" — {section}" if section else "")
        if source.link:
            items.append(
                f'{number}. <a href="{html.escape(source.link, quote=True)}">{label}</a>'
            )
        else:
            items.append(f"{number}. {label}")
    return "<br>".join(items)


class FlagCard(QFrame):
    """One flag: severity badge, title, effect, management, sources and the decision."""

    decision_changed = Signal()

    def __init__(self, item: FlagView, editable: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item = item
        flag = item.flag
        self.setObjectName("flagCard")
        colour = SEVERITY_COLOUR.get(flag.severity, "#555")
        self.setStyleSheet(
            "QFrame#flagCard { background: palette(base); border: 1px solid #c8c8c8; "
            f"border-left: 6px solid {colour}; border-radius: 3px; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(5)

        header = QHBoxLayout()
        header.setSpacing(10)
        header.addWidget(severity_badge(flag.severity), 0, Qt.AlignmentFlag.AlignTop)
        self.title_label = wrapping_label(flag.title)
        self.title_label.setStyleSheet("font-weight: bold;")
        header.addWidget(self.title_label, 1)
        kind = QLabel(kind_text(flag))
        kind.setStyleSheet("color: #555;")
        header.addWidget(kind, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(header)

        details = QFormLayout()
        details.setHorizontalSpacing(10)
        details.setVerticalSpacing(4)
        details.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        details.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        caption = bold_label("From:")
        caption.setMinimumWidth(118)  # one label column width on every card
        details.addRow(caption, wrapping_label(flag.entered_as))
        details.addRow(bold_label("Effect:"), wrapping_label(flag.effect))
        details.addRow(bold_label("Management:"), wrapping_label(flag.management))
        if flag.label_vs_studies:
            details.addRow(bold_label("Label vs studies:"), wrapping_label(flag.label_vs_studies))
        self.sources_label = wrapping_label(sources_html(flag), rich=True)
        self.sources_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.sources_label.setOpenExternalLinks(False)
        self.sources_label.linkActivated.connect(_open_link)
        details.addRow(bold_label("Sources:"), self.sources_label)
        layout.addLayout(details)

        self.acknowledged_label = wrapping_label()
        self.acknowledged_label.setStyleSheet("color: #1d5e20;")
        self.acknowledged_label.setVisible(False)
        if item.carried is not None:
            carried = item.carried
            self.acknowledged_label.setText(
                f"✔ {carried.decision_label}: {carried.acknowledgement}"
                + (f" — {carried.note}" if carried.note else "")
                + (" (note for the patient)" if carried.note and carried.note_for_patient else "")
            )
            self.acknowledged_label.setVisible(True)
        layout.addWidget(self.acknowledged_label)

        decision_row = QHBoxLayout()
        decision_row.setSpacing(8)
        need = "Decision (required):" if item.needs_decision else "Decision (optional):"
        decision_row.addWidget(bold_label(need))
        self.decision_combo = QComboBox()
        self.decision_combo.addItem(_CHOOSE, "")
        for code, label in DECISION_LABELS.items():
            self.decision_combo.addItem(label, code)
        self.decision_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToContents
        )
        decision_row.addWidget(self.decision_combo)
        decision_row.addStretch(1)
        layout.addLayout(decision_row)
        # The note has a row of its own: wide enough to read, with its "for the patient" mark.
        note_row = QHBoxLayout()
        note_row.setSpacing(8)
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText(
            "Note (optional; stays in the review unless marked for the patient)"
        )
        self.note_edit.setMaxLength(2000)
        self.note_edit.setAccessibleName("Decision note")
        note_row.addWidget(self.note_edit, 1)
        self.for_patient_check = QCheckBox("For the patient")
        self.for_patient_check.setToolTip(
            "Print this note on the patient's treatment plan. Unmarked notes stay in the "
            "review and are never printed."
        )
        note_row.addWidget(self.for_patient_check)
        layout.addLayout(note_row)

        self.override_edit = QLineEdit()
        self.override_edit.setMaxLength(2000)
        self.override_edit.setPlaceholderText(
            "Override reason (required for a contraindication unless ketamine is held)"
        )
        self.override_edit.setVisible(flag.severity == "contraindicated")
        layout.addWidget(self.override_edit)

        current = item.decision
        if current is not None:
            self.set_decision(
                current.decision, current.note, current.override_reason, current.note_for_patient
            )
        for widget in (
            self.decision_combo, self.note_edit, self.for_patient_check, self.override_edit
        ):
            widget.setEnabled(editable)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.decision_combo.currentIndexChanged.connect(lambda _i: self.decision_changed.emit())
        self.override_edit.textChanged.connect(lambda _t: self.decision_changed.emit())

    @property
    def key(self) -> str:
        return self.item.flag.carry_forward_key

    def set_decision(
        self, code: str, note: str = "", override_reason: str = "", for_patient: bool = False
    ) -> None:
        index = self.decision_combo.findData(code)
        self.decision_combo.setCurrentIndex(max(index, 0))
        self.note_edit.setText(note)
        self.for_patient_check.setChecked(for_patient)
        self.override_edit.setText(override_reason)

    def decision_input(self) -> DecisionInput | None:
        code = self.decision_combo.currentData()
        if not code:
            return None
        return DecisionInput(
            self.key, str(code), self.note_edit.text().strip(),
            self.override_edit.text().strip(), self.for_patient_check.isChecked(),
        )

    def is_decided(self) -> bool:
        """A decision is chosen and, for a contraindication, justified."""
        choice = self.decision_input()
        if choice is None:
            return False
        if self.item.flag.severity == "contraindicated" and choice.decision != "hold_ketamine":
            return bool(choice.override_reason)
        return True


def kind_text(flag: Flag) -> str:
    if flag.kind == "drug":
        return f"{flag.drug} · {flag.drug_class}"
    if flag.kind == "vital":
        return "Vital signs"
    return f"Condition · {flag.drug_class}"


def _open_link(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))
