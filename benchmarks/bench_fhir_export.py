"""FHIR export of the 50,000-patient demo practice: every patient's bundle written to a folder.

Goal (issue 20): the whole practice in under 2 minutes on 2 cores. The export runs as the
app and the ``export-fhir --all`` command run it: this process reads the charts while
``EXPORT_WORKERS`` (2) worker processes build, validate and write the bundles. The floor is
reading the same charts from the database into snapshots (no FHIR models, no files), so the
table shows what the mapping, validation and writing add on top of the reads. The load
average before and after is printed beside the figure: on a shared machine it moves it.

The demo database is built with the ``demo`` command's own steps (patients, reviews,
protocols, outcomes) and cached under ``$KETADESK_BENCH_CACHE`` (it takes minutes); the export
itself runs once per benchmark run (it takes about a minute or more, so no repeats).
``KETADESK_BENCH_FHIR_PATIENTS`` changes the size for a quick look.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import BenchResult
from ketadesk.commands.demo import DEMO_STEPS
from ketadesk.commands.interchange import EXPORT_WORKERS
from ketadesk.storage.demo import demo_data
from ketadesk.storage.interchange.fhir_export import (
    BATCH,
    all_patient_ids,
    export_patient_bundles,
    patient_snapshots,
)
from ketadesk.storage.security.database import PracticeDatabase

PATIENTS = int(os.environ.get("KETADESK_BENCH_FHIR_PATIENTS", "50000"))
CACHE = Path(os.environ.get("KETADESK_BENCH_CACHE",
                            Path(tempfile.gettempdir()) / "ketadesk-bench-cache"))
USER, PASSWORD = "physician", "benchmark passphrase"
GOAL = "< 120 s for 50,000 patients on 2 cores"


def _demo_database() -> Path:
    final = CACHE / f"fhir-demo-{PATIENTS}"
    if (final / "practice.db").exists():
        return final / "practice.db"
    scratch = CACHE / f"fhir-demo-{PATIENTS}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    database, physician, _recovery = PracticeDatabase.create(
        scratch / "practice.db", user_name=USER, full_name="Dr. Avery Demo-Physician",
        password=PASSWORD,
    )
    try:
        with database.session() as session:
            demo_data.populate_demo_patients(session, PATIENTS, entered_by=USER)
        for step in DEMO_STEPS:
            module_name, function_name = step.split(":")
            getattr(importlib.import_module(module_name), function_name)(database, physician)
    finally:
        database.close()
    print(f"  built the {PATIENTS}-patient demo in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    scratch.rename(final)
    return final / "practice.db"


def run() -> list[BenchResult]:
    source = _demo_database()
    database, outcome = PracticeDatabase.unlock(source, USER, PASSWORD)
    try:
        with database.session() as session:
            ids = all_patient_ids(session)
            started = time.perf_counter()
            for start in range(0, len(ids), BATCH):
                patient_snapshots(session, ids[start : start + BATCH])
            floor_ms = (time.perf_counter() - started) * 1000
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="ketadesk-bench-fhir-") as tmp:
            with database.session() as session:
                cpu_before = os.times()
                started = time.perf_counter()
                summary = export_patient_bundles(session, outcome.actor, ids, Path(tmp) / "out",
                                                 workers=EXPORT_WORKERS)
                export_ms = (time.perf_counter() - started) * 1000
                cpu = os.times()
                session.rollback()  # leave the cached database's audit trail as it was
    finally:
        database.close()
    per_patient = export_ms / max(1, summary.patients)
    here_s = cpu.user + cpu.system - cpu_before.user - cpu_before.system
    workers_s = (cpu.children_user + cpu.children_system - cpu_before.children_user
                 - cpu_before.children_system)
    return [
        BenchResult(
            f"fhir export, {summary.patients:,} demo patients",
            export_ms,
            "read the same charts (snapshots only)",
            floor_ms,
            GOAL,
            extra=f"{summary.resources:,} resources, {per_patient:.2f} ms per patient on "
            f"{EXPORT_WORKERS} workers; CPU {here_s:.0f} s reading + {workers_s:.0f} s in the "
            f"workers; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        )
    ]
