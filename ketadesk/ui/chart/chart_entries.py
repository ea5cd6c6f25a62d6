"""The chart's list entries, each saved as soon as it is made (one transaction and audit
event each): medications (add, stop with a reason, verify), conditions (add, resolve),
allergies (add, remove), vitals, and the treatment status. A line changed on another
workstation meanwhile goes to ``EntryConflicts`` (compared side by side, never overwritten).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.patient_medications import (
    add_medication,
    settle_medication,
    stop_medication,
    verify_medication,
)
from ketadesk.storage.patients.patient_records import MedicationEntry
from ketadesk.ui.chart.chart_entry_conflicts import stopped, verified
from ketadesk.ui.chart.chart_record_table import selected_entry, selected_entry_id
from ketadesk.ui.chart.stop_medication_dialog import StopMedicationDialog

if TYPE_CHECKING:
    from ketadesk.ui.chart.patient_chart import PatientChart


class ChartEntries:
    """The list-entry actions of one chart (its buttons and Enter keys call these)."""

    def __init__(self, chart: PatientChart) -> None:
        self._chart = chart

    def add_medication(self) -> None:
        chart = self._chart
        text = chart.med_text.text()
        try:
            start = chart.med_start.date_value()
        except UserFacingError as error:
            chart.show_banner(f"{chart.med_start.label}: {error.message}")
            return
        pid = chart.patient_id
        source = str(chart.med_source.currentData())
        if chart.save_entry(
            lambda s: add_medication(
                s,
                chart.actor,
                pid,
                text,
                dose_text=chart.med_dose.text(),
                frequency_text=chart.med_frequency.text(),
                start_date=start,
                source=source,
            )
        ):
            chart.medications_tab.clear_entry()

    def condition_enter(self) -> None:
        chart = self._chart
        # Enter on the suggestion list picks an entry; the next Enter adds the condition.
        if not chart.conditions_tab.enter_picks_a_suggestion():
            chart.condition_add.click()

    def stop_medication(self) -> None:
        chart = self._chart
        med_id = selected_entry_id(chart.med_table)
        if med_id is None:
            chart.show_banner("Select the medication to stop.")
            return
        entry = selected_entry(chart.med_table, chart.record.medications if chart.record else ())
        restop = entry is not None and med_id in chart.entry_conflicts.unsaved_stops
        if entry is None or not (entry.is_active or restop):
            chart.show_banner(
                "That medication entry no longer exists."
                if entry is None
                else "That medication is already stopped."
            )
            return
        chart.stop_dialog = StopMedicationDialog(entry, chart)
        typed = chart.entry_conflicts.unsaved_stops.get(med_id)
        if typed is not None:
            chart.stop_dialog.show_typed(*typed)
        chart.stop_dialog.accepted.connect(lambda: self._stop_with_reason(entry))
        chart.stop_dialog.open()

    def _stop_with_reason(self, entry: MedicationEntry) -> None:
        chart = self._chart
        dialog = chart.stop_dialog
        assert dialog is not None
        reason, note = dialog.reason, dialog.note
        chart.stop_dialog = None
        mine = stopped(entry, reason, note)
        if chart.run_entry_change(
            lambda s: stop_medication(
                s, chart.actor, entry.id, reason=reason, note=note,
                expected_version=entry.version,
            )
            if entry.is_active  # else: stopped elsewhere, and this user's stop was kept
            else settle_medication(s, chart.actor, entry.id, mine, expected_version=entry.version),
            lambda error: chart.entry_conflicts.medication(error, entry, mine),
        ):
            chart.entry_conflicts.unsaved_stops.pop(entry.id, None)

    def verify_medication(self) -> None:
        chart = self._chart
        entry = selected_entry(chart.med_table, chart.record.medications if chart.record else ())
        if entry is None:
            chart.show_banner("Select the medication to mark verified.")
            return
        chart.run_entry_change(
            lambda s: verify_medication(
                s, chart.actor, entry.id, expected_version=entry.version
            ),
            lambda error: chart.entry_conflicts.medication(error, entry, verified(entry)),
        )

    def add_condition(self) -> None:
        chart = self._chart
        text = chart.condition_text.text()
        pid = chart.patient_id
        picked = chart.conditions_tab.picked_for_line()
        code = None if picked is None else picked.code
        concept = None if picked is None else picked.concept_id
        if chart.save_entry(
            lambda s: service.add_condition(s, chart.actor, pid, text, code, concept)
        ):
            chart.conditions_tab.clear_condition_entry()

    def resolve_condition(self) -> None:
        chart = self._chart
        conditions = chart.record.conditions if chart.record else ()
        entry = selected_entry(chart.condition_table, conditions)
        if entry is None:
            chart.show_banner("Select the condition to mark resolved.")
            return
        chart.run_entry_change(
            lambda s: service.resolve_condition(
                s, chart.actor, entry.id, expected_version=entry.version
            ),
            lambda error: chart.entry_conflicts.condition(error, entry),
        )

    def add_allergy(self) -> None:
        chart = self._chart
        substance, reaction = chart.allergy_substance.text(), chart.allergy_reaction.text()
        pid = chart.patient_id
        if chart.save_entry(
            lambda s: service.add_allergy(s, chart.actor, pid, substance, reaction)
        ):
            chart.allergy_substance.clear()
            chart.allergy_reaction.clear()

    def remove_allergy(self) -> None:
        chart = self._chart
        aid = selected_entry_id(chart.allergy_table)
        if aid is None:
            chart.show_banner("Select the allergy to remove.")
            return
        pid = chart.patient_id
        if not chart.save_entry(
            lambda s: service.remove_allergy(s, chart.actor, aid, patient_id=pid)
        ):
            # Removed elsewhere meanwhile: the banner says who; the list no longer shows it.
            problem = chart.banner.text()
            chart.refresh_lists()
            chart.show_banner(problem)

    def add_vitals(self) -> None:
        chart = self._chart
        try:
            typed = chart.vitals_tab.typed()
        except UserFacingError as error:
            chart.show_banner(error.message)
            return
        pid = chart.patient_id
        if chart.save_entry(
            lambda s: service.add_vitals(
                s,
                chart.actor,
                pid,
                measured_at=typed.measured_at,
                systolic=typed.systolic,
                diastolic=typed.diastolic,
                heart_rate=typed.heart_rate,
                weight_kg=typed.weight_kg,
            )
        ):
            chart.vitals_tab.clear_entry()

    def change_status(self) -> None:
        chart = self._chart
        new_status = str(chart.status_combo.currentData())
        reason = chart.status_reason.text()
        pid = chart.patient_id
        if chart.save_entry(
            lambda s: service.change_status(s, chart.actor, pid, new_status, reason)
        ):
            chart.status_reason.clear()
