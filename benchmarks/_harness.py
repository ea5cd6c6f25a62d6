"""Tiny benchmark harness: medians beside their floors, printed as one table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchResult:
    name: str
    median_ms: float
    floor_name: str = ""
    floor_ms: float | None = None
    goal: str = ""
    extra: str = ""
    p95_ms: float | None = None  # where a figure is a distribution (keystrokes, events)

    def as_json(self) -> dict[str, object]:
        """One row of ``python -m benchmarks --json``."""
        row: dict[str, object] = {
            "name": self.name,
            "median_ms": round(self.median_ms, 3),
            "floor_name": self.floor_name,
            "floor_ms": None if self.floor_ms is None else round(self.floor_ms, 3),
            "goal": self.goal,
        }
        if self.p95_ms is not None:
            row["p95_ms"] = round(self.p95_ms, 3)
        return row


def median_ms(fn: Callable[[], object], *, repeat: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
