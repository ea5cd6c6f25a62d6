"""The chart's Conditions and allergies tab: two lists side by side, each with its entry line.

The condition line is a problem-list picker: from two typed characters, and a moment after the
last key, suggestions from the vocabulary (names, synonyms, abbreviations, ICD-10-CM codes)
and the full code list are looked up on a worker and shown under the line. Down and Enter pick
one: the line keeps any leading qualifier ("hx of ") and the entry's name, and the condition is
stored with the entry's code and concept. Free text is still allowed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCompleter,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.condition_reading import ConditionSuggestion, problem_list_suggestions
from ketadesk.core.knowledge_base import load_knowledge_base
from ketadesk.storage.patients.patient_records import (
    AllergyEntry,
    ConditionEntry,
)
from ketadesk.ui.chart.chart_record_table import fill_table, record_table
from ketadesk.ui.common.ops import OpRunner

#: Characters typed before suggestions are looked up, and the pause after the last key (ms).
MIN_PICKER_CHARS = 2
PICKER_DELAY_MS = 200
_INSERT_ROLE = Qt.ItemDataRole.UserRole + 1
_CODE_ROLE = Qt.ItemDataRole.UserRole + 2
_CONCEPT_ROLE = Qt.ItemDataRole.UserRole + 3


@dataclass(frozen=True)
class PickedCondition:
    """The problem-list entry picked for the line: the text put in the line and what to store."""

    text: str
    code: str | None
    concept_id: str | None


@dataclass(frozen=True)
class PickerResult:
    """Suggestions for ``typed``, each with the name that picking puts in the line; ``kept``
    is the leading part left as typed ("hx of ")."""

    typed: str
    kept: str
    suggestions: tuple[tuple[ConditionSuggestion, str], ...]
    practice_texts: tuple[str, ...] = ()


def picker_suggestions(
    typed: str, practice_texts: Sequence[str] = (), limit: int = 12
) -> PickerResult:
    """Suggestions for a typed condition line (runs on a worker: the first call reads the
    ICD-10-CM list). When the whole line matches nothing, leading words are set aside one at
    a time ("hx of psych" -> "psych"), so a qualifier typed first stays in the line. Entries
    from the vocabulary win over code descriptions found with fewer words set aside."""
    words = typed.split(" ")
    practice = _practice_matches(typed, practice_texts)
    fallback: PickerResult | None = None
    for start in range(len(words)):
        query = " ".join(words[start:])
        if len(query.strip()) < MIN_PICKER_CHARS:
            break
        found = problem_list_suggestions(query, limit)
        if not found:
            continue
        kept = " ".join(words[:start]) + (" " if start else "")
        result = PickerResult(typed, kept, tuple((s, _line_name(s)) for s in found), practice)
        # Prefer a vocabulary concept ("psych" in "hx of psych") over code descriptions that
        # merely share a linking word ("of").
        if any(s.concept_id is not None for s in found):
            return result
        fallback = fallback or result
    return fallback or PickerResult(typed, "", (), practice)


def _line_name(suggestion: ConditionSuggestion) -> str:
    concepts = load_knowledge_base().conditions
    if suggestion.concept_id in concepts and suggestion.display.startswith(
        concepts[suggestion.concept_id].name
    ):
        return concepts[suggestion.concept_id].name
    return suggestion.matched  # an ICD-10-CM entry: its description


def _practice_matches(typed: str, texts: Sequence[str], limit: int = 3) -> tuple[str, ...]:
    key = typed.strip().casefold()
    return tuple(t for t in texts if key and key in t.casefold() and t != typed)[:limit]


_warming = threading.Lock()
_warm_started = False


def warm_problem_list() -> None:
    """Load the vocabulary and the ICD-10-CM list once per process on a background thread
    (about a second); it reports to no widget, so a chart closed meanwhile is no matter."""
    global _warm_started
    with _warming:
        if _warm_started:
            return
        _warm_started = True
    threading.Thread(target=_warm_quietly, name="problem-list-warm", daemon=True).start()


def _warm_quietly() -> None:
    try:
        problem_list_suggestions("ab", 1)
    except Exception:  # the first lookup shows nothing and tries again
        return


class ConditionsTab(QWidget):
    """Widgets only; the chart saves what is typed here (each entry in its own transaction)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        conditions = QGroupBox("Conditions")
        c_layout = QVBoxLayout(conditions)
        self.condition_table = record_table(
            ("Condition", "ICD-10", "Status", "Entered by"), "Conditions"
        )
        self.condition_text = QLineEdit()
        self.condition_text.setPlaceholderText(
            "Condition, abbreviation or ICD-10-CM code (suggestions appear as you type)"
        )
        self.condition_text.setAccessibleName("Condition")
        self.suggestion_model = QStandardItemModel(self)
        self.condition_completer = QCompleter(self.suggestion_model, self)
        self.condition_completer.setCompletionMode(
            QCompleter.CompletionMode.UnfilteredPopupCompletion
        )
        self.condition_completer.setCompletionRole(_INSERT_ROLE)
        self.condition_completer.setMaxVisibleItems(12)
        self.condition_text.setCompleter(self.condition_completer)
        self.condition_code_label = QLabel("")
        self.condition_code_label.setObjectName("pickedCode")
        self.condition_code_label.setStyleSheet("color: #1d5e20;")
        self.condition_add = QPushButton("Add condition")
        self.condition_resolve = QPushButton("Mark resolved")
        row = QHBoxLayout()
        row.addWidget(self.condition_text, 1)
        row.addWidget(self.condition_add)
        row.addWidget(self.condition_resolve)
        c_layout.addWidget(self.condition_table, 1)
        c_layout.addLayout(row)
        c_layout.addWidget(self.condition_code_label)
        self.picked: PickedCondition | None = None
        self._practice_texts: tuple[str, ...] = ()
        self._ops: OpRunner | None = None
        self._lookups = 0
        self._picker_timer = QTimer(self)
        self._picker_timer.setSingleShot(True)
        self._picker_timer.setInterval(PICKER_DELAY_MS)
        allergies = QGroupBox("Allergies")
        a_layout = QVBoxLayout(allergies)
        self.allergy_table = record_table(("Substance", "Reaction"), "Allergies")
        self.allergy_substance = QLineEdit()
        self.allergy_substance.setPlaceholderText("Substance")
        self.allergy_substance.setAccessibleName("Allergy substance")
        self.allergy_reaction = QLineEdit()
        self.allergy_reaction.setPlaceholderText("Reaction (optional)")
        self.allergy_reaction.setAccessibleName("Allergy reaction")
        self.allergy_add = QPushButton("Add allergy")
        self.allergy_remove = QPushButton("Remove")
        row = QHBoxLayout()
        row.addWidget(self.allergy_substance, 1)
        row.addWidget(self.allergy_reaction, 1)
        row.addWidget(self.allergy_add)
        row.addWidget(self.allergy_remove)
        a_layout.addWidget(self.allergy_table, 1)
        a_layout.addLayout(row)
        layout.addWidget(conditions, 3)
        layout.addWidget(allergies, 2)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.condition_text.textEdited.connect(self._condition_edited)
        self._picker_timer.timeout.connect(self._look_up)
        self.condition_completer.activated[QModelIndex].connect(self._picked_entry)

    # --- problem-list picker -----------------------------------------------------------
    def use_worker(self, ops: OpRunner) -> None:
        """Look suggestions up on ``ops``'s workers; start loading the code list now."""
        self._ops = ops
        warm_problem_list()

    def set_condition_suggestions(self, suggestions: list[str]) -> None:
        """The practice's most used condition texts, offered after the coded entries."""
        self._practice_texts = tuple(suggestions)

    def picked_for_line(self) -> PickedCondition | None:
        """The picked entry, while the line still holds what picking put there."""
        picked = self.picked
        if picked is None or picked.text != self.condition_text.text():
            return None
        return picked

    def enter_picks_a_suggestion(self) -> bool:
        """True when Enter, pressed now, chooses the highlighted entry of the open suggestion
        list (the line sees that Enter before the list does); a second Enter adds the row."""
        popup = self.condition_completer.popup()
        return popup.isVisible() and popup.currentIndex().isValid()

    def clear_condition_entry(self) -> None:
        self._picker_timer.stop()
        self.condition_text.clear()
        self.picked = None
        self.condition_code_label.setText("")
        self.suggestion_model.clear()

    def _condition_edited(self, text: str) -> None:
        if self.picked is not None and self.picked.text != text:
            self.picked = None
            self.condition_code_label.setText("")
        if len(text.strip()) < MIN_PICKER_CHARS:
            self._picker_timer.stop()
            self.suggestion_model.clear()
            return
        self._picker_timer.start()

    def _look_up(self) -> None:
        if self._ops is None or not self.isVisible():
            return  # a chart closed or hidden meanwhile wants no suggestions
        typed, practice = self.condition_text.text(), self._practice_texts
        self._lookups += 1
        number = self._lookups
        self._ops.run(
            lambda: picker_suggestions(typed, practice),
            lambda result: self._show_suggestions(number, result),
            on_failure=lambda _error: None,  # the line stays free text
        )

    def _show_suggestions(self, number: int, result: PickerResult) -> None:
        if number != self._lookups or result.typed != self.condition_text.text():
            return  # the user typed on; a newer lookup is coming
        self.suggestion_model.clear()
        for suggestion, name in result.suggestions:
            item = QStandardItem(suggestion.display)
            item.setData(result.kept + name, _INSERT_ROLE)
            item.setData(suggestion.code, _CODE_ROLE)
            item.setData(suggestion.concept_id, _CONCEPT_ROLE)
            item.setEditable(False)
            self.suggestion_model.appendRow(item)
        for text in result.practice_texts:
            item = QStandardItem(f"{text} (entered before in this practice)")
            item.setData(text, _INSERT_ROLE)
            item.setEditable(False)
            self.suggestion_model.appendRow(item)
        # Typed a moment ago in this line; the window need not be the active one (a second
        # screen, or a test run), only showing.
        if self.suggestion_model.rowCount() and self.condition_text.isVisible():
            self.condition_completer.complete()

    def _picked_entry(self, index: QModelIndex | QPersistentModelIndex) -> None:
        text = str(index.data(_INSERT_ROLE) or "")
        code = index.data(_CODE_ROLE)
        concept = index.data(_CONCEPT_ROLE)
        self.condition_text.setText(text)
        self.picked = PickedCondition(text, code, concept)
        self.condition_code_label.setText(
            f"ICD-10-CM {code} will be stored with this condition." if code else ""
        )

    def show_entries(
        self, conditions: tuple[ConditionEntry, ...], allergies: tuple[AllergyEntry, ...]
    ) -> None:
        fill_table(
            self.condition_table,
            [
                (
                    c.entered_text,
                    c.icd10 or "",
                    "Current" if c.is_active else "Resolved",
                    c.entered_by,
                )
                for c in conditions
            ],
            [c.id for c in conditions],
        )
        fill_table(
            self.allergy_table,
            [(a.substance, a.reaction) for a in allergies],
            [a.id for a in allergies],
        )
