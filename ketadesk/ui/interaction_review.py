"""The interaction review screen for one patient (a tab of the patient chart).

Left: the medication lines exactly as typed, each with what it was read as or "not checked",
then conditions, the vitals used and the benzodiazepine load. Right: the flags, most severe
first, each with its severity as text and a shaped icon (never colour alone), the effect, the
management advice, clickable sources and the physician's decision. Physicians sign; everyone
else sees the screen read-only with a label saying why.

All database work runs through ``context.ops`` off the GUI thread; widgets only ever hold
the frozen views returned by ``ketadesk.storage.interaction_reviews``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QIcon,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.interaction_check import Flag
from ketadesk.core.permissions import Permission
from ketadesk.storage.interaction_reviews import (
    DECISION_LABELS,
    DecisionInput,
    FlagView,
    ReviewDraftView,
    ReviewStatus,
    run_review,
    sign_review,
)
from ketadesk.ui.context import AppContext

SEVERITY_TEXT = {
    "contraindicated": "CONTRAINDICATED",
    "major": "MAJOR",
    "moderate": "MODERATE",
    "minor": "MINOR",
}
SEVERITY_COLOUR = {
    "contraindicated": "#a3001b",
    "major": "#b34700",
    "moderate": "#7a5c00",
    "minor": "#1f5fa8",
}
NOT_CHECKED_TEXT = "not checked"
NOT_CHECKED_LINE = "not checked — not recognised; check this yourself"
READ_ONLY_TEXT = (
    "Read-only: only physicians record decisions and sign interaction reviews. "
    "You can see every finding, but not change or sign them."
)
_CHOOSE = "Choose a decision…"


# --------------------------------------------------------------------------- icons


def severity_pixmap(severity: str, size: int = 22) -> QPixmap:
    """A shape per severity, so it reads without colour: octagon (contraindicated), triangle
    (major), diamond (moderate), circle (minor), each with a glyph inside."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(SEVERITY_COLOUR.get(severity, "#555555"))
    painter.setPen(QPen(colour.darker(130), 1))
    painter.setBrush(colour)
    s = float(size)
    m = 1.0
    if severity == "contraindicated":
        k = s * 0.29
        points = [
            (k, m), (s - k, m), (s - m, k), (s - m, s - k),
            (s - k, s - m), (k, s - m), (m, s - k), (m, k),
        ]
        painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        glyph = "×"
    elif severity == "major":
        painter.drawPolygon(
            QPolygonF([QPointF(s / 2, m), QPointF(s - m, s - m), QPointF(m, s - m)])
        )
        glyph = "!"
    elif severity == "moderate":
        painter.drawPolygon(
            QPolygonF(
                [QPointF(s / 2, m), QPointF(s - m, s / 2), QPointF(s / 2, s - m),
                 QPointF(m, s / 2)]
            )
        )
        glyph = "!"
    else:
        painter.drawEllipse(QRectF(m, m, s - 2 * m, s - 2 * m))
        glyph = "i"
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(s * 0.55))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    text_rect = QRectF(0, s * 0.12 if severity == "major" else 0, s, s)
    painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, glyph)
    painter.end()
    return pixmap


def severity_icon(severity: str) -> QIcon:
    return QIcon(severity_pixmap(severity))


def not_checked_pixmap(size: int = 16) -> QPixmap:
    """A hollow square with a question mark: "this was not checked"."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#333333"), 1.5))
    painter.drawRect(QRectF(1, 1, size - 2, size - 2))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.7))
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "?")
    painter.end()
    return pixmap


def severity_badge(severity: str) -> QWidget:
    """Icon plus the severity in capitals (never colour alone)."""
    badge = QWidget()
    layout = QHBoxLayout(badge)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    icon = QLabel()
    icon.setPixmap(severity_pixmap(severity))
    text = QLabel(SEVERITY_TEXT.get(severity, severity.upper()))
    text.setObjectName("severityText")
    text.setStyleSheet(
        f"color: {SEVERITY_COLOUR.get(severity, '#333')}; font-weight: bold; letter-spacing: 1px;"
    )
    layout.addWidget(icon)
    layout.addWidget(text)
    return badge


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


def _wrapping_label(text: str = "", *, rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


def _section_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: bold; font-size: 13px; margin-top: 6px;")
    return label


# --------------------------------------------------------------------------- flag card


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
        self.title_label = _wrapping_label(flag.title)
        self.title_label.setStyleSheet("font-weight: bold;")
        header.addWidget(self.title_label, 1)
        kind = QLabel(_kind_text(flag))
        kind.setStyleSheet("color: #555;")
        header.addWidget(kind, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(header)

        details = QFormLayout()
        details.setHorizontalSpacing(10)
        details.setVerticalSpacing(4)
        details.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        details.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        caption = _bold("From:")
        caption.setMinimumWidth(118)  # one label column width on every card
        details.addRow(caption, _wrapping_label(flag.entered_as))
        details.addRow(_bold("Effect:"), _wrapping_label(flag.effect))
        details.addRow(_bold("Management:"), _wrapping_label(flag.management))
        if flag.label_vs_studies:
            details.addRow(_bold("Label vs studies:"), _wrapping_label(flag.label_vs_studies))
        self.sources_label = _wrapping_label(sources_html(flag), rich=True)
        self.sources_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.sources_label.setOpenExternalLinks(False)
        self.sources_label.linkActivated.connect(_open_link)
        details.addRow(_bold("Sources:"), self.sources_label)
        layout.addLayout(details)

        self.acknowledged_label = _wrapping_label()
        self.acknowledged_label.setStyleSheet("color: #1d5e20;")
        self.acknowledged_label.setVisible(False)
        if item.carried is not None:
            carried = item.carried
            self.acknowledged_label.setText(
                f"✔ {carried.decision_label}: {carried.acknowledgement}"
                + (f" — {carried.note}" if carried.note else "")
            )
            self.acknowledged_label.setVisible(True)
        layout.addWidget(self.acknowledged_label)

        decision_row = QHBoxLayout()
        decision_row.setSpacing(8)
        need = "Decision (required):" if item.needs_decision else "Decision (optional):"
        decision_row.addWidget(_bold(need))
        self.decision_combo = QComboBox()
        self.decision_combo.addItem(_CHOOSE, "")
        for code, label in DECISION_LABELS.items():
            self.decision_combo.addItem(label, code)
        self.decision_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToContents
        )
        decision_row.addWidget(self.decision_combo)
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("Note (optional)")
        self.note_edit.setMaxLength(2000)
        decision_row.addWidget(self.note_edit, 1)
        layout.addLayout(decision_row)

        self.override_edit = QLineEdit()
        self.override_edit.setMaxLength(2000)
        self.override_edit.setPlaceholderText(
            "Override reason (required for a contraindication unless ketamine is held)"
        )
        self.override_edit.setVisible(flag.severity == "contraindicated")
        layout.addWidget(self.override_edit)

        current = item.decision
        if current is not None:
            self.set_decision(current.decision, current.note, current.override_reason)
        for widget in (self.decision_combo, self.note_edit, self.override_edit):
            widget.setEnabled(editable)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.decision_combo.currentIndexChanged.connect(lambda _i: self.decision_changed.emit())
        self.override_edit.textChanged.connect(lambda _t: self.decision_changed.emit())

    @property
    def key(self) -> str:
        return self.item.flag.carry_forward_key

    def set_decision(self, code: str, note: str = "", override_reason: str = "") -> None:
        index = self.decision_combo.findData(code)
        self.decision_combo.setCurrentIndex(max(index, 0))
        self.note_edit.setText(note)
        self.override_edit.setText(override_reason)

    def decision_input(self) -> DecisionInput | None:
        code = self.decision_combo.currentData()
        if not code:
            return None
        return DecisionInput(
            self.key, str(code), self.note_edit.text().strip(),
            self.override_edit.text().strip(),
        )

    def is_decided(self) -> bool:
        """A decision is chosen and, for a contraindication, justified."""
        choice = self.decision_input()
        if choice is None:
            return False
        if self.item.flag.severity == "contraindicated" and choice.decision != "hold_ketamine":
            return bool(choice.override_reason)
        return True


def _bold(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: bold;")
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _kind_text(flag: Flag) -> str:
    if flag.kind == "drug":
        return f"{flag.drug} · {flag.drug_class}"
    if flag.kind == "vital":
        return "Vital signs"
    return f"Condition · {flag.drug_class}"


def _open_link(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


# --------------------------------------------------------------------------- screen


class ReviewScreen(QWidget):
    """Interaction review for one patient. Emits ``review_signed(patient_id)`` after signing."""

    review_signed = Signal(int)
    review_loaded = Signal()

    def __init__(
        self, context: AppContext, patient_id: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.patient_id = patient_id
        self.view: ReviewDraftView | None = None
        self._cards: list[FlagCard] = []
        self._overview_labels: list[QLabel] = []
        self._loading = False
        self._build()
        self._connect_signals()
        self.reload()

    # ----------------------------------------------------------------- layout

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 8)
        outer.setSpacing(6)

        top = QHBoxLayout()
        title = QLabel("Interaction review")
        title.setStyleSheet("font-size: 16px; font-weight: bold;")
        top.addWidget(title)
        top.addSpacing(12)
        self.status_label = _wrapping_label("Loading…")
        self.status_label.setObjectName("reviewStatus")
        top.addWidget(self.status_label, 1)
        self.refresh_button = QPushButton("Check again")
        self.refresh_button.setToolTip("Re-run the check against the chart as it is now")
        top.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(top)

        self.read_only_label = _wrapping_label(READ_ONLY_TEXT)
        self.read_only_label.setStyleSheet(
            "background: #eef1f6; border: 1px solid #b9c3d3; padding: 6px;"
        )
        outer.addWidget(self.read_only_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.inputs_panel = QWidget()
        self.inputs_layout = QVBoxLayout(self.inputs_panel)
        self.inputs_layout.setContentsMargins(4, 4, 10, 4)
        self.inputs_layout.setSpacing(4)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(self.inputs_panel)
        left_scroll.setMinimumWidth(300)
        splitter.addWidget(left_scroll)

        self.flags_panel = QWidget()
        self.flags_layout = QVBoxLayout(self.flags_panel)
        self.flags_layout.setContentsMargins(4, 4, 4, 4)
        self.flags_layout.setSpacing(10)
        right_scroll = QScrollArea()
        right_scroll.setWidgetResizable(True)
        right_scroll.setWidget(self.flags_panel)
        self.flags_scroll = right_scroll
        splitter.addWidget(right_scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([380, 860])
        outer.addWidget(splitter, 1)

        bottom = QHBoxLayout()
        self.progress_label = _wrapping_label("")
        bottom.addWidget(self.progress_label, 1)
        self.sign_button = QPushButton("Sign review")
        self.sign_button.setDefault(True)
        bottom.addWidget(self.sign_button)
        outer.addLayout(bottom)

    def _connect_signals(self) -> None:
        self.refresh_button.clicked.connect(self.reload)
        self.sign_button.clicked.connect(self.sign)
        self.context.data_changed.connect(self._on_data_changed)
        self.context.actor_changed.connect(self.reload)

    # ----------------------------------------------------------------- state

    @property
    def can_sign(self) -> bool:
        return self.context.can(Permission.SIGN)

    @property
    def is_loaded(self) -> bool:
        return self.view is not None and not self._loading

    def flag_cards(self) -> list[FlagCard]:
        return list(self._cards)

    def _on_data_changed(self, what: str) -> None:
        if what in ("patients", "reviews", "settings", f"patient:{self.patient_id}"):
            self.reload()

    def reload(self) -> None:
        """Re-run the check off the GUI thread and redraw."""
        if self._loading:
            return
        self._loading = True
        self.sign_button.setEnabled(False)
        db, patient_id = self.context.db, self.patient_id

        def work() -> ReviewDraftView:
            with db.session() as session:
                return run_review(session, patient_id)

        self.context.ops.run(work, self._show, on_failure=self._load_failed, parent_widget=self)

    def _load_failed(self, error: BaseException) -> None:
        from ketadesk.ui.ops import show_error

        self._loading = False
        self.status_label.setText("The review could not be loaded.")
        show_error(self, error)

    def _show(self, view: ReviewDraftView) -> None:
        previous = {card.key: card.decision_input() for card in self._cards}
        self._loading = False
        self.view = view
        self._fill_inputs(view)
        self._fill_flags(view, previous)
        self._show_status(view.status)
        editable = self.can_sign
        self.read_only_label.setVisible(not editable)
        self.sign_button.setVisible(editable)
        self._update_progress()
        self.review_loaded.emit()

    def _show_status(self, status: ReviewStatus) -> None:
        if status.state == "none":
            text = "<b>Status: no signed review</b> — this patient's interactions have not been " \
                   "signed off yet."
            style = "color: #7a4b00;"
        elif status.state == "current":
            when = status.signed_at.date().isoformat() if status.signed_at else "?"
            who = html.escape(status.signed_by_full_name or status.signed_by or "?")
            text = f"<b>Status: current</b> — signed on {when} by {who}."
            style = "color: #1d5e20;"
        else:
            when = status.signed_at.date().isoformat() if status.signed_at else "?"
            who = html.escape(status.signed_by_full_name or status.signed_by or "?")
            reason = html.escape(status.stale_reason or "the chart changed")
            text = (f"<b>Status: stale</b> — signed on {when} by {who}, but since then "
                    f"{reason}. Review and sign again.")
            style = "color: #a3001b;"
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setText(text)
        self.status_label.setStyleSheet(style)

    @staticmethod
    def _adder(layout: QVBoxLayout) -> Callable[[QWidget], None]:
        def add(widget: QWidget) -> None:
            layout.addWidget(widget)
            # Show now rather than on the next event-loop turn (Qt queues the show of a
            # widget added to a visible parent), so the panel is complete once loaded.
            parent = layout.parentWidget()
            if parent is not None and parent.isVisible():
                widget.show()

        return add

    # ----------------------------------------------------------------- left panel

    def _fill_inputs(self, view: ReviewDraftView) -> None:
        _clear(self.inputs_layout)
        add = self._adder(self.inputs_layout)
        add(_section_title(f"Medications as entered ({len(view.medication_lines)})"))
        if not view.medication_lines:
            add(_wrapping_label("No active medications on the chart."))
        for line in view.medication_lines:
            add(_input_row(line.entered_as,
                           line.read_as_text if line.is_checked else NOT_CHECKED_LINE,
                           line.is_checked,
                           needs_confirming=line.fuzzy or line.unit_assumed))
        add(_section_title(f"Conditions ({len(view.condition_lines)})"))
        if not view.condition_lines:
            add(_wrapping_label("No active conditions on the chart."))
        for condition in view.condition_lines:
            checked = condition.concept_name is not None
            add(_input_row(condition.entered_as,
                           condition.read_as_text if checked else NOT_CHECKED_LINE, checked))
        add(_section_title("Vitals used"))
        inputs = view.inputs
        if inputs.vitals_not_checked:
            add(_input_row("Latest vitals", inputs.vitals_not_checked, False))
        elif inputs.latest_vitals is not None:
            add(_wrapping_label(inputs.latest_vitals.summary()))
        else:
            add(_input_row("Vitals", "none recorded; blood pressure not checked", False))
        add(_section_title("Pregnant"))
        add(_wrapping_label("Yes" if inputs.pregnant else "No (as recorded on the chart)"))
        load = view.result.benzodiazepine_load
        if load is not None:
            add(_section_title("Benzodiazepine load"))
            label = _wrapping_label(load.summary().capitalize())
            label.setObjectName("benzodiazepineLoad")
            if load.is_above_threshold:
                label.setStyleSheet("font-weight: bold;")
            add(label)
            add(_muted(
                f"Studies associated more than {load.threshold_mg_per_day:g} mg/day "
                "diazepam-equivalent with a poorer response to ketamine."
            ))
        not_checked = view.not_checked
        add(_section_title(f"Not checked ({len(not_checked)})"))
        if not_checked:
            add(_muted("Review these yourself: the knowledge base did not recognise them."))
            for item in not_checked:
                add(_input_row(item, NOT_CHECKED_TEXT, False))
        else:
            add(_muted("Everything on the chart was recognised."))
        self.inputs_layout.addStretch(1)

    # ----------------------------------------------------------------- right panel

    def _fill_flags(
        self, view: ReviewDraftView, previous: dict[str, DecisionInput | None]
    ) -> None:
        _clear(self.flags_layout)
        self._cards = []
        counts: dict[str, int] = {}
        for item in view.flags:
            counts[item.flag.severity] = counts.get(item.flag.severity, 0) + 1
        summary = ", ".join(
            f"{n} {SEVERITY_TEXT[s].lower()}" for s, n in counts.items()
        ) or "none"
        heading = _section_title(f"Findings ({len(view.flags)}: {summary})")
        add = self._adder(self.flags_layout)
        add(heading)
        if not view.flags:
            add(_wrapping_label(
                "No interactions, condition or vital-sign findings for what was recognised. "
                "Lines listed as \"not checked\" were not assessed."
            ))
        self._overview_labels = []
        if len(view.flags) > 1:
            add(self._overview(view))
        for item in view.flags:
            card = FlagCard(item, self.can_sign)
            earlier = previous.get(card.key)
            if earlier is not None:
                card.set_decision(earlier.decision, earlier.note, earlier.override_reason)
            card.decision_changed.connect(self._update_progress)
            add(card)
            self._cards.append(card)
        self.flags_layout.addStretch(1)

    def _overview(self, view: ReviewDraftView) -> QWidget:
        """One line per finding (severity, title, decision state); click to jump to it."""
        box = QFrame()
        box.setObjectName("findingsOverview")
        box.setStyleSheet(
            "QFrame#findingsOverview { background: palette(base); border: 1px solid #c8c8c8; }"
        )
        layout = QVBoxLayout(box)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(2)
        for item in view.flags:
            row = QHBoxLayout()
            row.setSpacing(6)
            icon = QLabel()
            icon.setPixmap(severity_pixmap(item.flag.severity, 16))
            row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
            label = QLabel()
            label.setObjectName("overviewRow")
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.linkActivated.connect(self._jump_to)
            self._overview_labels.append(label)
            row.addWidget(label, 1)
            layout.addLayout(row)
        return box

    def _jump_to(self, link: str) -> None:
        index = int(link.removeprefix("#card-"))
        if 0 <= index < len(self._cards):
            self.flags_scroll.ensureWidgetVisible(self._cards[index], 0, 10)

    def _refresh_overview(self) -> None:
        for number, (card, label) in enumerate(zip(self._cards, self._overview_labels,
                                                   strict=False)):
            flag = card.item.flag
            if card.is_decided():
                choice = card.decision_input()
                carried = card.item.carried
                state = (
                    carried.acknowledgement
                    if carried is not None and choice is not None
                    and carried.decision == choice.decision
                    else "decided"
                )
                state_html = f'<span style="color:#1d5e20">✔ {html.escape(state)}</span>'
            elif card.item.needs_decision:
                state_html = '<span style="color:#a3001b"><b>needs a decision</b></span>'
            else:
                state_html = '<span style="color:#555">no decision needed</span>'
            label.setText(
                f"<b>{SEVERITY_TEXT[flag.severity]}</b> "
                f'<a href="#card-{number}">{html.escape(flag.title)}</a> — {state_html}'
            )

    def _update_progress(self) -> None:
        if self.view is None:
            return
        self._refresh_overview()
        missing = [c for c in self._cards if c.item.needs_decision and not c.is_decided()]
        if not self.can_sign:
            self.progress_label.setText("")
        elif missing:
            self.progress_label.setText(
                f"{len(missing)} finding{'s' if len(missing) != 1 else ''} of moderate severity "
                "or above still need a decision (a contraindication also needs an override "
                "reason unless ketamine is held)."
            )
        else:
            self.progress_label.setText("All findings that need a decision have one.")
        self.sign_button.setEnabled(self.can_sign and not missing and not self._loading)

    # ----------------------------------------------------------------- signing

    def decisions(self) -> list[DecisionInput]:
        return [c for card in self._cards if (c := card.decision_input()) is not None]

    def sign(self) -> None:
        """Sign with the decisions on screen (physicians only; the service checks again)."""
        if self.view is None or not self.can_sign:
            return
        db, actor, patient_id = self.context.db, self.context.actor, self.patient_id
        decisions, fingerprint = self.decisions(), self.view.fingerprint
        self.sign_button.setEnabled(False)

        def work() -> Any:
            with db.session() as session:
                return sign_review(session, actor, patient_id, decisions,
                                   expected_fingerprint=fingerprint)

        self.context.ops.run(
            work, self._signed, on_failure=self._sign_failed, changes="reviews",
            parent_widget=self,
        )

    def _signed(self, _result: object) -> None:
        self.review_signed.emit(self.patient_id)

    def _sign_failed(self, error: BaseException) -> None:
        from ketadesk.ui.ops import show_error

        self._update_progress()
        show_error(self, error)


def _input_row(
    entered: str, read_as: str, checked: bool, *, needs_confirming: bool = False
) -> QWidget:
    row = QWidget()
    layout = QVBoxLayout(row)
    layout.setContentsMargins(0, 2, 0, 4)
    layout.setSpacing(1)
    typed = _wrapping_label(entered)
    typed.setStyleSheet("font-weight: 600;")
    layout.addWidget(typed)
    line = QHBoxLayout()
    line.setSpacing(5)
    line.setContentsMargins(12, 0, 0, 0)
    if not checked:
        icon = QLabel()
        icon.setPixmap(not_checked_pixmap())
        icon.setToolTip("Not checked")
        line.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        label = _wrapping_label(read_as)
        label.setObjectName("notChecked")
        label.setStyleSheet("font-weight: bold; color: #222;")
    else:
        label = _wrapping_label(("⚠ " if needs_confirming else "") + read_as)
        label.setObjectName("readAs")
        label.setStyleSheet("color: #7a4b00;" if needs_confirming else "color: #444;")
    line.addWidget(label, 1)
    layout.addLayout(line)
    return row


def _muted(text: str) -> QLabel:
    label = _wrapping_label(text)
    label.setStyleSheet("color: #555; font-size: 11px;")
    return label


def _clear(layout: Any) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget()
        if widget is not None:
            widget.setParent(None)
            widget.deleteLater()

