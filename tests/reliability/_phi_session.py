"""A scripted KetaDesk session for the PHI-leak test (run as a script; see test_phi_leaks.py).

    _phi_session.py WORK_DIR PASSWORD [SERVER_URL CA USER]

With a practice server (a copy of the test template, USER its physician) the practice is
filled through the demo services instead of the ``demo`` command (which makes files only),
and the two unhandled exceptions are the server's own: a duplicate record number and a
missing state, whose psycopg and SQLAlchemy texts carry the row's names and the statement's
parameters.

Sets up logging exactly as the app does (``configure_logging`` at DEBUG) plus a raw Qt message
log, installs the crash hook, then: creates a demo practice, opens charts through the patient
service and the PatientChart widget (offscreen), exports treatment plans, fails a log-in, and
finally lets two exceptions whose messages hold patient data go unhandled (a worker thread,
then the main thread). Everything it writes outside ``WORK_DIR/db`` and ``WORK_DIR/export``
is scanned by the test. The script itself never prints or logs patient data.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ketadesk.crash_report import configure_logging, install_crash_hook  # noqa: E402

MARKER = "phi-session-logging-is-live"


def main(work: Path, password: str, server: list[str]) -> int:
    configure_logging(work / "logs", logging.DEBUG)
    install_crash_hook(work / "crash")
    log = logging.getLogger("ketadesk.phi_session")
    log.debug(MARKER)

    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    qt_log = open(work / "logs" / "qt-messages.log", "a", encoding="utf-8")

    def qt_messages(_mode: object, _context: object, message: str) -> None:
        qt_log.write(message + "\n")
        qt_log.flush()

    qInstallMessageHandler(qt_messages)
    app = QApplication.instance() or QApplication(["ketadesk-phi-session"])

    from sqlalchemy import select

    from ketadesk.cli import run_cli
    from ketadesk.core.errors import UserFacingError
    from ketadesk.models.patients import Patient
    from ketadesk.storage.patients.patients import get_patient_record
    from ketadesk.storage.security.database import PracticeDatabase

    if server:
        db, actor = _server_practice(server, password, log)
    else:
        db_path = work / "db" / "practice.db"
        stdin = sys.stdin
        sys.stdin = io.StringIO(password + "\n")
        try:
            status = run_cli(
                ["--db", str(db_path), "demo", "--patients", "60", "--password-stdin"]
            )
        finally:
            sys.stdin = stdin
        if status != 0:
            return status

        # A failed log-in, handled the way the app and CLI do: the message is shown, and logged.
        try:
            PracticeDatabase.unlock(db_path, "physician", password + "-wrong")
        except UserFacingError as error:
            log.info("log-in refused: %s", error.message)

        db, outcome = PracticeDatabase.unlock(db_path, "physician", password)
        actor = outcome.actor
    with db.session() as session:
        patient_ids = list(session.scalars(select(Patient.id).order_by(Patient.id)))
    for patient_id in patient_ids[:20]:  # charts through the patient service
        with db.session() as session:
            record = get_patient_record(session, actor, patient_id)
            log.debug("chart %s loaded with %d medications", record.id, len(record.medications))

    _open_charts_in_the_ui(app, db, actor, patient_ids[:4])
    exported = _export_plans(db, actor, patient_ids, work / "export")
    log.info("exported %d plans", exported)

    if server:
        worker = threading.Thread(
            target=_save_without_a_state, args=(db, patient_ids[1]), name="worker"
        )
        worker.start()
        worker.join()
        qt_log.close()
        _save_a_second_chart_with_the_same_mrn(db, patient_ids[0])  # raises, unhandled
        return 0
    secret = _patient_words(db, patient_ids[0])
    worker = threading.Thread(target=_fail_in_worker, args=(secret,), name="worker")
    worker.start()
    worker.join()
    db.close()
    qt_log.close()
    raise RuntimeError(f"could not save the chart of {secret}")


def _server_practice(
    server: list[str], password: str, log: logging.Logger
) -> tuple[object, object]:
    """Log in to the server copy (after one wrong password) and fill it as ``demo`` would."""
    import importlib

    from ketadesk.commands.demo import DEMO_STEPS
    from ketadesk.core.errors import UserFacingError
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.server.server_engine import parse_server_url
    from ketadesk.storage.server.server_practice import ServerPractice

    url, ca, user = server
    try:
        ServerPractice.log_in(parse_server_url(url), Path(ca), user, password + "-wrong")
    except UserFacingError as error:
        log.info("log-in refused: %s", error.message)
    practice = ServerPractice.log_in(parse_server_url(url), Path(ca), user, password)
    with practice.session() as session:
        populate_demo_patients(session, 60, entered_by=user)
    for step in DEMO_STEPS:
        module_name, function_name = step.split(":")
        getattr(importlib.import_module(module_name), function_name)(practice, practice.actor)
    return practice, practice.actor


def _copy_of_patient(db: object, patient_id: int, **changes: object) -> object:
    from ketadesk.models.patients import Patient

    with db.session() as session:  # type: ignore[attr-defined]
        p = session.get(Patient, patient_id)
        fields = dict(mrn=p.mrn, first_name=p.first_name, last_name=p.last_name, dob=p.dob,
                      state=p.state, email=p.email, phone=p.phone)
    fields.update(changes)
    return Patient(**fields)


def _save_without_a_state(db: object, patient_id: int) -> None:
    """A save the server refuses with 'Failing row contains (… the patient's names …)'."""
    row = _copy_of_patient(db, patient_id, mrn="KD-99999990", state=None)
    with db.session() as session:  # type: ignore[attr-defined]
        session.add(row)


def _save_a_second_chart_with_the_same_mrn(db: object, patient_id: int) -> None:
    """A save the server refuses with 'Key (mrn)=(…) already exists' and the parameters."""
    row = _copy_of_patient(db, patient_id)
    with db.session() as session:  # type: ignore[attr-defined]
        session.add(row)


def _patient_words(db: object, patient_id: int) -> str:
    from ketadesk.models.patients import Patient

    with db.session() as session:  # type: ignore[attr-defined]
        patient = session.get(Patient, patient_id)
        return f"{patient.first_name} {patient.last_name} {patient.dob.isoformat()} {patient.mrn}"


def _fail_in_worker(secret: str) -> None:
    raise ValueError(f"worker failed on {secret}")


def _open_charts_in_the_ui(app: object, db: object, actor: object, ids: list[int]) -> None:
    try:
        from ketadesk.ui.chart.patient_chart import PatientChart
        from ketadesk.ui.common.context import AppContext
    except ImportError:  # the chart widget has not landed: the service path above still ran
        logging.getLogger("ketadesk.phi_session").warning("PatientChart not available")
        return
    context = AppContext(db, actor)  # type: ignore[arg-type]
    charts = []
    for patient_id in ids:
        chart = PatientChart(context, patient_id)
        chart.show()
        charts.append(chart)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)
    for chart in charts:
        chart.close()
        chart.deleteLater()
    app.processEvents()  # type: ignore[attr-defined]


def _export_plans(db: object, actor: object, ids: list[int], folder: Path) -> int:
    from ketadesk.core.errors import UserFacingError

    try:
        from ketadesk.storage.plans.plan_export import export_plan_to_file
    except ImportError:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    exported = 0
    for patient_id in ids:
        try:
            export_plan_to_file(db, actor, patient_id, folder / f"plan-{patient_id}.pdf")  # type: ignore[arg-type]
        except UserFacingError:
            continue  # no signed protocol for this patient
        exported += 1
        if exported == 3:
            break
    return exported


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:6]))
