"""The practice server over loopback TLS with 50,000 patients.

- **Connect + unlock to roster painted**: the desktop's own path (``bench_roster._measure``):
  the log-in dialog with the server chosen, Log in clicked, the connection as the user's own
  role (TLS verified against the practice CA, SCRAM-SHA-256), the log-in audit event, the main
  window and the roster's first page painted. Floor, measured in the same run: a bare psycopg
  connection with the same TLS and SCRAM, closed at once.
- **Search keystroke to rows updated**: real key events into the roster's search box, timed
  to the table's next paint (debounce, SQL on the server, model, repaint), the same prefixes
  as ``bench_roster``; floor: the roster SQL alone on the server.
- **10 workstations saving check-ins**: 10 processes, each logged in as a physician with its
  own connections, each saving check-ins (one transaction each, through
  ``record_checkin``) for random patients as fast as it can for a fixed number of saves;
  throughput over the wall time of all ten, and the p50/p95 of one save. Every write on a
  server takes the practice's write lock (the audit chain must not fork), so the saves are
  serialised by design.

The server is a dev cluster (configured as production) with the demo patients, made once and
kept under the system temp folder (``ketadesk-bench/server-N-<schema>``), started for the run
(its grants, triggers and search indexes brought to this KetaDesk's, as ``server upgrade``
does) and stopped after it. Patients: ``KETADESK_BENCH_PATIENTS`` (default 50,000); saves per
workstation: ``KETADESK_BENCH_SAVES`` (default 40).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import BenchResult, median_ms, percentile
from benchmarks.bench_roster import PATIENTS, _measure, _schema_key

USER = "physician"
PASSWORD = "demo-password-1"
WORKSTATIONS = 10
SAVES = int(os.environ.get("KETADESK_BENCH_SAVES", "40"))


def _folder() -> Path:
    return Path(tempfile.gettempdir()) / "ketadesk-bench" / f"server-{PATIENTS}-{_schema_key()}"


def _server() -> tuple[object, object, str]:
    """The cached cluster (started; made and filled first if missing), its address, and how
    it was got."""
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.roster.roster_status import install_status_tracking
    from ketadesk.storage.server.dev_cluster import HOST, remove_dev_cluster, start_dev_cluster
    from ketadesk.storage.server.server_engine import ServerAddress
    from ketadesk.storage.server.server_practice import ServerPractice

    folder = _folder()
    ready = folder / "practice-ready"
    if folder.exists() and not ready.exists():
        remove_dev_cluster(folder)  # an interrupted build: start over
    cluster = start_dev_cluster(folder)
    address = ServerAddress(HOST, cluster.port, cluster.database)
    if ready.exists():
        # The cache is keyed by the migrations only: bring the server objects (the search
        # indexes among them) to this KetaDesk's, as ``server upgrade`` does.
        from ketadesk.storage.server.practice_roles import OWNER_ROLE
        from ketadesk.storage.server.server_upgrade import upgrade_server_practice

        upgrade_server_practice(
            address, cluster.ca_certificate, OWNER_ROLE, cluster.owner_password()
        )
        return cluster, address, f"cached server ({folder.parent})"
    started = time.perf_counter()
    ServerPractice.create(
        address,
        cluster.ca_certificate,
        owner_password=cluster.owner_password(),
        user_name=USER,
        full_name="Dr. Demo Physician",
        password=PASSWORD,
    )
    install_status_tracking()  # the roster's status rows, as the app keeps them
    practice = ServerPractice.log_in(address, cluster.ca_certificate, USER, PASSWORD)
    try:
        for chunk, first in enumerate(range(0, PATIENTS, 5000)):
            with practice.session() as session:
                populate_demo_patients(
                    session, min(5000, PATIENTS - first), entered_by=USER, seed=20261125 + chunk
                )
    finally:
        practice.close()
    _analyse(cluster, address)
    ready.write_text("ok\n", encoding="utf-8")
    seconds = time.perf_counter() - started
    return cluster, address, f"server filled in {seconds:.0f} s and cached ({folder.parent})"


def _analyse(cluster: object, address: object) -> None:
    from ketadesk.storage.server.practice_roles import OWNER_ROLE, connect

    with connect(
        host=address.host,  # type: ignore[attr-defined]
        port=address.port,  # type: ignore[attr-defined]
        database=address.database,  # type: ignore[attr-defined]
        user=OWNER_ROLE,
        password=cluster.owner_password(),  # type: ignore[attr-defined]
        ca_certificate=cluster.ca_certificate,  # type: ignore[attr-defined]
        autocommit=True,
    ) as owner:
        owner.execute("VACUUM ANALYZE")


def _connect_floor_ms(cluster: object, address: object) -> float:
    import psycopg

    def connect() -> None:
        psycopg.connect(
            host=address.host,  # type: ignore[attr-defined]
            port=address.port,  # type: ignore[attr-defined]
            dbname=address.database,  # type: ignore[attr-defined]
            user=USER,
            password=PASSWORD,
            sslmode="verify-full",
            sslrootcert=str(cluster.ca_certificate),  # type: ignore[attr-defined]
        ).close()

    return median_ms(connect, repeat=9, warmup=1)


def _workstation(args: tuple[str, int, str, int, int, int]) -> list[float]:
    """One simulated workstation: log in, save ``SAVES`` check-ins, return each save's ms."""
    import random

    from ketadesk.core.checkins import (
        Adherence,
        CheckInDraft,
        CheckInMode,
        Severity,
        Symptom,
        SymptomReport,
    )
    from ketadesk.storage.outcomes.outcomes import record_checkin
    from ketadesk.storage.server.dev_cluster import HOST
    from ketadesk.storage.server.server_engine import ServerAddress
    from ketadesk.storage.server.server_practice import ServerPractice

    ca, port, database, number, saves, patients = args
    rng = random.Random(number)
    practice = ServerPractice.log_in(ServerAddress(HOST, port, database), Path(ca), USER,
                                     PASSWORD)
    today = datetime.now(UTC).date()
    draft = CheckInDraft(
        date=today,
        mode=CheckInMode.VIDEO,
        recorded_by=f"Workstation {number}",
        symptoms=(SymptomReport(Symptom.NAUSEA, Severity.MILD, "synthetic"),),
        adherence=Adherence.AS_PRESCRIBED,
        notes="Synthetic benchmark check-in.",
        protocol_version_id=None,
    )
    times: list[float] = []
    try:
        for _ in range(saves):
            patient_id = rng.randrange(1, patients + 1)
            started = time.perf_counter()
            with practice.session() as session:
                record_checkin(session, practice.actor, patient_id, draft, today=today)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        practice.close()
    return times


def _concurrent_saves(cluster: object, address: object) -> tuple[float, list[float], float]:
    """Saves per second over all ten workstations, every save's ms, and the wall seconds."""
    jobs = [
        (str(cluster.ca_certificate), address.port, address.database, n, SAVES, PATIENTS)  # type: ignore[attr-defined]
        for n in range(WORKSTATIONS)
    ]
    context = multiprocessing.get_context("spawn")  # no Qt or connection carried over
    with context.Pool(WORKSTATIONS) as pool:
        pool.map(_workstation, [(*job[:4], 1, job[5]) for job in jobs])  # warm: log in, 1 save
        started = time.perf_counter()
        results = pool.map(_workstation, jobs)
        wall = time.perf_counter() - started
    times = [t for one in results for t in one]
    return len(times) / wall, times, wall


def run() -> list[BenchResult]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ketadesk.storage.server.dev_cluster import stop_dev_cluster
    from ketadesk.ui.session.login_dialog import SERVER_SETTINGS

    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    cluster, address, built = _server()
    try:
        floor = _connect_floor_ms(cluster, address)
        app = QApplication.instance() or QApplication([])
        app.setOrganizationName("KetaDeskBench")
        settings = QSettings()
        settings.setValue(f"{SERVER_SETTINGS}/ca_certificate", str(cluster.ca_certificate))  # type: ignore[attr-defined]
        try:
            m = _measure(
                Path(tempfile.gettempdir()) / "no-practice-file.db",
                server_url=address.url,  # type: ignore[attr-defined]
                user=USER,
                password=PASSWORD,
            )
        finally:
            settings.remove(SERVER_SETTINGS)
        rate, saves, wall = _concurrent_saves(cluster, address)
    finally:
        stop_dev_cluster(_folder())
    load_after = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    keystrokes, floors = m["keystrokes"], m["floors"]
    assert isinstance(keystrokes, list) and isinstance(floors, list)
    painted, unlocked = float(m["painted_ms"]), float(m["unlocked_ms"])  # type: ignore[arg-type]
    where = f"{PATIENTS} patients; {built}; load average {load_before} before, {load_after} after"
    return [
        BenchResult(
            "server: connect + unlock to roster painted",
            painted,
            "TLS connection + SCRAM alone",
            floor,
            extra=f"from Log in clicked: logged in {unlocked:.0f} ms, main window and roster "
            f"painted {painted - unlocked:.0f} ms more; {m['rows_painted']} rows; {where}",
        ),
        BenchResult(
            "server: search keystroke to rows updated",
            percentile(keystrokes, 50),
            "roster SQL alone on the server (p50)",
            percentile(floors, 50),
            goal="p95 ≤ 30 ms",
            p95_ms=percentile(keystrokes, 95),
            extra=f"{len(keystrokes)} keys; SQL p95 {percentile(floors, 95):.1f} ms",
        ),
        BenchResult(
            f"server: {WORKSTATIONS} workstations saving check-ins (one save)",
            statistics.median(saves),
            goal="throughput and p95",
            p95_ms=percentile(saves, 95),
            extra=f"{rate:.0f} saves/s over {len(saves)} saves in {wall:.1f} s "
            "(one write at a time: the practice's write lock)",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row, file=sys.stdout)
