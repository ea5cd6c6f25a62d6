"""Backups of a practice server: ``pg_dump`` sealed before it touches a disk; restore into an
empty database.

Who: a backup is made by a user who manages users, connected as their own role (the owner's
password stays on the server; the event names who made it). The server lets every staff role
read every row (as the app shows them), so its grants cannot tell a backup from reading; the
app asks for ``manage_users``. A restore creates the tables, so it needs the schema's owner
(the server's superuser, ``ketadesk_owner``) as well as a user who manages users, who logs in
to the restored practice afterwards and records the restore in the audit trail.

``pg_dump`` and ``pg_restore`` come from the PostgreSQL installation of the server's major
version (Debian keeps each in ``/usr/lib/postgresql/N/bin``): an older ``pg_dump`` refuses a
newer server, and a restore must read what the dump wrote. Passwords reach them in their own
environment, never on a command line (which ``ps`` shows to everyone).

A restore goes into an empty database only, so nothing is ever overwritten: the whole backup
is opened and checked first (a wrong passphrase, a file cut short or altered are refused before
anything changes), then ``pg_restore --single-transaction`` (a failure leaves the database
empty), then the migrations and the server's grants and triggers (``server_upgrade``), then
the audit chain is walked. On a server without the practice's login roles (a new one, after a
disaster) the restore makes them (``restore_roles``): the restorer's with their password, the
others' with none until a user manager sets one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission, require
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.server.encrypted_dump import (
    check_backup,
    decrypted_chunks,
    write_encrypted,
)
from ketadesk.storage.server.practice_roles import (
    OWNER_ROLE,
    USER_MANAGER_GROUP,
    connect,
    prepare_practice_database,
)
from ketadesk.storage.server.restore_roles import (
    RolesMade,
    create_missing_roles,
    empty_again,
    login_role_exists,
    refused_restorer,
    restored_users,
    restorer_problem,
)
from ketadesk.storage.server.server_engine import ServerAddress
from ketadesk.storage.server.server_practice import (
    ServerPractice,
    _scram_verifier,
    check_server_user_name,
)
from ketadesk.storage.server.server_upgrade import owner_engine, upgrade_engine

POSTGRESQL_ROOT = Path("/usr/lib/postgresql")


def server_major_version(engine: Engine) -> int:
    with engine.connect() as connection:
        number = connection.execute(text("SHOW server_version_num")).scalar_one()
    return int(number) // 10000


def client_tool(name: str, server_major: int) -> Path:
    """``pg_dump`` or ``pg_restore`` of the server's major version, or the reason there is none."""
    exact = POSTGRESQL_ROOT / str(server_major) / "bin" / name
    if exact.is_file():
        return exact
    found = shutil.which(name)
    if found:
        result = subprocess.run(
            [found, "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"(\d+)(?:\.\d+)?", result.stdout)
        if match and int(match.group(1)) == server_major:
            return Path(found)
    raise UserFacingError(
        f"The practice server runs PostgreSQL {server_major}, and this computer has no {name} "
        f"of that version. Install it (on Debian or Ubuntu: 'sudo apt-get install "
        f"postgresql-client-{server_major}') and try again. Nothing was changed."
    )


def _tool_environment(
    address: ServerAddress, user: str, password: str, ca_certificate: Path
) -> dict[str, str]:
    """libpq's settings for a child process: TLS verified against the practice CA."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    environment.update(
        PGHOST=address.host,
        PGPORT=str(address.port),
        PGDATABASE=address.database,
        PGUSER=user,
        PGPASSWORD=password,
        PGSSLMODE="verify-full",
        PGSSLROOTCERT=str(ca_certificate.resolve()),
        PGCONNECT_TIMEOUT="10",
        PGAPPNAME="KetaDesk backup",
    )
    return environment


def _tool_failure(what: str, stderr: bytes) -> UserFacingError:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    detail = " / ".join(line.strip() for line in lines)[:400]
    return UserFacingError(f"{what}: {detail or 'it stopped without saying why'}.")


# --- backup -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupWritten:
    path: Path
    dump_bytes: int
    file_bytes: int


def backup_server_practice(
    practice: ServerPractice, password: str, out: Path, passphrase: str
) -> BackupWritten:
    """Dump the practice as the logged-in user (who manages users) into ``out``, sealed
    chunk by chunk with a key from ``passphrase``; a failed dump leaves no file behind."""
    require(practice.actor, Permission.MANAGE_USERS, "back up the practice server")
    major = server_major_version(practice.engine)
    pg_dump = client_tool("pg_dump", major)
    with practice.read_session() as session:
        server_version = str(session.execute(text("SHOW server_version")).scalar_one())
    with practice.session() as session:
        record_event(session, practice.actor, audit_actions.BACKUP_CREATED, detail=out.name[:100])
    environment = _tool_environment(
        practice.address, practice.actor.user_name, password, practice.ca_certificate
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    partial = Path(name)
    try:
        with (
            os.fdopen(fd, "wb") as sealed,
            tempfile.TemporaryFile() as errors,
            subprocess.Popen(
                # Users' wrapped signing keys stay out: row-level security shows the dumping
                # user only their own (pg_dump refuses a filtered table). After a restore
                # each user's next log-in makes a new key; server_public_keys keeps the old
                # ones, so every signed event still verifies.
                [str(pg_dump), "--format=custom", "--no-password",
                 "--exclude-table-data=server_signing_keys"],
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                env=environment,
                cwd="/",
            ) as dump,
        ):
            assert dump.stdout is not None
            dump_bytes = write_encrypted(
                dump.stdout.read,
                sealed,
                passphrase,
                made_at=datetime.now(UTC).isoformat(timespec="seconds"),
                made_by=practice.actor.user_name,
                database_id=practice.database_id,
                server_version=server_version,
            )
            if dump.wait() != 0:
                errors.seek(0)
                raise _tool_failure("pg_dump could not back up the practice", errors.read())
            sealed.flush()
            os.fsync(sealed.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupWritten(out, dump_bytes, out.stat().st_size)


# --- restore ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreDone:
    made_at: str
    made_by: str
    verdict: ChainVerdict
    users_without_login: tuple[str, ...]
    roles_made: RolesMade | None = None  # on a server without the restorer's role
    # The recovery role belongs to the server, not to the backup: a new server has none.
    has_recovery_key: bool = True


def _tables_in(engine: Engine) -> int:
    """Tables, views and sequences of the public schema that no extension owns."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid "
                    "AND d.deptype = 'e')"
                )
            ).scalar_one()
        )


def refuse_unless_empty(engine: Engine, address: ServerAddress, what: str) -> None:
    count = _tables_in(engine)
    if count:
        raise UserFacingError(
            f"The database {address.database} on {address.host} is not empty (it holds "
            f"{count} tables or sequences); {what} goes into an empty database only, so "
            "nothing is overwritten. Name a new database (for example "
            f"postgresql://{address.host}:{address.port}/{address.database}_restored). "
            "Nothing was changed."
        )


def prepare_empty_database(
    address: ServerAddress, ca_certificate: Path, owner: str, owner_password: str
) -> None:
    """Create the database (when missing), the group roles and extensions, as ``server dev``
    does; in a database that exists only what is missing is made."""
    if owner != OWNER_ROLE:
        return  # another owner prepares their own databases
    prepare_practice_database(
        host=address.host,
        port=address.port,
        database=address.database,
        owner_password=owner_password,
        ca_certificate=ca_certificate,
    )


def check_user_manager_role(
    address: ServerAddress, ca_certificate: Path, user_name: str, password: str
) -> None:
    """``user_name`` is a login role on this server, its password is right, and it manages
    users: checked before anything changes."""
    try:
        connection = connect(
            host=address.host,
            port=address.port,
            database=address.database,
            user=user_name,
            password=password,
            ca_certificate=ca_certificate,
            autocommit=True,
        )
    except UserFacingError as error:
        raise UserFacingError(f"{error.message} Nothing was restored.") from None
    with connection:
        manages = connection.execute(
            "SELECT pg_has_role(session_user, %s, 'MEMBER')", (USER_MANAGER_GROUP,)
        ).fetchone()
    if not manages or not manages[0]:
        raise UserFacingError(
            f"{user_name} does not manage users on this server, and restoring a practice "
            "needs a user who does. Nothing was changed."
        )


def restore_server_backup(
    source: Path,
    passphrase: str,
    address: ServerAddress,
    ca_certificate: Path,
    *,
    owner: str,
    owner_password: str,
    user_name: str,
    password: str,
) -> RestoreDone:
    """Put the backup ``source`` into the empty database at ``address`` (see the module)."""
    if not source.is_file():
        raise UserFacingError(f"There is no backup file at {source}.")
    prepare_empty_database(address, ca_certificate, owner, owner_password)
    engine = owner_engine(address, ca_certificate, owner, owner_password)
    try:
        refuse_unless_empty(engine, address, "a backup")
        with open(source, "rb") as stream:
            header, _size = check_backup(stream, passphrase)
        major = server_major_version(engine)
        made_on = int(re.match(r"\d+", header.server_version).group(0))  # type: ignore[union-attr]
        if made_on > major:
            raise UserFacingError(
                f"The backup was made on PostgreSQL {made_on}, and this server runs "
                f"{major}; restore it on a server of version {made_on} or newer. Nothing "
                "was changed."
            )
        pg_restore = client_tool("pg_restore", major)
        # A new server (after a disaster) has none of the practice's login roles: the restore
        # makes them (restore_roles), the restorer's with the password given here.
        has_role = login_role_exists(engine, user_name)
        if has_role:
            check_user_manager_role(address, ca_certificate, user_name, password)
        else:
            check_server_user_name(user_name)
            check_new_password(password, user_name)
        _run_pg_restore(pg_restore, source, passphrase, address, ca_certificate, owner,
                        owner_password)
        upgraded = upgrade_engine(engine)
        with Session(engine) as session:
            verdict = verify_audit(session)
            users = restored_users(session)
        if not has_role:
            problem = restorer_problem(users, user_name)
            if problem is not None:
                empty_again(engine)
                prepare_empty_database(address, ca_certificate, owner, owner_password)
                raise refused_restorer(problem, source)
            verifier: str | None = _scram_verifier(engine, user_name, password)
        else:
            verifier = None
        made = create_missing_roles(engine, users, user_name, verifier)
        with Session(engine) as session:
            without = _users_without_login(session)
    finally:
        engine.dispose()
    try:
        practice = ServerPractice.log_in(address, ca_certificate, user_name, password)
    except UserFacingError:
        raise UserFacingError(
            f"The backup was restored into {address.url} ({verdict.describe()}), but "
            f"{user_name[:64]} is not an active user of the practice in it, so the restore "
            "was not recorded in its audit trail. Log in as one of its users to check it."
        ) from None
    try:
        with practice.session() as session:
            record_event(
                session, practice.actor, audit_actions.BACKUP_RESTORED, detail=source.name[:100]
            )
    finally:
        practice.close()
    return RestoreDone(
        header.made_at, header.made_by, verdict, without, made, upgraded.has_recovery_key
    )


def _run_pg_restore(
    pg_restore: Path,
    source: Path,
    passphrase: str,
    address: ServerAddress,
    ca_certificate: Path,
    owner: str,
    owner_password: str,
) -> None:
    environment = _tool_environment(address, owner, owner_password, ca_certificate)
    with (
        open(source, "rb") as stream,
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            [
                str(pg_restore),
                "--dbname",
                address.database,
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                # Rows go back exactly as they were dumped (audit hashes, signed records);
                # the triggers judge new writes, not a restore. Needs the owner (superuser).
                "--disable-triggers",
                "--no-password",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=environment,
            cwd="/",
        ) as restore,
    ):
        assert restore.stdin is not None
        try:
            for chunk in decrypted_chunks(stream, passphrase):
                restore.stdin.write(chunk)
            restore.stdin.close()
        except BrokenPipeError:
            pass  # pg_restore stopped early: its own message says why
        if restore.wait() != 0:
            errors.seek(0)
            raise _tool_failure(
                "pg_restore could not restore the backup (the database was left empty)",
                errors.read(),
            )


def _users_without_login(session: Session) -> tuple[str, ...]:
    """Active users of the restored practice with no login role on this server (roles belong
    to the server, not to a database, so a backup does not carry them)."""
    rows = session.execute(
        text(
            "SELECT u.user_name FROM users u WHERE u.is_active AND NOT EXISTS "
            "(SELECT 1 FROM pg_roles r WHERE r.rolname = u.user_name AND r.rolcanlogin) "
            "ORDER BY u.user_name"
        )
    ).all()
    return tuple(str(row[0]) for row in rows)
