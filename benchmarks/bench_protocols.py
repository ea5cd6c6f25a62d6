"""Protocol benchmarks: a 52-week dosing calendar (goal <= 20 ms) and validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from benchmarks._harness import BenchResult, median_ms
from ketadesk.core.dosing_calendar import dosing_calendar, units_per_30_days
from ketadesk.core.practice_limits import default_practice_limits
from ketadesk.core.protocol_templates import builtin_templates
from ketadesk.core.protocol_validation import validate_protocol
from ketadesk.core.protocols import Frequency, FrequencyKind, WeightReading

START = date(2026, 1, 5)


def run() -> list[BenchResult]:
    template = builtin_templates()[0].protocol
    # Daily dosing is the densest calendar a protocol can ask for (364 sessions in 52 weeks).
    daily = replace(template, frequency=Frequency(FrequencyKind.DAILY),
                    maintenance=replace(template.maintenance, frequency=None))
    weight = WeightReading(70.0, START)
    limits = default_practice_limits()
    floor = median_ms(lambda: [START.toordinal() + i for i in range(364)], repeat=15)
    return [
        BenchResult(
            "protocols: 52-week calendar, daily",
            median_ms(lambda: dosing_calendar(daily, START, 70.0, weeks=52), repeat=15),
            "list of 364 ints",
            floor,
            goal="goal <= 20 ms",
        ),
        BenchResult(
            "protocols: 52-week calendar, 3 a week",
            median_ms(lambda: dosing_calendar(template, START, 70.0, weeks=52), repeat=15),
            goal="goal <= 20 ms",
        ),
        BenchResult(
            "protocols: units per 30 days, 52 weeks daily",
            median_ms(lambda: units_per_30_days(daily, START, weeks=52), repeat=15),
        ),
        BenchResult(
            "protocols: validate_protocol",
            median_ms(lambda: validate_protocol(daily, limits, weight, START), repeat=15),
            extra="runs on every keystroke in the editor",
        ),
    ]
