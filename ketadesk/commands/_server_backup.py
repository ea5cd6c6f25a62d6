"""``backup`` and ``restore`` when ``--db`` names a practice server (``practice.py`` hands
over to these), ``server upgrade`` and ``server import-practice`` (registered by
``server.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ketadesk.commands._common import ca_certificate, password_reader
from ketadesk.core.errors import UserFacingError


def _address(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ketadesk.storage.server.server_engine import parse_server_url

    return parse_server_url(str(args.db))


def backup_on_server(args: argparse.Namespace) -> int:
    """stdin (--password-stdin): your password, then the backup's passphrase."""
    from ketadesk.core.output_paths import check_output_path
    from ketadesk.storage.security.password_rules import check_new_password
    from ketadesk.storage.server.server_backup import backup_server_practice
    from ketadesk.storage.server.server_practice import ServerPractice

    address = _address(args)
    certificate = ca_certificate(args)
    out = check_output_path(
        Path(args.out), overwrite=args.overwrite, what="backup", make_folder=True
    )
    reader = password_reader(args)
    password = reader.read(f"Password for {args.as_user}: ")
    passphrase = reader.read_new("Passphrase for this backup (write it down, keep it apart): ")
    check_new_password(passphrase, args.as_user, what="backup passphrase")
    practice = ServerPractice.log_in(address, certificate, args.as_user, password)
    try:
        written = backup_server_practice(practice, password, out, passphrase)
    finally:
        practice.close()
    print(
        f"Encrypted backup of {address.url} written to {written.path} "
        f"({written.file_bytes:,} bytes). It opens only with its passphrase: keep the "
        "passphrase apart from the backup."
    )
    return 0


def restore_on_server(args: argparse.Namespace) -> int:
    """stdin (--password-stdin): the server owner's password, the backup's passphrase, then
    the password of --as NAME (a user who manages users; on a server without NAME's login role,
    the password it is made with)."""
    from ketadesk.storage.server.practice_roles import OWNER_ROLE
    from ketadesk.storage.server.server_backup import restore_server_backup

    address = _address(args)
    certificate = ca_certificate(args)
    owner = getattr(args, "owner", None) or OWNER_ROLE
    reader = password_reader(args)
    owner_password = reader.read(f"Password of the server role {owner}: ")
    passphrase = reader.read("Passphrase of the backup: ")
    password = reader.read(f"Password for {args.as_user}: ")
    done = restore_server_backup(
        Path(args.file).expanduser(),
        passphrase,
        address,
        certificate,
        owner=owner,
        owner_password=owner_password,
        user_name=args.as_user,
        password=password,
    )
    print(
        f"Restored the backup made {done.made_at} by {done.made_by} into {address.url}."
    )
    print(done.verdict.describe())
    made = done.roles_made
    if made is not None and made.restorer:
        print(f"Made the login role {made.restorer} on this server, with the password given "
              "here.")
    if made is not None and made.awaiting_password:
        print(
            "Made login roles with no password yet for: " + ", ".join(made.awaiting_password)
            + ". Each logs in once a user who manages users sets their password (Users, "
            "Reset password, in the app)."
        )
    if made is not None and made.cannot_log_in:
        print("Removed users, with roles that cannot log in: " + ", ".join(made.cannot_log_in))
    if done.users_without_login:
        print(
            "These users have no login role on this server yet (roles belong to the server, "
            "not to the backup): " + ", ".join(done.users_without_login)
        )
    if not done.has_recovery_key:
        print(
            "This practice has no recovery key on this server yet: a user who manages users "
            f"makes one with 'server recovery-key --db {address.url} --as NAME' and keeps it "
            "offline."
        )
    return 0 if done.verdict.is_intact else 1


def upgrade_server(args: argparse.Namespace) -> int:
    """stdin (--password-stdin): the server owner's password."""
    from ketadesk.storage.server.practice_roles import OWNER_ROLE
    from ketadesk.storage.server.server_upgrade import upgrade_server_practice

    address = _address(args)
    certificate = ca_certificate(args)
    owner = args.owner or OWNER_ROLE
    owner_password = password_reader(args).read(f"Password of the server role {owner}: ")
    if not owner_password:
        raise UserFacingError("The server owner's password is needed; nothing was changed.")
    done = upgrade_server_practice(address, certificate, owner, owner_password)
    print(done.describe(address))
    return 0


def import_practice_file(args: argparse.Namespace) -> int:
    """stdin (--password-stdin): the server owner's password, NAME's password for the file
    (their server password too), then an initial password for each other active user."""
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.visit_pack_identity import refuse_in_visit_pack
    from ketadesk.storage.server.practice_import import file_users, import_practice
    from ketadesk.storage.server.practice_roles import OWNER_ROLE

    address = _address(args)
    certificate = ca_certificate(args)
    owner = args.owner or OWNER_ROLE
    source = Path(args.file).expanduser()
    if not source.is_file():
        raise UserFacingError(f"There is no practice database file at {source}.")
    reader = password_reader(args)
    owner_password = reader.read(f"Password of the server role {owner}: ")
    password = reader.read(f"Password for {args.as_user} (the practice file's): ")
    database, outcome = PracticeDatabase.unlock(source, args.as_user, password)
    try:
        if database.visit_pack is not None:
            refuse_in_visit_pack(database.visit_pack, "Moving a practice to a server")
        passwords = {args.as_user: password}
        for user in file_users(database):
            if user.is_active and user.user_name != args.as_user:
                passwords[user.user_name] = reader.read_new(
                    f"Initial server password for {user.user_name}: "
                )
        done = import_practice(
            database,
            outcome.actor,
            address,
            certificate,
            owner=owner,
            owner_password=owner_password,
            passwords=passwords,
        )
    finally:
        database.close()
    rows = sum(done.counts.values())
    print(
        f"Moved the practice {source.name} to {address.url}: {rows:,} rows in "
        f"{len(done.counts)} tables, the same in the file and on the server."
    )
    print(f"Audit trail in the file: {done.verdict_before.describe()}")
    print(f"Audit trail on the server: {done.verdict_after.describe()}")
    for user in done.users:
        if not user.is_active:
            state = "removed (a role that cannot log in)"
        elif user.user_name == args.as_user:
            state = "logs in with the password of the file"
        else:
            state = "logs in with the initial password given here; change it after logging in"
        print(f"  {user.user_name:20} {user.role:10} {state}")
    print(
        "Keep the practice file as it is until every user has logged in to the server; "
        "from now on enter records on the server only."
    )
    print()
    print("The file's recovery key does not carry over: the server has its own.")
    print("RECOVERY KEY (shown only once):")
    print(f"    {done.recovery_key}")
    print("Write it down and keep it offline, somewhere safe (like the backup passphrase). It")
    print("gives a user who manages users a new password ('server recover') if they forget")
    print("theirs; it cannot read any record.")
    return 0 if done.verdict_after.is_intact else 1
