"""A practice on a PostgreSQL server: create it (``server init``), log in, sessions.

Each KetaDesk user is a PostgreSQL login role of the same name whose SCRAM password is their
KetaDesk password, so logging in *is* connecting: the server checks the password, and every
statement afterwards runs with that user's grants (``practice_grants``). The same models and
services as on a file practice run on the sessions given out here.

``ServerPractice`` answers what the app and the everyday commands ask of an open practice
(``session``, ``read_session``, ``lock``, ``unlock_again``, ``verify_audit_trail``...) as
``PracticeDatabase`` does for a file, so the same screens and commands run on either.

Each user's signing key is kept on the server wrapped by their password (``server_signing``):
unwrapped at log-in, it signs audit events and content signatures as on a file practice.

A server practice has a recovery key of its own, made here at ``create`` and replaced by a
user manager (``replace_recovery_key``): it can only give a user who manages users a new
password (``server_recovery``, ``recovery_role``). File practices only: key slots (a user
manager resets a forgotten password on a server), failed-attempt back-off (the server's own
log records refused log-ins). Backup and restore have their server forms (``server_backup``;
``restore_roles`` makes the login roles on a new server). Visit packs stay encrypted files on
the laptop (``storage/visits``), checked out of and returned to a server as the user logged in
here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.display_names import check_full_name
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, Role, require
from ketadesk.models.practice import PracticeMeta
from ketadesk.models.users import User
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.security.audit_signatures import (
    DATABASE_ID_KEY,
    SIGNER_KEY,
    SignatureReport,
    check_event_signatures,
)
from ketadesk.storage.security.content_signatures import (
    ContentSignatureCheck,
    check_content_signatures,
)
from ketadesk.storage.security.database import (
    DatabaseBusyError,
    actor_from_user,
    check_user_name,
)
from ketadesk.storage.security.engine import BUSY_TIMEOUT_MS
from ketadesk.storage.security.keyslots import WRONG_CREDENTIALS, new_recovery_key
from ketadesk.storage.security.migrate import PACKAGED_HEAD, current_revision, upgrade_to_head
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.security.signing_keys import Signer
from ketadesk.storage.security.users import check_credentials
from ketadesk.storage.server.live_updates import (
    ChangeListener,
    ChangeNote,
    tag_connections,
)
from ketadesk.storage.server.practice_grants import RESERVED_ROLE_NAMES, RESERVED_ROLE_PREFIXES
from ketadesk.storage.server.practice_roles import OWNER_ROLE, connection_problem
from ketadesk.storage.server.server_credentials import set_credentials_in_session
from ketadesk.storage.server.server_engine import (
    READS_ONLY,
    ServerAddress,
    WorkstationCertificate,
    check_workstation_files,
    create_server_engine,
    is_connection_lost,
    lost_connection_message,
)
from ketadesk.storage.server.server_signing import (
    server_grant_check,
    signer_at_log_in,
    store_signing_key,
)
from ketadesk.storage.server.server_upgrade import apply_server_objects

# One write transaction at a time per practice, as SQLite's write lock gives a file practice,
# taken first so that row locks and the audit chain's lock never wait on each other (a
# deadlock). The chain itself does not rely on it: the database's own trigger takes the same
# lock and computes it (migration 0017), for any client.
_WRITE_LOCK_ID = 0x4B455441  # "KETA"


def _take_write_lock(session: Session) -> None:
    """The practice's write lock, one writer at a time as on a file: at once when it is free
    (one round trip); else waited for up to ``BUSY_TIMEOUT_MS`` as SQLite waits, then refused
    (SQLSTATE 55P03), never waited for without end behind a workstation that hangs."""
    taken = session.execute(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _WRITE_LOCK_ID}
    ).scalar_one()
    if taken:
        return
    session.execute(text(f"SET LOCAL lock_timeout = {int(BUSY_TIMEOUT_MS)}"))
    session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _WRITE_LOCK_ID})
    session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


def check_server_user_name(user_name: str) -> None:
    """A KetaDesk user name that can also be a PostgreSQL role of the same name."""
    check_user_name(user_name)
    if user_name in RESERVED_ROLE_NAMES or user_name.startswith(RESERVED_ROLE_PREFIXES):
        raise UserFacingError(
            f"The user name {user_name} is kept for the database server itself; choose another."
        )


def _connect_or_explain(engine: Engine, address: ServerAddress, user_name: str) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        detail = str(error.orig) if error.orig is not None else str(error)
        # A removed user's role may no longer log in: refused as on a file practice.
        if "password authentication failed" in detail or "is not permitted to log in" in detail:
            raise UserFacingError(WRONG_CREDENTIALS) from None
        raise UserFacingError(
            connection_problem(detail, user_name, address.host, address.port)
        ) from None


def _scram_verifier(engine: Engine, user_name: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier libpq makes for ``password`` (the server never sees it)."""
    raw = engine.raw_connection()
    try:
        pgconn = raw.driver_connection.pgconn  # type: ignore[union-attr]
        verifier = pgconn.encrypt_password(password.encode(), user_name.encode(), b"scram-sha-256")
        return bytes(verifier).decode()
    finally:
        raw.close()


def _connect_as(
    address: ServerAddress,
    ca_certificate: Path,
    user_name: str,
    password: str,
    workstation: WorkstationCertificate | None = None,
) -> tuple[Engine, Actor]:
    """An engine logged in as ``user_name`` (the server checks the password) and who they are
    in the practice; a wrong password, a removed user or another server is refused in words."""
    if not ca_certificate.is_file():
        raise UserFacingError(
            f"The practice certificate {ca_certificate} is missing; it is installed once "
            "per workstation and needed to check the server is the practice's."
        )
    if workstation is not None:
        check_workstation_files(workstation)
    engine = create_server_engine(address, user_name, password, ca_certificate, workstation)
    _connect_or_explain(engine, address, user_name)
    try:
        revision = current_revision(engine)
        if revision != PACKAGED_HEAD:
            raise UserFacingError(
                f"The practice database on {address.host} is at schema {revision}, and "
                f"this KetaDesk needs {PACKAGED_HEAD}. Ask whoever runs the server to "
                "upgrade it, or use the matching KetaDesk version."
            )
        with Session(engine) as session:
            user = session.execute(
                select(User).where(User.user_name == user_name)
            ).scalar_one_or_none()
            if user is None or not user.is_active:
                raise UserFacingError(WRONG_CREDENTIALS)
            actor = actor_from_user(user)
    except BaseException:
        engine.dispose()
        raise
    return engine, actor


@dataclass(frozen=True)
class ServerPracticeCreated:
    actor: Actor
    address: ServerAddress
    recovery_key: str = field(repr=False)  # shown once (``server_recovery``)


class ServerPractice:
    """A practice on a server, open as one user (their own database role)."""

    # What ``PracticeDatabase`` has and a server practice has not (yet).
    visit_pack = None
    path: Path | None = None  # no database file on this workstation

    def __init__(
        self,
        address: ServerAddress,
        engine: Engine,
        actor: Actor,
        ca_certificate: Path,
        workstation: WorkstationCertificate | None = None,
    ) -> None:
        self.address = address
        self.engine = engine
        self.actor = actor
        self.ca_certificate = ca_certificate
        self.workstation = workstation
        self._locked = False
        self._signer: Signer | None = None
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.origin = uuid.uuid4().hex  # this workstation's changes, in live updates
        with Session(engine) as session:
            stored = session.get(PracticeMeta, "database_id")
        self.database_id = "" if stored is None else stored.value

    # --- creating ----------------------------------------------------------------------------
    @staticmethod
    def create(
        address: ServerAddress,
        ca_certificate: Path,
        *,
        owner_password: str,
        user_name: str,
        full_name: str,
        password: str,
        owner: str = OWNER_ROLE,
    ) -> ServerPracticeCreated:
        """Make the schema, the grants, the triggers freezing signed records and keeping
        clinical columns to physicians, the first physician (who manages users) and the
        practice's recovery key (returned, to be shown once)."""
        from ketadesk.storage.server.server_recovery import set_recovery_key

        check_server_user_name(user_name)
        full_name = check_full_name(full_name, whose="the physician's")
        check_new_password(password, user_name)
        engine = create_server_engine(address, owner, owner_password, ca_certificate)
        try:
            _connect_or_explain(engine, address, owner)
            if current_revision(engine) is not None:
                raise UserFacingError(
                    f"The database {address.database} on {address.host} already holds a "
                    "practice; nothing was changed."
                )
            with engine.connect() as connection:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": user_name}
                ).first()
            if exists:
                raise UserFacingError(
                    f"The server already has a database role named {user_name}; choose "
                    "another user name. Nothing was changed."
                )
            upgrade_to_head(engine)
            verifier = _scram_verifier(engine, user_name, password)
            with engine.begin() as connection:
                apply_server_objects(connection)
                connection.exec_driver_sql(
                    f"CREATE ROLE \"{user_name}\" LOGIN PASSWORD '{verifier}' "
                    "IN ROLE ketadesk_physician, ketadesk_user_manager"
                )
            recovery_key = new_recovery_key()
            database_id = uuid.uuid4().hex
            with Session(engine) as session, session.begin():
                session.add(PracticeMeta(key="database_id", value=database_id))
                user = User(
                    user_name=user_name,
                    full_name=full_name.strip(),
                    role=Role.PHYSICIAN.value,
                    can_manage_users=True,
                    password_changed_at=datetime.now(UTC),
                )
                session.add(user)
                session.flush()
                actor = actor_from_user(user)
                record_event(session, actor, audit_actions.DATABASE_CREATED)
                record_event(
                    session,
                    actor,
                    audit_actions.USER_ADDED,
                    detail=f"user {user_name} role physician, manages users",
                )
                set_recovery_key(session, address.database, database_id, recovery_key)
                record_event(session, actor, audit_actions.RECOVERY_KEY_SET,
                             detail="recovery key made")
        finally:
            engine.dispose()
        return ServerPracticeCreated(actor, address, recovery_key)

    # --- logging in ---------------------------------------------------------------------------
    @classmethod
    def log_in(
        cls,
        address: ServerAddress,
        ca_certificate: Path,
        user_name: str,
        password: str,
        workstation: WorkstationCertificate | None = None,
    ) -> ServerPractice:
        """Connect as ``user_name``: the server checks the password (SCRAM over TLS)."""
        engine, actor = _connect_as(address, ca_certificate, user_name, password, workstation)
        practice = cls(address, engine, actor, ca_certificate, workstation)
        try:
            practice._open_signer(actor, password)
            with practice.session() as session:
                record_event(session, actor, audit_actions.LOGIN)
        except BaseException:
            practice.close()
            raise
        return practice

    def _open_signer(self, actor: Actor, password: str) -> None:
        """Unwrap (or make, the first time) the user's signing key with their password."""
        with self.session() as session:
            self._signer = signer_at_log_in(session, self.database_id, actor, password)

    # --- sessions -----------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session per user action: commits on success, rolls back on any error."""
        self._refuse_when_locked()
        session = self._sessions()
        session.info[DATABASE_ID_KEY] = self.database_id
        committing = False
        if self._signer is not None:
            session.info[SIGNER_KEY] = self._signer
        try:
            _take_write_lock(session)
            yield session
            committing = True
            session.commit()
        except DBAPIError as error:
            session.rollback()
            if is_connection_lost(error):
                raise UserFacingError(
                    lost_connection_message(self.address, in_doubt=committing)
                ) from error
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate == "55P03":  # lock_not_available: the write lock, after the wait
                raise DatabaseBusyError(
                    "The practice server is busy (another workstation is saving to it). "
                    "Nothing was saved; try again in a moment."
                ) from error
            if sqlstate == "42501":  # insufficient_privilege
                raise UserFacingError(
                    "The practice server refused this change: your role may not make it. "
                    "Nothing was saved."
                ) from error
            if sqlstate == "P0001":  # a sentence raised by KetaDesk's own server functions
                message = error.orig.diag.message_primary  # type: ignore[union-attr]
                raise UserFacingError(f"{message} Nothing was changed.") from error
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def confirm_password_of(self, user_name: str, password: str) -> Actor:
        """Check ``user_name``'s password by logging in as them (SCRAM; the server checks it)
        and log out at once: nothing of theirs is kept, not even their signing key."""
        engine, actor = _connect_as(
            self.address, self.ca_certificate, user_name, password, self.workstation
        )
        engine.dispose()
        return actor

    def add_user(
        self,
        user_name: str,
        full_name: str,
        role: Role,
        password: str,
        *,
        manage_users: bool = False,
        npi: str | None = None,
        dea_number: str | None = None,
        licence_states: tuple[str, ...] = (),
    ) -> int:
        """Add a user (a login role with ``password``) through ``ketadesk_add_user``, with
        their credentials (``server_credentials``) in the same transaction."""
        require(self.actor, Permission.MANAGE_USERS, "add users")
        check_server_user_name(user_name)
        full_name = check_full_name(full_name, whose="the new user's")
        with self.read_session() as session:  # the practice's name counts as an easy guess
            check_new_password(password, user_name, session=session)
        has_credentials = bool(npi or dea_number or licence_states)
        if has_credentials:
            check_credentials(npi, dea_number, licence_states)
        verifier = _scram_verifier(self.engine, user_name, password)
        with self.session() as session:
            new_id = session.execute(
                text("SELECT ketadesk_add_user(:name, :full, :role, :manage, :verifier)"),
                {
                    "name": user_name,
                    "full": full_name.strip(),
                    "role": role.value,
                    "manage": manage_users,
                    "verifier": verifier,
                },
            ).scalar_one()
            detail = f"user {user_name} role {role.value}"
            record_event(
                session,
                self.actor,
                audit_actions.USER_ADDED,
                detail=detail + (", manages users" if manage_users else ""),
            )
            if has_credentials:
                set_credentials_in_session(
                    session, self.actor, user_name, npi=npi, dea_number=dea_number,
                    licence_states=licence_states,
                )
        return int(new_id)

    def set_role(self, user_name: str, role: Role, *, manage_users: bool) -> None:
        """Change a user's role and right to manage users (their groups on the server too)."""
        require(self.actor, Permission.MANAGE_USERS, "change roles")
        with self.session() as session:
            user = session.execute(
                select(User).where(User.user_name == user_name)
            ).scalar_one_or_none()
            before = (
                ""
                if user is None
                else f"{user.role}{' +manage_users' if user.can_manage_users else ''}"
            )
            session.execute(
                text("SELECT ketadesk_set_user_role(:name, :role, :manage)"),
                {"name": user_name, "role": role.value, "manage": manage_users},
            )
            after = f"{role.value}{' +manage_users' if manage_users else ''}"
            record_event(
                session,
                self.actor,
                audit_actions.ROLE_CHANGED,
                detail=f"user {user_name}: {before} -> {after}",
            )

    def remove_user(self, user_name: str) -> None:
        """Deactivate the user and their login role (their audit history stays)."""
        require(self.actor, Permission.MANAGE_USERS, "remove users")
        with self.session() as session:
            session.execute(text("SELECT ketadesk_remove_user(:name)"), {"name": user_name})
            record_event(
                session, self.actor, audit_actions.USER_REMOVED, detail=f"user {user_name}"
            )

    def change_own_password(self, old_password: str, new_password: str) -> None:
        """The logged-in user's password: the server checks the old one, sets the new one
        through ``ketadesk_set_password`` and the signing key is wrapped again under it, with
        the audit event, in one transaction."""
        user_name = self.actor.user_name
        with self.read_session() as session:
            check_new_password(new_password, user_name, session=session)
        if new_password == old_password:
            raise UserFacingError("The new password must be different from the current one.")
        checked, _actor = _connect_as(self.address, self.ca_certificate, user_name, old_password)
        checked.dispose()
        verifier = _scram_verifier(self.engine, user_name, new_password)
        with self.session() as session:
            session.execute(
                text("SELECT ketadesk_set_password(:name, :verifier)"),
                {"name": user_name, "verifier": verifier},
            )
            if self._signer is not None:
                store_signing_key(
                    session, self.database_id, user_name, self._signer.private_raw, new_password
                )
            record_event(
                session, self.actor, audit_actions.PASSWORD_CHANGED, detail=f"user {user_name}"
            )
        # Connections opened from now on log in with the new password.
        engine = create_server_engine(self.address, user_name, new_password, self.ca_certificate)
        self.engine.dispose()
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def reset_password(self, user_name: str, new_password: str) -> None:
        """A manager sets another user's password. Their signing key cannot be wrapped again
        (only they can open it): the server drops it and their next log-in makes a new one."""
        require(self.actor, Permission.MANAGE_USERS, "reset other users' passwords")
        if user_name == self.actor.user_name:
            raise UserFacingError(
                "Change your own password with your current one (Change password), not by a "
                "reset. Nothing was changed."
            )
        with self.read_session() as session:
            check_new_password(new_password, user_name, session=session)
        if self._password_opens(user_name, new_password):  # as a file's key slot tells
            raise UserFacingError("The new password must be different from the current one.")
        verifier = _scram_verifier(self.engine, user_name, new_password)
        with self.session() as session:
            session.execute(
                text("SELECT ketadesk_set_password(:name, :verifier)"),
                {"name": user_name, "verifier": verifier},
            )
            record_event(
                session, self.actor, audit_actions.PASSWORD_RESET, detail=f"user {user_name}"
            )

    def replace_recovery_key(self) -> str:
        """A new recovery key for the practice (returned, to be shown once); the earlier one
        stops working at once. Audited; a user who manages users only."""
        from ketadesk.storage.server.server_recovery import has_recovery_role, set_recovery_key

        require(self.actor, Permission.MANAGE_USERS, "replace the recovery key")
        recovery_key = new_recovery_key()
        with self.session() as session:
            replacing = has_recovery_role(session, self.address.database)
            set_recovery_key(session, self.address.database, self.database_id, recovery_key)
            record_event(
                session, self.actor, audit_actions.RECOVERY_KEY_SET,
                detail=(
                    "new recovery key; the earlier one no longer works"
                    if replacing
                    else "recovery key made"
                ),
            )
        return recovery_key

    def _password_opens(self, user_name: str, password: str) -> bool:
        """Whether ``password`` is ``user_name``'s password now (only the server, holding its
        SCRAM verifier, can tell: one log-in attempt, closed at once)."""
        try:
            self.confirm_password_of(user_name, password)
        except UserFacingError as refused:
            if refused.message == WRONG_CREDENTIALS:
                return False
            raise
        return True

    @contextmanager
    def read_session(self, *, snapshot: bool = True) -> Iterator[Session]:
        """A session that only reads and takes no write lock.

        ``snapshot`` True: a read-only transaction (``BEGIN READ ONLY``, a round trip of its
        own, and ``ROLLBACK`` another at the end), so that all its statements see the
        database at one moment and the server refuses any write. False: no transaction
        (autocommit), so no ``BEGIN`` or ``ROLLBACK`` round trip: each statement sees the
        database as it is when it runs, and a statement that is not a ``SELECT`` is refused
        here before it is sent (``server_engine.READS_ONLY``). For a read of one statement:
        a search keystroke (its count and first page are one statement on a server)."""
        self._refuse_when_locked()
        session = self._sessions()
        try:
            if snapshot:
                session.connection(execution_options={"postgresql_readonly": True})
            else:
                session.connection(
                    execution_options={"isolation_level": "AUTOCOMMIT", READS_ONLY: True}
                )
            yield session
        except DBAPIError as error:
            if is_connection_lost(error):
                raise UserFacingError(lost_connection_message(self.address)) from error
            raise
        finally:
            session.rollback()
            session.close()

    def _refuse_when_locked(self) -> None:
        if self._locked:
            raise UserFacingError("The practice is locked on this workstation; log in again.")

    # --- lock, re-authenticate, close -------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        return self._locked

    def lock(self, actor: Actor) -> None:
        """Record the lock, then close every connection (the password is not kept)."""
        if self._locked:
            return
        try:
            with self.session() as session:
                record_event(session, actor, audit_actions.LOCK)
        finally:
            self._locked = True
            self._signer = None
            self.engine.dispose()

    def unlock_again(self, user_name: str, password: str) -> Actor:
        """Log in again after a lock (the same or another user: "switch user"): the server
        checks the password, and the connections are that user's from now on."""
        engine, actor = _connect_as(
            self.address, self.ca_certificate, user_name, password, self.workstation
        )
        self.engine.dispose()
        self.engine, self.actor = engine, actor
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._locked = False
        self._open_signer(actor, password)
        with self.session() as session:
            record_event(session, actor, audit_actions.UNLOCK)
        return actor

    # --- live updates -------------------------------------------------------------------------
    def change_listener(
        self,
        on_notes: Callable[[list[ChangeNote]], None],
        on_reconnected: Callable[[], None],
    ) -> ChangeListener:
        """A listener for the other workstations' changes (``live_updates``), on a connection
        of its own as this user; this workstation's own changes are marked and skipped."""
        tag_connections(self.engine, self.origin)
        return ChangeListener(self._listening_connection, self.origin, on_notes, on_reconnected)

    def _listening_connection(self) -> object:
        self._refuse_when_locked()
        raw = self.engine.raw_connection()
        connection = raw.driver_connection
        raw.detach()  # the listener's own, out of the sessions' pool
        return connection

    def wait_for_page_check(self) -> None:
        """Nothing to wait for: the server checks its own pages (a file practice checks its
        file after log-in)."""

    def record_event_when_writable(
        self, actor: Actor, action: str, *, patient_id: int | None = None, detail: str = ""
    ) -> None:
        """Record one audit event (a chart opened) at once: no page check to wait for."""
        with self.session() as session:
            record_event(session, actor, action, patient_id=patient_id, detail=detail)

    def signer(self) -> Signer | None:
        """The logged-in user's signing key (None when locked)."""
        return self._signer

    # --- the audit trail ---------------------------------------------------------------------
    def verify_audit_trail(self) -> ChainVerdict:
        """The whole hash chain, read from the server, then every event's signature (the
        first problem is named, as on a file practice)."""
        with self.read_session() as session:
            verdict = verify_audit(session)
            if not verdict.is_intact:
                return verdict
            report = check_event_signatures(session, server_grant_check(session, self.database_id))
        if not report.problems:
            return verdict
        seq, problem = report.problems[0]
        more = len(report.problems) - 1
        return ChainVerdict(
            False,
            verdict.event_count,
            seq,
            problem + (f" ({more} more events with signature problems)" if more else ""),
        )

    def check_whole_audit_trail(self, actor: Actor) -> ChainVerdict:
        """The background walk after log-in; a broken chain is recorded as at log-in."""
        verdict = self.verify_audit_trail()
        if not verdict.is_intact:
            with self.session() as session:
                record_event(
                    session,
                    actor,
                    audit_actions.AUDIT_CHECK_FAILED,
                    detail=verdict.describe()[:200],
                )
        return verdict

    def audit_signatures(self) -> SignatureReport:
        """Who signed how many events, and every event whose signature is refused."""
        with self.read_session() as session:
            return check_event_signatures(session, server_grant_check(session, self.database_id))

    def content_signatures(self) -> list[ContentSignatureCheck]:
        """Every physician signature over clinical content, and whether it still holds."""
        with self.read_session() as session:
            return check_content_signatures(
                session, self.database_id, server_grant_check(session, self.database_id)
            )

    def close(self) -> None:
        self._locked = True
        self._signer = None
        self.engine.dispose()
