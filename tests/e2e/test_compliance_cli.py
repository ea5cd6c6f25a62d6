"""``pdmp``, ``consent``, ``rx`` and ``compliance`` as real subprocesses against a real
encrypted database: a refused prescription names every failed check; once the admin has
recorded the look-up and the consent, the physician issues it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.prescription_checks import CredentialKind
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.storage.compliance.credentials import save_credential
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.unit.signed_protocol_patients import patient_with_signed_protocol


def run(practice: Any, user: str, *args: str) -> Any:
    return run_ketadesk(*args, "--db", str(practice.path), "--as", user, "--password-stdin",
                        stdin=PASSWORD + "\n")


def test_prescribing_from_the_command_line(practice: Any, tmp_path: Path) -> None:
    today = datetime.now(UTC).astimezone().date()
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, today)
        mrn = s.get(Patient, pid).mrn  # type: ignore[union-attr]

    refused = run(practice, PHYSICIAN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                  "--refills", "6", "--remote")
    assert refused.returncode == 4, refused.stderr
    for code in ("pdmp", "consent", "state_licence", "dea_registration", "refills",
                 "telemedicine"):
        assert f"  - {code}" in refused.stderr, code
    with practice.db.session() as s:  # the refused attempt is audited, by check code only
        attempts = s.execute(
            select(AuditEvent.user_name, AuditEvent.patient_id, AuditEvent.detail).where(
                AuditEvent.action == audit_actions.PRESCRIPTION_REFUSED
            )
        ).all()
    assert attempts == [
        (PHYSICIAN, pid, "failed checks: pdmp, consent, state_licence, dea_registration, "
         "refills, telemedicine")
    ]

    as_admin = run(practice, ADMIN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                   "--refills", "1")
    assert as_admin.returncode == 3 and "Only physicians" in as_admin.stderr

    looked_up = run(practice, ADMIN, "pdmp", "record", "--patient", mrn, "--state", "FL",
                    "--result", "Nothing unexpected")
    assert looked_up.returncode == 0 and "as designee" in looked_up.stdout, looked_up.stderr
    templates = run(practice, ADMIN, "consent", "templates")
    assert templates.returncode == 0, templates.stderr
    version_id = templates.stdout.splitlines()[0].split("\t")[0]
    assert "EXAMPLE" in templates.stdout
    recorded = run(practice, ADMIN, "consent", "record", "--patient", mrn, "--template",
                   version_id, "--signed-on", today.isoformat())
    assert recorded.returncode == 0, recorded.stderr
    bad_day = run(practice, ADMIN, "consent", "record", "--patient", mrn, "--template",
                  version_id, "--signed-on", "31/12/2026")
    assert bad_day.returncode == 1 and "YYYY-MM-DD" in bad_day.stderr
    no_version = run(practice, ADMIN, "consent", "record", "--patient", mrn, "--template",
                     "999", "--signed-on", today.isoformat())
    assert no_version.returncode == 1
    assert "no consent template version 999" in no_version.stderr
    bad_time = run(practice, ADMIN, "pdmp", "record", "--patient", mrn, "--state", "FL",
                   "--result", "ok", "--at", "yesterday")
    assert bad_time.returncode == 1 and "YYYY-MM-DDTHH:MM" in bad_time.stderr
    out = tmp_path / "consent.pdf"
    form = run(practice, ADMIN, "consent", "form", "--patient", mrn, "--out", str(out))
    assert form.returncode == 0, form.stderr
    assert "EXAMPLE" in PdfReader(io.BytesIO(out.read_bytes())).pages[0].extract_text()

    with practice.db.session() as s:
        for kind, number in ((CredentialKind.STATE_LICENCE, "ME42"),
                             (CredentialKind.DEA_REGISTRATION, "AD1234563")):
            save_credential(s, practice.physician, user_name=PHYSICIAN, kind=kind, state="FL",
                            number=number, expires_on=today + timedelta(days=365))

    issued = run(practice, PHYSICIAN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                 "--refills", "5", "--pharmacy", "Demo Compounding", "--json")
    assert issued.returncode == 0, issued.stderr
    data = json.loads(issued.stdout)
    assert data["issued"] and data["prescription"]["refills"] == 5

    listed = run(practice, PHYSICIAN, "rx", "list", "--patient", mrn, "--json")
    assert [rx["id"] for rx in json.loads(listed.stdout)] == [data["prescription"]["id"]]

    worklist = run(practice, ADMIN, "compliance", "--json")
    assert worklist.returncode == 0, worklist.stderr
    assert isinstance(json.loads(worklist.stdout), list)

    again = run(practice, PHYSICIAN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                "--refills", "1", "--json")
    assert again.returncode == 4
    assert json.loads(again.stdout)["failed"][0].startswith("pdmp")
