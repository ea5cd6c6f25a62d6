"""The practice database: create, unlock, lock, sessions, backup.

Open the database only after unlock, never at import: ``PracticeDatabase.unlock`` returns an
object holding the engine; ``lock()`` drops the key and every pooled connection.
"""

from __future__ import annotations

import os
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
    latest_checkpoint,
    record_walk_result,
    verify_tail,
    walk_whole_chain,
    walk_whole_chain_apart,
)
from ketadesk.storage.security.audit_log import latest_event, record_event
from ketadesk.storage.security.audit_receipts import (
    make_checkpoint,
    read_checkpoint,
    receipt_folder,
    receipt_path,
    rollback_problem,
    write_checkpoint,
)
from ketadesk.storage.security.audit_signatures import (
    DATABASE_ID_KEY,
    SIGNER_KEY,
    SignatureReport,
    check_event_signatures,
    signature_keys,
)
from ketadesk.storage.security.content_signatures import (
    ContentSignatureCheck,
    check_content_signatures,
)
from ketadesk.storage.security.database_location import (
    DISK_FULL,
    check_database_location,
    is_disk_full,
)
from ketadesk.storage.security.engine import (
    MIN_DATABASE_BYTES,
    READ_ONLY_OPTION,
    check_key_opens,
    cipher_damaged_pages,
    create_keyed_engine,
    export_encrypted_copy,
    forget_key,
    raw_connection,
)
from ketadesk.storage.security.grants import (
    check_grants,
    create_practice_key,
    grant_recovery_key,
    propose_public_key,
    sign_proposed_keys,
    slot_problem,
    write_grant,
    write_slot_grant,
)
from ketadesk.storage.security.integrity_gate import IntegrityGate
from ketadesk.storage.security.kdf_bounds import rewrap_weak_user_slot
from ketadesk.storage.security.keyslots import (
    WRONG_CREDENTIALS,
    AuditAnchor,
    KdfParams,
    KeySlot,
    KeySlotFile,
    SlotSecrets,
    new_database_key,
    recovery_signing_key,
)
from ketadesk.storage.security.migrate import (
    PACKAGED_HEAD,
    current_revision,
    needs_upgrade,
    upgrade_to_head,
)
from ketadesk.storage.security.orm_warmup import start_orm_warm_up
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.security.signing_keys import Signer, new_private_key, public_key_of
from ketadesk.storage.security.visit_pack_identity import (
    VisitPackIdentity,
    refuse_closed_pack,
    visit_pack_identity,
)


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


def damaged_database_error(path: Path) -> DatabaseDamagedError:
    """The damage message for ``path``, naming the newest backup beside it."""
    backup = newest_good_backup(path)
    hint = f" The newest backup is {backup}." if backup else " No backup was found beside it."
    return DatabaseDamagedError(
        "The practice database is damaged (some of its pages fail their integrity check) and "
        f"was not opened or changed.{hint} Restore it with 'python -m ketadesk restore'."
    )


def checkpoint_path_for_backup(backup: Path) -> Path:
    """The signed audit checkpoint written beside each backup."""
    return backup.with_name(backup.name + ".checkpoint.json")


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


TRUST_ROOT_META = "trust_root"
# A practice whose audit trail was never walked in full (no checkpoint yet): log-in checks the
# signatures of this many newest events; the background walk checks them all.
NO_CHECKPOINT_SIGNATURES = 2000


def key_that_opens(path: Path, held: SlotSecrets) -> bytes:
    """The newest key the slot's owner holds that opens ``path`` (an interrupted rotation can
    leave the database under the previous generation)."""
    if not held.older_keys:
        return held.database_key
    for candidate in (held.database_key, *held.older_keys):
        try:
            check_key_opens(path, candidate)
        except UserFacingError:
            continue
        return candidate
    return held.database_key  # opening with it names the problem


def _fsync_file(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
# Schema revisions without the signing tables: upgrading from one creates them empty.
_REVISIONS_BEFORE_SIGNING = frozenset(
    {None, "0001", "ff446b1ec886", "63417092839f", "c261b8b088ad", "2dd12020bf99", "aa0a25ef2068",
     "b5e1a9d20c07"}
)


@dataclass(frozen=True)
class _UsedSlot:
    """The slot a log-in opened, what it held, and the password (to rewrap it) if any."""

    slot: KeySlot
    secrets: SlotSecrets
    password: str | None


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
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        # The logged-in user's signing key and the trust root their slot pins (None for a
        # database from before signing keys, or one opened with the bare database key).
        self._signer: Signer | None = None
        self.trust_root: str | None = None
        self._signing_tables_just_created = False
        # Set when this database is a visit pack (read at opening).
        self.visit_pack: VisitPackIdentity | None = None

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
        role: str = "physician",
    ) -> tuple[PracticeDatabase, Actor, str]:
        """Create an encrypted database and its first physician (who manages users).

        Returns the open database, the first user, and the one-time recovery key. ``role``
        is "admin" only for a visit pack taken by an admin (who stays an admin in it).
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
        signing_key = new_private_key()
        root = public_key_of(signing_key)
        slots.add_user_slot(SlotSecrets(key, signing_key, root), user_name, password, kdf)
        slots.seal_for(key, user_name, signing_key)
        recovery_key = slots.add_recovery_slot(SlotSecrets(key, None, root))
        database = cls(path, key, slots)
        signer = Signer(user_name, signing_key)
        database._signer, database.trust_root = signer, root
        try:
            upgrade_to_head(database.engine)
            with database.session() as session:
                session.add(PracticeMeta(key="database_id", value=slots.database_id))
                session.add(PracticeMeta(key=TRUST_ROOT_META, value=root))
                session.flush()
                write_grant(
                    session,
                    slots.database_id,
                    signer,
                    user_name=user_name,
                    role=role,
                    can_manage_users=True,
                    public_key=root,
                )
                create_practice_key(session, slots.database_id, signer)
                grant_recovery_key(
                    session, slots.database_id, signer,
                    public_key_of(recovery_signing_key(recovery_key)),
                )
                for slot in slots.slots:
                    write_slot_grant(session, slots.database_id, signer, slot)
                user = User(
                    user_name=user_name,
                    full_name=full_name.strip(),
                    role=role,
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
                    detail=f"user {user_name} role {role}, manages users",
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
        returning_visit_pack: bool = False,
    ) -> tuple[PracticeDatabase, UnlockOutcome]:
        """Open the database as ``user_name``. A wrong password changes no database file.

        ``check_pages_later``: see ``open_with_key``. A visit pack whose lease and grace
        period are over opens only with ``returning_visit_pack``."""
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
            slot, opened = slots.open_user_slot(user_name, password)
        except UserFacingError:
            attempts.record_failure(path, user_name, now)
            raise
        finally:
            warm_up.join()
        database, outcome = cls._open_as(
            path, slots, user_name, _UsedSlot(slot, opened, password), check_pages_later
        )
        if not returning_visit_pack:
            database._refuse_closed_pack(now)
        # Re-read: the log-in itself may have rewritten this user's slot (signing key added).
        rewrap_weak_user_slot(path, KeySlotFile.load(path), database.database_key(), user_name,
                              password)
        return database, outcome

    @classmethod
    def _open_as(
        cls,
        path: Path,
        slots: KeySlotFile,
        user_name: str,
        used: _UsedSlot,
        check_pages_later: bool = False,
    ) -> tuple[PracticeDatabase, UnlockOutcome]:
        database = cls.open_with_key(
            path,
            key_that_opens(path, used.secrets),
            slots,
            check_pages_later=check_pages_later,
        )
        try:
            outcome = database._after_unlock(user_name, used)
        except BaseException:
            database._signer = None
            database._key = None  # nothing is written while refusing a log-in
            forget_key(database.engine)
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
        found = slots.open_device_slot(user_name, device_secret)
        if found is None:
            raise UserFacingError(
                "This computer no longer remembers you for this database; enter your password."
            )
        database, outcome = cls._open_as(
            path, slots, user_name, _UsedSlot(found[0], found[1], None), check_pages_later
        )
        database._refuse_closed_pack(None)
        return database, outcome

    def _refuse_closed_pack(self, now: datetime | None) -> None:
        try:
            refuse_closed_pack(self.visit_pack, now or datetime.now(UTC))
        except UserFacingError:
            self.close()
            raise

    def remember_on_this_computer(self, actor: Actor) -> bytes:
        """Add a device slot for ``actor``; returns the secret to keep in the OS keyring."""
        self.gate.wait()  # nothing beside a damaged database is changed either
        slots = KeySlotFile.load(self.path)
        signer = self._signer
        held = SlotSecrets(
            self.database_key(),
            signer.private_raw if signer is not None else None,
            self.trust_root,
        )
        secret = slots.add_device_slot(held, actor.user_name)
        device_slot = slots.slots[-1]
        with self.session() as session:
            if signer is not None:
                write_slot_grant(session, self.database_id, signer, device_slot)
            record_event(session, actor, audit_actions.REMEMBER_DEVICE)
            slots.save(self.path)
        return secret

    def forget_this_computer(self, actor: Actor) -> None:
        slots = KeySlotFile.load(self.path)
        slots.slots = [
            s for s in slots.slots if not (s.kind == "device" and s.user_name == actor.user_name)
        ]
        slots.save(self.path)

    @classmethod
    def open_with_key(
        cls,
        path: Path,
        key: bytes,
        slots: KeySlotFile,
        signer: Signer | None = None,
        *,
        check_pages_later: bool = False,
    ) -> PracticeDatabase:
        """Checks the key and every page, upgrades an older schema (after a backup), opens.

        With ``check_pages_later`` the page check runs on a thread of its own and the database
        is readable at once; writes wait for the check (``gate``), and the desktop app shows
        the damage message when it fails (``wait_for_page_check``). The commands check first.

        Without a log-in: events are signed by ``signer`` (a key its holder unwrapped from
        their own slot) when it is the actor, otherwise by the practice key."""
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
                    raise damaged_database_error(path) from None
            raise
        gate = None
        if check_pages_later:
            gate = IntegrityGate(path, key, lambda: damaged_database_error(path))
            gate.start()
        elif cipher_damaged_pages(path, key):
            raise damaged_database_error(path)
        database = cls(path, key, slots, gate)
        database._signer = signer
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

    def record_event_when_writable(
        self, actor: Actor, action: str, *, patient_id: int | None = None, detail: str = ""
    ) -> None:
        """Record one audit event without waiting for the page check: at once when it has
        passed; while it runs, held in memory (with the time of the action) and written in
        order right after it; never when it fails (the damage message says what happened).
        For events that only record what the user looked at (a chart opened), so the GUI
        thread never waits for the check of a large file."""
        at = datetime.now(UTC)

        def write() -> None:
            with self.session() as session:
                record_event(session, actor, action, patient_id=patient_id, detail=detail, at=at)

        self.gate.when_passed(write)

    def _check_identity(self) -> None:
        with self.session() as session:
            stored = session.get(PracticeMeta, "database_id")
            self.visit_pack = visit_pack_identity(session)
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
        self._signing_tables_just_created = before in _REVISIONS_BEFORE_SIGNING
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

    def _after_unlock(self, user_name: str, used: _UsedSlot) -> UnlockOutcome:
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
            actor = self._check_signed_identity(session, user, used)
            # At log-in only the events after the newest checkpoint are walked and their
            # signatures checked (a bounded wait: a long walk records a checkpoint of its own
            # below); the background walk, verify-audit and the audit viewer check the whole
            # chain and every signature.
            checkpoint = latest_checkpoint(session)
            tail = verify_tail(session, KeySlotFile.load(self.path).audit_anchor, checkpoint)
            if checkpoint is not None:
                signatures_after = checkpoint.seq
            else:  # never walked in full yet: the newest signatures, as before checkpoints
                newest_seq = (latest_event(session) or (0, ""))[0]
                signatures_after = max(0, newest_seq - NO_CHECKPOINT_SIGNATURES)
            verdict = self._verify_beyond_chain(session, tail.verdict, signatures_after)
        login_checkpoint = tail.checkpoint_to_record() if verdict.is_intact else None

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
                if login_checkpoint is not None:
                    # Signed by this user; the next log-in walks from here, and checks this
                    # event's own hash and signature.
                    record_event(
                        session, actor, audit_actions.AUDIT_VERIFIED,
                        detail=login_checkpoint.detail(),
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
        session.info[DATABASE_ID_KEY] = self.database_id
        if self._signer is not None:
            session.info[SIGNER_KEY] = self._signer
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

    @contextmanager
    def read_session(self, *, snapshot: bool = True) -> Iterator[Session]:
        """A session that only reads (a search keystroke): a deferred transaction, no write
        lock; always rolled back at the end, so anything written in it is discarded.
        ``snapshot`` is for a server (whether its reads need a transaction round trip); on a
        file the transaction costs nothing, so every read session has one."""
        if self._key is None:
            raise UserFacingError("The practice database is locked; log in again.")
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.rollback()
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
            self._signer = None

    def unlock_again(self, user_name: str, password: str) -> Actor:
        """Re-authenticate after a lock (the same or another user: "switch user")."""
        _refuse_while_backing_off(self.path, user_name)
        slots = KeySlotFile.load(self.path)
        try:
            slot, opened = slots.open_user_slot(user_name, password)
        except UserFacingError:
            attempts.record_failure(self.path, user_name)
            raise
        self.engine.dispose()
        key = key_that_opens(self.path, opened)
        self._key = key
        self._signer = None
        self.engine = self._keyed_engine(key)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        try:
            outcome = self._after_unlock(user_name, _UsedSlot(slot, opened, password))
        except BaseException:
            self._signer = None
            self._key = None
            forget_key(self.engine)
            raise
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
            self._signer = None

    def adopt_signer(self, signer: Signer, trust_root: str) -> None:
        """Sign from now on as ``signer`` (a key just granted to them, as by a recovery)."""
        self._signer, self.trust_root = signer, trust_root

    def signer(self) -> Signer | None:
        """The logged-in user's signing key (None before signing keys or when locked)."""
        return self._signer

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
            self._write_receipts(session)
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
        """The whole chain (streamed on a read connection of its own, memory flat), the
        anchor, the audit receipt and every event's signature (the first problem is named)."""
        verdict = walk_whole_chain(self.path, self.database_key(), self.audit_anchor()).verdict
        with self.session() as session:
            return self._verify_beyond_chain(session, verdict)

    def check_whole_audit_trail(self, actor: Actor) -> ChainVerdict:
        """The background walk after log-in: the whole chain and every event's signature, then
        its result recorded (a new checkpoint when intact, the same ``audit_check_failed``
        event as at log-in when not).
        Run it on a worker; it holds no lock while it reads, and the hashing runs in a process
        of its own, so it never holds the GIL against the GUI thread."""
        with self.session() as session:
            keys = signature_keys(
                session, check_grants(session, self.database_id, self._pinned_root(session))
            )
        try:
            result = walk_whole_chain_apart(
                self.path,
                self.database_key(),
                self.audit_anchor(),
                lambda: not self.is_locked,
                signatures=keys,
            )
        except WalkStopped:
            raise UserFacingError("The practice database is locked; log in again.") from None
        with self.session() as session:
            record_walk_result(session, actor, result)
        return result.verdict

    def audit_signatures(self) -> SignatureReport:
        """Who signed how many events, and every event whose signature is refused."""
        with self.session() as session:
            return check_event_signatures(
                session, check_grants(session, self.database_id, self._pinned_root(session))
            )

    def content_signatures(self) -> list[ContentSignatureCheck]:
        """Every physician signature over clinical content, and whether it still holds."""
        with self.session() as session:
            return check_content_signatures(
                session,
                self.database_id,
                check_grants(session, self.database_id, self._pinned_root(session)),
            )

    def _pinned_root(self, session: Session) -> str | None:
        if self.trust_root is not None:
            return self.trust_root
        stored = session.get(PracticeMeta, TRUST_ROOT_META)
        return None if stored is None else stored.value

    def _verify_beyond_chain(
        self, session: Session, verdict: ChainVerdict, signatures_after: int | None = None
    ) -> ChainVerdict:
        """``verdict`` (the hash chain's), then the audit receipt and the events' signatures
        (only those after event ``signatures_after`` when given)."""
        if not verdict.is_intact:
            return verdict
        slots = KeySlotFile.load(self.path)
        behind = self._behind_receipt(session, slots)
        if behind is not None:
            return ChainVerdict(False, verdict.event_count, behind[0], behind[1])
        report = check_event_signatures(
            session,
            check_grants(session, self.database_id, self._pinned_root(session)),
            signatures_after,
        )
        if report.problems:
            seq, problem = report.problems[0]
            more = len(report.problems) - 1
            return ChainVerdict(
                False,
                verdict.event_count,
                seq,
                problem + (f" ({more} more events with signature problems)" if more else ""),
            )
        return verdict

    def _behind_receipt(self, session: Session, slots: KeySlotFile) -> tuple[int, str] | None:
        """(event, problem) when the database or key file is older than the audit receipt
        kept in the practice's second folder."""
        folder = receipt_folder(session)
        if folder is None:
            return None
        receipt = read_checkpoint(receipt_path(folder, self.database_id))
        if receipt is None or receipt.database_id != self.database_id:
            return None
        if receipt.generation > slots.generation:
            return receipt.seq, (
                f"the key file is older than the audit receipt in {folder} (key generation "
                f"{slots.generation}, receipt {receipt.generation}): it was rolled back"
            )
        problem = rollback_problem(session, receipt, str(folder))
        return None if problem is None else (receipt.seq, problem)

    def _write_receipts(self, session: Session, also_to: Path | None = None) -> None:
        """The newest signed checkpoint into the receipt folder (and ``also_to``)."""
        if self._signer is None:
            return
        checkpoint = make_checkpoint(
            session, self._signer, self.database_id, KeySlotFile.load(self.path).generation
        )
        if checkpoint is None:
            return
        folder = receipt_folder(session)
        targets = [] if folder is None else [receipt_path(folder, self.database_id)]
        targets += [] if also_to is None else [also_to]
        for target in targets:
            try:
                write_checkpoint(target, checkpoint)
            except OSError:
                pass  # an unplugged backup drive must not stop the practice from closing

    # --- signed identity at log-in -------------------------------------------------------
    def _check_signed_identity(self, session: Session, user: User, used: _UsedSlot) -> Actor:
        """The actor as the signed grant says (never as the users table says); refuses a
        forged grant, a slot not on the signed allow-list, or a key that is not the user's."""
        pinned = used.secrets.trust_root
        stored_root = session.get(PracticeMeta, TRUST_ROOT_META)
        check = check_grants(
            session, self.database_id, pinned or (stored_root.value if stored_root else None)
        )
        if not check.has_grants:
            if pinned is not None and not self._signing_tables_just_created:
                raise UserFacingError(
                    "The signed user grants were removed from this practice database (your key "
                    "slot expects them). Log-in refused; restore the newest good backup."
                )
            return self._enrol_first_manager(session, user, used)
        if pinned is not None and not check.is_rooted:
            raise UserFacingError(
                "The practice's signed user grants were replaced: the first physician's grant "
                "pinned in your key slot is missing or forged. Log-in refused."
            )
        grant = check.valid.get(user.user_name)
        if grant is None:
            raise UserFacingError(
                f"The role grant of user {user.user_name} is not signed by a user who manages "
                "users (it was written or changed outside KetaDesk). Log-in refused; ask the "
                "physician who manages users to check the user list."
            )
        if not grant.is_active:
            raise UserFacingError(WRONG_CREDENTIALS)
        problem = slot_problem(session, self.database_id, used.slot, check)
        if problem:
            raise UserFacingError(problem)
        signing = used.secrets.signing_key
        if grant.public_key is not None:
            if signing is None or public_key_of(signing) != grant.public_key:
                raise UserFacingError(
                    f"This key slot for {user.user_name} does not hold the signing key granted "
                    "to that user (the slot was made outside KetaDesk). Log-in refused."
                )
        else:
            # Granted before this user held a signing key: make one, keep it in their slot and
            # propose it; a manager signs it at their next log-in.
            signing = signing or new_private_key()
            self._rewrap_slot(used, signing, pinned or (stored_root.value if stored_root else None))
            propose_public_key(session, user.user_name, public_key_of(signing))
        if signing is not None and user.user_name not in KeySlotFile.load(self.path).recipients():
            slots = KeySlotFile.load(self.path)
            slots.seal_for(self.database_key(), user.user_name, signing)
            slots.save(self.path)
        self._signer = Signer(user.user_name, signing)
        self.trust_root = pinned or (stored_root.value if stored_root else None)
        session.info[SIGNER_KEY] = self._signer
        actor = Actor(
            user_id=user.id,
            user_name=user.user_name,
            full_name=user.full_name,
            role=Role(grant.role),
            can_manage_users=grant.can_manage_users,
        )
        if actor.can_manage_users and grant.public_key is not None:
            for name in sign_proposed_keys(session, self.database_id, self._signer, check):
                record_event(session, actor, audit_actions.SIGNING_KEY_GRANTED,
                             detail=f"user {name}")
        return actor

    def _rewrap_slot(self, used: _UsedSlot, signing: bytes, root: str | None) -> None:
        if used.password is None or used.slot.kind != "user" or root is None:
            return  # a device slot is rewrapped at the next log-in with the password
        slots = KeySlotFile.load(self.path)
        slots.add_user_slot(
            SlotSecrets(used.secrets.database_key, signing, root),
            used.slot.user_name,
            used.password,
            used.slot.kdf,
            slot_id=used.slot.slot_id,
        )
        slots.save(self.path)

    def _enrol_first_manager(self, session: Session, user: User, used: _UsedSlot) -> Actor:
        """A database from before signing keys: the first user who manages users to log in with
        a password becomes the signed root; every other user gets a grant signed by them, and
        the key slots present now go on the allow-list. Until then nothing is signed."""
        actor = actor_from_user(user)
        if not user.can_manage_users or used.password is None or used.slot.kind != "user":
            return actor
        signing = used.secrets.signing_key or new_private_key()
        root = public_key_of(signing)
        if used.secrets.trust_root not in (None, root):
            return actor  # only the pinned first physician re-creates the grants
        signer = Signer(user.user_name, signing)
        stored = session.get(PracticeMeta, TRUST_ROOT_META)
        if stored is None:
            session.add(PracticeMeta(key=TRUST_ROOT_META, value=root))
        else:
            stored.value = root
        write_grant(session, self.database_id, signer, user_name=user.user_name,
                    role=user.role, can_manage_users=True, public_key=root)
        create_practice_key(session, self.database_id, signer)
        for other in session.execute(select(User).where(User.id != user.id)).scalars():
            write_grant(session, self.database_id, signer, user_name=other.user_name,
                        role=other.role, can_manage_users=other.can_manage_users,
                        is_active=other.is_active, public_key=None)
        for slot in KeySlotFile.load(self.path).slots:
            write_slot_grant(session, self.database_id, signer, slot)
        self._rewrap_slot(used, signing, root)
        slots = KeySlotFile.load(self.path)
        slots.seal_for(self.database_key(), user.user_name, signing)
        slots.save(self.path)
        self._signer, self.trust_root = signer, root
        session.info[SIGNER_KEY] = signer
        record_event(session, actor, audit_actions.SIGNING_KEYS_ENROLLED)
        return actor

    # --- key rotation ---------------------------------------------------------------------
    def rotate_database_key(self, actor: Actor, reason: str) -> bool:
        """Re-encrypt the whole database under a new random key and seal it to every active
        user and the recovery key (public keys only: no password, no recovery code).

        Crash-safe: the key file first holds envelopes of both generations; the re-encrypted
        copy is written beside the database, checked, then renamed over it; only then is the
        old generation dropped. Whichever database file a crash leaves, a key for it remains.
        Returns False (nothing changed) while an active user holds no signing key yet.
        """
        slots = KeySlotFile.load(self.path)
        recipients = slots.recipients()
        with self.session() as session:
            active = list(
                session.execute(select(User.user_name).where(User.is_active.is_(True))).scalars()
            )
        owners = [*active, ""]
        if any(owner not in recipients for owner in owners):
            return False
        old_key, new_key = self.database_key(), new_database_key()
        with self.session() as session:
            record_event(
                session, actor, audit_actions.DATABASE_KEY_ROTATED,
                detail=f"generation {slots.generation + 1}; {reason}",
            )
        staged = KeySlotFile(
            database_id=slots.database_id,
            slots=list(slots.slots),
            audit_anchor=slots.audit_anchor,
            generation=slots.generation + 1,
            envelopes=[
                e for e in slots.envelopes if e.generation == slots.generation and e.owner in owners
            ],
        )
        for owner in owners:
            staged.seal_for(new_key, owner, recipients[owner])
        staged.save(self.path)  # 1. both generations open
        rotating = self.path.with_name(self.path.name + ".rekeying")
        rotating.unlink(missing_ok=True)
        create_private_empty_file(rotating)
        export_encrypted_copy(self.engine, new_key, rotating)  # 2. the copy, under the new key
        restrict(rotating)
        if cipher_damaged_pages(rotating, new_key):
            rotating.unlink(missing_ok=True)
            raise UserFacingError(
                "The re-encrypted copy failed its integrity check; the database was not changed."
            )
        _fsync_file(rotating)
        forget_key(self.engine)
        # Every committed page into the main file, so no -wal is left to apply to the new one.
        checkpoint = raw_connection(self.path, old_key)
        try:
            checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            checkpoint.close()
        os.replace(rotating, self.path)  # 3. the swap
        _fsync_file(self.path.parent)
        for stale in (Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            stale.unlink(missing_ok=True)
        self._key = new_key
        self.engine = create_keyed_engine(self.path, new_key)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        staged.envelopes = [e for e in staged.envelopes if e.generation == staged.generation]
        staged.save(self.path)  # 4. the old generation is gone
        del old_key
        return True

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
        try:
            with self.session() as session:
                self._write_receipts(session, also_to=checkpoint_path_for_backup(destination))
        except DatabaseBusyError:
            pass  # another process is writing: the backup stands; its checkpoint comes next time
        return destination


_USER_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def check_user_name(user_name: str) -> None:
    """Raise a clear error unless the user name is 2 to 64 of a-z, 0-9, dot, dash, underscore."""
    if user_name in ("system", "unknown"):
        raise UserFacingError(f"The user name {user_name} is kept for KetaDesk itself.")
    if not (2 <= len(user_name) <= 64) or set(user_name) - _USER_NAME_OK:
        raise UserFacingError(
            "User names are 2 to 64 characters: lower-case letters, digits, dot, dash or "
            "underscore."
        )

