"""The interaction review screen for one patient (a tab of the patient chart).

Left: the medication lines exactly as typed, each with what it was read as or "not checked",
then conditions, the vitals used and the benzodiazepine load (``review_inputs_panel``). Right:
the flags, most severe first, each a ``FlagCard`` (``review_flag_card``) with its severity as
text and a shaped icon (never colour alone), the effect, the management advice, clickable
sources and the physician's decision. Physicians sign; everyone else sees the screen read-only
with a label saying why.

All database work runs through ``context.ops`` off the GUI thread; widgets only ever hold
the frozen views returned by ``ketadesk.storage.reviews.interaction_reviews``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.permissions import Permission
from ketadesk.storage.reviews.interaction_reviews import (
    DecisionInput,
    ReviewDraftView,
    ReviewStatus,
    run_review,
    sign_review,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.qdate_conversion import local_date_text
from ketadesk.ui.review.review_flag_card import FlagCard
from ketadesk.ui.review.review_inputs_panel import add_review_inputs
from ketadesk.ui.review.review_severity_icons import SEVERITY_TEXT, severity_pixmap
from ketadesk.ui.review.review_text_labels import clear_layout, section_title, wrapping_label
from ketadesk.ui.review.unread_lines_dialog import UnreadLinesDialog

READ_ONLY_TEXT = (
    "Read-only: only physicians record decisions and sign interaction reviews. "
    "You can see every finding, but not change or sign them."
)


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
        self._reload_again = False
        self.unread_dialog: UnreadLinesDialog | None = None
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
        self.status_label = wrapping_label("Loading…")
        self.status_label.setObjectName("reviewStatus")
        top.addWidget(self.status_label, 1)
        self.refresh_button = QPushButton("Check again")
        self.refresh_button.setToolTip("Re-run the check against the chart as it is now")
        top.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(top)

        self.read_only_label = wrapping_label(READ_ONLY_TEXT)
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
        self.progress_label = wrapping_label("")
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
            # The chart changed while a check was running: check again when it is done, so
            # the screen never stays on the older chart.
            self._reload_again = True
            return
        self._loading = True
        self._reload_again = False
        self.sign_button.setEnabled(False)
        db, patient_id = self.context.db, self.patient_id

        def work() -> ReviewDraftView:
            with db.session() as session:
                return run_review(session, patient_id)

        self.context.ops.run(work, self._show, on_failure=self._load_failed, parent_widget=self)

    def _load_failed(self, error: BaseException) -> None:
        from ketadesk.ui.common.ops import show_error

        self._loading = False
        self._reload_again = False
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
        if self._reload_again:
            self.reload()
            return
        self.review_loaded.emit()

    def _show_status(self, status: ReviewStatus) -> None:
        if status.state == "none":
            text = "<b>Status: no signed review</b> — this patient's interactions have not been " \
                   "signed off yet."
            style = "color: #7a4b00;"
        elif status.state == "current":
            when = local_date_text(status.signed_at) if status.signed_at else "?"
            who = html.escape(status.signed_by_full_name or status.signed_by or "?")
            text = f"<b>Status: current</b> — signed on {when} by {who}."
            style = "color: #1d5e20;"
        else:
            when = local_date_text(status.signed_at) if status.signed_at else "?"
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
        clear_layout(self.inputs_layout)
        add_review_inputs(self._adder(self.inputs_layout), view)
        self.inputs_layout.addStretch(1)

    # ----------------------------------------------------------------- right panel

    def _fill_flags(
        self, view: ReviewDraftView, previous: dict[str, DecisionInput | None]
    ) -> None:
        clear_layout(self.flags_layout)
        self._cards = []
        counts: dict[str, int] = {}
        for item in view.flags:
            counts[item.flag.severity] = counts.get(item.flag.severity, 0) + 1
        summary = ", ".join(
            f"{n} {SEVERITY_TEXT[s].lower()}" for s, n in counts.items()
        ) or "none"
        heading = section_title(f"Findings ({len(view.flags)}: {summary})")
        add = self._adder(self.flags_layout)
        add(heading)
        if not view.flags:
            add(wrapping_label(
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
                card.set_decision(
                    earlier.decision, earlier.note, earlier.override_reason,
                    earlier.note_for_patient,
                )
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
        if self.view.not_checked:
            dialog = UnreadLinesDialog(self.view.not_checked, self)
            dialog.accepted.connect(lambda: self._sign_with(dialog.confirmed()))
            self.unread_dialog = dialog
            dialog.open()
            return
        self._sign_with(())

    def _sign_with(self, read_by_physician: tuple[str, ...]) -> None:
        if self.view is None:
            return
        db, actor, patient_id = self.context.db, self.context.actor, self.patient_id
        decisions, fingerprint = self.decisions(), self.view.fingerprint
        self.sign_button.setEnabled(False)

        def work() -> Any:
            with db.session() as session:
                return sign_review(session, actor, patient_id, decisions,
                                   expected_fingerprint=fingerprint,
                                   read_by_physician=read_by_physician)

        self.context.ops.run(
            work, self._signed, on_failure=self._sign_failed, changes="reviews",
            parent_widget=self,
        )

    def _signed(self, _result: object) -> None:
        self.review_signed.emit(self.patient_id)

    def _sign_failed(self, error: BaseException) -> None:
        from ketadesk.ui.common.ops import show_error

        self._update_progress()
        show_error(self, error)
