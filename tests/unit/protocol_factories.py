"""Synthetic protocols for tests: one base, and each test file states what it changes."""

from __future__ import annotations

from dataclasses import replace

from ketadesk.core.protocols import (
    Frequency,
    FrequencyKind,
    Indication,
    MonitoringPlan,
    Protocol,
    ProtocolKind,
    Route,
    TitrationLadder,
)


def step_ladder(start_mg: float, max_mg: float, increment_mg: float) -> TitrationLadder:
    """A ladder from ``start_mg`` to ``max_mg`` in ``increment_mg`` steps, two sessions a step."""
    return TitrationLadder(start_dose_mg=start_mg, max_dose_mg=max_mg, increment_mg=increment_mg,
                           sessions_per_step=2)


def per_week(sessions: int, *, min_hours_apart: float) -> Frequency:
    """``sessions`` doses a week, at least ``min_hours_apart`` hours apart."""
    return Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=sessions,
                     min_hours_between_doses=min_hours_apart)


def troche_protocol(**changes: object) -> Protocol:
    """A synthetic sublingual microdose protocol (10 mg troches, 10-30 mg ladder, 3 a week
    at least 48 h apart, 4 weeks, BP before each dose); ``changes`` replace any field."""
    base = Protocol(
        indication=Indication.DEPRESSION,
        kind=ProtocolKind.MICRODOSE,
        route=Route.SUBLINGUAL,
        formulation="Synthetic test troche",
        unit_name="troche",
        strength_mg_per_unit=10,
        ladder=step_ladder(10, 30, 10),
        frequency=per_week(3, min_hours_apart=48),
        duration_weeks=4,
        monitoring=MonitoringPlan(bp_before_each_dose=True, phq9_every_weeks=2,
                                  check_in_every_days=7),
    )
    return replace(base, **changes)  # type: ignore[arg-type]
