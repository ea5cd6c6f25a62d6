"""Failed log-in attempts, kept beside the database so a wrong password never writes to it.

They are carried into the audit trail at the next successful unlock. After five consecutive
failures each further attempt must wait longer (exponential backoff).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

FREE_ATTEMPTS = 5
MAX_WAIT_SECONDS = 15 * 60


@dataclass(frozen=True)
class FailedAttempt:
    at: datetime
    user_name: str


def attempts_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".attempts.json")


def _read(db_path: Path) -> dict[str, object]:
    path = attempts_path(db_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(db_path: Path, data: dict[str, object]) -> None:
    path = attempts_path(db_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def failed_attempts(db_path: Path) -> list[FailedAttempt]:
    raw = _read(db_path).get("failures", [])
    result = []
    for item in raw if isinstance(raw, list) else []:
        try:
            result.append(
                FailedAttempt(datetime.fromisoformat(item["at"]), str(item["user_name"])[:64])
            )
        except (KeyError, TypeError, ValueError):
            continue
    return result


def seconds_to_wait(db_path: Path, now: datetime | None = None) -> int:
    """Seconds until another attempt is allowed (0 when allowed now)."""
    data = _read(db_path)
    consecutive = int(data.get("consecutive", 0) or 0)  # type: ignore[call-overload]
    if consecutive < FREE_ATTEMPTS:
        return 0
    try:
        last = datetime.fromisoformat(str(data["last_failure_at"]))
    except (KeyError, ValueError):
        return 0
    wait = min(2 ** (consecutive - FREE_ATTEMPTS + 1), MAX_WAIT_SECONDS)
    remaining = (last + timedelta(seconds=wait)) - (now or datetime.now(UTC))
    return max(0, int(remaining.total_seconds() + 0.999))


def record_failure(db_path: Path, user_name: str, now: datetime | None = None) -> None:
    moment = now or datetime.now(UTC)
    data = _read(db_path)
    failures = data.get("failures", [])
    failures = failures if isinstance(failures, list) else []
    failures.append({"at": moment.isoformat(), "user_name": user_name[:64]})
    consecutive = int(data.get("consecutive", 0) or 0) + 1  # type: ignore[call-overload]
    _write(
        db_path,
        {
            "failures": failures[-1000:],
            "consecutive": consecutive,
            "last_failure_at": moment.isoformat(),
        },
    )


def clear(db_path: Path) -> None:
    path = attempts_path(db_path)
    if path.exists():
        path.unlink()
