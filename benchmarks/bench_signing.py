"""Signed audit trail and key rotation: what they cost on a practice with many events.

Measures ``verify-audit``'s full signature check over every event beside its floor (the hash
chain alone, which it also runs), the log-in check (newest 2,000 signatures), and one key
rotation (re-encrypting the whole database) beside its floor (an encrypted backup copy, which
writes the same bytes). Events: ``KETADESK_BENCH_EVENTS`` (default 20,000); patients:
``KETADESK_BENCH_PATIENTS`` (default 2,000).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks._harness import BenchResult, median_ms
from ketadesk.core import audit_actions
from ketadesk.core.permissions import Role
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.security.audit_checkpoint import LOGIN_CHECKPOINT_AFTER
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.security.audit_signatures import check_event_signatures
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.grants import check_grants
from ketadesk.storage.security.users import add_user

EVENTS = int(os.environ.get("KETADESK_BENCH_EVENTS", "20000"))
PATIENTS = int(os.environ.get("KETADESK_BENCH_PATIENTS", "2000"))
USER, PASSWORD = "benchdoc", "benchmark passphrase"


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-signing-") as folder:
        path = Path(folder) / "practice.db"
        db, actor, _recovery = PracticeDatabase.create(
            path, user_name=USER, full_name="Dr. Bench Mark", password=PASSWORD
        )
        with db.session() as session:
            populate_demo_patients(session, PATIENTS, entered_by=USER)
            for number in range(EVENTS):
                record_event(session, actor, audit_actions.PATIENT_VIEWED,
                             patient_id=number % PATIENTS + 1, detail="chart opened")

        def all_signatures() -> None:
            with db.session() as session:
                grants = check_grants(session, db.database_id, db.trust_root)
                assert check_event_signatures(session, grants).is_valid

        def login_signatures() -> None:
            with db.session() as session:
                grants = check_grants(session, db.database_id, db.trust_root)
                # at most this many events after the newest checkpoint (plus one session's)
                check_event_signatures(session, grants, EVENTS - LOGIN_CHECKPOINT_AFTER)

        def chain_only() -> None:
            with db.session() as session:
                assert verify_audit(session).is_intact

        def rotation() -> None:
            db.rotate_database_key(actor, "benchmark")

        def backup_copy() -> None:
            db.backup_to(Path(folder) / "copy.db")

        add_user(db, actor, user_name="benchadmin", full_name="Bench Admin", role=Role.ADMIN,
                 password=PASSWORD)
        chain = median_ms(chain_only, repeat=3)
        results = [
            BenchResult(f"verify-audit signatures, {EVENTS:,} events",
                        median_ms(all_signatures, repeat=3), "hash chain alone", chain,
                        goal="under 5 s"),
            BenchResult(f"log-in signature check (after a checkpoint, {LOGIN_CHECKPOINT_AFTER})",
                        median_ms(login_signatures, repeat=3), "hash chain alone", chain,
                        goal="under 1 s"),
            BenchResult(f"key rotation, {PATIENTS:,} patients", median_ms(rotation, repeat=3),
                        "encrypted backup copy", median_ms(backup_copy, repeat=3),
                        goal="under 10 s"),
        ]
        db.close()
        return results
