"""Integrity check at unlock on a 50,000-patient practice database.

``PracticeDatabase.open_with_key`` runs SQLCipher's ``PRAGMA cipher_integrity_check`` (every
page's HMAC) before the database is used, so damage anywhere is found at unlock, not when the
damaged page happens to be read. This measures its cost beside the rest of the unlock and
beside a floor: reading the whole file and hashing it (SHA-256). Patients:
``KETADESK_BENCH_PATIENTS`` (default 50,000).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
from pathlib import Path

from benchmarks._harness import BenchResult, median_ms
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.engine import cipher_damaged_pages, raw_connection
from ketadesk.storage.security.keyslots import KdfParams, KeySlotFile

PATIENTS = int(os.environ.get("KETADESK_BENCH_PATIENTS", "50000"))
USER, PASSWORD = "benchdoc", "benchmark passphrase"


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _integrity_check(path: Path, key: bytes) -> None:
    connection = raw_connection(path, key)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def _unlock(path: Path) -> None:
    db, _outcome = PracticeDatabase.unlock(path, USER, PASSWORD)
    db.close()


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-integrity-") as folder:
        path = Path(folder) / "practice.db"
        started = time.perf_counter()
        db, _actor, _recovery = PracticeDatabase.create(
            path, user_name=USER, full_name="Dr. Bench Mark", password=PASSWORD
        )
        with db.session() as session:
            populate_demo_patients(session, PATIENTS, entered_by=USER)
        key = db.database_key()
        db.close()
        build_s = time.perf_counter() - started
        slots = KeySlotFile.load(path)
        size_mb = path.stat().st_size / 1e6
        slot = next(slots.user_slots(USER))
        salt = base64.b64decode(slot.salt)
        extra = f"{PATIENTS} patients, {size_mb:.0f} MB file (built in {build_s:.0f} s)"
        assert cipher_damaged_pages(path, key) == []
        return [
            BenchResult(
                "integrity: cipher_integrity_check",
                median_ms(lambda: cipher_damaged_pages(path, key), repeat=3),
                "read + SHA-256 of the file",
                median_ms(lambda: _sha256_of_file(path), repeat=3),
                goal="runs at every unlock, before any write",
                extra=extra,
            ),
            BenchResult(
                "integrity: PRAGMA integrity_check",
                median_ms(lambda: _integrity_check(path, key), repeat=3),
                extra="b-tree check, not run at unlock (for comparison)",
            ),
            BenchResult(
                "integrity: open_with_key (checks included)",
                median_ms(lambda: PracticeDatabase.open_with_key(path, key, slots).close(),
                          repeat=3),
            ),
            BenchResult(
                "integrity: full unlock with password",
                median_ms(lambda: _unlock(path), repeat=3),
                "argon2id key derivation alone",
                median_ms(lambda: KdfParams().derive(PASSWORD.encode(), salt), repeat=3),
                goal="unlock budget includes the page check",
            ),
        ]
