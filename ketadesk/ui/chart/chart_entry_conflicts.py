"""A medication or condition line changed on another workstation while the chart showed it.

The stop, verification or resolution made here is compared with their change field by field
(``ui/common/edit_conflict_flow``) and settled over the stored line through the same checks
and audit (``settle_medication``), or kept for later: Esc keeps a stop's reason and note for
the next Stop of that line (on a line stopped elsewhere, Stop then records them over theirs).
When they made the very change made here, nothing is asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.entry_versions import (
    ACTIVE,
    CONDITION_FIELDS,
    MEDICATION_FIELDS,
    RESOLVED,
    STOPPED,
    EntryChangedError,
    condition_values,
    medication_values,
)
from ketadesk.storage.patients.patient_medications import STOP_REASONS, settle_medication
from ketadesk.storage.patients.patient_records import ConditionEntry, MedicationEntry
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog, when_words
from ketadesk.ui.common.edit_conflict_flow import ConflictScreen, not_saved_words

if TYPE_CHECKING:
    from ketadesk.ui.chart.patient_chart import PatientChart

MEDICATION_WORDS = {
    "status": {ACTIVE: "Yes (active)", STOPPED: "No (stopped)"},
    "stop_reason": dict(STOP_REASONS),
    "source": {"patient_reported": "Patient-reported", "verified": "Verified"},
}
CONDITION_WORDS = {"status": {ACTIVE: "Yes (active)", RESOLVED: "No (resolved)"}}


def stopped(entry: MedicationEntry, reason: str, note: str) -> dict[str, str]:
    """``entry`` as stopping it here leaves it."""
    return {**medication_values(entry), "status": STOPPED, "stop_reason": reason,
            "stop_note": note}


def verified(entry: MedicationEntry) -> dict[str, str]:
    return {**medication_values(entry), "source": "verified"}


class EntryConflicts:
    """The chart's list lines against changes made on another workstation."""

    def __init__(self, chart: PatientChart) -> None:
        self._chart = chart
        self._screen = ConflictScreen(chart, "Someone else changed this line", "the chart")
        #: Stops not saved (medication id -> reason, note), put back in the next Stop dialog.
        self.unsaved_stops: dict[int, tuple[str, str]] = {}

    @property
    def dialog(self) -> EditConflictDialog | None:
        return self._screen.dialog

    def medication(
        self, error: EntryChangedError, shown: MedicationEntry, mine: dict[str, str]
    ) -> None:
        """Compare the change made here to ``shown`` (``mine``) with the line stored now."""
        current = error.current
        assert isinstance(current, MedicationEntry)
        actor = self._chart.actor
        if mine["status"] == STOPPED and shown.is_active:
            self.unsaved_stops[current.id] = (mine["stop_reason"], mine["stop_note"])

        def settle(values: dict[str, str]) -> None:
            if self._chart.run_entry_change(
                lambda s: settle_medication(
                    s, actor, current.id, values, expected_version=current.version
                ),
                lambda again: self.medication(again, current, values),
            ):
                self.unsaved_stops.pop(current.id, None)

        def keep() -> None:
            self._chart.show_banner(
                not_saved_words(error, "this medication line", "choose Stop or Verify again")
            )

        self._settle_or_ask(
            error, (medication_values(shown), mine, medication_values(current)),
            MEDICATION_FIELDS, MEDICATION_WORDS, settle, keep, "this medication line",
        )

    def condition(self, error: EntryChangedError, shown: ConditionEntry) -> None:
        """Compare resolving ``shown`` here with the condition stored now."""
        current = error.current
        assert isinstance(current, ConditionEntry)
        actor = self._chart.actor
        mine = {"status": RESOLVED}

        def settle(values: dict[str, str]) -> None:
            if values["status"] == RESOLVED and current.is_active:
                self._chart.run_entry_change(
                    lambda s: service.resolve_condition(
                        s, actor, current.id, expected_version=current.version
                    ),
                    lambda again: self.condition(again, current),
                )

        self._settle_or_ask(
            error, (condition_values(shown), mine, condition_values(current)),
            CONDITION_FIELDS, CONDITION_WORDS, settle,
            lambda: self._chart.show_banner(
                not_saved_words(error, "this condition", "choose Mark resolved again")
            ),
            "this condition",
        )

    def _settle_or_ask(
        self,
        error: EntryChangedError,
        values: tuple[dict[str, str], dict[str, str], dict[str, str]],
        labels: tuple[tuple[str, str], ...],
        words: dict[str, Any],
        settle: Callable[[dict[str, str]], None],
        keep: Callable[[], None],
        what: str,
    ) -> None:
        _base, mine, theirs = values
        self._chart.refresh_lists()  # the line as stored now; typed details stay
        if mine == theirs:
            self._chart.show_banner(
                f"{error.who} had already made this change to {what} "
                f"{when_words(error.changed_at)}; nothing more was needed."
            )
            return
        if not self._screen.compare(error, what, values, labels, words, settle, keep):
            settle(mine)  # they changed nothing this change touches: nothing of theirs lost
            return
        self._chart.show_banner(error.message)
