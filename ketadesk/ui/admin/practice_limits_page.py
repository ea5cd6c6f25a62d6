"""Practice settings page: dose limits per route, each with where it came from.

KetaDesk ships these limits empty (no public source sets them for at-home ketamine), and the
protocol editor refuses to sign until the limits for the protocol's route are set. Only
physicians who manage users may change them; everyone else sees them read-only.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.core.practice_limits import (
    ROUTE_LIMIT_FIELDS,
    LimitValue,
    PracticeLimits,
    RouteLimits,
)
from ketadesk.core.protocols import ROUTE_LABELS, Route, number_text
from ketadesk.storage.practice.practice_limits_store import (
    get_practice_limits,
    set_practice_limits,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.ops import show_error
from ketadesk.ui.protocol.protocol_form_fields import ERROR_STYLE, READ_ONLY_STYLE

#: Unit shown after each limit's value.
_UNITS = {
    "max_single_dose_mg_per_kg": "mg/kg",
    "max_single_dose_mg": "mg",
    "max_daily_mg": "mg a day",
    "min_interval_hours": "hours",
    "max_sessions_per_week": "a week",
}
_WEIGHT_AGE = "weight_max_age_days"


class _LimitRow:
    """Value and source editors for one limit, plus its message line."""

    def __init__(self, grid: QGridLayout, row: int, label: str, unit: str) -> None:
        title = QLabel(label[0].upper() + label[1:])
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value = QLineEdit()
        self.value.setPlaceholderText("not set")
        self.value.setMaximumWidth(90)
        self.source = QLineEdit()
        self.source.setPlaceholderText("where this value comes from (required when set)")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.hide()
        # Why KetaDesk ships no value here (the shipped source), shown while the limit is empty.
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555555; font-size: 11px;")
        self.note.hide()
        self.status = QLabel()
        self.status.setMinimumWidth(70)
        value_box = QHBoxLayout()
        value_box.addWidget(self.value)
        value_box.addWidget(QLabel(unit))
        value_box.addStretch(1)
        top = 2 * row + 1  # row 0 holds the column headers
        grid.addWidget(title, top, 0)
        grid.addLayout(value_box, top, 1)
        grid.addWidget(self.source, top, 2)
        grid.addWidget(self.status, top, 3)
        under = QVBoxLayout()
        under.setSpacing(0)
        under.addWidget(self.message)
        under.addWidget(self.note)
        grid.addLayout(under, top + 1, 1, 1, 3)
        self._shipped_source = ""

    def load(self, limit: LimitValue) -> None:
        self.value.setText("" if limit.value is None else number_text(limit.value))
        # The shipped "not set" explanation is shown as a tooltip, not as the practice's source.
        self._shipped_source = limit.source if limit.value is None else ""
        self.source.setText("" if limit.value is None else limit.source)
        self.source.setToolTip(self._shipped_source)
        self.note.setText(self._shipped_source)
        self.refresh_status()

    def refresh_status(self) -> None:
        is_set = bool(self.value.text().strip())
        self.note.setVisible(not is_set and bool(self.note.text()))
        self.status.setText("set" if is_set else "NOT SET")
        self.status.setStyleSheet("color: #1b5e20;" if is_set else "color: #a4161a; "
                                  "font-weight: 600;")

    def read(self, words: str) -> LimitValue:
        text = self.value.text().strip()
        source = self.source.text().strip()
        self.message.hide()
        if not text:
            return LimitValue(None, self._shipped_source or source)
        try:
            value = float(text.replace(",", "."))
        except ValueError:
            return self._bad(f"\"{text}\" is not a number.")
        if not value > 0:
            return self._bad(f"The {words} must be more than 0.")
        if not source:
            return self._bad(f"Say where the {words} comes from.")
        return LimitValue(value, source)

    def _bad(self, text: str) -> LimitValue:
        self.message.setText(text)
        self.message.show()
        raise UserFacingError(text)

    def set_read_only(self, read_only: bool) -> None:
        self.value.setReadOnly(read_only)
        self.source.setReadOnly(read_only)


class PracticeLimitsPage(QWidget):
    """The practice dose-limits settings page. Takes the AppContext; emits ``limits_saved``
    after a successful save (the protocol editors reload on ``data_changed("settings")``)."""

    limits_saved = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._limits: PracticeLimits | None = None
        self.rows: dict[tuple[str, str], _LimitRow] = {}
        self._build()
        self._connect_signals()
        self.reload()

    @property
    def can_change(self) -> bool:
        actor = self.context.actor
        return actor.is_physician and actor.can(Permission.MANAGE_USERS)

    @property
    def is_loaded(self) -> bool:
        return self._limits is not None

    def _build(self) -> None:
        self.setStyleSheet(READ_ONLY_STYLE)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "<b>Practice dose limits.</b> Every protocol is checked against these limits for "
            "its route. KetaDesk ships them <b>empty</b>: no public source sets limits for "
            "at-home ketamine, so the practice sets each one and records where it comes from. "
            "A protocol cannot be signed while a limit for its route is not set."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        self.access_label = QLabel()
        self.access_label.setWordWrap(True)
        self.access_label.setStyleSheet("color: #8a5a00;")
        layout.addWidget(self.access_label)

        general = QWidget()
        general_grid = self._grid(general)
        self.rows[("", _WEIGHT_AGE)] = _LimitRow(
            general_grid, 0, "Chart weight counts as old after", "days")
        layout.addWidget(general)

        self.route_tabs = QTabWidget()
        for route in Route:
            page = QWidget()
            grid = self._grid(page)
            for index, (name, words) in enumerate(ROUTE_LIMIT_FIELDS.items()):
                self.rows[(route.value, name)] = _LimitRow(grid, index, words, _UNITS[name])
            grid.setRowStretch(2 * len(ROUTE_LIMIT_FIELDS) + 1, 1)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            self.route_tabs.addTab(scroll, ROUTE_LABELS[route].capitalize())
        layout.addWidget(self.route_tabs, 1)
        self.references_label = QLabel()
        self.references_label.setWordWrap(True)
        self.references_label.setOpenExternalLinks(True)
        self.references_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.references_label)

        buttons = QHBoxLayout()
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        buttons.addWidget(self.message_label, 1)
        self.revert_button = QPushButton("Revert")
        self.save_button = QPushButton("Save limits")
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)

    def _grid(self, parent: QWidget) -> QGridLayout:
        grid = QGridLayout(parent)
        grid.setColumnMinimumWidth(0, 230)
        grid.setColumnStretch(2, 1)
        grid.setHorizontalSpacing(10)
        for column, text in enumerate(("Limit", "Value", "Source (where the value comes from)",
                                       "")):
            grid.addWidget(_header(text), 0, column)
        return grid

    def _connect_signals(self) -> None:
        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.reload)
        for row in self.rows.values():
            row.value.textChanged.connect(self._on_edited)
        self.context.actor_changed.connect(self._apply_access)

    # ------------------------------------------------------------------ data

    def reload(self) -> None:
        def work() -> PracticeLimits:
            with self.context.db.session() as session:
                return get_practice_limits(session)

        self.context.ops.run(work, self._show, parent_widget=self)

    def _show(self, limits: PracticeLimits) -> None:
        self._limits = limits
        self.rows[("", _WEIGHT_AGE)].load(limits.weight_max_age_days)
        for route in Route:
            route_limits = limits.for_route(route)
            for name in ROUTE_LIMIT_FIELDS:
                self.rows[(route.value, name)].load(getattr(route_limits, name))
        self.message_label.clear()
        refs = "".join(
            f"<li>[{escape(r.id)}] <a href=\"{escape(r.url)}\">{escape(r.title)}</a></li>"
            for r in limits.references)
        self.references_label.setText(
            f"<b>References cited by the shipped notes</b><ul>{refs}</ul>" if refs else "")
        self._apply_access()
        self._refresh_summary()

    def _apply_access(self) -> None:
        editable = self.can_change
        for row in self.rows.values():
            row.set_read_only(not editable)
        self.save_button.setEnabled(editable)
        self.revert_button.setEnabled(editable)
        self.access_label.setText(
            "" if editable else
            "Read-only: only physicians who manage users can change the practice limits.")
        self.access_label.setVisible(not editable)

    def _on_edited(self) -> None:
        for row in self.rows.values():
            row.refresh_status()
        self._refresh_summary()

    def _refresh_summary(self) -> None:
        for index, route in enumerate(Route):
            missing = sum(1 for name in ROUTE_LIMIT_FIELDS
                          if not self.rows[(route.value, name)].value.text().strip())
            title = ROUTE_LABELS[route].capitalize()
            self.route_tabs.setTabText(index, f"{title} ({missing} not set)" if missing
                                       else title)
        not_set = sum(1 for row in self.rows.values() if not row.value.text().strip())
        self.summary_label.setText(
            "Every limit is set." if not not_set else
            f"{not_set} of the {len(self.rows)} limits are not set yet.")

    def limits_from_form(self) -> PracticeLimits:
        """The limits as typed; raises UserFacingError (and marks the row) when one is wrong."""
        base = self._limits or PracticeLimits()
        routes: dict[Route, RouteLimits] = {}
        for route in Route:
            values = {
                name: self.rows[(route.value, name)].read(
                    f"{words} for {ROUTE_LABELS[route]}")
                for name, words in ROUTE_LIMIT_FIELDS.items()
            }
            routes[route] = RouteLimits(**values)
        weight_age = self.rows[("", _WEIGHT_AGE)].read("weight age")
        return replace(base, routes=routes, weight_max_age_days=weight_age)

    def save(self) -> None:
        try:
            limits = self.limits_from_form()
        except UserFacingError as error:
            self.message_label.setStyleSheet(ERROR_STYLE)
            self.message_label.setText(error.message)
            return
        actor = self.context.actor

        def work() -> PracticeLimits:
            with self.context.db.session() as session:
                return set_practice_limits(session, actor, limits)

        def done(stored: PracticeLimits) -> None:
            self._show(stored)
            self.message_label.setStyleSheet("color: #1b5e20;")
            self.message_label.setText("Saved.")
            self.limits_saved.emit()

        def failed(error: BaseException) -> None:
            show_error(self, error)

        self.context.ops.run(work, done, on_failure=failed, changes="settings",
                             parent_widget=self)


def _header(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    return label
