"""A visit pack under faults: a tampered pack audit is refused with its reason and kept; a
return killed in the middle leaves the practice unchanged, never half updated, and the pack
can be returned again afterwards.

File only: packs and the office file they return to (a server's returns:
tests/e2e/test_visit_server.py).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.core.checkins import CheckInDraft
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.models.outcomes import CheckIn
from ketadesk.models.visits import VisitLease
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_return import return_visit_pack
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.reliability.conftest import ROOT, child_env, record_figure
from tests.visit_pack_data import make_visit_practice, opened, patient_id

RETURNER = Path(__file__).with_name("_visit_returner.py")
NEW_CHECKINS = 60
KILL_TRIALS = int(os.environ.get("KETADESK_VISIT_KILL_TRIALS", "3"))


@pytest.fixture(scope="module")
def practice_and_pack(prepared_practice: Path, tmp_path_factory: Any) -> tuple[Path, Path, str]:
    """A practice, and a pack of one patient holding NEW_CHECKINS check-ins made on the laptop."""
    folder = tmp_path_factory.mktemp("visit-faults")
    practice = copy_practice(prepared_practice, folder / "practice")
    [mrn] = make_visit_practice(practice, patients=1, weeks=1)
    pack = folder / "laptop" / "visit.db"
    pack.parent.mkdir()
    with opened(practice) as (db, physician):
        check_out_patients(db, physician, [mrn], pack, PASSWORD)
    with opened(pack) as (db, physician), db.session() as s:
        pid = patient_id(s, mrn)
        for n in range(NEW_CHECKINS):
            outcomes.record_checkin(
                s, physician, pid,
                CheckInDraft(datetime.now(UTC).date() - timedelta(days=n % 5), "home_visit",
                             "Dr. Rowan Quill", (), "as_prescribed", f"Visit note {n}."),
            )
    return practice, pack, mrn


def _copy_pack(pack: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".keys.json"):
        source = Path(f"{pack}{suffix}")
        if source.exists():
            shutil.copy2(source, folder / f"{pack.name}{suffix}")
    return folder / pack.name


def _state(practice: Path) -> tuple[int, str, int]:
    with opened(practice) as (db, _):
        with db.session() as s:
            checkins = s.execute(select(func.count()).select_from(CheckIn)).scalar_one()
            lease = s.execute(select(VisitLease.status)).scalar_one()
            returned = s.execute(
                select(func.count()).select_from(AuditEvent)
                .where(AuditEvent.action == "visit_pack_returned")
            ).scalar_one()
        assert db.verify_audit_trail().is_intact
    return checkins, lease, returned


@pytest.mark.parametrize(
    "tampering",
    [
        ["UPDATE audit_events SET detail = 'edited' WHERE seq = 3"],
        ["DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)"],
        ["UPDATE audit_events SET user_name = 'someone' WHERE action = 'checkin_recorded' "
         "AND seq = (SELECT min(seq) FROM audit_events WHERE action = 'checkin_recorded')"],
    ],
    ids=["edited-event", "removed-newest-event", "changed-user"],
)
def test_a_pack_with_a_tampered_audit_is_refused_and_kept(
    practice_and_pack: tuple[Path, Path, str], tmp_path: Path, tampering: list[str]
) -> None:
    source_practice, source_pack, _mrn = practice_and_pack
    practice = copy_practice(source_practice, tmp_path / "practice")
    pack = _copy_pack(source_pack, tmp_path / "laptop")
    key = KeySlotFile.load(pack).unwrap_for_user(PHYSICIAN, PASSWORD)
    connection = raw_connection(pack, key)
    try:
        connection.execute("DROP TRIGGER audit_events_no_update")
        connection.execute("DROP TRIGGER audit_events_no_delete")
        for statement in tampering:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()
    before = _state(practice)
    pack_bytes = pack.read_bytes()
    with opened(practice) as (db, physician):
        with pytest.raises(UserFacingError) as refused:
            return_visit_pack(db, physician, pack, PASSWORD)
    message = refused.value.message
    assert "refused" in message and "audit trail does not verify" in message
    assert str(pack) in message  # kept for inspection, where it was
    assert pack.read_bytes() == pack_bytes
    checkins, lease, returned = _state(practice)
    assert (checkins, lease, returned) == before
    with opened(practice) as (db, _), db.session() as s:
        refusals = s.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "visit_pack_refused")
        ).scalars().all()
    assert len(refusals) == 1 and "audit check failed" in refusals[0]


@pytest.mark.slow
def test_a_return_killed_in_the_middle_leaves_the_practice_whole(
    practice_and_pack: tuple[Path, Path, str], tmp_path: Path
) -> None:
    source_practice, source_pack, _mrn = practice_and_pack
    before = _state(source_practice)
    assert before[1] == "out"
    rng = random.Random(20261202)
    outcomes_seen: list[str] = []
    for trial in range(KILL_TRIALS + 1):
        practice = copy_practice(source_practice, tmp_path / f"trial{trial}")
        child = subprocess.Popen(
            [sys.executable, str(RETURNER), str(practice), str(source_pack), PHYSICIAN],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, env=child_env(tmp_path),
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(PASSWORD + "\n")
        child.stdin.close()
        kill_after = rng.randint(5, 4 * NEW_CHECKINS) if trial < KILL_TRIALS else None
        writes = 0
        for line in child.stdout:
            if line.startswith("WRITING"):
                writes = int(line.split()[1])
                if kill_after is not None and writes >= kill_after:
                    child.send_signal(signal.SIGKILL)
                    break
            if line.startswith("DONE"):
                break
        child.wait(timeout=120)
        checkins, lease, returned = _state(practice)
        if lease == "out":
            assert (checkins, returned) == (before[0], 0), "half a return was kept"
            outcomes_seen.append(f"unchanged after {writes} writes")
        else:
            assert (checkins, lease, returned) == (before[0] + NEW_CHECKINS, "returned", 1)
            outcomes_seen.append(f"complete after {writes} writes")
        # Whatever happened, returning the pack (again) brings the practice to the same end.
        with opened(practice) as (db, physician):
            return_visit_pack(db, physician, source_pack, PASSWORD)
        returns_recorded = 1 if lease == "out" else 2  # the second return applies nothing
        assert _state(practice) == (before[0] + NEW_CHECKINS, "returned", returns_recorded)
    assert sum(o.startswith("unchanged") for o in outcomes_seen) >= KILL_TRIALS - 1
    record_figure("visit_return_kills", trials=len(outcomes_seen), outcomes=outcomes_seen)
