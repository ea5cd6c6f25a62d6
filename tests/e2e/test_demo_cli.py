"""The demo command's practice passes the audit check it will meet at log-in."""

from __future__ import annotations

from tests.e2e.cli_runner import run_ketadesk

PW = "demo password for tests 1"


def test_demo_audit_trail_is_signed_by_the_people_it_names(tmp_path):
    db = tmp_path / "demo.db"
    made = run_ketadesk("--db", str(db), "demo", "--patients", "12", "--password-stdin",
                        stdin=f"{PW}\n")
    assert made.returncode == 0, made.stderr
    checked = run_ketadesk("verify-audit", "--db", str(db), "--as", "physician",
                           "--password-stdin", stdin=f"{PW}\n")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit chain intact" in checked.stdout
    assert "only the practice key" not in checked.stdout + checked.stderr
    # The front desk's medications after signing are the admin's own, signed by the admin.
    assert "signed by admin:" in checked.stdout
