"""The everyday commands with ``--db postgresql://…`` (in process: the same parser and
handlers): the same results on a practice file and a practice server, and the commands that
cannot run on a server yet refuse in words that name them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN, PASSWORD, PHYSICIAN
from tests.reliability._cli_in_process import CliRun, run_in_process

HEADER = "Last Name,First Name,DOB,sex,state,county,phone"
ROWS = (
    "Ñúñez-Łukasiewicz,Zoë,02/01/1980,F,FL,Alachua,(352) 555-0101",
    "Quillon,Mateo,1975-07-04,M,NJ,Cape May,",
)
ON_A_SERVER = pytest.mark.parametrize("practice_on", ["server"], indirect=True)


def run_on(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, practice: Any, *args: str, stdin: str = ""
) -> CliRun:
    named = [practice.name_of(a) if a in (PHYSICIAN, ADMIN) else a for a in args]
    return run_in_process(monkeypatch, capsys, None, *practice.db_option, *named, stdin=stdin)


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
        (["visit", "leases", "--as", PHYSICIAN, "--password-stdin"], "'visit leases'"),
        (["export-practice", "--out", "x", "--as", PHYSICIAN, "--password-stdin"],
         "'export-practice'"),
        (["init", "--user", "drnew", "--full-name", "Dr New", "--password-stdin"], "'init'"),
        (["demo", "--password-stdin"], "'demo'"),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_commands_not_yet_on_a_server_refuse_naming_themselves(
    practice_on, monkeypatch, capsys, command, named
) -> None:
    refused = run_on(monkeypatch, capsys, practice_on, *command, stdin=PASSWORD + "\n" * 3)
    assert refused.code == 1, refused.err
    assert named in refused.err
    assert "works on a practice database file only, not yet on a practice server" in refused.err
    assert "Traceback" not in refused.err


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
    refused = run_on(monkeypatch, capsys, practice_on, *new_user, "--npi", "1234567893",
                     stdin=f"{PASSWORD}\nwren feather lantern\n")
    assert refused.code == 1 and "cannot be recorded yet" in refused.err
    added = run_on(monkeypatch, capsys, practice_on, *new_user,
                   stdin=f"{PASSWORD}\nwren feather lantern\n")
    try:
        assert added.code == 0, added.err
        assert "Added drwren.pg (physician)" in added.out
        listed = run_on(monkeypatch, capsys, practice_on, "user", "list", *login,
                        stdin=PASSWORD + "\n")
        assert listed.code == 0, listed.err
        assert "drwren.pg" in listed.out and "Dr. Ada Wren" in listed.out
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
