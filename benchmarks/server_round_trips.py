"""``python -m benchmarks.server_round_trips``: what one search keystroke sends a practice server.

Not a timing: counts, which load on the machine does not change. A dev cluster with
``KETADESK_ROUND_TRIP_PATIENTS`` synthetic patients (default 2,000) is made under the system
temp folder (``ketadesk-round-trips``, reused by later runs), the roster's table model is
opened on it as the app opens it (logged in as a physician, over verified TLS), and each
prefix of ``bench_roster.TYPED`` is set as the search, as the search box does after its
debounce. libpq's own trace of every message this workstation sends is read back:

- round trips: messages that wait for the server's answer (``Sync`` of the extended
  protocol, a simple ``Query``), i.e. the network waits of one keystroke;
- statements: the SQL sent, grouped by its first words (``SELECT 1``, ``BEGIN``...);
- client CPU: this process's CPU time per key (SQLAlchemy, psycopg, the model), median.

The cluster is stopped at the end.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PATIENTS = int(os.environ.get("KETADESK_ROUND_TRIP_PATIENTS", "2000"))
USER = "physician"
PASSWORD = "demo-password-1"
_TRACE = Path(tempfile.gettempdir()) / f"ketadesk-round-trips-{os.getpid()}.trace"


def _folder() -> Path:
    from benchmarks.bench_roster import _schema_key

    return Path(tempfile.gettempdir()) / "ketadesk-round-trips" / f"{PATIENTS}-{_schema_key()}"


def _server() -> tuple[Any, Any]:
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.roster.roster_status import install_status_tracking
    from ketadesk.storage.server.dev_cluster import HOST, start_dev_cluster
    from ketadesk.storage.server.practice_roles import OWNER_ROLE
    from ketadesk.storage.server.server_engine import ServerAddress
    from ketadesk.storage.server.server_practice import ServerPractice
    from ketadesk.storage.server.server_upgrade import upgrade_server_practice

    folder = _folder()
    cluster = start_dev_cluster(folder)
    address = ServerAddress(HOST, cluster.port, cluster.database)
    install_status_tracking()
    ready = folder / "practice-ready"
    if ready.exists():
        upgrade_server_practice(
            address, cluster.ca_certificate, OWNER_ROLE, cluster.owner_password()
        )
        return cluster, address
    ServerPractice.create(
        address,
        cluster.ca_certificate,
        owner_password=cluster.owner_password(),
        user_name=USER,
        full_name="Dr. Demo Physician",
        password=PASSWORD,
    )
    practice = ServerPractice.log_in(address, cluster.ca_certificate, USER, PASSWORD)
    try:
        with practice.session() as session:
            populate_demo_patients(session, PATIENTS, entered_by=USER)
    finally:
        practice.close()
    ready.write_text("ok\n", encoding="utf-8")
    return cluster, address


def _trace_every_connection(engine: Any, trace: Any) -> None:
    """libpq traces each connection of ``engine`` (the ones open already and new ones)."""
    from sqlalchemy import event

    def traced(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.pgconn.trace(trace.fileno())

    event.listen(engine, "connect", traced)
    engine.dispose()  # connections made from now on are traced


_MESSAGE = re.compile(r"\tF\t\d+\t(\w+)\s*(.*)")


def _read_trace(text: str) -> tuple[int, Counter[str]]:
    """Round trips and statements (by their first words) in a libpq trace."""
    round_trips = 0
    statements: Counter[str] = Counter()
    for line in text.splitlines():
        found = _MESSAGE.search(line)
        if found is None:
            continue
        message, rest = found.groups()
        if message in ("Sync", "Query"):
            round_trips += 1
        if message in ("Parse", "Query"):
            if message == "Parse":  # the statement's name first ("" unnamed)
                rest = re.sub(r'^"[^"]*"\s*', "", rest)
            sql = re.match(r'"([^"]+)', rest)
            words = sql.group(1).split()[:2] if sql else ["?"]
            statements[" ".join(words).upper()] += 1
    return round_trips, statements


def _plans(engine: Any) -> str:
    """The statements psycopg prepared on the server (after ``prepare_threshold`` runs of the
    same SQL) and how PostgreSQL planned their runs, on each pooled connection."""
    from sqlalchemy import text

    found = []
    for _ in range(engine.pool.checkedin()):
        with engine.connect() as connection:
            found.append(tuple(connection.execute(text(
                "SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                " FROM pg_prepared_statements"
            )).one()))  # fmt: skip
    return "; ".join(f"{n} prepared, {g} generic plans, {c} custom plans" for n, g, c in found)


def run() -> None:
    from PySide6.QtWidgets import QApplication

    from benchmarks.bench_roster import TYPED
    from ketadesk.storage.roster.roster_query import RosterFilter
    from ketadesk.storage.server.dev_cluster import stop_dev_cluster
    from ketadesk.storage.server.server_practice import ServerPractice
    from ketadesk.ui.roster.roster_table_model import RosterTableModel

    _app = QApplication.instance() or QApplication([])
    cluster, address = _server()
    try:
        practice = ServerPractice.log_in(address, cluster.ca_certificate, USER, PASSWORD)
        try:
            model = RosterTableModel(practice)
            model.refresh()  # the roster opened after log-in (and its one-time preparation)
            prefixes = [word[:n] for word in TYPED for n in range(1, len(word) + 1)]
            for text in prefixes[:3]:  # warm: statement caches, the pool's connections
                model.set_filter(RosterFilter(search_text=text))
            with open(_TRACE, "w", encoding="utf-8") as trace:
                _trace_every_connection(practice.engine, trace)
                model.set_filter(RosterFilter(search_text="z"))  # the traced connection made
                trace.flush()
                trace.seek(0)
                trace.truncate()
                cpu: list[float] = []
                for text in prefixes:
                    started = time.process_time()
                    model.set_filter(RosterFilter(search_text=text))
                    cpu.append((time.process_time() - started) * 1000)
                trace.flush()
            round_trips, statements = _read_trace(_TRACE.read_text(encoding="utf-8"))
            plans = _plans(practice.engine)
        finally:
            practice.close()
    finally:
        stop_dev_cluster(_folder())
        if not os.environ.get("KETADESK_KEEP_TRACE"):
            _TRACE.unlink(missing_ok=True)
    keys = len(prefixes)
    print(f"{keys} search keystrokes on a server with {PATIENTS} patients")
    print(f"round trips: {round_trips} ({round_trips / keys:.2f} a key)")
    for words, count in statements.most_common():
        print(f"  {count:5d}  {words}")
    print(f"prepared statements on the server: {plans}")
    print(f"client CPU a key: median {statistics.median(cpu):.2f} ms, "
          f"mean {statistics.fmean(cpu):.2f} ms")


if __name__ == "__main__":
    run()
    sys.exit(0)
