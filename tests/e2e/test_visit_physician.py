"""A visit pack that also opens for a physician: ``visit checkout --physician NAME``.

A front-desk admin takes the pack; the physician who goes on the visit opens it with their own
password (in the app's log-in and with ``--db PACK``), signs there with a signing key of the
pack's, and returns it: the return signs their laptop signature again with their practice key,
as for a physician who took the pack. A wrong physician password writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ketadesk.models.signing import ContentSignature
from ketadesk.models.visits import VisitConflict, VisitLease
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.users import change_own_password, list_users
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.visit_pack_data import opened, patient_id, sign_fresh_review

ADMIN_PASSWORD = "front desk staple lantern"


def _as(mp: pytest.MonkeyPatch, capsys: Any, db: Path, user: str, stdin: str,
        *args: str) -> CliRun:
    return run_in_process(mp, capsys, db, *args, "--as", user, "--password-stdin", stdin=stdin)


def _admin_with_own_password(practice: Path) -> None:
    db, outcome = PracticeDatabase.unlock(practice, ADMIN, PASSWORD)
    try:
        change_own_password(db, outcome.actor, PASSWORD, ADMIN_PASSWORD)
    finally:
        db.close()


def test_an_admins_pack_opens_for_the_physician_who_signs_there_and_returns_it(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    _admin_with_own_password(practice)
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    help_text = run_in_process(monkeypatch, capsys, None, "visit", "checkout", "--help")
    assert "then the physician's" in " ".join(help_text.out.split())

    done = _as(monkeypatch, capsys, practice, ADMIN, f"{ADMIN_PASSWORD}\n{PASSWORD}\n",
               "visit", "checkout", "--patients", mrns[0], "--out", str(pack),
               "--physician", PHYSICIAN, "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["opens_for"] == [ADMIN, PHYSICIAN]

    # Each opens it with their own password, and only with it.
    slots = KeySlotFile.load(pack)
    assert {s.user_name for s in slots.slots if s.kind == "user"} == {ADMIN, PHYSICIAN}
    db, outcome = PracticeDatabase.unlock(pack, ADMIN, ADMIN_PASSWORD)
    try:
        assert outcome.actor.role == "admin"
        users = {u.user_name: u for u in list_users(db)}
        assert users[PHYSICIAN].role == "physician" and not users[PHYSICIAN].is_row_unsigned
        assert not users[PHYSICIAN].can_manage_users
    finally:
        db.close()
    shown = _as(monkeypatch, capsys, pack, PHYSICIAN, PASSWORD + "\n",
                "outcomes", "--patient", mrns[0], "--json")
    assert shown.code == 0, shown.err
    refused = _as(monkeypatch, capsys, pack, PHYSICIAN, ADMIN_PASSWORD + "\n",
                  "outcomes", "--patient", mrns[0], "--json")
    assert refused.code != 0 and "Traceback" not in refused.err

    # The physician signs a review on the laptop with the pack's key for them.
    with opened(pack) as (db, physician):
        assert physician.role == "physician"
        with db.session() as s:
            sign_fresh_review(s, physician, patient_id(s, mrns[0]))
        checks = db.content_signatures()
        assert [c.signed_by for c in checks if c.subject_kind == "interaction_review"] == [
            PHYSICIAN
        ]
        assert all(c.is_valid for c in checks)
        assert db.verify_audit_trail().is_intact

    # The physician returns it: their laptop signature is signed again with their own key.
    back = _as(monkeypatch, capsys, practice, PHYSICIAN, PASSWORD + "\n",
               "visit", "return", str(pack), "--json")
    assert back.code == 0, back.err
    report = json.loads(back.out)
    assert report["in_conflict"] == []
    assert report["applied"]["added"]["interaction_reviews"] == 1
    assert report["applied"]["added"]["content_signatures"] == 1
    with opened(practice) as (db, _):
        checks = db.content_signatures()
        assert checks and all(c.is_valid for c in checks)
        with db.session() as s:
            assert s.execute(select(VisitLease.status)).scalar_one() == "returned"
            assert s.execute(
                select(func.count()).select_from(ContentSignature)
                .where(ContentSignature.subject_kind == "interaction_review")
            ).scalar_one() >= 2
    verified = _as(monkeypatch, capsys, practice, PHYSICIAN, PASSWORD + "\n", "verify-audit")
    assert verified.code == 0, verified.err


def test_a_wrong_physician_password_writes_nothing(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    practice, mrns = visit_practice
    _admin_with_own_password(practice)
    pack = tmp_path / "visit.db"
    done = _as(monkeypatch, capsys, practice, ADMIN, f"{ADMIN_PASSWORD}\nnot the one\n",
               "visit", "checkout", "--patients", mrns[0], "--out", str(pack),
               "--physician", PHYSICIAN)
    assert done.code != 0
    assert done.err.strip().endswith(
        f"That is not the password of {PHYSICIAN} (the physician who would also open the "
        "pack); nothing was checked out."
    ), done.err
    assert not pack.exists() and not KeySlotFile.path_for(pack).exists()
    # Only a physician may be named, and not the user themself.
    for who, words in ((ADMIN, "not an active physician"), ("nobody", "not an active physician")):
        named = _as(monkeypatch, capsys, practice, PHYSICIAN, f"{PASSWORD}\n{PASSWORD}\n",
                    "visit", "checkout", "--patients", mrns[0], "--out", str(pack),
                    "--physician", who)
        assert named.code != 0 and words in named.err, named.err
    self_named = _as(monkeypatch, capsys, practice, PHYSICIAN, f"{PASSWORD}\n{PASSWORD}\n",
                     "visit", "checkout", "--patients", mrns[0], "--out", str(pack),
                     "--physician", PHYSICIAN)
    assert self_named.code != 0 and "already opens with your own password" in self_named.err
    assert not pack.exists()
    with opened(practice) as (db, _), db.session() as s:
        assert s.execute(select(func.count()).select_from(VisitLease)).scalar_one() == 0


def test_returned_by_the_admin_the_physicians_laptop_signature_waits_for_them(
    visit_practice: tuple[Path, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """Only the physician who signed can sign again with their practice key: returned by the
    admin who took the pack, the review arrives and its laptop signature waits in the queue."""
    practice, mrns = visit_practice
    _admin_with_own_password(practice)
    pack = tmp_path / "visit.db"
    done = _as(monkeypatch, capsys, practice, ADMIN, f"{ADMIN_PASSWORD}\n{PASSWORD}\n",
               "visit", "checkout", "--patients", mrns[0], "--out", str(pack),
               "--physician", PHYSICIAN)
    assert done.code == 0, done.err
    assert f"It opens with your password and {PHYSICIAN}'s." in done.out
    with opened(pack) as (db, physician), db.session() as s:
        sign_fresh_review(s, physician, patient_id(s, mrns[0]))
    back = _as(monkeypatch, capsys, practice, ADMIN, ADMIN_PASSWORD + "\n",
               "visit", "return", str(pack), "--json")
    assert back.code == 0, back.err
    report = json.loads(back.out)
    assert report["applied"]["added"]["interaction_reviews"] == 1
    assert "content_signatures" not in report["applied"]["added"]
    assert [(c["table"], c["reason"]) for c in report["in_conflict"]] == [
        ("content_signatures", "signature_not_carried")
    ]
    # The physician returns the same pack: the signature is signed again with their key, and
    # what waited for them no longer does.
    again = _as(monkeypatch, capsys, practice, PHYSICIAN, PASSWORD + "\n",
                "visit", "return", str(pack), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["applied"]["added"] == {"content_signatures": 1}
    with opened(practice) as (db, _physician), db.read_session() as s:
        assert set(s.execute(select(VisitConflict.status)).scalars()) == {"resolved"}
