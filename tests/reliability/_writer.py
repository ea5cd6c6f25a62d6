"""A writer process for the crash, backup and concurrency tests (run as a script).

    _writer.py write DB USER TAG BATCH PAUSE_MS   (password on stdin) unlock, then write forever
    _writer.py serve DB USER TAG BATCH            (password on stdin) fork-server for crash trials

Each transaction goes through ``PracticeDatabase.session()`` and alternates between one patient
with a vital-signs row and a batch of BATCH patients (an import). A line is printed, and
flushed, only after the transaction committed: ``P <patient id>`` or ``B <batch tag> <size>``.
``BUSY`` means the database reported itself busy (a clean DatabaseBusyError). The server reads
``go`` lines from stdin; for each it forks a child that opens the database and writes until the
parent test kills it, then prints ``DONE <status>``. Forking from a process that has already
imported everything keeps 50 kill trials within the test budget.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ketadesk.core import audit_actions  # noqa: E402
from ketadesk.core.permissions import Actor  # noqa: E402
from ketadesk.models.patients import Patient, VitalSign  # noqa: E402
from ketadesk.storage.audit_log import record_event  # noqa: E402
from ketadesk.storage.database import DatabaseBusyError, PracticeDatabase  # noqa: E402
from ketadesk.storage.keyslots import KeySlotFile  # noqa: E402

MAX_TRANSACTIONS = 5000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _patient(last_name: str) -> Patient:
    return Patient(
        mrn="T" + uuid.uuid4().hex[:15],
        first_name="Crashtest",
        last_name=last_name,
        first_name_folded="crashtest",
        last_name_folded=last_name.lower(),
        dob=date(1979, 6, 15),
        state="NJ",
        status="screening",
    )


def write_forever(db: PracticeDatabase, actor: Actor, tag: str, batch: int, pause_ms: int) -> None:
    import time

    for number in range(MAX_TRANSACTIONS):
        try:
            if number % 2 == 0:
                with db.session() as session:
                    patient = _patient("Single")
                    session.add(patient)
                    session.flush()
                    session.add(
                        VitalSign(
                            patient_id=patient.id,
                            measured_at=datetime.now(UTC),
                            systolic=120 + number % 20,
                            diastolic=80,
                            heart_rate=70,
                            weight_kg=70.5,
                            entered_by=actor.user_name,
                        )
                    )
                    record_event(session, actor, audit_actions.PATIENT_CREATED,
                                 patient_id=patient.id)
                    patient_id = patient.id
                say(f"P {patient_id}")
            else:
                batch_tag = f"Batch-{tag}-{number}"
                with db.session() as session:
                    session.add_all([_patient(batch_tag) for _ in range(batch)])
                    record_event(session, actor, audit_actions.PATIENTS_IMPORTED,
                                 detail=f"{batch} rows")
                say(f"B {batch_tag} {batch}")
        except DatabaseBusyError:
            say("BUSY")
        if pause_ms:
            time.sleep(pause_ms / 1000)


def _write(argv: list[str]) -> int:
    db_path, user, tag, batch, pause_ms = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    password = sys.stdin.readline().rstrip("\n")
    db, outcome = PracticeDatabase.unlock(Path(db_path), user, password)
    say("READY")
    write_forever(db, outcome.actor, tag, batch, pause_ms)
    db.close()
    return 0


def _serve(argv: list[str]) -> int:
    db_path, user, tag, batch = Path(argv[0]), argv[1], argv[2], int(argv[3])
    password = sys.stdin.readline().rstrip("\n")
    slots = KeySlotFile.load(db_path)
    key = slots.unwrap_for_user(user, password)  # the password is checked once, here
    say("SERVING")
    for trial, command in enumerate(sys.stdin):
        if command.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:  # the child: open the database itself, then write until killed
            try:
                db = PracticeDatabase.open_with_key(db_path, key, slots)
                with db.session() as session:
                    from sqlalchemy import select

                    from ketadesk.models.users import User
                    from ketadesk.storage.database import actor_from_user

                    actor = actor_from_user(
                        session.execute(select(User).where(User.user_name == user)).scalar_one()
                    )
                say("READY")
                write_forever(db, actor, f"{tag}{trial}", batch, 0)
            except BaseException as error:  # reported to the test, never silently
                say(f"ERROR {type(error).__name__}: {error}")
                os._exit(3)
            os._exit(0)
        say(f"PID {pid}")
        _pid, status = os.waitpid(pid, 0)
        say(f"DONE {status}")
    return 0


def main(argv: list[str]) -> int:
    mode, rest = argv[0], argv[1:]
    return _write(rest) if mode == "write" else _serve(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
