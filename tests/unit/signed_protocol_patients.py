"""A synthetic patient with a signed interaction review and a signed protocol, made through
the real services (patients, reviews, practice limits, protocols) for dose-log and alert tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.practice_limits import LimitValue, PracticeLimits, RouteLimits
from ketadesk.core.protocols import MonitoringPlan, Protocol, Route
from ketadesk.storage.patients.patients import add_vitals, create_patient
from ketadesk.storage.practice.practice_limits_store import set_practice_limits
from ketadesk.storage.protocols import protocols as protocol_store
from ketadesk.storage.reviews.interaction_reviews import run_review, sign_review
from tests.unit.protocol_factories import troche_protocol

SOURCE = "Test practice policy 2026-01 (synthetic)"


def generous_limits() -> PracticeLimits:
    route = RouteLimits(
        max_single_dose_mg_per_kg=LimitValue(3.0, SOURCE),
        max_single_dose_mg=LimitValue(300.0, SOURCE),
        max_daily_mg=LimitValue(300.0, SOURCE),
        min_interval_hours=LimitValue(24, SOURCE),
        max_sessions_per_week=LimitValue(7, SOURCE),
    )
    return PracticeLimits(
        routes={r: route for r in Route}, weight_max_age_days=LimitValue(90, SOURCE)
    )


def held_protocol(start: date) -> Protocol:
    """Troches 10-30 mg, 3 a week at least 48 h apart; hold above 140/90 mmHg; sitter."""
    return troche_protocol(
        monitoring=MonitoringPlan(
            bp_before_each_dose=True,
            phq9_every_weeks=2,
            check_in_every_days=7,
            hold_systolic_above_mmhg=140,
            hold_diastolic_above_mmhg=90,
            sitter_required=True,
        ),
        review_date=start + timedelta(days=20),
    )


def patient_with_signed_protocol(
    session: Any, physician: Any, start: date, *, last_name: str = "Testperson"
) -> int:
    """A new patient (left in "Screening") whose protocol starting ``start`` is signed."""
    set_practice_limits(session, physician, generous_limits())
    draft = PatientDemographics(
        first_name="Zoë", last_name=last_name, dob=date(1984, 3, 9), sex="female", state="FL",
        county="Hillsborough",
    )
    today = datetime.now(UTC).date()
    pid = create_patient(session, physician, draft, today=today, allow_duplicate=True).id
    add_vitals(session, physician, pid, measured_at=datetime.now(UTC) - timedelta(days=1),
               systolic=124, diastolic=78, heart_rate=70, weight_kg=72.5)
    fingerprint = run_review(session, pid).fingerprint
    sign_review(session, physician, pid, [], expected_fingerprint=fingerprint)
    protocol = held_protocol(start)
    version = protocol_store.save_draft(session, physician, pid, protocol, start)
    check = protocol_store.signing_check(session, physician, pid, protocol, today)
    assert not check.errors, [m.message for m in check.errors]
    protocol_store.sign_version(
        session, physician, version.version_id,
        acknowledged_warnings=[m.code for m in check.warnings], today=today,
    )
    return pid
