"""The everyday commands with ``--db postgresql://…`` (in process: the same parser and
handlers): the same results on a practice file and a practice server, and the commands that
cannot run on a server yet refuse in words that name them."""

from __future__ import annotations

import json

import pytest

from tests.both_back_ends import run_on
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.reliability._cli_in_process import CliRun, run_in_process

HEADER = "Last Name,First Name,DOB,sex,state,county,phone"
ROWS = (
    "Ñúñez-Łukasiewicz,Zoë,02/01/1980,F,FL,Alachua,(352) 555-0101",
    "Quillon,Mateo,1975-07-04,M,NJ,Cape May,",
)
ON_A_SERVER = pytest.mark.parametrize("practice_on", ["server"], indirect=True)


def test_import_then_search_the_roster(practice_on, tmp_path, monkeypatch, capsys) -> None:
    csv = tmp_path / "roster.csv"
    csv.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    imported = run_on(
        monkeypatch, capsys, practice_on, "import-patients", str(csv), "--as", ADMIN,
        "--password-stdin", stdin=PASSWORD + "\n",
    )
    assert imported.code == 0, imported.err
    assert "Imported 2 patients" in imported.err
    found = {}
    for text in ("zoe", "ŁUKASIEWICZ", "nunez zo", "02/01/1980", "555-0101", "mat quil"):
        listed = run_on(
            monkeypatch, capsys, practice_on, "roster", "--as", ADMIN, "--password-stdin",
            "--search", text, "--json", stdin=PASSWORD + "\n",
        )
        assert listed.code == 0, listed.err
        found[text] = [(r["first_name"], r["state"]) for r in json.loads(listed.out)]
    assert found == {
        "zoe": [("Zoë", "FL")],
        "ŁUKASIEWICZ": [("Zoë", "FL")],
        "nunez zo": [("Zoë", "FL")],
        "02/01/1980": [("Zoë", "FL")],
        "555-0101": [("Zoë", "FL")],
        "mat quil": [("Mateo", "NJ")],
    }


def test_verify_audit(practice_on, monkeypatch, capsys) -> None:
    checked = run_on(
        monkeypatch, capsys, practice_on, "verify-audit", "--as", PHYSICIAN, "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert checked.code == 0, checked.err
    assert "intact" in checked.out.lower()
    # Signed on both: by a key slot's key on a file, by the key kept on the server there.
    assert f"signed by {practice_on.name_of(PHYSICIAN)}: " in checked.out
    assert "not signed" not in checked.out.replace("(not signed)", "")


@ON_A_SERVER
def test_a_wrong_password_is_refused_as_on_a_file(practice_on, monkeypatch, capsys) -> None:
    refused = run_on(
        monkeypatch, capsys, practice_on, "roster", "--as", ADMIN, "--password-stdin",
        stdin="not my password\n",
    )
    assert refused.code == 1
    assert refused.err.strip() == "ketadesk: Wrong user name or password."


@ON_A_SERVER
def test_a_server_needs_the_practice_certificate(practice_on, monkeypatch, capsys) -> None:
    refused = run_in_process(
        monkeypatch, capsys, None, "--db", practice_on.url, "roster", "--as", ADMIN,
        "--password-stdin", stdin=PASSWORD + "\n",
    )
    assert refused.code == 1
    assert "needs the practice certificate: add --ca FILE" in refused.err


@ON_A_SERVER
@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["init", "--user", "drnew", "--full-name", "Dr New", "--password-stdin"], "'init'"),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_commands_for_a_file_only_refuse_a_server_naming_themselves(
    practice_on, monkeypatch, capsys, command, named
) -> None:
    refused = run_on(monkeypatch, capsys, practice_on, *command, stdin=PASSWORD + "\n" * 3)
    assert refused.code == 1, refused.err
    assert named in refused.err
    assert "works on a practice database file only, not on a practice server" in refused.err
    assert "Traceback" not in refused.err


@ON_A_SERVER
def test_demo_on_a_server_names_the_way_there(practice_on, monkeypatch, capsys) -> None:
    refused = run_on(monkeypatch, capsys, practice_on, "demo", "--patients", "2",
                     "--password-stdin", stdin=PASSWORD + "\n")
    assert refused.code == 1, refused.err
    assert "A demo practice is made in a file, not on a practice server" in refused.err
    assert "server import-practice demo.db" in refused.err and "Nothing was changed." in refused.err


def test_compliance_consent_prescriptions_and_fhir_export(
    practice_on, tmp_path, monkeypatch, capsys
) -> None:
    """The compliance commands and the FHIR record export read the same answers on both."""
    from datetime import UTC, date, datetime

    from ketadesk.core.demographics import PatientDemographics
    from ketadesk.storage.patients.patients import create_patient

    with practice_on.db.session() as s:
        mrn = create_patient(
            s,
            practice_on.physician,
            PatientDemographics(
                first_name="Zoë", last_name="Compliance", dob=date(1981, 4, 5), sex="female",
                state="NJ", county="Ocean",
            ),
            today=datetime.now(UTC).date(),
        ).mrn
    login = ("--as", PHYSICIAN, "--password-stdin")
    worklist = run_on(monkeypatch, capsys, practice_on, "compliance", *login, "--json",
                      stdin=PASSWORD + "\n")
    assert worklist.code == 0, worklist.err
    json.loads(worklist.out)
    templates = run_on(monkeypatch, capsys, practice_on, "consent", "templates", *login,
                       stdin=PASSWORD + "\n")
    assert templates.code == 0, templates.err
    prescriptions = run_on(monkeypatch, capsys, practice_on, "rx", "list", *login,
                           "--patient", mrn, "--json", stdin=PASSWORD + "\n")
    assert prescriptions.code == 0, prescriptions.err
    assert json.loads(prescriptions.out) == []
    out = tmp_path / "record.json"
    exported = run_on(monkeypatch, capsys, practice_on, "export-fhir", *login,
                      "--patient", mrn, "--out", str(out), stdin=PASSWORD + "\n")
    assert exported.code == 0, exported.err
    bundle = json.loads(out.read_text(encoding="utf-8"))
    names = [r["resource"] for r in bundle["entry"] if r["resource"]["resourceType"] == "Patient"]
    assert names[0]["name"][0]["family"] == "Compliance"


@ON_A_SERVER
def test_a_user_manager_adds_a_user_who_then_logs_in(
    practice_on, practice_server, monkeypatch, capsys
) -> None:
    login = ("--as", PHYSICIAN, "--password-stdin")
    new_user = ("user", "add", *login, "--user", "drwren.pg", "--role", "physician",
                "--full-name", "Dr. Ada Wren")
    credentials = ("--npi", "1234567893", "--dea", "AW1234563", "--licence-states", "fl,NJ")
    refused = run_on(monkeypatch, capsys, practice_on, *new_user, *credentials[:-2],
                     "--licence-states", "FL,NY", stdin=f"{PASSWORD}\nwren feather lantern\n")
    assert refused.code == 1 and "FL and NJ only" in refused.err, refused.err
    added = run_on(monkeypatch, capsys, practice_on, *new_user, *credentials,
                   stdin=f"{PASSWORD}\nwren feather lantern\n")
    try:
        assert added.code == 0, added.err
        assert "Added drwren.pg (physician)" in added.out
        listed = run_on(monkeypatch, capsys, practice_on, "user", "list", *login,
                        stdin=PASSWORD + "\n")
        assert listed.code == 0, listed.err
        assert "drwren.pg" in listed.out and "Dr. Ada Wren" in listed.out
        from sqlalchemy import select

        from ketadesk.models.audit import AuditEvent
        from ketadesk.storage.security.users import get_user

        wren = get_user(practice_on.db, "drwren.pg")
        assert (wren.npi, wren.dea_number, wren.licence_states) == (
            "1234567893", "AW1234563", ("FL", "NJ")
        )
        with practice_on.db.session() as s:
            details = s.scalars(select(AuditEvent.detail).order_by(AuditEvent.seq)).all()
        added_at = details.index("user drwren.pg role physician")
        assert details[added_at + 1] == "user drwren.pg credentials"  # the same transaction
        as_new = run_on(monkeypatch, capsys, practice_on, "verify-audit", "--as", "drwren.pg",
                        "--password-stdin", stdin="wren feather lantern\n")
        assert as_new.code == 0, as_new.err
        assert "signed by drwren.pg: 2 events" in as_new.out  # their new key, their log-in
    finally:
        from tests.server_practice import owner_connection

        with owner_connection(practice_server) as admin:  # roles belong to the whole cluster
            admin.execute('DROP ROLE IF EXISTS "drwren.pg"')


@ON_A_SERVER
def test_user_passwd_changes_the_login_roles_password_and_keeps_the_signing_key(
    practice_on, practice_server, monkeypatch, capsys
) -> None:
    # A user of this test's own: login roles belong to the whole cluster, the template's too.
    name, old, new = "drlark.pg", "lark meadow lantern", "heron willow compass"
    added = run_on(
        monkeypatch, capsys, practice_on, "user", "add", "--as", PHYSICIAN, "--password-stdin",
        "--user", name, "--role", "physician", "--full-name", "Dr. Ida Lark",
        stdin=f"{PASSWORD}\n{old}\n",
    )
    try:
        assert added.code == 0, added.err
        first = run_on(monkeypatch, capsys, practice_on, "verify-audit", "--as", name,
                       "--password-stdin", stdin=old + "\n")
        assert first.code == 0, first.err
        wrong = run_on(monkeypatch, capsys, practice_on, "user", "passwd", "--as", name,
                       "--password-stdin", stdin=f"not my password\n{new}\n")
        assert wrong.code == 1
        assert wrong.err.strip() == "ketadesk: Wrong user name or password."
        changed = run_on(monkeypatch, capsys, practice_on, "user", "passwd", "--as", name,
                         "--password-stdin", stdin=f"{old}\n{new}\n")
        assert changed.code == 0, changed.err
        assert "Password changed." in changed.out
        refused = run_on(monkeypatch, capsys, practice_on, "verify-audit", "--as", name,
                         "--password-stdin", stdin=old + "\n")
        assert refused.code == 1
        assert refused.err.strip() == "ketadesk: Wrong user name or password."
        checked = run_on(monkeypatch, capsys, practice_on, "verify-audit", "--as", name,
                         "--password-stdin", stdin=new + "\n")
        assert checked.code == 0, checked.err
        # One key all along, wrapped again under the new password, not replaced: the key
        # made at the first log-in, that log-in, passwd's log-in and change, this log-in.
        assert f"signed by {name}: 5 events" in checked.out
    finally:
        from tests.server_practice import owner_connection

        with owner_connection(practice_server) as admin:  # roles belong to the whole cluster
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


@ON_A_SERVER
def test_pdmp_consent_record_and_rx_issue_write_their_rows_and_events(
    practice_on, monkeypatch, capsys
) -> None:
    """The three commands that write compliance records, run on a server as the file test
    (tests/e2e/test_compliance_cli.py) runs them on a file: the admin records the look-up
    and the consent as designee and is refused a prescription; the physician issues it."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from ketadesk.core import audit_actions
    from ketadesk.core.prescription_checks import CredentialKind
    from ketadesk.models.audit import AuditEvent
    from ketadesk.models.compliance import ConsentRecord, PdmpCheck, Prescription
    from ketadesk.models.patients import Patient
    from ketadesk.storage.compliance.credentials import save_credential
    from tests.unit.signed_protocol_patients import patient_with_signed_protocol

    today = datetime.now(UTC).astimezone().date()
    physician, admin = practice_on.name_of(PHYSICIAN), practice_on.name_of(ADMIN)
    with practice_on.db.session() as s:
        pid = patient_with_signed_protocol(s, practice_on.physician, today)
        mrn = s.get(Patient, pid).mrn

    def run_as(user: str, *args: str) -> CliRun:
        return run_on(monkeypatch, capsys, practice_on, *args, "--as", user,
                      "--password-stdin", stdin=PASSWORD + "\n")

    def events(action: str) -> list[tuple[str, int | None]]:
        with practice_on.db.session() as s:
            found = s.scalars(select(AuditEvent).where(AuditEvent.action == action))
            return [(e.user_name, e.patient_id) for e in found]

    as_admin = run_as(ADMIN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                      "--refills", "1")
    assert as_admin.code == 3 and "Only physicians" in as_admin.err, as_admin.err
    refused = run_as(PHYSICIAN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                     "--refills", "6", "--remote")
    assert refused.code == 4, refused.err
    for code in ("pdmp", "consent", "state_licence", "dea_registration", "refills",
                 "telemedicine"):
        assert f"  - {code}" in refused.err, code
    assert events(audit_actions.PRESCRIPTION_ISSUED) == []

    looked_up = run_as(ADMIN, "pdmp", "record", "--patient", mrn, "--state", "FL",
                       "--result", "Nothing unexpected")
    assert looked_up.code == 0 and "as designee" in looked_up.out, looked_up.err
    bad_time = run_as(ADMIN, "pdmp", "record", "--patient", mrn, "--state", "FL",
                      "--result", "ok", "--at", "yesterday")
    assert bad_time.code == 1 and "YYYY-MM-DDTHH:MM" in bad_time.err
    # Only a physician may add consent text on a server: the admin is told to wait for one.
    none_yet = run_as(ADMIN, "consent", "templates")
    assert none_yet.code == 0 and none_yet.out == "", none_yet.err
    assert "no consent text yet; a physician adds the example" in none_yet.err
    templates = run_as(PHYSICIAN, "consent", "templates")
    assert templates.code == 0, templates.err
    assert "EXAMPLE" in templates.out
    assert events(audit_actions.CONSENT_TEMPLATE_ADDED) == [(physician, None)]
    version_id = templates.out.splitlines()[0].split("\t")[0]
    recorded = run_as(ADMIN, "consent", "record", "--patient", mrn, "--template", version_id,
                      "--signed-on", today.isoformat())
    assert recorded.code == 0, recorded.err
    no_version = run_as(ADMIN, "consent", "record", "--patient", mrn, "--template", "999",
                        "--signed-on", today.isoformat())
    assert no_version.code == 1 and "no consent template version 999" in no_version.err
    with practice_on.db.session() as s:
        checks = s.scalars(select(PdmpCheck).where(PdmpCheck.patient_id == pid)).all()
        assert [(c.state, c.checked_by, c.checked_by_role, c.result_text) for c in checks] == [
            ("FL", admin, "admin", "Nothing unexpected")
        ]
        consents = s.scalars(select(ConsentRecord).where(ConsentRecord.patient_id == pid)).all()
        assert [(c.signed_on, c.recorded_by) for c in consents] == [(today, admin)]
    assert events(audit_actions.PDMP_CHECK_RECORDED) == [(admin, pid)]
    assert events(audit_actions.CONSENT_RECORDED) == [(admin, pid)]

    with practice_on.db.session() as s:
        for kind, number in ((CredentialKind.STATE_LICENCE, "ME42"),
                             (CredentialKind.DEA_REGISTRATION, "AD1234563")):
            save_credential(s, practice_on.physician, user_name=physician, kind=kind,
                            state="FL", number=number, expires_on=today + timedelta(days=365))
    issued = run_as(PHYSICIAN, "rx", "issue", "--patient", mrn, "--quantity", "30",
                    "--refills", "5", "--pharmacy", "Demo Compounding", "--json")
    assert issued.code == 0, issued.err
    data = json.loads(issued.out)
    assert data["issued"] and data["prescription"]["refills"] == 5
    with practice_on.db.session() as s:
        rows = s.scalars(select(Prescription).where(Prescription.patient_id == pid)).all()
        assert [(r.id, r.prescriber, r.refills, r.pharmacy, r.status) for r in rows] == [
            (data["prescription"]["id"], physician, 5, "Demo Compounding", "issued")
        ]
    assert events(audit_actions.PRESCRIPTION_ISSUED) == [(physician, pid)]
