"""``python -m ketadesk protocol ...`` run as a real subprocess (no patient database needed)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from ketadesk.core.practice_limits import (
    LimitValue,
    PracticeLimits,
    RouteLimits,
    practice_limits_to_dict,
)
from ketadesk.core.protocol_templates import builtin_templates, confirm_template, export_templates
from ketadesk.core.protocols import Route

ROOT = Path(__file__).resolve().parents[2]
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable


def ketadesk(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return subprocess.run([PYTHON, "-m", "ketadesk", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_templates_json_lists_the_builtin_examples() -> None:
    result = ketadesk("protocol", "templates", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [
        "Microdose, sublingual", "Standard dose, sublingual RDT", "Intranasal"]
    assert all(r["example_values"] and r["built_in"] for r in rows)
    assert all(r["units_per_30_days"] > 0 and r["sig"] for r in rows)


def test_templates_table_flags_example_values() -> None:
    result = ketadesk("protocol", "templates")
    assert result.returncode == 0
    assert result.stdout.count("[EXAMPLE VALUES - confirm before use]") == 3


def test_schedule_json_contract() -> None:
    result = ketadesk("protocol", "schedule", "--template", "Standard dose, sublingual RDT",
                      "--weight-kg", "72.5", "--start", "2026-12-07", "--weeks", "10", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(set(r) == {"date", "dose_mg", "mg_per_kg", "events"} for r in rows)
    dates = [date.fromisoformat(r["date"]) for r in rows]
    assert dates[0] == date(2026, 12, 7)
    assert dates == sorted(set(dates))
    assert all((b - a).days * 24 >= 72 for a, b in itertools.pairwise(dates))
    assert all(r["mg_per_kg"] == round(r["dose_mg"] / 72.5, 2) for r in rows)
    template = builtin_templates()[1].protocol
    assert max(r["dose_mg"] for r in rows) <= template.ladder.max_dose_mg
    assert all("BP before dose" in r["events"] for r in rows)


def test_schedule_table_and_db_option_in_either_place(tmp_path: Path) -> None:
    db = str(tmp_path / "unused.db")
    result = ketadesk("--db", db, "protocol", "schedule", "--template", "intranasal",
                      "--weight-kg", "60", "--start", "2026-12-01", "--weeks", "2", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "2026-12-01" in result.stdout and "0.33" in result.stdout  # 20 mg / 60 kg
    assert not (tmp_path / "unused.db").exists()


def test_check_with_shipped_defaults_blocks_signing() -> None:
    result = ketadesk("protocol", "check", "--template", "Microdose, sublingual",
                      "--weight-kg", "70")
    assert result.returncode == 1
    assert "The practice has not set a maximum single dose in mg for sublingual" in result.stdout
    assert "examples" in result.stdout
    assert "Signing is blocked" in result.stdout


def _limits_file(tmp_path: Path, **values: float) -> Path:
    settings = {"max_single_dose_mg_per_kg": 1.0, "max_single_dose_mg": 100,
                "max_daily_mg": 100, "min_interval_hours": 48, "max_sessions_per_week": 3}
    settings.update(values)
    limits = PracticeLimits(
        routes={route: RouteLimits(**{k: LimitValue(v, "Synthetic test policy")
                                      for k, v in settings.items()}) for route in Route},
        weight_max_age_days=LimitValue(30, "Synthetic test policy"),
    )
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(practice_limits_to_dict(limits)), encoding="utf-8")
    return path


def _confirmed_templates(tmp_path: Path) -> Path:
    path = tmp_path / "ours.json"
    export_templates([confirm_template(t, f"Ours: {t.name}") for t in builtin_templates()], path)
    return path


def test_check_passes_with_practice_limits_and_confirmed_template(tmp_path: Path) -> None:
    result = ketadesk("protocol", "check", "--template", "Ours: Microdose, sublingual",
                      "--weight-kg", "70", "--limits", str(_limits_file(tmp_path)),
                      "--templates-file", str(_confirmed_templates(tmp_path)), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["blocks_signing"] is False
    assert all(m["level"] == "warning" for m in report["messages"])


def test_check_dose_and_route_overrides_exceed_limits(tmp_path: Path) -> None:
    result = ketadesk("protocol", "check", "--template", "Ours: Microdose, sublingual",
                      "--weight-kg", "40", "--dose-mg", "80", "--route", "oral_solution",
                      "--limits", str(_limits_file(tmp_path)),
                      "--templates-file", str(_confirmed_templates(tmp_path)))
    assert result.returncode == 1
    assert ("Dose 2 mg/kg exceeds the practice maximum of 1 mg/kg for oral solution"
            in result.stdout)


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    result = ketadesk("protocol", "check", "--template", "Weekly", "--weight-kg", "70")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert 'There is no template called "Weekly"' in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("not json", encoding="utf-8")
    result = ketadesk("protocol", "templates", "--templates-file", str(bad))
    assert result.returncode == 1 and "bad.json is not valid JSON" in result.stderr
    result = ketadesk("protocol", "schedule", "--template", "Intranasal", "--weight-kg", "70",
                      "--start", "12/01/2026")
    assert result.returncode == 2 and "not a date" in result.stderr
    result = ketadesk("protocol")
    assert result.returncode == 2 and "choose an action" in result.stderr
