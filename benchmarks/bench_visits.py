"""Visit packs on a 50,000-patient demo practice: checking out 20 patients with a year of
history each, and returning a pack that brings 200 new records.

Goals (issue 18): each under 2 s. Floors measured in the same run: the bare argon2id KDF
(``KdfParams().derive``) — a check-out derives two wrapping keys (the pack's user slot and its
unused recovery slot), a return one (the pack's slot; the practice is already open).

The demo practice is the roster benchmark's cached one (``bench_roster``: built once with
``python -m ketadesk demo`` under the temp folder, keyed by the migrations). A working copy is
made per run; a year of history (52 weekly check-ins and doses, 26 PHQ-9s, 12 sets of vitals)
is added to each of the 20 x ``REPEAT`` patients checked out. Each return runs on its own copy
of the practice as it was after the check-out, so every timed return does the full merge.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._harness import BenchResult, median_ms

PATIENTS_PER_PACK = 20
NEW_RECORDS = 200
REPEAT = 3


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".keys.json"):
        made = Path(f"{source}{suffix}")
        if made.exists():
            shutil.copy2(made, folder / f"practice.db{suffix}")
    return folder / "practice.db"


def _add_a_year(session: Any, patient_ids: list[int]) -> None:
    """52 weekly check-ins and home doses, 26 PHQ-9s and 12 sets of vitals per patient."""
    from sqlalchemy import insert

    from ketadesk.models.outcomes import CheckIn, DoseLogRecord, QuestionnaireResponse
    from ketadesk.models.patients import VitalSign

    now = datetime.now(UTC)
    checkins, doses, forms, vitals = [], [], [], []
    for pid in patient_ids:
        for week in range(52):
            when = now - timedelta(days=7 * week + 1)
            checkins.append(dict(uid=uuid.uuid4().hex, patient_id=pid, checked_on=when.date(),
                                 mode="phone", recorded_by="physician",
                                 adherence="as_prescribed", notes="Steady.", created_at=when,
                                 updated_at=when))
            doses.append(dict(uid=uuid.uuid4().hex, patient_id=pid, taken_at=when,
                              dose_mg=10.0, bp_before_systolic=124, bp_before_diastolic=78,
                              entered_by="physician", effects="", created_at=when,
                              updated_at=when))
            if week % 2 == 0:
                forms.append(dict(uid=uuid.uuid4().hex, patient_id=pid, instrument="PHQ-9",
                                  taken_on=when.date(), answers_json="[1,1,1,1,1,1,1,1,0]",
                                  complete=True, total=8, band="mild", safety_alert=False,
                                  entered_by="physician", created_at=when, updated_at=when))
            if week % 4 == 0:
                vitals.append(dict(uid=uuid.uuid4().hex, patient_id=pid, measured_at=when,
                                   systolic=124, diastolic=78, heart_rate=70, weight_kg=72.0,
                                   entered_by="physician"))
    session.execute(insert(CheckIn), checkins)
    session.execute(insert(DoseLogRecord), doses)
    session.execute(insert(QuestionnaireResponse), forms)
    session.execute(insert(VitalSign), vitals)


def _kdf_ms(path: Path, user: str, password: str) -> float:
    from ketadesk.storage.security.keyslots import KdfParams, KeySlotFile

    slot = next(KeySlotFile.load(path).user_slots(user))
    salt = base64.b64decode(slot.salt)
    return median_ms(lambda: KdfParams().derive(password.encode(), salt), repeat=3, warmup=0)


def _visit_records(pack: Path, user: str, password: str) -> None:
    """NEW_RECORDS new records on the laptop: check-ins and vitals, spread over the patients."""
    from sqlalchemy import select

    from ketadesk.core.checkins import CheckInDraft
    from ketadesk.models.patients import Patient
    from ketadesk.storage.outcomes.outcomes import record_checkin
    from ketadesk.storage.patients.patients import add_vitals
    from ketadesk.storage.security.database import PracticeDatabase

    db, outcome = PracticeDatabase.unlock(pack, user, password)
    try:
        with db.session() as s:
            ids = list(s.execute(select(Patient.id).order_by(Patient.id)).scalars())
            for n in range(NEW_RECORDS // 2):
                pid = ids[n % len(ids)]
                record_checkin(s, outcome.actor, pid, CheckInDraft(
                    datetime.now(UTC).date(), "home_visit", "Dr. Demo", (), "as_prescribed",
                    "Seen at home."))
                add_vitals(s, outcome.actor, pid, measured_at=datetime.now(UTC),
                           systolic=126, diastolic=80, heart_rate=72)
    finally:
        db.close()


def run() -> list[BenchResult]:
    from sqlalchemy import func, select

    from benchmarks.bench_roster import PASSWORD, USER, _cached_demo
    from ketadesk.models.patients import Patient
    from ketadesk.storage.roster.roster_status import install_status_tracking
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.visits.visit_checkout import check_out_patients
    from ketadesk.storage.visits.visit_return import return_visit_pack

    install_status_tracking()
    source, how = _cached_demo()
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-visits-") as scratch:
        folder = Path(scratch)
        practice = _copy(source, folder / "practice")
        db, outcome = PracticeDatabase.unlock(practice, USER, PASSWORD)
        try:
            with db.session() as s:
                mrns = list(s.execute(
                    select(Patient.mrn).order_by(Patient.id).limit(PATIENTS_PER_PACK * REPEAT)
                ).scalars())
                ids = list(s.execute(
                    select(Patient.id).order_by(Patient.id).limit(PATIENTS_PER_PACK * REPEAT)
                ).scalars())
                total = s.execute(select(func.count()).select_from(Patient)).scalar_one()
                _add_a_year(s, ids)
            checkout_ms: list[float] = []
            packs: list[Path] = []
            records = 0
            for run_index in range(REPEAT):
                group = mrns[run_index * PATIENTS_PER_PACK:(run_index + 1) * PATIENTS_PER_PACK]
                pack = folder / f"pack{run_index}" / "visit.db"
                started = time.perf_counter()
                result = check_out_patients(db, outcome.actor, group, pack, PASSWORD)
                checkout_ms.append((time.perf_counter() - started) * 1000)
                records = result.record_count
                packs.append(pack)
        finally:
            db.close()
        kdf = _kdf_ms(practice, USER, PASSWORD)
        return_ms: list[float] = []
        for run_index, pack in enumerate(packs):
            _visit_records(pack, USER, PASSWORD)
            trial = _copy(practice, folder / f"return{run_index}")
            db, outcome = PracticeDatabase.unlock(trial, USER, PASSWORD)
            try:
                started = time.perf_counter()
                report = return_visit_pack(db, outcome.actor, pack, PASSWORD)
                return_ms.append((time.perf_counter() - started) * 1000)
                assert sum(report.added.values()) == NEW_RECORDS, report.added
            finally:
                db.close()
    checkout_ms.sort()
    return_ms.sort()
    patients = f"{total:,}"
    return [
        BenchResult(
            f"visit checkout: {PATIENTS_PER_PACK} patients, a year of history "
            f"({records:,} records), {patients}-patient practice",
            checkout_ms[len(checkout_ms) // 2],
            "2 x argon2id KDF",
            2 * kdf,
            "< 2 s",
            extra=how,
        ),
        BenchResult(
            f"visit return: {NEW_RECORDS} new records, {patients}-patient practice",
            return_ms[len(return_ms) // 2],
            "argon2id KDF",
            kdf,
            "< 2 s",
            extra=how,
        ),
    ]
