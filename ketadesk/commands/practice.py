"""Practice database commands: init, recover, user, verify-audit, backup, restore."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadesk.commands._common import (
    PasswordReader,
    ca_certificate,
    database_path,
    is_server_database,
    new_command,
    open_database_as,
    password_reader,
)
from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission, Role, require

if TYPE_CHECKING:
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.recovery import RecoveryReport
    from ketadesk.storage.security.restore_check import PracticeContents
    from ketadesk.storage.server.server_practice import ServerPractice


def register(subparsers: Any) -> None:
    init = new_command(
        subparsers, "init", help="create a practice database and its first physician", handler=_init
    )
    init.add_argument("--user", required=True, help="user name of the first physician")
    init.add_argument("--full-name", required=True)
    init.add_argument("--password-stdin", action="store_true")

    recover = new_command(
        subparsers,
        "recover",
        help="give a user who manages users a new password with the practice's recovery key "
        "(stdin: the recovery key, then the new password)",
        handler=_recover,
    )
    recover.add_argument("--user", required=True, help="the user manager who forgot it")
    recover.add_argument("--password-stdin", action="store_true")

    user = subparsers.add_parser("user", help="manage users", description="manage users")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = new_command(
        user_commands,
        "add",
        help="add a user (stdin: your password, then the new user's initial password)",
        handler=_user_add,
        needs_login=True,
    )
    add.add_argument("--user", dest="new_user", required=True)
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--full-name", required=True)
    add.add_argument(
        "--manage-users",
        action="store_true",
        help="allow this user to add users and reset passwords",
    )
    add.add_argument("--npi")
    add.add_argument("--dea")
    add.add_argument("--licence-states", default="", help="e.g. FL,NJ")
    new_command(
        user_commands,
        "passwd",
        help="change your password (old, then new)",
        handler=_user_passwd,
        needs_login=True,
    )
    new_command(user_commands, "list", help="list users", handler=_user_list, needs_login=True)

    new_command(
        subparsers,
        "verify-audit",
        help="recompute the audit chain",
        handler=_verify_audit,
        needs_login=True,
    )
    backup = new_command(
        subparsers,
        "backup",
        help="write an encrypted, consistent backup",
        handler=_backup,
        needs_login=True,
    )
    backup.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="on a practice server, stdin also gives the backup's passphrase after your password",
    )
    backup.add_argument(
        "--overwrite", action="store_true", help="replace a backup of the same name"
    )
    restore = new_command(
        subparsers, "restore", help="replace the database with a backup", handler=_restore
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--as",
        dest="as_user",
        metavar="NAME",
        required=True,
        help="a user of the backup, to prove it opens (on a new practice server, a user "
        "manager of the backup: the users' login roles are made; yours gets the password you "
        "give, the others wait for a reset)",
    )
    restore.add_argument("--password-stdin", action="store_true")
    restore.add_argument(
        "--yes",
        action="store_true",
        help="replace without asking, after printing what will be lost",
    )
    restore.add_argument(
        "--other-practice",
        action="store_true",
        help="allow restoring a backup made from a different practice database",
    )
    restore.add_argument(
        "--owner", default=None, help="on a practice server: the schema's owner (ketadesk_owner)"
    )


def _init(args: argparse.Namespace) -> int:
    from ketadesk.storage.security.database import PracticeDatabase

    password = password_reader(args).read_new(f"New password for {args.user}: ")
    path = database_path(args)
    database, _actor, recovery_key = PracticeDatabase.create(
        path, user_name=args.user, full_name=args.full_name, password=password
    )
    database.close()
    print(f"Created the practice database {path}")
    print(f"First physician: {args.user} (may manage users)")
    print()
    print("RECOVERY KEY (shown only once):")
    print(f"    {recovery_key}")
    print("Write it down and keep it offline, somewhere safe. It opens the database if every")
    print("password is forgotten; anyone who has it and the database file can read it.")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from ketadesk.storage.security.recovery import recover_with_key

    if is_server_database(args):
        from ketadesk.commands.server import recover_on_server

        return recover_on_server(args)
    path = database_path(args)
    reader = password_reader(args)
    recovery_key = reader.read("Recovery key (dashes and case do not matter): ")
    new_password = reader.read_new(f"New password for {args.user}: ")
    outcome = recover_with_key(path, recovery_key, args.user, new_password)
    print(f"Recovery key accepted: {outcome.user_name} has a new password and a new signing key.")
    if outcome.is_first_physician:
        print("They stay the first physician; what they signed before still verifies.")
    if outcome.resigned_grants:
        print(f"The grants they had signed were signed again with their new key "
              f"({', '.join(outcome.resigned_grants)}).")
    if outcome.database_key_rotated:
        print("The database was re-encrypted under a new key: an old copy of the key file "
              "opens nothing current.")
    else:
        print("The database was not re-encrypted yet (a user has not logged in since signing "
              "keys came); it will be at the next password reset or user removal.")
    print("The recovery key still works: keep it offline. 'verify-audit' shows this recovery.")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from ketadesk.storage.security.users import add_user

    database, actor = open_database_as(args)
    try:
        require(actor, Permission.MANAGE_USERS, "add users")
        new_password = password_reader(args).read_new(f"Initial password for {args.new_user}: ")
        states = tuple(s.strip().upper() for s in args.licence_states.split(",") if s.strip())
        if database.path is None:  # a practice server
            return _server_user_add(database, args, new_password, states)
        info = add_user(
            database,
            actor,
            user_name=args.new_user,
            full_name=args.full_name,
            role=Role(args.role),
            password=new_password,
            can_manage_users=args.manage_users,
            npi=args.npi,
            dea_number=args.dea,
            licence_states=states,
        )
    finally:
        database.close()
    print(f"Added {info.user_name} ({info.role})")
    return 0


def _server_user_add(
    practice: ServerPractice, args: argparse.Namespace, password: str, states: tuple[str, ...]
) -> int:
    """On a server the new user is a login role whose password the server checks; their
    credentials go through the server's own function, in the same transaction."""
    role = Role(args.role)
    practice.add_user(
        args.new_user, args.full_name, role, password, manage_users=args.manage_users,
        npi=args.npi, dea_number=args.dea, licence_states=states,
    )
    print(f"Added {args.new_user} ({role})")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.users import change_own_password

    reader = password_reader(args)
    old_password = reader.read(f"Current password for {args.as_user}: ")
    if is_server_database(args):
        return _server_user_passwd(args, reader, old_password)
    database, outcome = PracticeDatabase.unlock(database_path(args), args.as_user, old_password)
    try:
        new_password = reader.read_new("New password: ")
        change_own_password(database, outcome.actor, old_password, new_password)
    finally:
        database.close()
    print("Password changed.")
    return 0


def _server_user_passwd(
    args: argparse.Namespace, reader: PasswordReader, old_password: str
) -> int:
    """On a server the password is the login role's: the server checks the old one."""
    from ketadesk.storage.server.server_engine import parse_server_url
    from ketadesk.storage.server.server_practice import ServerPractice

    practice = ServerPractice.log_in(
        parse_server_url(str(args.db)), ca_certificate(args), args.as_user, old_password
    )
    try:
        new_password = reader.read_new("New password: ")
        practice.change_own_password(old_password, new_password)
    finally:
        practice.close()
    print("Password changed.")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    from ketadesk.storage.security.users import list_users

    database, _actor = open_database_as(args)
    try:
        for info in list_users(database):
            flags = " manages users" if info.can_manage_users else ""
            state = "" if info.is_active else " (removed)"
            if info.is_row_unsigned:
                state += " (users table changed outside KetaDesk; shown as signed)"
            print(f"{info.user_name:20} {info.role:10} {info.full_name}{flags}{state}")
    finally:
        database.close()
    return 0


def _verify_audit(args: argparse.Namespace) -> int:
    database, _actor = open_database_as(args)
    try:
        verdict = database.verify_audit_trail()
        signatures = database.audit_signatures()
        contents = database.content_signatures()
        recovery = _recovery_report(database)
    finally:
        database.close()
    if verdict.is_intact:
        print(verdict.describe())
    for line in signatures.describe():
        print(line)
    for line in recovery.describe():
        print(line)
    bad_contents = [c for c in contents if not c.is_valid]
    for kind in sorted({c.subject_kind for c in contents}):
        of_kind = [c for c in contents if c.subject_kind == kind]
        signers = ", ".join(sorted({c.signed_by for c in of_kind}))
        print(f"{kind.replace('_', ' ')} signatures: {len(of_kind)} (by {signers})")
    for check in bad_contents:
        print(
            f"{check.subject_kind.replace('_', ' ')} {check.subject_id} signed by "
            f"{check.signed_by}: the signature does not match the content as stored now",
            file=sys.stderr,
        )
    if verdict.is_intact and not bad_contents:
        return 0
    if not verdict.is_intact:
        print(verdict.describe(), file=sys.stderr)
    return 1


def _recovery_report(database: PracticeDatabase | ServerPractice) -> RecoveryReport:
    """Every use of the recovery key and all it signed (a practice server has none)."""
    from ketadesk.storage.security.recovery import RecoveryReport, recovery_report

    if database.path is None:
        return RecoveryReport((), 0, (), 0)
    with database.session() as session:
        return recovery_report(session)


def _backup(args: argparse.Namespace) -> int:
    if is_server_database(args):
        from ketadesk.commands._server_backup import backup_on_server

        return backup_on_server(args)
    from ketadesk.core.output_paths import check_output_path
    from ketadesk.storage.security.audit_log import record_event
    from ketadesk.storage.security.keyslots import KeySlotFile

    target_db = database_path(args)
    out = check_output_path(
        Path(args.out), protected_databases=[target_db], overwrite=args.overwrite,
        what="backup", make_folder=True,
    )
    check_output_path(
        KeySlotFile.path_for(out), protected_databases=[target_db], overwrite=True,
        what="backup's key file", is_side_file=True,
    )
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            record_event(session, actor, audit_actions.BACKUP_CREATED, detail=out.name[:100])
        database.backup_to(out)
    finally:
        database.close()
    print(f"Encrypted backup written to {out} (with its key file {out.name}.keys.json)")
    return 0


def _current_contents_as_manager(
    target: Path, user_name: str, password: str
) -> PracticeContents | None:
    """Log in to the CURRENT database: restoring over it needs manage_users there (a backup
    made before someone was removed or demoted proves nothing). None when there is no current
    database, or it is too damaged to open."""
    from ketadesk.storage.security.database import DatabaseDamagedError, PracticeDatabase
    from ketadesk.storage.security.keyslots import KeySlotFile
    from ketadesk.storage.security.restore_check import practice_contents

    if not (target.exists() and KeySlotFile.path_for(target).exists()):
        return None
    try:
        current_db, outcome = PracticeDatabase.unlock(target, user_name, password)
    except DatabaseDamagedError:
        print("The current database is damaged; the backup's own user grants are checked.")
        return None
    try:
        require(outcome.actor, Permission.MANAGE_USERS, "restore a backup over this database")
        with current_db.session() as session:
            return practice_contents(session)
    finally:
        current_db.close()


def _confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if args.password_stdin or not sys.stdin.isatty():
        return False
    answer = input("Replace the current database with this backup? Type yes to go on: ")
    return answer.strip().lower() == "yes"


def _restore(args: argparse.Namespace) -> int:
    from ketadesk.core.private_files import restrict
    from ketadesk.storage.security.audit_log import record_event
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.keyslots import KeySlotFile
    from ketadesk.storage.security.restore_check import practice_contents, restore_losses

    if is_server_database(args):
        from ketadesk.commands._server_backup import restore_on_server

        return restore_on_server(args)
    source = Path(args.file).expanduser()
    target = database_path(args)
    if not source.is_file():
        raise UserFacingError(f"There is no backup file at {source}.")
    if target.exists() and os.path.samefile(source, target):
        raise UserFacingError(
            "That file is the practice database itself; choose a backup to restore from. "
            "Nothing was changed."
        )
    backup_slots = KeySlotFile.load(source)
    if target.exists() and KeySlotFile.path_for(target).exists():
        current = KeySlotFile.load(target)
        if current.database_id != backup_slots.database_id and not args.other_practice:
            raise UserFacingError(
                "That backup was made from a different practice database; nothing was changed. "
                "Add --other-practice if you really mean to replace this practice's records."
            )
    password = password_reader(args).read(f"Password for {args.as_user}: ")
    # Prove the backup opens and is intact before anything is replaced.
    backup_db, backup_outcome = PracticeDatabase.unlock(source, args.as_user, password)
    if backup_db.visit_pack is not None:
        from ketadesk.storage.security.visit_pack_identity import refuse_in_visit_pack

        try:
            refuse_in_visit_pack(backup_db.visit_pack, "Restoring a practice from it")
        finally:
            backup_db.close()
    try:
        with backup_db.session() as session:
            in_backup = practice_contents(session)
    finally:
        backup_db.close()
    current = _current_contents_as_manager(target, args.as_user, password)
    if current is None:  # no current database to ask: the backup's own grant decides
        require(backup_outcome.actor, Permission.MANAGE_USERS, "restore a backup")
    else:
        losses = restore_losses(current, in_backup)
        print(losses.describe())
        if not losses.is_empty and not _confirmed(args):
            raise UserFacingError(
                "Nothing was restored. Add --yes to replace the current database anyway."
            )
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        keep = target.with_name(f"{target.stem}-before-restore-{stamp}{target.suffix}")
        shutil.copy2(target, keep)
        if KeySlotFile.path_for(target).exists():
            shutil.copy2(KeySlotFile.path_for(target), KeySlotFile.path_for(keep))
        print(f"The replaced database was kept as {keep}")
    for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    try:
        shutil.copy2(source, partial)
        restrict(partial)
        shutil.copy2(KeySlotFile.path_for(source), KeySlotFile.path_for(target))
        restrict(KeySlotFile.path_for(target))
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-copied database stays behind
        raise
    database, outcome = PracticeDatabase.unlock(target, args.as_user, password)
    try:
        with database.session() as session:
            record_event(
                session, outcome.actor, audit_actions.BACKUP_RESTORED, detail=source.name[:100]
            )
    finally:
        database.close()
    print(f"Restored {target} from {source}")
    return 0
