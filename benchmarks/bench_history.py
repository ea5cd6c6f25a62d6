"""Opening a practice with a long history: 1,000,000 audit events, and a 1 GB file.

Goal (issue 15): unlock within KDF + 150 ms however long the history, memory flat. The unlock
measured is the desktop's (``check_pages_later=True``): it returns when the roster can be
shown, after the log-in audit check (events since the newest checkpoint) and before the page
check and the full audit walk, which run on workers. Those are reported beside it, with the
peak memory of a process doing the full walk.

The databases take minutes to build, so they are cached between runs under
``$KETADESK_BENCH_CACHE`` (default: ``<temp>/ketadesk-bench-cache``), never in the repository;
each run measures a fresh copy. The events are written with bulk SQL (a valid chain, five years
of synthetic, non-clinical events, each signed by the practice's physician, since the full walk
checks every signature); the 1 GB file is a practice plus a filler table of random
bytes (the page check reads every page whatever it holds). Sizes:
``KETADESK_BENCH_EVENTS`` (default 1,000,000), ``KETADESK_BENCH_GB`` (default 1).
"""

from __future__ import annotations

import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._harness import BenchResult, percentile
from ketadesk.core.audit_chain import event_hash
from ketadesk.storage.security.audit_checkpoint import (
    WalkStopped,
    walk_whole_chain,
    walk_whole_chain_apart,
)
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import cipher_damaged_pages, raw_connection
from ketadesk.storage.security.keyslots import KdfParams, KeySlotFile
from ketadesk.storage.security.signing_keys import Signer, audit_event_message

EVENTS = int(os.environ.get("KETADESK_BENCH_EVENTS", "1000000"))
GIGABYTES = float(os.environ.get("KETADESK_BENCH_GB", "1"))
CACHE = Path(os.environ.get("KETADESK_BENCH_CACHE",
                            Path(tempfile.gettempdir()) / "ketadesk-bench-cache"))
USER, PASSWORD = "benchdoc", "benchmark passphrase"
GOAL = "≤ KDF + 150 ms"
_ACTIONS = ("patient_viewed", "checkin_recorded", "protocol_draft_saved", "export", "login")


def _files(path: Path) -> list[Path]:
    return [p for p in (path, KeySlotFile.path_for(path)) if p.exists()]


def _cached(name: str, build: Callable[[Path], None]) -> Path:
    """``CACHE/name/practice.db``, built once (in a scratch folder, moved in when complete)."""
    final = CACHE / name
    if (final / "practice.db").exists():
        return final / "practice.db"
    scratch = CACHE / f"{name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    build(scratch / "practice.db")
    print(f"  built {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    scratch.rename(final)
    return final / "practice.db"


def _new_practice(path: Path) -> bytes:
    return _new_signed_practice(path)[0]


def _new_signed_practice(path: Path) -> tuple[bytes, Signer, str]:
    """(database key, the physician's signing key, the database's id) of a new practice."""
    db, _actor, _recovery = PracticeDatabase.create(
        path, user_name=USER, full_name="Dr. Bench Mark", password=PASSWORD
    )
    key, signer, database_id = db.database_key(), db.signer(), db.database_id
    db.close()
    assert signer is not None
    return key, signer, database_id


def _build_audit(path: Path) -> None:
    key, signer, database_id = _new_signed_practice(path)
    connection = raw_connection(path, key)
    seq, prev = connection.execute(
        "SELECT seq, row_hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    start = datetime(2021, 1, 4, 8, tzinfo=UTC)
    step = timedelta(days=5 * 365) / EVENTS
    batch: list[tuple[object, ...]] = []
    for number in range(seq + 1, EVENTS + 1):
        at = start + step * number
        action = _ACTIONS[number % len(_ACTIONS)]
        patient = None if action == "login" else number % 5000 + 1
        row_hash = event_hash(prev, number, at, USER, "physician", patient, action, "")
        signature = signer.sign(
            audit_event_message(database_id, seq=number, row_hash=row_hash, signed_by=USER)
        )
        batch.append((number, number, at.strftime("%Y-%m-%d %H:%M:%S.%f"), USER, "physician",
                      patient, action, "", prev, row_hash, USER, signature))
        prev = row_hash
        if len(batch) == 50_000 or number == EVENTS:
            connection.executemany(
                "INSERT INTO audit_events (id, seq, occurred_at, user_name, role, patient_id, "
                "action, detail, prev_hash, row_hash, signed_by, signature) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            connection.commit()
            batch.clear()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    # A practice that has been in use has a checkpoint: its last full walk.
    db, outcome = PracticeDatabase.unlock(path, USER, PASSWORD)
    assert db.check_whole_audit_trail(outcome.actor).is_intact
    db.close()


def _build_large(path: Path) -> None:
    key = _new_practice(path)
    connection = raw_connection(path, key)
    connection.execute("CREATE TABLE bench_filler (id INTEGER PRIMARY KEY, body BLOB)")
    rows_per_batch = 20_000
    batches = max(1, round(GIGABYTES * 1e9 / 4096 / rows_per_batch))  # a row fills a page
    for _ in range(batches):
        connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO bench_filler (body) SELECT randomblob(3500) FROM n",
            (rows_per_batch,),
        )
        connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def _working_copy(source: Path, folder: Path) -> Path:
    for file in _files(source):
        shutil.copyfile(file, folder / file.name)
    return folder / source.name


def _unlock_beside_kdf(
    path: Path, *, check_pages_later: bool, repeat: int = 5
) -> tuple[float, float]:
    """Medians of (unlock, argon2id alone), sampled in turns so a busy machine weighs on both
    alike. Unlock returns when the database is readable and the log-in checks are done;
    closing, which waits for the page check, is not timed."""
    slot = next(KeySlotFile.load(path).user_slots(USER))
    salt = base64.b64decode(slot.salt)
    unlocks, kdfs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        KdfParams().derive(PASSWORD.encode(), salt)
        kdfs.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        db, _outcome = PracticeDatabase.unlock(
            path, USER, PASSWORD, check_pages_later=check_pages_later
        )
        unlocks.append((time.perf_counter() - started) * 1000)
        db.close()
    return statistics.median(unlocks), statistics.median(kdfs)


_WALK = """
import resource, sys, time
from ketadesk.storage.security.database import PracticeDatabase
db, outcome = PracticeDatabase.unlock(sys.argv[1], sys.argv[2], sys.argv[3],
                                      check_pages_later=True)
db.wait_for_page_check()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
verdict = db.check_whole_audit_trail(outcome.actor)
took = (time.perf_counter() - started) * 1000
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
walker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the walk's own process
db.close()
assert verdict.is_intact, verdict.describe()
print(took, before / 1024, after / 1024, walker / 1024)
"""


def _background_walk(path: Path) -> tuple[float, float, float, float]:
    """(ms, peak RSS MB before the walk, after it, of the walk's own process) in a process of
    its own (the app's, logged in)."""
    out = subprocess.run([sys.executable, "-c", _WALK, str(path), USER, PASSWORD],
                         capture_output=True, text=True, check=True)
    took, before, after, walker = (float(x) for x in out.stdout.split())
    return took, before, after, walker


def _reads_ms(connection: Any, count: int) -> list[float]:
    """``count`` keystroke-sized read bursts (ten small statements, rows turned into tuples
    in Python, as a roster page is), a short pause between them; each burst's milliseconds."""
    took = []
    for number in range(count):
        started = time.perf_counter()
        for offset in range(10):
            rows = connection.execute(
                "SELECT seq, occurred_at, user_name, action FROM audit_events WHERE seq > ? "
                "ORDER BY seq LIMIT 100", ((number * 10 + offset) * 997 % EVENTS,)
            ).fetchall()
            _cells = [tuple(str(v) for v in row) for row in rows]
        took.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    return took


def _reads_beside_walk(path: Path, walk: Callable[..., object] | None) -> list[float]:
    """Read bursts on this thread while ``walk`` (a whole-chain walk) runs on another."""
    key = KeySlotFile.load(path).unwrap_for_user(USER, PASSWORD)
    connection = raw_connection(path, key)
    stop = threading.Event()
    thread = None
    if walk is not None:
        def run_walk() -> None:
            try:
                walk(path, key, None, lambda: not stop.is_set())
            except WalkStopped:
                pass

        thread = threading.Thread(target=run_walk, daemon=True)
        thread.start()
        time.sleep(3.0)  # the walk is well under way (a process of its own has started)
    try:
        return _reads_ms(connection, 150)
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        connection.close()


def _timed_ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def run() -> list[BenchResult]:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    audit_source = _cached(f"audit-signed-{EVENTS}", _build_audit)
    large_source = _cached(f"large-{GIGABYTES:g}gb", _build_large)
    rows: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-history-", dir=CACHE) as folder:
        path = _working_copy(audit_source, Path(folder))
        unlock, kdf = _unlock_beside_kdf(path, check_pages_later=True)
        walk_ms, rss_before, rss_after, rss_walker = _background_walk(path)
        size_mb = path.stat().st_size / 1e6
        rows.append(BenchResult(
            f"audit: unlock with {EVENTS:,} events", unlock, "argon2id KDF alone", kdf,
            goal=GOAL,
            extra=f"+{unlock - kdf:.0f} ms; {size_mb:.0f} MB file; background full walk "
            f"{walk_ms / 1000:.1f} s, peak RSS {rss_before:.0f} -> {rss_after:.0f} MB (the "
            f"walk's own process {rss_walker:.0f} MB); load average {load}",
        ))
        alone = _reads_beside_walk(path, None)
        beside_thread = _reads_beside_walk(path, walk_whole_chain)
        beside_process = _reads_beside_walk(path, walk_whole_chain_apart)
        rows.append(BenchResult(
            "audit: reads on the GUI thread during the full walk", percentile(beside_process, 50),
            "the same reads with no walk (p50)", percentile(alone, 50),
            goal="as without the walk",
            extra=f"walk in a process of its own (now): p50 {percentile(beside_process, 50):.1f}"
            f", p95 {percentile(beside_process, 95):.1f} ms; walk on a thread (before): p50 "
            f"{percentile(beside_thread, 50):.1f}, p95 {percentile(beside_thread, 95):.1f} ms; "
            f"no walk: p95 {percentile(alone, 95):.1f} ms; 150 bursts of 10 reads of 100 rows; "
            f"load average {load}",
            p95_ms=percentile(beside_process, 95),
        ))
        for file in Path(folder).iterdir():  # a cache of an older schema leaves a backup
            if file.is_dir():
                shutil.rmtree(file)
            else:
                file.unlink()
        path = _working_copy(large_source, Path(folder))
        unlock, kdf = _unlock_beside_kdf(path, check_pages_later=True)
        key = KeySlotFile.load(path).unwrap_for_user(USER, PASSWORD)
        check_ms = _timed_ms(lambda: cipher_damaged_pages(path, key))
        before_ms, _kdf = _unlock_beside_kdf(path, check_pages_later=False, repeat=1)
        size_gb = path.stat().st_size / 1e9
        rows.append(BenchResult(
            f"integrity: unlock of a {GIGABYTES:g} GB database", unlock, "argon2id KDF alone",
            kdf, goal=GOAL,
            extra=f"+{unlock - kdf:.0f} ms; {size_gb:.2f} GB file; page check on its worker "
            f"{check_ms / 1000:.1f} s; unlock checking pages first (the commands) "
            f"{before_ms / 1000:.1f} s; load average {load}",
        ))
    return rows
