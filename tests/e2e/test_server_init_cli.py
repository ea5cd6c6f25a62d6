"""``server init`` and ``server login`` from the command line, on the real test server."""

from __future__ import annotations

from tests.e2e.cli_runner import run_ketadesk


def printed_recovery_key(stdout: str) -> str:
    """The recovery key, printed exactly once, on the line after the file's own heading."""
    lines = stdout.splitlines()
    assert lines.count("RECOVERY KEY (shown only once):") == 1, stdout
    key = lines[lines.index("RECOVERY KEY (shown only once):") + 1].strip()
    assert len(key) == 39 and key.count("-") == 7, key
    assert stdout.count(key) == 1
    return key


def test_server_init_creates_the_practice_and_its_physician_logs_in(
    practice_server, server_database
):
    url, ca = server_database.url, str(practice_server.ca_certificate)
    created = run_ketadesk(
        "server",
        "init",
        "--db",
        url,
        "--ca",
        ca,
        "--user",
        "drlin",
        "--full-name",
        "Dr Mei Lin",
        "--password-stdin",
        stdin=f"{practice_server.owner_password()}\ncorrect horse battery\n",
    )
    assert created.returncode == 0, created.stderr
    assert f"Created the practice at {url} with physician drlin." in created.stdout
    recovery_key = printed_recovery_key(created.stdout)

    login = run_ketadesk(
        "server",
        "login",
        "--db",
        url,
        "--ca",
        ca,
        "--as",
        "drlin",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == f"Logged in to {url} as drlin (physician, manages users)."

    recovered = run_ketadesk(
        "server", "recover", "--db", url, "--ca", ca, "--user", "drlin", "--password-stdin",
        stdin=f"{recovery_key.lower()}\nanother horse entirely\n",
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "drlin has a new password" in recovered.stdout
    assert recovery_key not in recovered.stdout + recovered.stderr

    refused = run_ketadesk(
        "server",
        "login",
        "--db",
        url,
        "--ca",
        ca,
        "--as",
        "drlin",
        "--password-stdin",
        stdin="correct horse staple\n",
    )
    assert refused.returncode != 0
    assert refused.stderr.strip() == "ketadesk: Wrong user name or password."
    with_new = run_ketadesk(
        "server", "login", "--db", url, "--ca", ca, "--as", "drlin", "--password-stdin",
        stdin="another horse entirely\n",
    )
    assert with_new.returncode == 0, with_new.stderr
    audit = run_ketadesk(
        "verify-audit", "--db", url, "--ca", ca, "--as", "drlin", "--password-stdin",
        stdin="another horse entirely\n",
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "signed by recovery key: 1 events" in audit.stdout
    old_password = run_ketadesk(
        "server", "login", "--db", url, "--ca", ca, "--as", "drlin", "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert old_password.stderr.strip() == "ketadesk: Wrong user name or password."
    wrong_key = run_ketadesk(  # the everyday command takes a server's address too
        "recover", "--db", url, "--ca", ca, "--user", "drlin", "--password-stdin",
        stdin="ABCD-EFGH-JKLM-NPQR-STUV-WXYZ-2345-6789\nyet another horse here\n",
    )
    assert wrong_key.returncode != 0
    assert wrong_key.stderr.startswith("ketadesk: That recovery key does not open this practice")

    again = run_ketadesk(
        "server",
        "init",
        "--db",
        url,
        "--ca",
        ca,
        "--user",
        "drlin2",
        "--full-name",
        "Dr Mei Lin",
        "--password-stdin",
        stdin=f"{practice_server.owner_password()}\ncorrect horse battery\n",
    )
    assert again.returncode != 0
    assert "already holds a practice; nothing was changed" in again.stderr


def test_server_init_refuses_a_user_name_the_server_already_has_before_changing_anything(
    practice_server, server_database
):
    from tests.server_practice import owner_connection

    with owner_connection(practice_server) as owner:
        owner.execute('CREATE ROLE "drtaken" NOLOGIN')
    try:
        taken = run_ketadesk(
            "server",
            "init",
            "--db",
            server_database.url,
            "--ca",
            str(practice_server.ca_certificate),
            "--user",
            "drtaken",
            "--full-name",
            "Dr Tak En",
            "--password-stdin",
            stdin=f"{practice_server.owner_password()}\ncorrect horse battery\n",
        )
        assert taken.returncode != 0
        assert "already has a database role named drtaken" in taken.stderr
        with owner_connection(practice_server, server_database.database) as practice:
            assert practice.execute("SELECT to_regclass('public.users')").fetchone() == (None,)
    finally:
        with owner_connection(practice_server) as owner:
            owner.execute('DROP ROLE "drtaken"')


def test_commands_not_yet_on_a_server_say_so_and_a_bad_address_is_named(tmp_path):
    export = run_ketadesk(
        "--db",
        "postgresql://127.0.0.1:5999/ketadesk",
        "init",
        "--user",
        "drlin",
        "--full-name",
        "Dr Lin",
        "--password-stdin",
        stdin="x\n",
    )
    assert export.returncode != 0
    assert (
        "'init' works on a practice database file only, not on a practice server"
        in export.stderr
    ) and "'server init' makes a practice there" in export.stderr
    with_user = run_ketadesk(
        "server",
        "login",
        "--db",
        "postgresql://drlin@127.0.0.1/ketadesk",
        "--ca",
        str(tmp_path / "ca.crt"),
        "--as",
        "drlin",
        "--password-stdin",
        stdin="x\n",
    )
    assert with_user.returncode != 0
    assert "must not name a user or a password" in with_user.stderr
    not_a_server = run_ketadesk(
        "server",
        "login",
        "--db",
        str(tmp_path / "p.db"),
        "--ca",
        str(tmp_path / "ca.crt"),
        "--as",
        "drlin",
        "--password-stdin",
        stdin="x\n",
    )
    assert "needs the practice server's address: --db postgresql://" in not_a_server.stderr
