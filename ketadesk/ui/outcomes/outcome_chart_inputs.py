"""Outcome chart inputs built from a patient's saved outcomes (no ORM rows reach the charts)."""

from __future__ import annotations

from ketadesk.storage.outcomes.outcome_records import (
    PatientOutcomes,
)
from ketadesk.ui.outcomes.blood_pressure_chart import BpChartData, BpReading
from ketadesk.ui.outcomes.outcome_chart_base import ChartMarker, MarkerKind
from ketadesk.ui.outcomes.questionnaire_chart import OutcomeChartData, ScorePoint


def outcome_chart_data(outcomes: PatientOutcomes) -> tuple[OutcomeChartData, BpChartData]:
    """Chart inputs from saved records: complete forms only, dose changes and protocol
    versions as markers, pre-dose blood pressure (mmHg) with the protocol hold lines."""
    phq9 = tuple(
        ScorePoint(q.taken_on, q.total, q.safety_alert)
        for q in reversed(outcomes.questionnaires)
        if q.instrument_id == "phq9" and q.complete and q.total is not None
    )
    gad7 = tuple(
        ScorePoint(q.taken_on, q.total, q.safety_alert)
        for q in reversed(outcomes.questionnaires)
        if q.instrument_id == "gad7" and q.complete and q.total is not None
    )
    markers: list[ChartMarker] = []
    previous: float | None = None
    for item in sorted(outcomes.dose_log, key=lambda d: d.entry.taken_at):
        dose = item.entry.dose_mg
        if previous is not None and dose != previous:
            markers.append(ChartMarker(item.entry.taken_at.date(), f"{previous:g}→{dose:g} mg"))
        previous = dose
    for starts_on, number in outcomes.signed_versions:
        markers.append(ChartMarker(starts_on, f"v{number}", MarkerKind.PROTOCOL_VERSION))
    readings = tuple(
        BpReading(
            item.entry.taken_at.date(),
            item.entry.bp_before_systolic,
            item.entry.bp_before_diastolic,
        )
        for item in sorted(outcomes.dose_log, key=lambda d: d.entry.taken_at)
        if item.entry.bp_before_systolic is not None and item.entry.bp_before_diastolic is not None
    )
    rules = outcomes.monitoring.dose_rules
    return (
        OutcomeChartData(phq9=phq9, gad7=gad7, markers=tuple(markers)),
        BpChartData(
            readings=readings,
            hold_systolic_above=rules.hold_systolic_above,
            hold_diastolic_above=rules.hold_diastolic_above,
            markers=tuple(m for m in markers if m.kind is MarkerKind.PROTOCOL_VERSION),
        ),
    )
