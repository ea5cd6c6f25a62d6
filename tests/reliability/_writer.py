"""A writer process for the crash, backup and concurrency tests (run as a script).

    _writer.py write DB USER TAG BATCH PAUSE_MS   (password on stdin) unlock, then write forever
    _writer.py serve DB USER TAG BATCH            (password on stdin) fork-server for crash trials

Each transaction goes through ``PracticeDatabase.session()`` and the patient services: it
alternates between one new chart (``create_patient`` + ``add_vitals``) and a roster CSV
import of BATCH patients (``read_patient_csv`` + ``import_patients``, all or nothing). A line
is printed, and flushed, only after its transaction committed: ``P <patient id>`` or
``B <batch tag> <size>`` (the tag is stored in address line 2). ``BUSY`` means the database
reported itself busy (a clean DatabaseBusyError). The server reads ``go`` lines from stdin;
for each it forks a child that opens the database and writes until the test kills it, then
prints ``DONE <status>``. Forking from a process that has already imported everything keeps
50 kill trials within the test budget.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ketadesk.core.demographics import PatientDemographics  # noqa: E402
from ketadesk.core.patient_csv import read_patient_csv  # noqa: E402
from ketadesk.core.permissions import Actor  # noqa: E402
from ketadesk.models.users import User  # noqa: E402
from ketadesk.storage.patients.patient_import import import_patients  # noqa: E402
from ketadesk.storage.patients.patients import add_vitals, create_patient  # noqa: E402
from ketadesk.storage.security.database import (  # noqa: E402
    DatabaseBusyError,
    PracticeDatabase,
    actor_from_user,
)
from ketadesk.storage.security.keyslots import KeySlotFile  # noqa: E402
from ketadesk.storage.security.signing_keys import Signer  # noqa: E402

MAX_TRANSACTIONS = 5000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


SINGLE = PatientDemographics(
    first_name="Crash",
    last_name="Single",
    dob=date(1979, 6, 15),
    sex="female",
    state="NJ",
    county="Mercer",
    address_line2="Single",
)
CSV_HEADER = "first_name,last_name,dob,sex,state,county,address_line1,address_line2,weight_kg\n"


def _import_file(batch_tag: str, size: int) -> bytes:
    """A roster CSV of ``size`` synthetic rows, all tagged with ``batch_tag`` (address line 2)."""
    rows = "".join(
        f"Crash,Importee,1980-02-{i % 27 + 1:02d},male,NJ,Mercer,{i} Import Road,{batch_tag},71\n"
        for i in range(size)
    )
    return (CSV_HEADER + rows).encode()


def write_forever(db: PracticeDatabase, actor: Actor, tag: str, batch: int, pause_ms: int) -> None:
    """Alternate one saved chart (patient + vitals) and one CSV import, through the services."""
    import time

    for number in range(MAX_TRANSACTIONS):
        now = datetime.now(UTC)
        try:
            if number % 2 == 0:
                with db.session() as session:
                    record = create_patient(
                        session, actor, SINGLE, today=now.date(), allow_duplicate=True,
                        weight_kg=70.5,
                    )
                    add_vitals(session, actor, record.id, measured_at=now,
                               systolic=120 + number % 20, diastolic=80, heart_rate=70)
                say(f"P {record.id}")
            else:
                batch_tag = f"Batch {tag}n{number}"
                plan = read_patient_csv(_import_file(batch_tag, batch), today=now.date())
                with db.session() as session:
                    import_patients(session, actor, plan, import_duplicates=True)
                say(f"B {batch_tag.split()[1]} {batch}")
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


class _RollBack(Exception):
    pass


def _warm_up(db_path: Path, key: bytes, slots: KeySlotFile, user: str) -> None:
    """Run each write once and roll it back, so forked children start with warm caches."""
    db = PracticeDatabase.open_with_key(db_path, key, slots)
    try:
        with db.session() as session:
            actor = _actor(session, user)
            now = datetime.now(UTC)
            record = create_patient(session, actor, SINGLE, today=now.date(), allow_duplicate=True)
            add_vitals(session, actor, record.id, measured_at=now, heart_rate=70)
            plan = read_patient_csv(_import_file("Batch warmup", 2), today=now.date())
            import_patients(session, actor, plan, import_duplicates=True)
            raise _RollBack
    except _RollBack:
        pass
    finally:
        db.close()


def _actor(session: Session, user: str) -> Actor:
    return actor_from_user(
        session.execute(select(User).where(User.user_name == user)).scalar_one()
    )


def _serve(argv: list[str]) -> int:
    db_path, user, tag, batch = Path(argv[0]), argv[1], argv[2], int(argv[3])
    password = sys.stdin.readline().rstrip("\n")
    slots = KeySlotFile.load(db_path)
    _slot, held = slots.open_user_slot(user, password)  # the password is checked once, here
    key = held.database_key
    assert held.signing_key is not None
    signer = Signer(user, held.signing_key)  # events are signed as after a log-in
    _warm_up(db_path, key, slots, user)
    say("SERVING")
    for trial, command in enumerate(sys.stdin):
        if command.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:  # the child: open the database itself, then write until killed
            try:
                db = PracticeDatabase.open_with_key(db_path, key, slots, signer)
                with db.session() as session:
                    actor = _actor(session, user)
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
