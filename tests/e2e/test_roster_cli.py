"""``roster`` and ``import-patients`` as real subprocesses on a real encrypted database."""

from __future__ import annotations

import json

from tests.conftest import ADMIN, PASSWORD, copy_practice
from tests.e2e.cli_runner import run_ketadesk

HEADER = "Last Name,First Name,DOB,sex,state,county,phone"
GOOD = "Ñúñez-Łukasiewicz,Zoë,02/01/1980,F,FL,Alachua,(352) 555-0101"
GOOD2 = "Quillon,Mateo,1975-07-04,M,NJ,Cape May,"
BAD = "Fairweather,Óscar,1985-13-40,M,TX,Nowhere,"


def test_import_then_search_roster_as_json(prepared_practice, tmp_path) -> None:
    db = copy_practice(prepared_practice, tmp_path / "db")
    csv = tmp_path / "roster.csv"
    csv.write_text("\n".join([HEADER, GOOD, BAD, GOOD2]) + "\n", encoding="utf-8-sig")
    args = ("--db", str(db), "import-patients", str(csv), "--as", ADMIN, "--password-stdin")

    refused = run_ketadesk(*args, stdin=PASSWORD + "\n")
    assert refused.returncode == 1
    assert "Row 3, Date of birth" in refused.stderr and "nothing was imported" in refused.stderr

    dry = run_ketadesk(*args, "--skip-invalid", "--dry-run", stdin=PASSWORD + "\n")
    assert dry.returncode == 0 and "Would import 2 patients" in dry.stderr

    done = run_ketadesk(*args, "--skip-invalid", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "Imported 2 patients" in done.stderr

    listed = run_ketadesk(
        "--db",
        str(db),
        "roster",
        "--as",
        ADMIN,
        "--password-stdin",
        "--search",
        "Zoe",
        "--json",
        stdin=PASSWORD + "\n",
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["first_name"], r["last_name"], r["dob"], r["state"], r["status"]) for r in rows] == [
        ("Zoë", "Ñúñez-Łukasiewicz", "1980-02-01", "FL", "screening")
    ]
    assert rows[0]["mrn"].startswith("KD-")

    again = run_ketadesk(*args, "--skip-invalid", stdin=PASSWORD + "\n")
    assert "possible duplicate of" in again.stderr and "Imported 0 patients" in again.stderr


def test_bad_encoding_is_refused_clearly(prepared_practice, tmp_path) -> None:
    db = copy_practice(prepared_practice, tmp_path / "db")
    csv = tmp_path / "empty.csv"
    csv.write_bytes(b"")
    result = run_ketadesk(
        "--db",
        str(db),
        "import-patients",
        str(csv),
        "--as",
        ADMIN,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("The file is empty.")
    assert "Traceback" not in result.stderr
