"""The left panel of the interaction review: what the check read from the chart.

Each medication and condition exactly as typed, with what it was read as or "not checked";
the vitals used; pregnancy; the benzodiazepine load; and everything not recognised.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ketadesk.storage.reviews.interaction_review_views import (
    ConditionLineView,
    ReviewDraftView,
)
from ketadesk.ui.review.review_severity_icons import not_checked_pixmap
from ketadesk.ui.review.review_text_labels import muted_label, section_title, wrapping_label

NOT_CHECKED_TEXT = "not checked"
NOT_CHECKED_LINE = "not checked — not recognised; check this yourself"


def add_review_inputs(add: Callable[[QWidget], None], view: ReviewDraftView) -> None:
    """Pass each widget of the inputs panel for ``view`` to ``add``, top to bottom."""
    add(section_title(f"Medications as entered ({len(view.medication_lines)})"))
    if not view.medication_lines:
        add(wrapping_label("No active medications on the chart."))
    for line in view.medication_lines:
        add(input_row(line.entered_as,
                       line.read_as_text if line.is_checked else NOT_CHECKED_LINE,
                       line.is_checked,
                       needs_confirming=line.fuzzy or line.unit_assumed))
    add(section_title(f"Conditions ({len(view.condition_lines)})"))
    if not view.condition_lines:
        add(wrapping_label("No active conditions on the chart."))
    for condition in view.condition_lines:
        add(condition_row(condition))
    add(section_title("Vitals used"))
    inputs = view.inputs
    if inputs.vitals_not_checked:
        add(input_row("Latest vitals", inputs.vitals_not_checked, False))
    elif inputs.latest_vitals is not None:
        add(wrapping_label(inputs.latest_vitals.summary()))
    else:
        add(input_row("Vitals", "none recorded; blood pressure not checked", False))
    add(section_title("Pregnant"))
    add(wrapping_label("Yes" if inputs.pregnant else "No (as recorded on the chart)"))
    load = view.result.benzodiazepine_load
    if load is not None:
        add(section_title("Benzodiazepine load"))
        label = wrapping_label(load.summary().capitalize())
        label.setObjectName("benzodiazepineLoad")
        if load.is_above_threshold:
            label.setStyleSheet("font-weight: bold;")
        add(label)
        add(muted_label(
            f"Studies associated more than {load.threshold_mg_per_day:g} mg/day "
            "diazepam-equivalent with a poorer response to ketamine."
        ))
    not_checked = view.not_checked
    add(section_title(f"Not checked ({len(not_checked)})"))
    if not_checked:
        add(muted_label("Review these yourself: the knowledge base did not recognise them."))
        for item in not_checked:
            add(input_row(item, NOT_CHECKED_TEXT, False))
    else:
        add(muted_label("Everything on the chart was recognised."))


def condition_row(condition: ConditionLineView) -> QWidget:
    """A condition as typed and its reading in words: "read as: no suicidal ideation
    (negated)"; "not checked" (with the reason when an abbreviation is ambiguous); and for a
    partly read line, each part that was not checked."""
    if not condition.is_checked:
        ambiguous = condition.read_as_text.startswith(f"{NOT_CHECKED_TEXT}: ")
        text = condition.read_as_text if ambiguous else NOT_CHECKED_LINE
        return input_row(condition.entered_as, text, False)
    row = input_row(condition.entered_as, condition.read_as_text, True)
    layout = row.layout()
    assert isinstance(layout, QVBoxLayout)
    for part in condition.unread:
        layout.addLayout(_not_checked_line(f"{NOT_CHECKED_TEXT}: {part}"))
    return row


def _not_checked_line(text: str) -> QHBoxLayout:
    line = QHBoxLayout()
    line.setSpacing(5)
    line.setContentsMargins(12, 0, 0, 0)
    icon = QLabel()
    icon.setPixmap(not_checked_pixmap())
    icon.setToolTip("Not checked")
    line.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
    label = wrapping_label(text)
    label.setObjectName("notChecked")
    label.setStyleSheet("font-weight: bold; color: #222;")
    line.addWidget(label, 1)
    return line


def input_row(
    entered: str, read_as: str, checked: bool, *, needs_confirming: bool = False
) -> QWidget:
    row = QWidget()
    layout = QVBoxLayout(row)
    layout.setContentsMargins(0, 2, 0, 4)
    layout.setSpacing(1)
    typed = wrapping_label(entered)
    typed.setStyleSheet("font-weight: 600;")
    layout.addWidget(typed)
    if not checked:
        layout.addLayout(_not_checked_line(read_as))
        return row
    line = QHBoxLayout()
    line.setSpacing(5)
    line.setContentsMargins(12, 0, 0, 0)
    label = wrapping_label(("⚠ " if needs_confirming else "") + read_as)
    label.setObjectName("readAs")
    label.setStyleSheet("color: #7a4b00;" if needs_confirming else "color: #444;")
    line.addWidget(label, 1)
    layout.addLayout(line)
    return row
