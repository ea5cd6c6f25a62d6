"""The practice database: create, unlock, lock, sessions, backup.

Open the database only after unlock, never at import: ``PracticeDatabase.unlock`` returns an
object holding the engine; ``lock()`` drops the key and every pooled connection.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.display_names import check_full_name
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Role
from ketadesk.core.private_files import (
    create_private_empty_file,
    make_private_folder,
    restrict,
    restrict_database_files,
)
from ketadesk.models.practice import PracticeMeta
from ketadesk.models.users import User
from ketadesk.storage.security import attempts
from ketadesk.storage.security.attempts_kept import failed_attempts_kept, keep_failed_attempts
from ketadesk.storage.security.audit_checkpoint import (
    WalkStopped,
    record_walk_result,
    verify_since_checkpoint,
    walk_whole_chain,
)
from ketadesk.storage.security.audit_log import latest_event, record_event
from ketadesk.storage.security.database_location import (
    DISK_FULL,
    check_database_location,
    is_disk_full,
)
from ketadesk.storage.security.engine import (
    MIN_DATABASE_BYTES,
    check_key_opens,
    cipher_damaged_pages,
    create_keyed_engine,
    export_encrypted_copy,
    forget_key,
)
from ketadesk.storage.security.integrity_gate import IntegrityGate
from ketadesk.storage.security.kdf_bounds import rewrap_weak_user_slot
from ketadesk.storage.security.keyslots import (
    WRONG_CREDENTIALS,
    AuditAnchor,
    KdfParams,
    KeySlotFile,
    new_database_key,
)
from ketadesk.storage.security.migrate import (
    PACKAGED_HEAD,
    current_revision,
    needs_upgrade,
    upgrade_to_head,
)
from ketadesk.storage.security.orm_warmup import start_orm_warm_up
from ketadesk.storage.security.password_rules import check_new_password


class DatabaseDamagedError(UserFacingError):
    exit_code = 4


class DatabaseBusyError(UserFacingError):
    exit_code = 5


def _refuse_while_backing_off(path: Path, user_name: str, now: datetime | None = None) -> None:
    wait = attempts.seconds_to_wait(path, user_name, now)
    if wait:
        raise UserFacingError(
            f"Too many wrong passwords in a row for {user_name[:64]}. Wait {wait} seconds "
            "before trying again."
        )


def _damaged(path: Path) -> DatabaseDamagedError:
    backup = newest_good_backup(path)
    hint = f" The newest backup is {backup}." if backup else " No backup was found beside it."
    return DatabaseDamagedError(
        "The practice database is damaged (some of its pages fail their integrity check) and "
        f"was not opened or changed.{hint} Restore it with 'python -m ketadesk restore'."
    )


def backups_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.stem + "-backups")


def newest_good_backup(db_path: Path) -> Path | None:
    folder = backups_dir(db_path)
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    return candidates[0] if candidates else None


def actor_from_user(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        user_name=user.user_name,
        full_name=user.full_name,
        role=Role(user.role),
        can_manage_users=user.can_manage_users,
    )


@dataclass(frozen=True)
class UnlockOutcome:
    actor: Actor
    audit: ChainVerdict
    failed_attempts_since_last_login: int


class PracticeDatabase:
    """An unlocked practice database. Create with ``create`` or ``unlock``."""

    def __init__(
        self, path: Path, key: bytes, slots: KeySlotFile, gate: IntegrityGate | None = None
    ) -> None:
        self.path = path
        self.database_id = slots.database_id
        self._key: bytes | None = key
        # The page check, when it runs beside the first reads: no write before it passes.
        self.gate = gate or IntegrityGate.already_checked()
        self.engine: Engine = self._keyed_engine(key)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _keyed_engine(self, key: bytes) -> Engine:
        engine = create_keyed_engine(self.path, key)
        if not self.gate.passed:
            self.gate.guard(engine)
        return engine

    # --- opening -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: Path,
        *,
        user_name: str,
        full_name: str,
        password: str,
        kdf: KdfParams | None = None,
    ) -> tuple[PracticeDatabase, Actor, str]:
        """Create an encrypted database and its first physician (who manages users).

        Returns the open database, the first user, and the one-time recovery key.
        """
        path = Path(path)
        if path.exists() or KeySlotFile.path_for(path).exists():
            raise UserFacingError(
                f"A practice database already exists at {path}; nothing was changed."
            )
        check_user_name(user_name)
        full_name = check_full_name(full_name, whose="the physician's")
        check_new_password(password, user_name)
        make_private_folder(path.parent)
        create_private_empty_file(path)  # 0600 before SQLite opens it, whatever the umask
        key = new_database_key()
        slots = KeySlotFile(database_id=uuid.uuid4().hex)
        slots.add_user_slot(key, user_name, password, kdf)
        recovery_key = slots.add_recovery_slot(key)
        database = cls(path, key, slots)
        try:
            upgrade_to_head(database.engine)
            with database.session() as session:
                session.add(PracticeMeta(key="database_id", value=slots.database_id))
                user = User(
                    user_name=user_name,
                    full_name=full_name.strip(),
                    role="physician",
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
            slots.save(path)
        except BaseException:
            database.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise
        return database, actor, recovery_key

    @classmethod
    def unlock(
        cls,
        path: Path,
        user_name: str,
        password: str,
        *,
        now: datetime | None = None,
        check_pages_later: bool = False,
    ) -> tuple[PracticeDatabase, UnlockOutcome]:
        """Open the database as ``user_name``. A wrong password changes no database file.

        ``check_pages_later``: see ``open_with_key``."""
        path = Path(path)
        if not path.exists():
            raise UserFacingError(
                f"There is no practice database at {path}. Create one with "
                "'python -m ketadesk init', or check the --db path."
            )
        check_database_location(path)
        _refuse_while_backing_off(path, user_name, now)
        slots = KeySlotFile.load(path)
        warm_up = start_orm_warm_up()  # while argon2id runs
        try:
            key = slots.unwrap_for_user(user_name, password)
        except UserFacingError:
            attempts.record_failure(path, user_name, now)
            raise
        finally:
            warm_up.join()
        opened = cls._open_as(path, key, slots, user_name, check_pages_later)
        rewrap_weak_user_slot(path, slots, key, user_name, password)
        return opened

    @classmethod
    def _open_as(
        cls,
        path: Path,
        key: bytes,
        slots: KeySlotFile,
        user_name: str,
        check_pages_later: bool = False,
    ) -> tuple[PracticeDatabase, UnlockOutcome]:
        database = cls.open_with_key(path, key, slots, check_pages_later=check_pages_later)
        try:
            outcome = database._after_unlock(user_name)
        except BaseException:
            database.close()
            raise
        return database, outcome

    @classmethod
    def unlock_with_device_secret(
        cls, path: Path, user_name: str, device_secret: bytes, *, check_pages_later: bool = False
    ) -> tuple[PracticeDatabase, UnlockOutcome]:
        """Open with a secret remembered in the OS keyring ("remember on this computer")."""
        path = Path(path)
        if not path.exists():
            raise UserFacingError(f"There is no practice database at {path}.")
        slots = KeySlotFile.load(path)
        key = slots.unwrap_with_device_secret(user_name, device_secret)
        if key is None:
            raise UserFacingError(
                "This computer no longer remembers you for this database; enter your password."
            )
        return cls._open_as(path, key, slots, user_name, check_pages_later)

    def remember_on_this_computer(self, actor: Actor) -> bytes:
        """Add a device slot for ``actor``; returns the secret to keep in the OS keyring."""
        self.gate.wait()  # nothing beside a damaged database is changed either
        slots = KeySlotFile.load(self.path)
        secret = slots.add_device_slot(self.database_key(), actor.user_name)
        slots.save(self.path)
        with self.session() as session:
            record_event(session, actor, audit_actions.REMEMBER_DEVICE)
        return secret

    def forget_this_computer(self, actor: Actor) -> None:
        slots = KeySlotFile.load(self.path)
        slots.slots = [
            s for s in slots.slots if not (s.kind == "device" and s.user_name == actor.user_name)
        ]
        slots.save(self.path)

    @classmethod
    def open_with_key(
        cls, path: Path, key: bytes, slots: KeySlotFile, *, check_pages_later: bool = False
    ) -> PracticeDatabase:
        """Checks the key and every page, upgrades an older schema (after a backup), opens.

        With ``check_pages_later`` the page check runs on a thread of its own and the database
        is readable at once; writes wait for the check (``gate``), and the desktop app shows
        the damage message when it fails (``wait_for_page_check``). The commands check first.
        """
        restrict_database_files(path)  # files made by older versions become 0600 too
        try:
            check_key_opens(path, key)
        except UserFacingError:
            # Damage in the first pages also fails the key check. Say it is damage only when
            # some pages still verify: with a key from another database every page fails.
            size = path.stat().st_size
            if size >= MIN_DATABASE_BYTES:
                failing = len(cipher_damaged_pages(path, key))
                if 0 < failing < size // MIN_DATABASE_BYTES:
                    raise _damaged(path) from None
            raise
        gate = None
        if check_pages_later:
            gate = IntegrityGate(path, key, lambda: _damaged(path))
            gate.start()
        elif cipher_damaged_pages(path, key):
            raise _damaged(path)
        database = cls(path, key, slots, gate)
        try:
            database._check_identity()
            database._upgrade_if_needed()
        except DatabaseError:
            database.close()
            database.gate.wait()  # a damaged page read before the check named it
            raise
        except BaseException:
            database.close()
            raise
        return database

    def wait_for_page_check(self) -> None:
        """Block until the page check (and the writes held for it) are done; raise the damage
        error when a page failed. Returns at once when the pages were checked at opening."""
        self.gate.wait()

    def _check_identity(self) -> None:
        with self.session() as session:
            stored = session.get(PracticeMeta, "database_id")
        if stored is None or stored.value != self.database_id:
            raise UserFacingError(
                "The key file beside the database belongs to a different practice database. "
                "Nothing was changed."
            )

    def _upgrade_if_needed(self) -> None:
        if not needs_upgrade(self.engine):
            return
        self.gate.wait()  # never upgrade a damaged file
        before = current_revision(self.engine)
        folder = make_private_folder(backups_dir(self.path))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.backup_to(folder / f"before-upgrade-{stamp}.db")
        upgrade_to_head(self.engine)
        with self.session() as session:
            record_event(
                session,
                ("system", "system"),
                audit_actions.DATABASE_UPGRADED,
                detail=f"schema {before} -> {PACKAGED_HEAD}",
            )

    def _after_unlock(self, user_name: str) -> UnlockOutcome:
        with self.session() as session:
            carried = attempts.pending_for_audit(self.path, failed_attempts_kept(session))
        failures = carried.failures
        logged_in_at = datetime.now(UTC)
        with self.session() as session:
            user = session.execute(
                select(User).where(User.user_name == user_name)
            ).scalar_one_or_none()
            if user is None or not user.is_active:
                attempts.record_failure(self.path, user_name)
                raise UserFacingError(WRONG_CREDENTIALS)
            actor = actor_from_user(user)
            verdict = verify_since_checkpoint(session, KeySlotFile.load(self.path).audit_anchor)

        def write_login_events() -> None:
            with self.session() as session:
                for failure in failures:
                    record_event(
                        session,
                        (failure.user_name, "unknown"),
                        audit_actions.LOGIN_FAILED,
                        detail="wrong user name or password",
                        at=failure.at,
                    )
                if carried.refused_files:
                    record_event(
                        session,
                        ("system", "system"),
                        audit_actions.FAILED_ATTEMPTS_REFUSED,
                        detail="failed log-in record edited, hand-written, deleted or rolled back",
                    )
                record_event(session, actor, audit_actions.LOGIN, at=logged_in_at)
                if not verdict.is_intact:
                    record_event(
                        session,
                        actor,
                        audit_actions.AUDIT_CHECK_FAILED,
                        detail=verdict.describe()[:200],
                    )
            snapshot = attempts.settle_after_unlock(self.path, user_name, carried)
            with self.session() as session:
                keep_failed_attempts(session, snapshot)

        # Held in memory until the page check passes (at once when it already has).
        self.gate.when_passed(write_login_events)
        return UnlockOutcome(actor, verdict, len(failures))

    # --- sessions ----------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session per user action: commits on success, rolls back on any error."""
        if self._key is None:
            raise UserFacingError("The practice database is locked; log in again.")
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as error:
            session.rollback()
            if is_disk_full(error):
                raise UserFacingError(DISK_FULL) from error
            if "locked" in str(error) or "busy" in str(error):
                raise DatabaseBusyError(
                    "The practice database is busy (another KetaDesk window or command is "
                    "writing to it). Nothing was saved; try again in a moment."
                ) from error
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # --- lock, re-authenticate, close -------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        return self._key is None

    def lock(self, actor: Actor) -> None:
        """Record the lock, then drop the key and all pooled connections."""
        if self._key is None:
            return
        try:
            if self._page_check_settled():
                with self.session() as session:
                    record_event(session, actor, audit_actions.LOCK)
                self._write_audit_anchor()
        finally:
            forget_key(self.engine)
            self._key = None

    def unlock_again(self, user_name: str, password: str) -> Actor:
        """Re-authenticate after a lock (the same or another user: "switch user")."""
        _refuse_while_backing_off(self.path, user_name)
        slots = KeySlotFile.load(self.path)
        try:
            key = slots.unwrap_for_user(user_name, password)
        except UserFacingError:
            attempts.record_failure(self.path, user_name)
            raise
        self.engine.dispose()
        self._key = key
        self.engine = self._keyed_engine(key)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        outcome = self._after_unlock(user_name)
        with self.session() as session:
            record_event(session, outcome.actor, audit_actions.UNLOCK)
        return outcome.actor

    def close(self) -> None:
        try:
            if self._key is not None and self._page_check_settled():
                self._write_audit_anchor()
        finally:
            forget_key(self.engine)
            self._key = None

    def _page_check_settled(self) -> bool:
        """Wait for a page check still running; False when it found damage (write nothing)."""
        try:
            self.gate.wait()
        except DatabaseDamagedError:
            return False
        except Exception:  # a held write failed; it was logged and the rest may still go
            return True
        return True

    def _write_audit_anchor(self) -> None:
        """Remember the newest audit event beside the database (never moving it backwards,
        so removed events stay noticed)."""
        with self.session() as session:
            newest = latest_event(session)
        if newest is None:
            return
        try:
            slots = KeySlotFile.load(self.path)
        except UserFacingError:
            return  # a damaged key file is reported at the next unlock, not while closing
        anchor = slots.audit_anchor
        if anchor is not None and (anchor.seq, anchor.row_hash) == newest:
            return
        if anchor is None or newest[0] > anchor.seq:
            slots.audit_anchor = AuditAnchor(*newest)
            slots.save(self.path)

    def audit_anchor(self) -> AuditAnchor | None:
        return KeySlotFile.load(self.path).audit_anchor

    def verify_audit_trail(self) -> ChainVerdict:
        """The whole chain, streamed on a read connection of its own (memory flat)."""
        return walk_whole_chain(self.path, self.database_key(), self.audit_anchor()).verdict

    def check_whole_audit_trail(self, actor: Actor) -> ChainVerdict:
        """The background walk after log-in: the whole chain, then its result recorded (a new
        checkpoint when intact, the same ``audit_check_failed`` event as at log-in when not).
        Run it on a worker; it holds no lock while it reads."""
        try:
            result = walk_whole_chain(
                self.path, self.database_key(), self.audit_anchor(), lambda: not self.is_locked
            )
        except WalkStopped:
            raise UserFacingError("The practice database is locked; log in again.") from None
        with self.session() as session:
            record_walk_result(session, actor, result)
        return result.verdict

    # --- keys and backups --------------------------------------------------------------------
    def key_slots(self) -> KeySlotFile:
        return KeySlotFile.load(self.path)

    def database_key(self) -> bytes:
        if self._key is None:
            raise UserFacingError("The practice database is locked; log in again.")
        return self._key

    def backup_to(self, destination: Path) -> Path:
        """An encrypted, consistent copy plus its key file (it opens with the same passwords)."""
        destination = Path(destination)
        make_private_folder(destination.parent)
        partial = destination.with_name(destination.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            create_private_empty_file(partial)
            export_encrypted_copy(self.engine, self.database_key(), partial)
            restrict(partial)
            problems = cipher_damaged_pages(partial, self.database_key())
            if problems:
                raise UserFacingError(
                    "The backup copy failed its integrity check and was removed."
                )
            shutil.copy2(KeySlotFile.path_for(self.path), KeySlotFile.path_for(destination))
            restrict(KeySlotFile.path_for(destination))
            partial.replace(destination)
        except BaseException as error:
            partial.unlink(missing_ok=True)  # nothing half-written stays behind
            if is_disk_full(error):
                raise UserFacingError(
                    "The disk is full, so the backup was not written (nothing half-written "
                    "was left). Free some space or choose another drive."
                ) from error
            raise
        return destination


_USER_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def check_user_name(user_name: str) -> None:
    """Raise a clear error unless the user name is 2 to 64 of a-z, 0-9, dot, dash, underscore."""
    if not (2 <= len(user_name) <= 64) or set(user_name) - _USER_NAME_OK:
        raise UserFacingError(
            "User names are 2 to 64 characters: lower-case letters, digits, dot, dash or "
            "underscore."
        )

