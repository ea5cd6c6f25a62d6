"""``server dev``: a real throwaway PostgreSQL cluster, reachable only over verified TLS with a
SCRAM password, started, restarted and stopped from the command line."""

from __future__ import annotations

import os
import re

import psycopg
import pytest

from ketadesk.storage.server.certificates import new_practice_ca
from ketadesk.storage.server.dev_cluster import remove_dev_cluster
from ketadesk.storage.server.practice_roles import GROUP_ROLES, OWNER_ROLE
from tests.e2e.cli_runner import run_ketadesk

URL = re.compile(r"^postgresql://127\.0\.0\.1:(\d+)/ketadesk$")


def _connect(port: int, password: str, **tls: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        dbname="ketadesk",
        user=OWNER_ROLE,
        password=password,
        connect_timeout=5,
        **tls,
    )


@pytest.fixture
def dev_folder(tmp_path):
    folder = tmp_path / "server"
    yield folder
    remove_dev_cluster(folder)


def test_server_dev_starts_a_tls_only_scram_cluster_and_stops_it(dev_folder, tmp_path):
    started = run_ketadesk("server", "dev", "--data", str(dev_folder))
    assert started.returncode == 0, started.stderr
    url_line, ca_line = started.stdout.splitlines()
    match = URL.match(url_line)
    assert match, url_line  # no user and no password in the URL
    port = int(match.group(1))
    ca = dev_folder / "ca.crt"
    assert ca_line == f"CA certificate: {ca}"
    assert os.stat(dev_folder / "owner.password").st_mode & 0o077 == 0
    assert os.stat(dev_folder / "ca.key").st_mode & 0o077 == 0
    password = (dev_folder / "owner.password").read_text().strip()

    verified = {"sslmode": "verify-full", "sslrootcert": str(ca)}
    with _connect(port, password, **verified) as connection:
        assert connection.execute(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone() == (True,)
        assert connection.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        extensions = {r[0] for r in connection.execute("SELECT extname FROM pg_extension")}
        assert {"pg_trgm", "unaccent"} <= extensions
        roles = {r[0] for r in connection.execute("SELECT rolname FROM pg_roles")}
        assert set(GROUP_ROLES) <= roles
        server_user = connection.execute(
            "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ketadesk'"
        ).fetchone()
        assert server_user == (OWNER_ROLE,)
        data_dir = connection.execute("SHOW data_directory").fetchone()[0]
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as the dedicated system user
        import pwd

        assert pwd.getpwuid(os.stat(data_dir).st_uid).pw_name == "ketadesk-pg"

    # No TLS, or a server the practice CA did not certify, or a wrong password: refused.
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        _connect(port, password, sslmode="disable")
    stranger = tmp_path / "stranger-ca.crt"
    stranger.write_bytes(new_practice_ca("Someone else").certificate_pem)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(port, password, sslmode="verify-full", sslrootcert=str(stranger))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(port, "not the password", **verified)

    # Starting again while it runs only prints where it is.
    again = run_ketadesk("server", "dev", "--data", str(dev_folder))
    assert again.returncode == 0 and again.stdout == started.stdout

    stopped = run_ketadesk("server", "dev", "--data", str(dev_folder), "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped" in stopped.stdout
    with pytest.raises(psycopg.OperationalError):
        _connect(port, password, **verified)
    assert (
        "No dev server was running"
        in run_ketadesk("server", "dev", "--data", str(dev_folder), "--stop").stdout
    )

    # Started again, the same cluster comes back on its port with what it held.
    restarted = run_ketadesk("server", "dev", "--data", str(dev_folder))
    assert restarted.returncode == 0 and restarted.stdout == started.stdout
    with _connect(port, password, **verified) as connection:
        assert connection.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'unaccent'"
        ).fetchone() == (1,)


def test_server_dev_refuses_a_port_out_of_range_in_words(tmp_path):
    result = run_ketadesk("server", "dev", "--data", str(tmp_path / "s"), "--port", "80")
    assert result.returncode != 0
    assert "--port must be a number between 1024 and 65535" in result.stderr
    assert not (tmp_path / "s").exists()
