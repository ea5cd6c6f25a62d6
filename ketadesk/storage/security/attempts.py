"""Failed log-in attempts, kept beside the database so a wrong password never writes to it.

They are carried into the audit trail at the next successful unlock. Each user name has its
own count: after five consecutive failures for that name each further attempt for it must
wait longer (exponential backoff), so one person's typing cannot lock everyone out.

The file is authenticated with a practice-held key (HMAC-SHA256; ``<db>.attempts.key``, 0600,
written only by KetaDesk): a hand-written or edited file is refused, never replayed into the
audit chain, and its refusal is itself audited. Timestamps are clamped to the present, so no
back-dated or future-dated failure is recorded. Writers hold a lock on ``<db>.attempts.lock``
and write through unique temp names, so concurrent failures never collide. At each successful
unlock the state is also kept inside the encrypted database (``failed_attempts_state``), so a
deleted or rolled-back file is named at the next log-in and its backoff restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ketadesk.core.private_files import restrict, write_private_bytes

FREE_ATTEMPTS = 5
MAX_WAIT_SECONDS = 15 * 60
FORMAT = 2
MAX_FILE_BYTES = 512 * 1024
MAX_FAILURES_KEPT = 1000
MAX_USERS_TRACKED = 500
_NAME_MAX = 64


@dataclass(frozen=True)
class FailedAttempt:
    at: datetime
    user_name: str


@dataclass
class AttemptsState:
    """What the file says: its generation (bumped at every write), per-user counts, the
    failures not yet carried into the audit trail, and how many files were refused."""

    generation: int = 0
    users: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    failures: list[FailedAttempt] = field(default_factory=list)
    refused_files: int = 0
    #: "ok", "missing" (no file) or "refused" (edited, hand-written or unreadable)
    verdict: str = "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generation": self.generation,
            "users": {
                name: {"consecutive": count, "last_failure_at": at.isoformat()}
                for name, (count, at) in self.users.items()
            },
            "failures": [
                {"at": f.at.isoformat(), "user_name": f.user_name} for f in self.failures
            ],
            "refused_files": self.refused_files,
        }


def attempts_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".attempts.json")


def attempts_files(db_path: Path) -> tuple[Path, ...]:
    """Every file this module keeps beside the database (record, key, lock)."""
    return (attempts_path(db_path), _key_path(db_path), _lock_path(db_path))


def _key_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".attempts.key")


def _lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".attempts.lock")


def _now() -> datetime:
    return datetime.now(UTC)


def _clamped(moment: datetime | None) -> datetime:
    """``moment`` (default now), never later than the present: nothing is future-dated."""
    real_now = _now()
    if moment is None:
        return real_now
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return min(moment.astimezone(UTC), real_now)


def _practice_key(db_path: Path, *, create: bool) -> bytes | None:
    path = _key_path(db_path)
    try:
        key = path.read_bytes()
        return key if len(key) == 32 else None
    except FileNotFoundError:
        if not create:
            return None
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _practice_key(db_path, create=False)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    restrict(path)
    return key


def _mac(key: bytes, content: dict[str, Any]) -> str:
    body = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest()


@contextlib.contextmanager
def _locked(db_path: Path) -> Iterator[None]:
    """An exclusive lock on the attempts file's lock file for one read-modify-write."""
    path = _lock_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _parse(content: dict[str, Any]) -> AttemptsState:
    now = _now()
    state = AttemptsState(generation=int(content["generation"]))
    users = content.get("users") or {}
    for name, entry in list(users.items())[:MAX_USERS_TRACKED]:
        at = min(datetime.fromisoformat(str(entry["last_failure_at"])), now)
        state.users[str(name)[:_NAME_MAX]] = (max(0, int(entry["consecutive"])), at)
    for item in (content.get("failures") or [])[-MAX_FAILURES_KEPT:]:
        at = min(datetime.fromisoformat(str(item["at"])), now)
        state.failures.append(FailedAttempt(at, str(item["user_name"])[:_NAME_MAX]))
    state.refused_files = int(content.get("refused_files", 0))
    return state


def read_state(db_path: Path) -> AttemptsState:
    """The authenticated state; an absent file reads as empty ("missing"), an edited,
    hand-written, oversized or unreadable one as empty ("refused")."""
    path = attempts_path(db_path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return AttemptsState(verdict="refused")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AttemptsState(verdict="missing")
    except (OSError, ValueError, RecursionError):
        return AttemptsState(verdict="refused")
    key = _practice_key(db_path, create=False)
    if not isinstance(raw, dict) or key is None or raw.get("format") != FORMAT:
        return AttemptsState(verdict="refused")
    mac = raw.pop("mac", None)
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, raw)):
        return AttemptsState(verdict="refused")
    try:
        return _parse(raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        return AttemptsState(verdict="refused")


def write_state(db_path: Path, state: AttemptsState) -> None:
    """Write ``state`` with the next generation number, authenticated (call under the lock)."""
    key = _practice_key(db_path, create=True)
    assert key is not None
    state.generation += 1
    content = state.to_json()
    content["mac"] = _mac(key, state.to_json())
    write_private_bytes(attempts_path(db_path), json.dumps(content).encode("utf-8"))


def failed_attempts(db_path: Path) -> list[FailedAttempt]:
    return read_state(db_path).failures


def seconds_to_wait(db_path: Path, user_name: str, now: datetime | None = None) -> int:
    """Seconds until ``user_name`` may try again (0 when allowed now)."""
    entry = read_state(db_path).users.get(_printable_name(user_name))
    if entry is None or entry[0] < FREE_ATTEMPTS:
        return 0
    consecutive, last = entry
    wait = min(2 ** min(consecutive - FREE_ATTEMPTS + 1, 30), MAX_WAIT_SECONDS)
    remaining = (last + timedelta(seconds=wait)) - (now or _now())
    return max(0, int(remaining.total_seconds() + 0.999))


def _printable_name(user_name: str) -> str:
    """The typed user name as it may appear in the audit trail: at most 64 characters, any
    control, format or surrogate character shown as "?" (it cannot forge a line)."""
    return "".join(
        ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else "?"
        for ch in user_name[:_NAME_MAX]
    )


def record_failure(db_path: Path, user_name: str, now: datetime | None = None) -> None:
    """Count one failed attempt for ``user_name`` (clamped to the present)."""
    moment = _clamped(now)
    name = _printable_name(user_name)
    with _locked(db_path):
        state = read_state(db_path)
        if state.verdict == "refused":
            state = AttemptsState(refused_files=1)  # start over; the refusal is audited later
        previous = state.users.pop(name, (0, moment))[0]
        state.users[name] = (previous + 1, moment)
        while len(state.users) > MAX_USERS_TRACKED:
            del state.users[next(iter(state.users))]
        state.failures.append(FailedAttempt(moment, name))
        state.failures = state.failures[-MAX_FAILURES_KEPT:]
        write_state(db_path, state)


def forget_backoff(db_path: Path, user_name: str) -> None:
    """``user_name`` was given a new password another way (the recovery key): their count of
    wrong passwords starts again. The failures themselves stay, for the audit trail."""
    name = _printable_name(user_name)
    with _locked(db_path):
        state = read_state(db_path)
        if state.verdict != "ok" or name not in state.users:
            return
        del state.users[name]
        write_state(db_path, state)


def pending_for_audit(db_path: Path, kept_in_database: dict[str, Any] | None) -> AttemptsState:
    """At a successful unlock: the failures to carry into the audit trail, the per-user counts,
    and whether the file was refused (edited, hand-written, deleted or rolled back).

    ``kept_in_database`` is the snapshot stored at the previous unlock: a file that is missing
    or older than it was deleted or rolled back, so it reads as "refused" and its counts are
    taken from the snapshot (the backoff survives the deletion).
    """
    with _locked(db_path):
        state = read_state(db_path)
    known = int((kept_in_database or {}).get("generation", 0) or 0)
    if known and (state.verdict == "missing" or state.generation < known):
        state = AttemptsState(verdict="refused")
    if state.verdict == "refused" and kept_in_database:
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            restored = _parse({**kept_in_database, "generation": known, "failures": []})
            state.users = {**restored.users, **state.users}
    state.generation = max(state.generation, known)
    state.refused_files += state.verdict == "refused"
    return state


def settle_after_unlock(
    db_path: Path, user_name: str, carried: AttemptsState
) -> dict[str, Any]:
    """Once ``carried`` is in the audit trail: drop those failures from the file, reset
    ``user_name``'s count, keep everyone else's. Returns the snapshot to keep in the database."""
    with _locked(db_path):
        state = read_state(db_path)
        if state.verdict != "ok":
            state = AttemptsState(generation=carried.generation, users=dict(carried.users))
        else:
            done = set(carried.failures)
            state.failures = [f for f in state.failures if f not in done]
            state.refused_files = 0
            for name, entry in carried.users.items():
                state.users.setdefault(name, entry)
        state.generation = max(state.generation, carried.generation)
        state.users.pop(_printable_name(user_name), None)
        write_state(db_path, state)
        snapshot = state.to_json()
    del snapshot["failures"], snapshot["format"]
    return snapshot
