"""Leases: a pack whose lease and grace period are over opens only to be returned; a revoked
pack's return is held for a physician, audited, and released only by one."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.models.visits import VisitLease
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.visit_pack_identity import write_visit_pack_identity
from ketadesk.storage.visits.visit_leases import patients_on_visit
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.e2e.test_visit_cli import check_out, cli, return_pack
from tests.reliability._cli_in_process import run_in_process
from tests.visit_pack_data import opened, patient_id


def test_a_pack_past_its_lease_and_grace_opens_only_to_be_returned(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    out = check_out(monkeypatch, capsys, practice, mrns[:1], pack)
    expires = datetime.fromisoformat(out["expires_at"])
    # Within the grace period (one day by default) it still opens for work.
    db, _ = PracticeDatabase.unlock(pack, PHYSICIAN, PASSWORD, now=expires + timedelta(hours=20))
    db.close()
    late = expires + timedelta(days=1, hours=1)
    with pytest.raises(UserFacingError, match="lease ended") as refused:
        PracticeDatabase.unlock(pack, PHYSICIAN, PASSWORD, now=late)
    assert "visit return" in refused.value.message
    assert "nothing in it is lost" in refused.value.message

    # Work done before the end, then the laptop's clock runs past the lease.
    done = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[0],
               "--systolic", "118", "--diastolic", "76")
    assert done.code == 0, done.err
    with opened(pack) as (db, _), db.session() as s:
        assert db.visit_pack is not None
        ended = dataclasses.replace(
            db.visit_pack,
            expires_at=datetime.now(UTC) - timedelta(days=3),
        )
        write_visit_pack_identity(s, ended)
    refused_cli = cli(monkeypatch, capsys, pack, "outcomes", "--patient", mrns[0])
    assert refused_cli.code != 0 and "lease ended" in refused_cli.err
    refused_edit = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[0],
                       "--systolic", "118", "--diastolic", "76")
    assert refused_edit.code != 0 and "lease ended" in refused_edit.err

    # It is still returned, with everything recorded before the end.
    report = return_pack(monkeypatch, capsys, practice, pack)
    assert report["applied"]["added"] == {"vital_signs": 1, "checkins": 1}
    with opened(practice) as (db, _), db.session() as s:
        assert len(outcomes.list_checkins(s, patient_id(s, mrns[0]))) == 3


def test_a_revoked_pack_is_held_for_a_physician(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    pack = tmp_path / "visit.db"
    out = check_out(monkeypatch, capsys, practice, mrns, pack)
    done = cli(monkeypatch, capsys, pack, "checkin", "add", "--patient", mrns[0],
               "--systolic", "118", "--diastolic", "76")
    assert done.code == 0, done.err

    # The admin cannot revoke (neither physician nor manager); the physician can.
    as_admin = run_in_process(monkeypatch, capsys, practice, "visit", "revoke", out["pack_id"],
                              "--as", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
    assert as_admin.code != 0 and "Only a physician" in as_admin.err
    revoked = cli(monkeypatch, capsys, practice, "visit", "revoke", out["pack_id"])
    assert revoked.code == 0, revoked.err
    with opened(practice) as (db, _), db.session() as s:
        markers = patients_on_visit(s)
        assert len(markers) == 2 and all(m.is_revoked for m in markers.values())
        assert "(lease revoked)" in next(iter(markers.values())).words()
    leases = json.loads(cli(monkeypatch, capsys, practice, "visit", "leases", "--json").out)
    assert [lease["status"] for lease in leases] == ["revoked"]

    held = return_pack(monkeypatch, capsys, practice, pack)
    assert held["held_for_review"] and held["applied"]["added"] == {}
    assert [c["reason"] for c in held["in_conflict"]] == ["revoked"]
    queue = json.loads(cli(monkeypatch, capsys, practice, "visit", "conflicts", "--json").out)
    assert [(c["record"], c["reason"]) for c in queue] == [("the whole visit pack", "revoked")]
    assert queue[0]["visit"]["checkins"] == 5  # two patients' two each, and today's
    with opened(practice) as (db, _), db.session() as s:
        assert len(outcomes.list_checkins(s, patient_id(s, mrns[0]))) == 2
        actions = s.execute(select(AuditEvent.action)).scalars().all()
        assert "visit_pack_revoked" in actions and "visit_pack_held" in actions

    # Only a physician releases it, after review; then it applies.
    released = return_pack(monkeypatch, capsys, practice, pack, "--release-revoked")
    assert not released["held_for_review"]
    assert released["applied"]["added"] == {"vital_signs": 1, "checkins": 1}
    with opened(practice) as (db, _), db.session() as s:
        assert s.execute(select(VisitLease.status)).scalar_one() == "returned"
        assert len(outcomes.list_checkins(s, patient_id(s, mrns[0]))) == 3
        assert patients_on_visit(s) == {}
    assert json.loads(cli(monkeypatch, capsys, practice, "visit", "conflicts", "--json").out) == []
