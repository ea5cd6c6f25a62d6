"""The chart's patient details against another workstation's save (``ui/common/
edit_conflict_flow``): what the details showed when loaded, and the compare, merge and
keep-typing steps of a save that met a newer version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ketadesk.core.edit_conflicts import theirs_as_shown
from ketadesk.storage.patients.chart_versions import ChartChangedError
from ketadesk.storage.patients.patient_records import PatientRecord
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog
from ketadesk.ui.common.edit_conflict_flow import ConflictScreen, not_saved_words

if TYPE_CHECKING:
    from ketadesk.ui.chart.patient_chart import PatientChart

#: What the details showed when loaded: the stored text, the form's text for it, the version.
Base = tuple[dict[str, str], dict[str, str], int | None]


class ChartConflicts:
    """The base a chart's details are saved over, and what happens when that base moved on."""

    def __init__(self, chart: PatientChart) -> None:
        self._chart = chart
        self._screen = ConflictScreen(chart, "Someone else saved this chart", "the chart")
        self.base: Base = ({}, {}, None)

    @property
    def dialog(self) -> EditConflictDialog | None:
        return self._screen.dialog

    @property
    def version(self) -> int | None:
        """The version a save of the details names (the one the form was loaded from)."""
        return self.base[2]

    def remember(self, record: PatientRecord) -> None:
        """``record`` is now shown: its details are the base of the next save."""
        tab = self._chart.demographics_tab
        self.base = (tab.record_values(record), tab.compared_values(), record.version)

    def adopt(self, current: PatientRecord) -> None:
        """Take ``current`` as the version the form now edits, keeping what is typed."""
        stored = self._chart.demographics_tab.record_values(current)
        names = [name for name, _ in self._chart.demographics_tab.compared_fields()]
        self.base = (stored, {name: stored.get(name, "") for name in names}, current.version)

    def compare_with_stored(self, error: ChartChangedError) -> bool:
        """Show what differs between what is typed and what is stored now, and let the user
        choose field by field; nothing is saved until they do (False: not saved yet)."""
        chart, tab = self._chart, self._chart.demographics_tab
        base_stored, base_shown, _ = self.base
        theirs = theirs_as_shown(base_stored, base_shown, tab.record_values(error.current))
        opened = self._screen.compare(
            error,
            f"{error.current.display_name}'s details",
            (base_shown, tab.compared_values(), theirs),
            tab.compared_fields(),
            tab.shown_words(),
            lambda merged: self._save_merged(error, merged),
            lambda: chart.show_banner(
                not_saved_words(error, "this patient's details", "press Save (Ctrl+S)")
            ),
        )
        if not opened:
            # They changed nothing on this form (the status, say): saving loses nothing of theirs.
            self.adopt(error.current)
            return chart.save()
        chart.show_banner(error.message)
        return False

    def _save_merged(self, error: ChartChangedError, merged: dict[str, str]) -> None:
        chart, tab = self._chart, self._chart.demographics_tab
        typed = tab.typed_values()  # the new weight, the units
        chart.show_record(error.current)  # the lists and status as stored now
        tab.restore_values({**typed, **merged})
        chart.mark_dirty()
        chart.save()
