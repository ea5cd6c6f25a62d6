"""A throwaway local PostgreSQL cluster configured as a practice server is in production.

``start_dev_cluster(folder)`` makes (once) and starts a PostgreSQL 15+ cluster listening on
127.0.0.1 only, TLS only (``hostssl`` + SCRAM-SHA-256 in pg_hba.conf, no Unix socket), with a
server certificate issued by a practice CA generated here, the ``pg_trgm`` and ``unaccent``
extensions and the KetaDesk group roles. ``stop_dev_cluster(folder)`` stops it.

PostgreSQL refuses to run as root. As root (CI), the cluster runs as the system user
``ketadesk-pg`` (created when missing) through ``runuser``, and its data folder lives in that
user's home, since the folder given (often under a private temp folder) may be one it cannot
reach; ``folder`` then holds the CA, the superuser's password and a note of where the data is.

Files in ``folder``:
    ca.crt           the practice CA certificate (workstations verify the server with it)
    ca.key           the CA key (0600): issues server and, later, workstation certificates
    owner.password   the password of the cluster's superuser ``ketadesk_owner`` (0600)
    cluster.json     port, database name, data folder, and the system user it runs as
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from ketadesk.core.errors import UserFacingError
from ketadesk.core.private_files import make_private_folder
from ketadesk.storage.server.certificates import (
    IssuedCertificate,
    issue_server_certificate,
    new_practice_ca,
    write_private,
)
from ketadesk.storage.server.practice_roles import (
    OWNER_ROLE,
    prepare_practice_database,
)

SYSTEM_USER = "ketadesk-pg"
SYSTEM_USER_HOME = Path("/var/lib/ketadesk-pg")
DEFAULT_DATABASE = "ketadesk"
HOST = "127.0.0.1"
MIN_MAJOR_VERSION = 15
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class DevCluster:
    """Where a running dev cluster is and how to reach it (no password in it)."""

    folder: Path
    port: int
    database: str
    data_dir: Path
    run_as: str | None  # the system user PostgreSQL runs as; None: the current user

    @property
    def url(self) -> str:
        return f"postgresql://{HOST}:{self.port}/{self.database}"

    @property
    def ca_certificate(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def owner_password_file(self) -> Path:
        return self.folder / "owner.password"

    def owner_password(self) -> str:
        return self.owner_password_file.read_text(encoding="utf-8").strip()


def postgres_bin_dir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin, or PATH."""
    versions = sorted(
        (int(p.name), p / "bin")
        for p in Path("/usr/lib/postgresql").glob("*")
        if p.name.isdigit() and (p / "bin" / "pg_ctl").exists()
    )
    if versions and versions[-1][0] >= MIN_MAJOR_VERSION:
        return versions[-1][1]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise UserFacingError(
        "PostgreSQL is not installed, so no practice server can be started here. Install it "
        "with 'sudo apt-get install postgresql' (or run 'bash scripts/ensure-system-libs.sh')."
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def ensure_system_user() -> pwd.struct_passwd:
    """The ``ketadesk-pg`` system user (created, with its home, when missing; root only)."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--home-dir",
            str(SYSTEM_USER_HOME),
            "--create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "KetaDesk dev PostgreSQL",
            SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: made meanwhile by another process
        raise UserFacingError(
            f"Could not create the system user {SYSTEM_USER} that runs the dev server "
            f"(PostgreSQL refuses to run as root): {result.stderr.strip()[:300]}"
        )
    return pwd.getpwnam(SYSTEM_USER)


def _run(command: list[str], run_as: str | None, what: str) -> str:
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd="/", stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-6:]
        raise UserFacingError(f"PostgreSQL could not {what}: " + " / ".join(detail)[:800])
    return result.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _read_state(folder: Path) -> dict[str, object] | None:
    state_file = folder / "cluster.json"
    if not state_file.exists():
        return None
    state: dict[str, object] = json.loads(state_file.read_text(encoding="utf-8"))
    return state


def _cluster_of(folder: Path, state: dict[str, object]) -> DevCluster:
    run_as = state.get("run_as")
    return DevCluster(
        folder=folder,
        port=int(str(state["port"])),
        database=str(state["database"]),
        data_dir=Path(str(state["data_dir"])),
        run_as=str(run_as) if run_as else None,
    )


def _data_dir_for(folder: Path) -> tuple[Path, str | None]:
    if not _is_root():
        return folder / "cluster", None
    account = ensure_system_user()
    home = Path(account.pw_dir)
    clusters = home / "clusters"
    if not clusters.exists():
        clusters.mkdir(parents=True, mode=0o700)
    os.chown(home, account.pw_uid, account.pw_gid)
    os.chown(clusters, account.pw_uid, account.pw_gid)
    name = sha256(str(folder).encode()).hexdigest()[:16]
    return clusters / name, SYSTEM_USER


def _hand_over(path: Path, run_as: str | None) -> None:
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(path, account.pw_uid, account.pw_gid)


def _hba_rules(client_certificates: bool) -> str:
    option = " clientcert=verify-ca" if client_certificates else ""
    return (
        "# KetaDesk: TLS only, SCRAM-SHA-256 passwords, loopback only.\n"
        "# TYPE   DATABASE USER ADDRESS       METHOD\n"
        f"hostssl  all      all  {HOST}/32  scram-sha-256{option}\n"
    )


def _write_configuration(cluster: DevCluster, server: IssuedCertificate) -> None:
    data = cluster.data_dir
    for name, content in (("server.crt", server.certificate_pem), ("server.key", server.key_pem)):
        write_private(data / name, content)
        _hand_over(data / name, cluster.run_as)
    (data / "root.crt").write_bytes(cluster.ca_certificate.read_bytes())
    _hand_over(data / "root.crt", cluster.run_as)
    settings = {
        "listen_addresses": f"'{HOST}'",
        "port": str(cluster.port),
        "unix_socket_directories": "''",  # no socket: every connection is TLS over TCP
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        "ssl_min_protocol_version": "'TLSv1.2'",
        "password_encryption": "'scram-sha-256'",
        "max_connections": "40",
        "shared_buffers": "32MB",
        "fsync": "on",
        "log_connections": "off",
        # A refused row's values ("Failing row contains (…)", "Key (mrn)=(…)") and the
        # statement are patient data: the log keeps the error's sentence only.
        "log_error_verbosity": "terse",
        "log_min_error_statement": "panic",
    }
    with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# KetaDesk practice server (dev cluster)\n")
        for key, value in settings.items():
            conf.write(f"{key} = {value}\n")
    (data / "pg_hba.conf").write_text(_hba_rules(False), encoding="utf-8")


def _initialise(folder: Path, port: int) -> DevCluster:
    data_dir, run_as = _data_dir_for(folder)
    (folder / "cluster.json").unlink(missing_ok=True)
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a cluster whose set-up was interrupted: start over
    cluster = DevCluster(folder, port, DEFAULT_DATABASE, data_dir, run_as)
    ca = new_practice_ca("KetaDesk dev practice")
    write_private(folder / "ca.key", ca.key_pem)
    (folder / "ca.crt").write_bytes(ca.certificate_pem)
    write_private(cluster.owner_password_file, secrets.token_urlsafe(24).encode() + b"\n")
    bin_dir = postgres_bin_dir()
    # initdb reads the superuser's password from a file the cluster's user can read.
    with tempfile.TemporaryDirectory(prefix="ketadesk-initdb-") as scratch:
        _hand_over(Path(scratch), run_as)
        password_file = Path(scratch) / "pw"
        write_private(password_file, cluster.owner_password().encode())
        _hand_over(password_file, run_as)
        if run_as:
            data_dir.mkdir(mode=0o700)
            _hand_over(data_dir, run_as)
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data_dir),
                "--username",
                OWNER_ROLE,
                "--pwfile",
                str(password_file),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            run_as,
            "create the dev cluster",
        )
    server = issue_server_certificate(ca, [HOST, "localhost"])
    _write_configuration(cluster, server)
    _save_state(cluster)
    return cluster


def _save_state(cluster: DevCluster) -> None:
    state = {
        "port": cluster.port,
        "database": cluster.database,
        "data_dir": str(cluster.data_dir),
        "run_as": cluster.run_as,
        "prepared": bool((_read_state(cluster.folder) or {}).get("prepared")),
    }
    (cluster.folder / "cluster.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def _mark_prepared(cluster: DevCluster) -> None:
    state = _read_state(cluster.folder) or {}
    state["prepared"] = True
    (cluster.folder / "cluster.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def is_running(cluster: DevCluster) -> bool:
    if not (cluster.data_dir / "postmaster.pid").exists():
        return False
    command = [str(postgres_bin_dir() / "pg_ctl"), "status", "--pgdata", str(cluster.data_dir)]
    if cluster.run_as:
        command = ["runuser", "-u", cluster.run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, check=False, cwd="/")
    return result.returncode == 0


def start_dev_cluster(folder: Path, port: int | None = None) -> DevCluster:
    """Make (first time) and start the dev cluster kept in ``folder``; return how to reach it."""
    folder = make_private_folder(Path(folder).expanduser().resolve())
    state = _read_state(folder)
    if state is None or not Path(str(state["data_dir"])).joinpath("PG_VERSION").exists():
        cluster = _initialise(folder, port or _free_port())
    else:
        cluster = _cluster_of(folder, state)
        if is_running(cluster):
            return cluster
        if port and port != cluster.port:
            _set_port(cluster, port)
            cluster = DevCluster(folder, port, cluster.database, cluster.data_dir, cluster.run_as)
            _save_state(cluster)
    log_file = cluster.data_dir / "server.log"
    _run(
        [
            str(postgres_bin_dir() / "pg_ctl"),
            "start",
            "--pgdata",
            str(cluster.data_dir),
            "--log",
            str(log_file),
            "--wait",
            "--timeout",
            str(START_TIMEOUT_S),
        ],
        cluster.run_as,
        f"start the dev server on port {cluster.port} (its log: {log_file})",
    )
    if not bool((_read_state(folder) or {}).get("prepared")):
        prepare_practice_database(
            host=HOST,
            port=cluster.port,
            database=cluster.database,
            owner_password=cluster.owner_password(),
            ca_certificate=cluster.ca_certificate,
        )
        _mark_prepared(cluster)
    return cluster


def _set_port(cluster: DevCluster, port: int) -> None:
    conf = cluster.data_dir / "postgresql.conf"
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write(f"port = {port}\n")


def stop_dev_cluster(folder: Path) -> bool:
    """Stop the dev cluster kept in ``folder``; False when none was running."""
    folder = Path(folder).expanduser().resolve()
    state = _read_state(folder)
    if state is None:
        return False
    cluster = _cluster_of(folder, state)
    if not is_running(cluster):
        return False
    _run(
        [
            str(postgres_bin_dir() / "pg_ctl"),
            "stop",
            "--pgdata",
            str(cluster.data_dir),
            "--mode",
            "fast",
            "--wait",
        ],
        cluster.run_as,
        "stop the dev server",
    )
    return True


def remove_dev_cluster(folder: Path) -> None:
    """Stop the cluster and delete its data (the folder given keeps nothing of it either)."""
    folder = Path(folder).expanduser().resolve()
    state = _read_state(folder)
    stop_dev_cluster(folder)
    if state is not None:
        shutil.rmtree(Path(str(state["data_dir"])), ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def use_workstation_certificates(
    folder: Path, revocation_list: Path, *, required: bool | None = None
) -> DevCluster:
    """Have the dev cluster check workstation certificates against the practice CA and
    ``revocation_list`` (``ssl_ca_file``, ``ssl_crl_file``) and, when ``required`` is given,
    require one (``clientcert=verify-ca``) or not; then reload it if it runs."""
    folder = Path(folder).expanduser().resolve()
    state = _read_state(folder)
    if state is None:
        raise UserFacingError(f"No dev server was made in {folder}.")
    cluster = _cluster_of(folder, state)
    data = cluster.data_dir
    (data / "root.crl").write_bytes(revocation_list.read_bytes())
    _hand_over(data / "root.crl", cluster.run_as)
    conf = data / "postgresql.conf"
    marker = "# KetaDesk workstation certificates\n"
    if marker not in conf.read_text(encoding="utf-8"):
        with open(conf, "a", encoding="utf-8") as handle:
            handle.write(f"\n{marker}ssl_ca_file = 'root.crt'\nssl_crl_file = 'root.crl'\n")
    if required is not None:
        (data / "pg_hba.conf").write_text(_hba_rules(required), encoding="utf-8")
    if is_running(cluster):
        _reload(cluster)
    return cluster


def _reload(cluster: DevCluster) -> None:
    """Reload the configuration and wait until the server says it did (pg_ctl does not)."""
    import time

    log = cluster.data_dir / "server.log"

    def reloads() -> int:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        return text.count("reloading configuration files")

    before = reloads()
    _run(
        [str(postgres_bin_dir() / "pg_ctl"), "reload", "--pgdata", str(cluster.data_dir)],
        cluster.run_as,
        "reload its configuration",
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while reloads() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the log line comes first; the new settings right after it


def requires_workstation_certificates(folder: Path) -> bool:
    """True when the dev cluster kept in ``folder`` accepts only enrolled workstations."""
    state = _read_state(Path(folder).expanduser().resolve())
    if state is None:
        return False
    hba = Path(str(state["data_dir"])) / "pg_hba.conf"
    return hba.exists() and "clientcert=verify-ca" in hba.read_text(encoding="utf-8")


def holds_dev_cluster(folder: Path) -> bool:
    """True when ``folder`` is one ``start_dev_cluster`` made (not only a practice CA)."""
    return _read_state(Path(folder).expanduser().resolve()) is not None
