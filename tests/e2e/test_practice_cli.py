"""The headless practice commands: init, user, verify-audit, backup, restore."""

from __future__ import annotations

from tests.e2e.cli_runner import run_ketadesk

PW = "correct horse battery"


def _init(db):
    result = run_ketadesk(
        "init",
        "--db",
        str(db),
        "--user",
        "drquill",
        "--full-name",
        "Dr. Rowan Quill",
        "--password-stdin",
        stdin=f"{PW}\n",
    )
    assert result.returncode == 0, result.stderr
    return result


def test_init_prints_a_recovery_key_once(tmp_path):
    result = _init(tmp_path / "p.db")
    assert "RECOVERY KEY" in result.stdout
    key_line = result.stdout.split("RECOVERY KEY (shown only once):\n")[1].splitlines()[0].strip()
    assert len(key_line.replace("-", "")) == 32
    assert key_line not in (tmp_path / "p.db.keys.json").read_text()


def test_user_add_passwd_and_login(tmp_path):
    db = tmp_path / "p.db"
    _init(db)
    added = run_ketadesk(
        "--db",
        str(db),
        "user",
        "add",
        "--as",
        "drquill",
        "--user",
        "frontdesk",
        "--role",
        "admin",
        "--full-name",
        "Sam Frontdesk",
        "--password-stdin",
        stdin=f"{PW}\nfront desk password\n",
    )
    assert added.returncode == 0, added.stderr
    listed = run_ketadesk(
        "user",
        "list",
        "--db",
        str(db),
        "--as",
        "frontdesk",
        "--password-stdin",
        stdin="front desk password\n",
    )
    assert "frontdesk" in listed.stdout and "admin" in listed.stdout
    denied = run_ketadesk(
        "user",
        "add",
        "--db",
        str(db),
        "--as",
        "frontdesk",
        "--user",
        "x2",
        "--role",
        "admin",
        "--full-name",
        "X",
        "--password-stdin",
        stdin="front desk password\nanother password\n",
    )
    assert denied.returncode != 0
    assert "Only users who manage users may add users" in denied.stderr
    changed = run_ketadesk(
        "user",
        "passwd",
        "--db",
        str(db),
        "--as",
        "frontdesk",
        "--password-stdin",
        stdin="front desk password\nnew desk password\n",
    )
    assert changed.returncode == 0, changed.stderr
    ok = run_ketadesk(
        "verify-audit",
        "--db",
        str(db),
        "--as",
        "frontdesk",
        "--password-stdin",
        stdin="new desk password\n",
    )
    assert ok.returncode == 0
    assert ok.stdout.startswith("audit chain intact (")


def test_expected_failures_are_one_plain_line(tmp_path):
    db = tmp_path / "p.db"
    missing = run_ketadesk(
        "verify-audit", "--db", str(db), "--as", "x", "--password-stdin", stdin="whatever\n"
    )
    assert missing.returncode == 1
    assert "There is no practice database" in missing.stderr
    _init(db)
    wrong = run_ketadesk(
        "verify-audit",
        "--db",
        str(db),
        "--as",
        "drquill",
        "--password-stdin",
        stdin="wrong password\n",
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "ketadesk: Wrong user name or password."
    bad_args = run_ketadesk("user", "add", "--db", str(db))
    assert bad_args.returncode == 2
    for result in (missing, wrong, bad_args):
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_backup_and_restore(tmp_path):
    db = tmp_path / "p.db"
    _init(db)
    backup = tmp_path / "b" / "copy.db"
    made = run_ketadesk(
        "backup",
        "--db",
        str(db),
        "--as",
        "drquill",
        "--out",
        str(backup),
        "--password-stdin",
        stdin=f"{PW}\n",
    )
    assert made.returncode == 0, made.stderr
    assert not backup.read_bytes().startswith(b"SQLite format 3")
    opened = run_ketadesk(
        "verify-audit", "--db", str(backup), "--as", "drquill", "--password-stdin", stdin=f"{PW}\n"
    )
    assert opened.returncode == 0, opened.stderr

    other = tmp_path / "other.db"
    run_ketadesk(
        "init",
        "--db",
        str(other),
        "--user",
        "drquill",
        "--full-name",
        "Dr Q",
        "--password-stdin",
        stdin=f"{PW}\n",
    )
    before = other.read_bytes()
    refused = run_ketadesk(
        "restore",
        str(backup),
        "--db",
        str(other),
        "--as",
        "drquill",
        "--password-stdin",
        stdin=f"{PW}\n",
    )
    assert refused.returncode == 1
    assert "different practice database" in refused.stderr
    assert other.read_bytes() == before

    restored = run_ketadesk(
        "restore",
        str(backup),
        "--db",
        str(db),
        "--as",
        "drquill",
        "--password-stdin",
        "--yes",
        stdin=f"{PW}\n",
    )
    assert restored.returncode == 0, restored.stderr
    assert list(tmp_path.glob("p-before-restore-*.db"))


def test_recover_with_the_printed_key_gives_a_new_password_and_verify_audit_shows_it(tmp_path):
    db = tmp_path / "p.db"
    printed = _init(db).stdout.split("RECOVERY KEY (shown only once):\n")[1].splitlines()[0]
    key_file = tmp_path / "p.db.keys.json"
    before = (db.read_bytes(), key_file.read_bytes())
    wrong = run_ketadesk(
        "recover", "--db", str(db), "--user", "drquill", "--password-stdin",
        stdin="AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH\nviolet lantern orchard\n",
    )
    assert wrong.returncode != 0
    assert "That recovery key does not open this practice database" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert (db.read_bytes(), key_file.read_bytes()) == before
    typed = printed.strip().lower().replace("-", "")  # as someone might type it from paper
    recovered = run_ketadesk(
        "recover", "--db", str(db), "--user", "drquill", "--password-stdin",
        stdin=f"{typed}\nviolet lantern orchard\n",
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "drquill has a new password" in recovered.stdout
    assert "re-encrypted under a new key" in recovered.stdout
    old = run_ketadesk(
        "verify-audit", "--db", str(db), "--as", "drquill", "--password-stdin", stdin=f"{PW}\n"
    )
    assert old.returncode != 0 and "Wrong user name or password" in old.stderr
    verified = run_ketadesk(
        "verify-audit", "--db", str(db), "--as", "drquill", "--password-stdin",
        stdin="violet lantern orchard\n",
    )
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact" in verified.stdout
    assert "signed by recovery key: 1 events" in verified.stdout
    assert "new password and signing key for drquill (the first physician)" in verified.stdout
    assert (
        "signed with the recovery key: 1 events, user grants: drquill, key slots: 0"
        in verified.stdout
    )


def test_recover_on_a_server_address_asks_for_the_practice_certificate(tmp_path):
    """``recover --db postgresql://…`` is the server's recovery (tests/e2e/
    test_server_init_cli.py); without the practice's certificate it stops before anything."""
    result = run_ketadesk(
        "recover", "--db", "postgresql://server.example/ketadesk", "--user", "drquill",
        "--password-stdin", stdin="x\ny\n",
    )
    assert result.returncode != 0
    assert "--ca" in result.stderr, result.stderr
