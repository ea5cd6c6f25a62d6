"""Protocol data model: ladder arithmetic, dict round-trip, readable diff, sig text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_serialization import (
    protocol_content_hash,
    protocol_diff,
    protocol_from_dict,
    protocol_to_dict,
)
from ketadesk.core.protocol_templates import builtin_templates
from ketadesk.core.protocols import (
    Frequency,
    FrequencyKind,
    Indication,
    MaintenancePhase,
    MonitoringPlan,
    Protocol,
    ProtocolKind,
    Route,
    StepUpRule,
    SupplyPlan,
    TitrationLadder,
    WeightReading,
    frequency_text,
    highest_dose_mg,
    ladder_doses_mg,
    latest_weight,
    maintenance_dose_mg,
    sessions_per_week,
    sig_text,
)
from tests.unit.protocol_factories import per_week, step_ladder, troche_protocol


def make_protocol(**changes: object) -> Protocol:
    return troche_protocol(**{
        "indication": Indication.ANXIETY,
        "strength_mg_per_unit": 5,
        "ladder": step_ladder(10, 20, 5),
        "frequency": per_week(2, min_hours_apart=48),
        "duration_weeks": 6,
        "monitoring": MonitoringPlan(hold_systolic_above_mmhg=150, hold_diastolic_above_mmhg=95,
                                     missed_dose_instructions="Skip it."),
        **changes,
    })


# ---------------------------------------------------------------- ladder


def test_increment_ladder_caps_last_step_at_maximum() -> None:
    ladder = TitrationLadder(start_dose_mg=10, max_dose_mg=30, increment_mg=15)
    assert ladder_doses_mg(ladder) == (10, 25, 30)


def test_explicit_steps_win_over_increment_and_are_capped() -> None:
    ladder = TitrationLadder(start_dose_mg=100, max_dose_mg=200, increment_mg=10,
                             step_doses_mg=(150, 250))
    assert ladder_doses_mg(ladder) == (100, 150, 200)


def test_ladder_without_steps_is_the_start_dose_only() -> None:
    assert ladder_doses_mg(TitrationLadder(start_dose_mg=12.5, max_dose_mg=40)) == (12.5,)


def test_small_increments_do_not_accumulate_float_error() -> None:
    doses = ladder_doses_mg(TitrationLadder(start_dose_mg=1, max_dose_mg=2, increment_mg=0.1))
    assert doses[3] == 1.3
    assert doses[-1] == 2
    assert len(doses) == 11


def test_start_above_maximum_is_capped() -> None:
    assert ladder_doses_mg(TitrationLadder(start_dose_mg=50, max_dose_mg=40)) == (40,)


def test_maintenance_dose_defaults_to_last_ladder_dose_and_is_capped() -> None:
    p = make_protocol()
    assert maintenance_dose_mg(p) == 20
    p = make_protocol(maintenance=MaintenancePhase(dose_mg=15))
    assert maintenance_dose_mg(p) == 15
    p = make_protocol(maintenance=MaintenancePhase(dose_mg=80))
    assert maintenance_dose_mg(p) == 20
    assert highest_dose_mg(p) == 20


def test_sessions_per_week_for_each_frequency_kind() -> None:
    assert sessions_per_week(Frequency(FrequencyKind.DAILY)) == 7
    assert sessions_per_week(Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=2)) == 3.5
    assert sessions_per_week(Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=3)) == 3
    assert sessions_per_week(Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=0)) == 0


def test_frequency_text_names_interval_and_notes() -> None:
    text = frequency_text(Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=3,
                                    min_hours_between_doses=60, time_of_day_notes="evening"))
    assert text == "every 3 days, at least 60 hours apart (evening)"


# ---------------------------------------------------------------- round trip


def test_builtin_templates_round_trip_through_json() -> None:
    for template in builtin_templates():
        data = protocol_to_dict(template.protocol)
        again = protocol_from_dict(json.loads(json.dumps(data)))
        assert again == template.protocol


def test_full_protocol_round_trips_every_field() -> None:
    p = make_protocol(
        indication=Indication.OTHER,
        indication_other="Synthetic indication",
        route=Route.OTHER,
        route_other="buccal film",
        ladder=TitrationLadder(start_dose_mg=7.5, max_dose_mg=30, step_doses_mg=(10, 20, 30),
                               step_up_rule=StepUpRule.AT_PHYSICIAN_REVIEW, sessions_per_step=3),
        maintenance=MaintenancePhase(
            dose_mg=20,
            frequency=Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=10,
                                min_hours_between_doses=96, time_of_day_notes="am"),
            notes="taper later",
        ),
        review_date=date(2027, 1, 31),
        monitoring=MonitoringPlan(
            bp_before_each_dose=True, bp_after_dose=True, bp_after_minutes=40,
            hold_systolic_above_mmhg=140, hold_diastolic_above_mmhg=90, phq9_every_weeks=2,
            gad7_every_weeks=4, check_in_every_days=5, sitter_required=True,
            no_driving_until_next_day=False, no_alcohol=False,
            missed_dose_instructions="Call the practice.",
        ),
        supply=SupplyPlan(refills=2, notes="deliver"),
        notes="note",
        example_values=True,
    )
    data = protocol_to_dict(p)
    assert json.loads(json.dumps(data)) == data
    assert protocol_from_dict(data) == p


_doses = st.floats(min_value=0.5, max_value=500, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def protocols(draw: st.DrawFn) -> Protocol:
    start = draw(_doses)
    top = draw(st.floats(min_value=start, max_value=1000)).__round__(3)
    kind = draw(st.sampled_from(list(FrequencyKind)))
    freq = Frequency(
        kind,
        sessions_per_week=draw(st.integers(1, 7)) if kind is FrequencyKind.SESSIONS_PER_WEEK
        else None,
        every_n_days=draw(st.integers(1, 30)) if kind is FrequencyKind.EVERY_N_DAYS else None,
        min_hours_between_doses=draw(st.sampled_from([0.0, 12.0, 24.0, 48.0, 72.5])),
        time_of_day_notes=draw(st.text(max_size=20)),
    )
    return make_protocol(
        indication=draw(st.sampled_from(list(Indication))),
        kind=draw(st.sampled_from(list(ProtocolKind))),
        route=draw(st.sampled_from(list(Route))),
        formulation=draw(st.text(max_size=30)),
        ladder=TitrationLadder(
            start_dose_mg=start,
            max_dose_mg=top,
            increment_mg=draw(st.none() | _doses),
            step_doses_mg=tuple(draw(st.lists(_doses, max_size=5))),
            step_up_rule=draw(st.sampled_from(list(StepUpRule))),
            sessions_per_step=draw(st.integers(1, 6)),
        ),
        frequency=freq,
        maintenance=MaintenancePhase(dose_mg=draw(st.none() | _doses),
                                     frequency=draw(st.none() | st.just(freq))),
        duration_weeks=draw(st.integers(1, 52)),
        review_date=draw(st.none() | st.dates()),
        supply=SupplyPlan(refills=draw(st.integers(0, 12))),
    )


@settings(max_examples=200, deadline=None)
@given(protocols())
def test_round_trip_property(p: Protocol) -> None:
    data = protocol_to_dict(p)
    assert protocol_from_dict(json.loads(json.dumps(data))) == p
    assert protocol_diff(p, protocol_from_dict(data)) == []
    assert protocol_content_hash(protocol_from_dict(data)) == protocol_content_hash(p)


def test_from_dict_reports_missing_field_by_name() -> None:
    data = protocol_to_dict(make_protocol())
    del data["ladder"]["start_dose_mg"]
    with pytest.raises(UserFacingError, match=r"'ladder\.start_dose_mg' is missing"):
        protocol_from_dict(data)


def test_from_dict_reports_wrong_type_and_bad_choice() -> None:
    data = protocol_to_dict(make_protocol())
    data["duration_weeks"] = "six"
    with pytest.raises(UserFacingError, match="'duration_weeks' should be a whole number"):
        protocol_from_dict(data)
    data = protocol_to_dict(make_protocol())
    data["route"] = "intravenous"
    with pytest.raises(UserFacingError, match="one of: sublingual, oral_solution, intranasal"):
        protocol_from_dict(data)
    data = protocol_to_dict(make_protocol())
    data["monitoring"]["sitter_required"] = "yes"
    with pytest.raises(UserFacingError, match="true or false"):
        protocol_from_dict(data)


def test_from_dict_refuses_newer_format_and_bad_dates() -> None:
    data = protocol_to_dict(make_protocol())
    data["format_version"] = 99
    with pytest.raises(UserFacingError, match="newer version"):
        protocol_from_dict(data)
    data = protocol_to_dict(make_protocol())
    data["review_date"] = "31/01/2027"
    with pytest.raises(UserFacingError, match="YYYY-MM-DD"):
        protocol_from_dict(data)


def test_from_dict_fills_optional_groups_with_defaults() -> None:
    data = protocol_to_dict(make_protocol())
    for key in ("monitoring", "maintenance", "supply", "notes", "review_date"):
        del data[key]
    p = protocol_from_dict(data)
    assert p.monitoring == MonitoringPlan()
    assert p.maintenance == MaintenancePhase()
    assert p.review_date is None


# ---------------------------------------------------------------- diff


def test_diff_reads_as_sentences() -> None:
    a = make_protocol()
    b = make_protocol(
        ladder=replace(a.ladder, start_dose_mg=15),
        monitoring=replace(a.monitoring, hold_systolic_above_mmhg=140, sitter_required=True),
        review_date=date(2027, 2, 1),
    )
    assert protocol_diff(a, b) == [
        "Start dose: 10 mg → 15 mg",
        "Review date: none → 2027-02-01",
        "Hold if systolic above: 150 mmHg → 140 mmHg",
        "Sitter required: no → yes",
    ]


def test_diff_of_identical_protocols_is_empty() -> None:
    assert protocol_diff(make_protocol(), make_protocol()) == []


def test_diff_names_route_steps_and_maintenance_frequency() -> None:
    a = make_protocol()
    b = make_protocol(
        route=Route.INTRANASAL,
        ladder=replace(a.ladder, step_doses_mg=(12.5, 20)),
        maintenance=MaintenancePhase(frequency=Frequency(FrequencyKind.DAILY)),
    )
    lines = protocol_diff(a, b)
    assert "Route: sublingual → intranasal" in lines
    assert "Ladder steps: none → 12.5, 20 mg" in lines
    assert "Maintenance frequency: none → daily" in lines


# ---------------------------------------------------------------- sig


def test_sig_states_dose_units_frequency_ladder_and_safety() -> None:
    sig = sig_text(make_protocol())
    assert sig.startswith("Dissolve 2 troches (10 mg) under the tongue, 2 sessions a week, "
                          "at least 48 hours apart.")
    assert "Increase to 15, 20 mg in turn, after 2 tolerated sessions at each dose." in sig
    assert "Do not exceed 20 mg per dose." in sig
    assert "do not take the dose if it is above 150/95 mmHg" in sig
    assert "Missed dose: Skip it." in sig


def test_sig_depends_on_values_not_on_kind_label() -> None:
    micro = make_protocol(kind=ProtocolKind.MICRODOSE)
    standard = make_protocol(kind=ProtocolKind.STANDARD)
    assert sig_text(micro) == sig_text(standard)


def test_sig_for_physician_review_and_route_wording() -> None:
    p = make_protocol(
        route=Route.INTRANASAL, unit_name="spray", strength_mg_per_unit=10,
        ladder=TitrationLadder(start_dose_mg=10, max_dose_mg=30, increment_mg=10,
                               step_up_rule=StepUpRule.AT_PHYSICIAN_REVIEW, sessions_per_step=1),
    )
    sig = sig_text(p)
    assert sig.startswith("Use 1 spray (10 mg) in the nose")
    assert "only after a physician review (no sooner than 1 session at each dose)" in sig
    other = sig_text(make_protocol(route=Route.OTHER, route_other="buccal film"))
    assert other.startswith("Take 2 troches (10 mg) by buccal film")


# ---------------------------------------------------------------- hash and weight


def test_content_hash_is_stable_and_changes_with_any_field() -> None:
    p = make_protocol()
    assert protocol_content_hash(p) == protocol_content_hash(protocol_from_dict(
        json.loads(json.dumps(protocol_to_dict(p)))))
    assert len(protocol_content_hash(p)) == 64
    changed = make_protocol(supply=SupplyPlan(refills=1))
    assert protocol_content_hash(changed) != protocol_content_hash(p)


def test_latest_weight_picks_the_newest_positive_reading() -> None:
    old = WeightReading(70, date(2026, 1, 1))
    new = WeightReading(72, date(2026, 3, 1))
    broken = WeightReading(0, date(2026, 4, 1))
    assert latest_weight([new, old, broken]) == new
    assert latest_weight([]) is None
