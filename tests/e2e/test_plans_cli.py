"""``export-plan`` and ``verify-plan`` run as real subprocesses against an encrypted database
and against a practice server."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter

from ketadesk.reports.plan_verify import extract_plan_text, read_plan_identity
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.unit.test_plan_export import (
    PATIENT_NAME,
    TODAY,
    chart,
    confirmed,
    new_patient,
    set_up_practice,
    sign_everything,
)


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """A practice file and a practice server; the longest tests (many processes, each paying
    Python's start-up) run on the file only."""
    return practice_on


ON_A_FILE_ONLY = pytest.mark.parametrize("practice_on", ["file"], indirect=True)


@pytest.fixture
def patients(practice: Any) -> dict[str, str]:
    """Two signed patients and one with only a draft; returns role -> MRN."""
    from ketadesk.storage.protocols import protocols as protocol_store

    mrns: dict[str, str] = {}
    with practice.db.session() as s:
        set_up_practice(s, practice.physician)
        for key, last in (("signed", None), ("second", "Okonkwo-Brandt")):
            pid = new_patient(s, practice.physician) if last is None else new_patient(
                s, practice.physician, "Amara", last)
            chart(s, practice.physician, pid)
            sign_everything(s, practice.physician, pid)
            mrns[key] = _mrn(s, pid)
        pid = new_patient(s, practice.physician, "Ines", "Draftwell")
        chart(s, practice.physician, pid)
        protocol_store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        mrns["draft"] = _mrn(s, pid)
    return mrns


def _mrn(session: Any, patient_id: int) -> str:
    from ketadesk.models.patients import Patient

    patient = session.get(Patient, patient_id)
    assert patient is not None
    return patient.mrn


def cli(practice: Any, *args: str, user: str = ADMIN, stdin: str = "") -> Any:
    return run_ketadesk(*args, *practice.db_option, "--as", practice.name_of(user),
                        "--password-stdin", stdin=f"{PASSWORD}\n{stdin}")


def test_export_one_plan_then_verify_it(
    practice: Any, patients: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "plan.pdf"
    result = cli(practice, "export-plan", "--patient", patients["signed"], "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.is_file() and str(out) in result.stdout
    assert PATIENT_NAME in extract_plan_text(out.read_bytes())

    check = cli(practice, "verify-plan", str(out), user=PHYSICIAN)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("MATCHES") and "version 1" in check.stdout

    again = cli(practice, "export-plan", "--patient", patients["signed"], "--out", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr


@ON_A_FILE_ONLY
def test_verify_plan_exits_1_for_a_tampered_plan(
    practice: Any, patients: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "plan.pdf"
    assert cli(practice, "export-plan", "--patient", patients["signed"],
               "--out", str(out)).returncode == 0
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(out.read_bytes())))
    writer.add_metadata({"/KetaDeskPlanHash": "0" * 64})
    tampered = tmp_path / "tampered.pdf"
    with open(tampered, "wb") as handle:
        writer.write(handle)
    result = cli(practice, "verify-plan", str(tampered))
    assert result.returncode == 1
    assert result.stdout.startswith("DOES NOT MATCH") and "altered" in result.stdout

    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf at all")
    result = cli(practice, "verify-plan", str(junk))
    assert result.returncode == 1 and "not a PDF" in result.stdout


def test_a_patient_without_a_signed_protocol_exits_1_with_the_message(
    practice: Any, patients: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "draft.pdf"
    result = cli(practice, "export-plan", "--patient", patients["draft"], "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "This patient has no signed protocol; a plan can be exported only from a signed version."
    )
    assert "Traceback" not in result.stderr and not out.exists()


@ON_A_FILE_ONLY
def test_export_all_writes_one_encrypted_plan_per_signed_patient(
    practice: Any, patients: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "plans"
    result = cli(practice, "export-plan", "--all", "--out", str(folder), "--encrypt",
                 "--pattern", "{mrn}_v{version}", stdin="pdf secret 42\n")
    assert result.returncode == 0, result.stderr
    assert "Written 2, skipped 0." in result.stdout
    assert "Exporting plans" not in result.stderr  # no progress line without a terminal
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"{patients[k]}_v1.pdf" for k in ("signed", "second"))
    for path in folder.iterdir():
        pdf = path.read_bytes()
        assert PdfReader(io.BytesIO(pdf)).is_encrypted
        assert read_plan_identity(pdf, "pdf secret 42").version == 1

    locked = folder / f"{patients['signed']}_v1.pdf"
    no_password = cli(practice, "verify-plan", str(locked))
    assert no_password.returncode == 1 and "password" in no_password.stderr
    wrong = cli(practice, "verify-plan", str(locked), stdin="not it\n")
    assert wrong.returncode == 1 and "does not open" in wrong.stderr
    right = cli(practice, "verify-plan", str(locked), stdin="pdf secret 42\n")
    assert right.returncode == 0 and right.stdout.startswith("MATCHES"), right.stderr


def test_bad_arguments_are_refused_in_words(practice: Any, tmp_path: Path) -> None:
    both = run_ketadesk("export-plan", *practice.db_option, "--as", ADMIN, "--all",
                        "--patient", "KD-00000018", "--out", str(tmp_path))
    assert both.returncode == 2 and "not allowed with" in both.stderr
    pattern = cli(practice, "export-plan", "--all", "--out", str(tmp_path),
                  "--pattern", "{ssn}")
    assert pattern.returncode == 1 and "only these fields" in pattern.stderr


def _make_review_stale(practice: Any, mrn: str) -> None:
    """The front desk records a new medication after the review was signed."""
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn
    from ketadesk.storage.patients.patient_medications import add_medication

    with practice.db.session() as s:
        add_medication(s, practice.admin, patient_id_for_mrn(s, mrn), "sertraline",
                       dose_text="50 mg", frequency_text="daily")


@ON_A_FILE_ONLY
def test_export_plan_refuses_a_stale_review_unless_a_physician_allows_it(
    practice: Any, patients: dict[str, str], tmp_path: Path
) -> None:
    """Defect 6: a stale review is refused naming the MRN; --allow-stale-review is for
    physicians and is audited; --all skips and lists the patient."""
    from sqlalchemy import select

    from ketadesk.core import audit_actions
    from ketadesk.models.audit import AuditEvent

    stale = patients["signed"]
    _make_review_stale(practice, stale)
    out = tmp_path / "plan.pdf"
    refused = cli(practice, "export-plan", "--patient", stale, "--out", str(out))
    assert refused.returncode == 1 and not out.exists()
    assert f"The plan for {stale} was not exported" in refused.stderr
    assert "the medication list changed" in refused.stderr
    as_admin = cli(practice, "export-plan", "--patient", stale, "--out", str(out),
                   "--allow-stale-review")
    assert as_admin.returncode == 1 and "Only a physician" in as_admin.stderr
    assert not out.exists()

    allowed = cli(practice, "export-plan", "--patient", stale, "--out", str(out),
                  "--allow-stale-review", user=PHYSICIAN)
    assert allowed.returncode == 0, allowed.stderr
    assert out.is_file()

    folder = tmp_path / "all"
    batch = cli(practice, "export-plan", "--all", "--out", str(folder))
    assert batch.returncode == 0, batch.stderr
    assert f"skipped {stale}: interaction review out of date or missing" in batch.stdout
    assert "Written 1, skipped 1 (interaction review out of date or missing: 1)" in batch.stdout
    with practice.db.session() as s:
        confirmed_events = s.execute(
            select(AuditEvent.user_name, AuditEvent.detail)
            .where(AuditEvent.action == audit_actions.PLAN_STALE_REVIEW_CONFIRMED)
        ).all()
    assert confirmed_events == [
        (
            practice.physician.user_name,
            "plan exported with the interaction review stale; confirmed by a physician",
        )
    ]
