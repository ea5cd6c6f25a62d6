"""Protocol validation against its own arithmetic and the practice limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import jsonschema
import pytest

from ketadesk.core.practice_limits import (
    ROUTE_LIMIT_FIELDS,
    LimitValue,
    PracticeLimits,
    RouteLimits,
    default_practice_limits,
    practice_limits_from_dict,
    practice_limits_to_dict,
)
from ketadesk.core.protocol_validation import (
    ValidationMessage,
    blocks_signing,
    validate_protocol,
    weight_basis_text,
)
from ketadesk.core.protocols import (
    Frequency,
    FrequencyKind,
    Indication,
    MaintenancePhase,
    MonitoringPlan,
    Protocol,
    ProtocolKind,
    Route,
    TitrationLadder,
    WeightReading,
)
from ketadesk.resources import resource_path
from tests.unit.protocol_factories import per_week, step_ladder, troche_protocol

TODAY = date(2026, 11, 25)
FRESH = WeightReading(kg=80, measured_on=TODAY - timedelta(days=3))


def make_protocol(**changes: object) -> Protocol:
    return troche_protocol(**{
        "ladder": step_ladder(20, 40, 10),
        "frequency": per_week(2, min_hours_apart=72),
        "duration_weeks": 8,
        "review_date": TODAY + timedelta(days=56),
        "monitoring": MonitoringPlan(hold_systolic_above_mmhg=140, hold_diastolic_above_mmhg=90,
                                     missed_dose_instructions="Skip it; do not double up."),
        **changes,
    })


def lim(value: float | None, source: str = "Synthetic practice policy 2026") -> LimitValue:
    return LimitValue(value, source)


def make_limits(route: Route = Route.SUBLINGUAL, **values: float | None) -> PracticeLimits:
    settings: dict[str, float | None] = {
        "max_single_dose_mg_per_kg": 2.0,
        "max_single_dose_mg": 300,
        "max_daily_mg": 300,
        "min_interval_hours": 48,
        "max_sessions_per_week": 3,
    }
    settings.update(values)
    return PracticeLimits(
        routes={route: RouteLimits(**{k: lim(v) for k, v in settings.items()})},
        weight_max_age_days=lim(30),
    )


def codes(messages: list[ValidationMessage]) -> list[str]:
    return [m.code for m in messages]


def test_a_sound_protocol_within_set_limits_has_no_messages() -> None:
    assert validate_protocol(make_protocol(), make_limits(), FRESH, TODAY) == []


def test_mg_per_kg_above_the_practice_maximum_blocks_signing() -> None:
    p = make_protocol(ladder=TitrationLadder(start_dose_mg=100, max_dose_mg=248,
                                             step_doses_mg=(150, 200, 248)))
    messages = validate_protocol(p, make_limits(), FRESH, TODAY)
    [message] = [m for m in messages if m.code == "dose_above_limit_mg_per_kg"]
    assert message.level == "error"
    assert message.message.startswith(
        "Dose 3.1 mg/kg exceeds the practice maximum of 2 mg/kg for sublingual"
    )
    assert "248 mg at 80 kg weighed on 2026-11-22, 3 days ago" in message.message
    assert message.source == "Synthetic practice policy 2026"
    assert blocks_signing(messages)


def test_absolute_daily_interval_and_sessions_limits() -> None:
    p = make_protocol(
        frequency=Frequency(FrequencyKind.DAILY, min_hours_between_doses=24),
    )
    limits = make_limits(max_single_dose_mg=30, max_daily_mg=35, max_single_dose_mg_per_kg=None)
    found = codes(validate_protocol(p, limits, FRESH, TODAY))
    assert "dose_above_limit_mg" in found
    assert "daily_above_limit" in found
    assert "interval_below_limit" in found
    assert "sessions_above_limit" in found
    assert "limit_not_set" in found  # mg/kg left empty


def test_maintenance_frequency_is_checked_too() -> None:
    p = make_protocol(maintenance=MaintenancePhase(
        frequency=Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=1,
                            min_hours_between_doses=24)))
    messages = validate_protocol(p, make_limits(), FRESH, TODAY)
    texts = [m.message for m in messages if m.code in ("interval_below_limit",
                                                        "sessions_above_limit")]
    assert texts and all(t.startswith("Maintenance: ") for t in texts)


@pytest.mark.parametrize("name", list(ROUTE_LIMIT_FIELDS))
def test_each_unset_limit_is_a_blocking_error_naming_it(name: str) -> None:
    limits = make_limits(**{name: None})
    messages = validate_protocol(make_protocol(), limits, FRESH, TODAY)
    [message] = [m for m in messages if m.code == "limit_not_set"]
    assert message.level == "error"
    assert message.message == (
        f"The practice has not set a {ROUTE_LIMIT_FIELDS[name]} for sublingual; "
        "set it in Practice ▸ Practice limits for protocols… before signing."
    )


def test_a_route_the_practice_never_configured_has_every_limit_unset() -> None:
    p = make_protocol(route=Route.ORAL_SOLUTION)
    messages = validate_protocol(p, make_limits(Route.SUBLINGUAL), FRESH, TODAY)
    unset = [m for m in messages if m.code == "limit_not_set"]
    assert len(unset) == len(ROUTE_LIMIT_FIELDS)
    assert all("for oral solution;" in m.message for m in unset)


def test_shipped_defaults_leave_every_ketamine_limit_empty_with_a_reason() -> None:
    limits = default_practice_limits()
    for route in Route:
        route_limits = limits.for_route(route)
        for name in ROUTE_LIMIT_FIELDS:
            value: LimitValue = getattr(route_limits, name)
            assert value.value is None
            assert "practice must set" in value.source
    assert limits.weight_max_age_days.value is None
    assert all(r.url.startswith("https://") for r in limits.references)
    cited = {r.id for r in limits.references}
    text = json.dumps(practice_limits_to_dict(limits))
    assert all(f"[{ref}]" in text for ref in cited - {"ketalar-label", "spravato-label"})


def test_defaults_file_matches_its_schema_and_round_trips() -> None:
    data = json.loads(resource_path("protocols", "default_limits.json").read_text("utf-8"))
    schema = json.loads(resource_path("protocols", "practice_limits.schema.json")
                        .read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema)
    limits = default_practice_limits()
    assert practice_limits_from_dict(practice_limits_to_dict(limits)) == limits


def test_bad_limits_data_is_a_user_facing_error() -> None:
    from ketadesk.core.errors import UserFacingError

    data = practice_limits_to_dict(make_limits())
    data["routes"]["sublingual"]["max_daily_mg"]["value"] = -5
    with pytest.raises(UserFacingError, match="routes/sublingual/max_daily_mg/value"):
        practice_limits_from_dict(data)


def test_ladder_jump_over_half_is_a_warning_but_half_is_not() -> None:
    exactly_half = make_protocol(ladder=TitrationLadder(start_dose_mg=20, max_dose_mg=30,
                                                        increment_mg=10))
    assert "large_step" not in codes(validate_protocol(exactly_half, make_limits(), FRESH,
                                                       TODAY))
    jump = make_protocol(ladder=TitrationLadder(start_dose_mg=20, max_dose_mg=40,
                                                step_doses_mg=(40,)))
    [m] = [m for m in validate_protocol(jump, make_limits(), FRESH, TODAY)
           if m.code == "large_step"]
    assert m.level == "warning"
    assert m.message == "Step 2 goes from 20 mg to 40 mg, an increase of 100% (more than 50%)."


def test_weight_age_missing_weight_and_future_weight() -> None:
    limits = make_limits()
    on_limit = WeightReading(80, TODAY - timedelta(days=30))
    assert "weight_stale" not in codes(validate_protocol(make_protocol(), limits, on_limit,
                                                         TODAY))
    stale = WeightReading(80, TODAY - timedelta(days=31))
    [m] = [m for m in validate_protocol(make_protocol(), limits, stale, TODAY)
           if m.code == "weight_stale"]
    assert m.level == "warning" and "31 days old" in m.message and "2026-10-25" in m.message
    missing = validate_protocol(make_protocol(), limits, None, TODAY)
    assert codes(missing) == ["weight_missing"]
    assert "mg/kg was not checked" in missing[0].message
    future = validate_protocol(make_protocol(), limits, WeightReading(80, TODAY + timedelta(1)),
                               TODAY)
    assert "weight_in_future" in codes(future) and blocks_signing(future)
    unset_age = replace(limits, weight_max_age_days=LimitValue())
    assert "weight_age_not_checked" in codes(validate_protocol(make_protocol(), unset_age,
                                                                stale, TODAY))


def test_example_values_block_signing_until_confirmed() -> None:
    messages = validate_protocol(make_protocol(example_values=True), make_limits(), FRESH, TODAY)
    assert codes(messages) == ["example_values"] and blocks_signing(messages)
    assert validate_protocol(make_protocol(example_values=False), make_limits(), FRESH,
                             TODAY) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"ladder": TitrationLadder(start_dose_mg=50, max_dose_mg=40)}, "start_above_max"),
        ({"ladder": TitrationLadder(start_dose_mg=20, max_dose_mg=40,
                                    step_doses_mg=(30, 30))}, "step_not_increasing"),
        ({"ladder": TitrationLadder(start_dose_mg=20, max_dose_mg=40,
                                    step_doses_mg=(30, 50))}, "step_above_max"),
        ({"ladder": TitrationLadder(start_dose_mg=20, max_dose_mg=40, increment_mg=0)},
         "increment_invalid"),
        ({"ladder": TitrationLadder(start_dose_mg=1, max_dose_mg=40, increment_mg=0.01)},
         "too_many_steps"),
        ({"ladder": TitrationLadder(start_dose_mg=0, max_dose_mg=40)}, "start_dose_invalid"),
        ({"maintenance": MaintenancePhase(dose_mg=60)}, "maintenance_above_max"),
        ({"strength_mg_per_unit": 0}, "strength_invalid"),
        ({"duration_weeks": 0}, "duration_invalid"),
        ({"indication": Indication.OTHER}, "indication_other_missing"),
        ({"route": Route.OTHER}, "route_other_missing"),
        ({"frequency": Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=0)},
         "frequency_invalid"),
        ({"monitoring": MonitoringPlan(phq9_every_weeks=0, hold_systolic_above_mmhg=140)},
         "monitoring_value_invalid"),
    ],
)
def test_structural_errors(changes: dict[str, object], code: str) -> None:
    messages = validate_protocol(make_protocol(**changes), make_limits(), FRESH, TODAY)
    matching = [m for m in messages if m.code == code]
    assert matching and all(m.level == "error" for m in matching)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"kind": ProtocolKind.STANDARD}, "standard_no_bp_after"),
        ({"kind": ProtocolKind.STANDARD}, "standard_no_sitter"),
        ({"monitoring": MonitoringPlan(missed_dose_instructions="x")}, "bp_hold_missing"),
        ({"monitoring": MonitoringPlan(bp_before_each_dose=False,
                                       missed_dose_instructions="x")}, "bp_before_off"),
        ({"review_date": None}, "review_date_missing"),
        ({"review_date": TODAY - timedelta(days=1)}, "review_date_past"),
        ({"strength_mg_per_unit": 15}, "partial_unit"),
        ({"ladder": TitrationLadder(start_dose_mg=20, max_dose_mg=40)}, "no_steps"),
        ({"frequency": Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=3,
                                 min_hours_between_doses=72)}, "frequency_interval_conflict"),
    ],
)
def test_warnings_need_acknowledgement_but_do_not_block(changes: dict[str, object],
                                                         code: str) -> None:
    messages = validate_protocol(make_protocol(**changes), make_limits(), FRESH, TODAY)
    matching = [m for m in messages if m.code == code]
    assert matching and all(m.level == "warning" for m in matching)
    assert not blocks_signing(messages)


def test_oral_solution_doses_are_not_checked_for_whole_units() -> None:
    p = make_protocol(route=Route.ORAL_SOLUTION, unit_name="mL", strength_mg_per_unit=15)
    limits = make_limits(Route.ORAL_SOLUTION)
    assert "partial_unit" not in codes(validate_protocol(p, limits, FRESH, TODAY))


def test_errors_are_listed_before_warnings() -> None:
    p = make_protocol(review_date=None, example_values=True)
    levels = [m.level for m in validate_protocol(p, make_limits(), None, TODAY)]
    assert levels == sorted(levels, key=lambda level: level != "error")
    assert levels[0] == "error" and levels[-1] == "warning"


def test_weight_basis_text() -> None:
    assert weight_basis_text(None, TODAY) == "no weight on the chart"
    assert weight_basis_text(WeightReading(72.5, TODAY), TODAY) == (
        "72.5 kg weighed on 2026-11-25, today"
    )
    assert weight_basis_text(WeightReading(72.5, TODAY - timedelta(days=1)), TODAY).endswith(
        "1 day ago"
    )
