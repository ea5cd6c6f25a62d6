"""``python -m benchmarks --json`` prints one JSON list a script can compare against goals."""

from __future__ import annotations

import json

from benchmarks.__main__ import main
from benchmarks._harness import BenchResult


def test_a_row_carries_its_floor_and_goal_and_p95_only_where_it_applies() -> None:
    plain = BenchResult("audit: x", 12.34567, "argon2id KDF", 140.0, goal="<= KDF + 150 ms")
    spread = BenchResult("roster: y", 8.0, p95_ms=21.5)
    assert plain.as_json() == {
        "name": "audit: x", "median_ms": 12.346, "floor_name": "argon2id KDF",
        "floor_ms": 140.0, "goal": "<= KDF + 150 ms",
    }
    assert spread.as_json()["p95_ms"] == 21.5 and spread.as_json()["floor_ms"] is None


def test_json_output_is_a_list_on_stdout_and_the_table_goes_to_stderr(capsys) -> None:
    assert main(["--json", "no-such-benchmark"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "median ms" in err
