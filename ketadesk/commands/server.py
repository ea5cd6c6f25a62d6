"""Practice server commands: ``server dev`` (a throwaway local PostgreSQL cluster), ``server
init`` (create the practice on a server and print its recovery key once), ``server upgrade``
(migrations, grants and triggers again), ``server import-practice`` (move a file practice
there), ``server login``, the recovery key (``server recover`` gives a user who manages users a
new password with it, ``server recovery-key`` replaces it), and the optional workstation
certificates: ``server enrol-workstation``, ``server revoke-workstation`` and ``server
require-workstation-certificates``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ketadesk.commands._common import (
    add_login_options,
    ca_certificate,
    new_command,
    password_reader,
    workstation_certificate,
)
from ketadesk.core.errors import UserFacingError


def register(subparsers: Any) -> None:
    server = subparsers.add_parser(
        "server",
        help="practice server on PostgreSQL",
        description="practice server on PostgreSQL",
    )
    server_commands = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    dev = server_commands.add_parser(
        "dev",
        help="start (or stop) a throwaway local PostgreSQL server configured as in production",
        description=(
            "Start a throwaway local PostgreSQL server (TLS with its own CA, SCRAM passwords, "
            "loopback only) kept in DIR, print its URL and CA certificate, and return."
        ),
    )
    dev.add_argument("--data", metavar="DIR", required=True, type=Path)
    dev.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    dev.add_argument("--stop", action="store_true", help="stop the server kept in DIR")
    dev.set_defaults(handler=_dev)

    init = new_command(
        server_commands,
        "init",
        help=(
            "create the practice and its first physician on a server (stdin with "
            "--password-stdin: the server owner's password, then the physician's)"
        ),
        handler=_init,
    )
    init.add_argument("--user", required=True, help="user name of the first physician")
    init.add_argument("--full-name", required=True)
    init.add_argument(
        "--owner", default=None, help="the server role that owns the schema (ketadesk_owner)"
    )
    init.add_argument("--password-stdin", action="store_true")

    certificates = server_commands.add_parser(
        "certificates",
        help="make the practice CA and the server's certificate for a production server",
        description=(
            "Write ca.crt and ca.key (the practice CA, made once) and server.crt and "
            "server.key for the host names given into DIR; with a CA already in DIR, only "
            "a new server certificate is issued."
        ),
    )
    certificates.add_argument("--out", metavar="DIR", required=True, type=Path)
    certificates.add_argument(
        "--host", action="append", required=True, metavar="NAME",
        help="a name or IP address workstations use to reach the server (repeat for more)",
    )
    certificates.add_argument("--practice", default="KetaDesk practice", metavar="NAME")
    certificates.set_defaults(handler=_certificates)

    upgrade = new_command(
        server_commands,
        "upgrade",
        help=(
            "run the migrations and apply the grants and triggers again (idempotent; stdin "
            "with --password-stdin: the server owner's password)"
        ),
        handler=_upgrade,
    )
    upgrade.add_argument(
        "--owner", default=None, help="the server role that owns the schema (ketadesk_owner)"
    )
    upgrade.add_argument("--password-stdin", action="store_true")

    move = new_command(
        server_commands,
        "import-practice",
        help=(
            "move a practice file onto an empty server database (stdin with --password-stdin: "
            "the server owner's password, your password for the file (also your server "
            "password), then an initial server password for each other active user, in "
            "user-name order)"
        ),
        handler=_import_practice,
    )
    move.add_argument("file", metavar="FILE", type=Path, help="the practice database file")
    move.add_argument("--as", dest="as_user", metavar="NAME", required=True,
                      help="a user of the file who manages users")
    move.add_argument(
        "--owner", default=None, help="the server role that owns the schema (ketadesk_owner)"
    )
    move.add_argument("--password-stdin", action="store_true")

    recover = new_command(
        server_commands,
        "recover",
        help=(
            "give a user who manages users a new password with the practice's recovery key "
            "(stdin with --password-stdin: the recovery key, then the new password)"
        ),
        handler=recover_on_server,
    )
    recover.add_argument("--user", required=True, metavar="NAME",
                         help="the user who manages users and forgot their password")
    recover.add_argument("--password-stdin", action="store_true")

    new_command(
        server_commands,
        "recovery-key",
        help=(
            "make a new recovery key for the practice and print it once; the earlier one "
            "stops working (a user who manages users)"
        ),
        handler=_recovery_key,
        needs_login=True,
    )

    login = new_command(
        server_commands,
        "login",
        help="log in to a practice server and say who you are there",
        handler=_login,
    )
    add_login_options(login)

    enrol = server_commands.add_parser(
        "enrol-workstation",
        help="issue a workstation its own certificate, signed by the practice CA",
        description=(
            "Issue workstation NAME a certificate and key signed by the practice CA kept in "
            "DIR (written to --out, the key readable by its owner only). A server that "
            "requires workstation certificates accepts only enrolled, unrevoked workstations."
        ),
    )
    enrol.add_argument("name", metavar="NAME")
    enrol.add_argument("--data", metavar="DIR", required=True, type=Path,
                       help="the folder holding the practice CA (ca.crt, ca.key)")
    enrol.add_argument("--out", metavar="DIR", type=Path,
                       help="where to write NAME.crt and NAME.key (default DIR/workstations)")
    enrol.set_defaults(handler=_enrol)

    revoke = server_commands.add_parser(
        "revoke-workstation",
        help="revoke a workstation's certificate (a lost laptop): the server refuses it",
        description="Revoke workstation NAME's certificate and give the server the new list.",
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--data", metavar="DIR", required=True, type=Path,
                        help="the folder holding the practice CA (ca.crt, ca.key)")
    revoke.set_defaults(handler=_revoke)

    require = server_commands.add_parser(
        "require-workstation-certificates",
        help="accept only enrolled workstations on the dev server kept in DIR (--off: any)",
        description=(
            "Have the dev server kept in DIR accept only workstations with a certificate the "
            "practice issued and did not revoke (pg_hba.conf clientcert=verify-ca), on top "
            "of each user's password; --off accepts any workstation again."
        ),
    )
    require.add_argument("--data", metavar="DIR", required=True, type=Path)
    require.add_argument("--off", action="store_true")
    require.set_defaults(handler=_require)


def _server_address(args: argparse.Namespace) -> Any:
    from ketadesk.storage.server.server_engine import is_server_url, parse_server_url

    given = getattr(args, "db", None)
    if not given or not is_server_url(given):
        raise UserFacingError(
            "This command needs the practice server's address: --db "
            "postgresql://HOST[:PORT]/DBNAME (as 'server dev' prints it)."
        )
    address = parse_server_url(given)
    ca_certificate(args)
    return address


def _dev(args: argparse.Namespace) -> int:
    from ketadesk.core.errors import UserFacingError
    from ketadesk.storage.server.dev_cluster import start_dev_cluster, stop_dev_cluster

    if args.port is not None and not 1024 <= args.port <= 65535:
        raise UserFacingError("--port must be a number between 1024 and 65535.")
    if args.stop:
        if stop_dev_cluster(args.data):
            print(f"Stopped the dev server kept in {args.data}.")
        else:
            print(f"No dev server was running from {args.data}.")
        return 0
    cluster = start_dev_cluster(args.data, args.port)
    print(cluster.url)
    print(f"CA certificate: {cluster.ca_certificate}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.practice_roles import OWNER_ROLE
    from ketadesk.storage.server.server_backup import prepare_empty_database
    from ketadesk.storage.server.server_practice import ServerPractice

    address = _server_address(args)
    owner = args.owner or OWNER_ROLE
    reader = password_reader(args)
    owner_password = reader.read(f"Password of the server role {owner}: ")
    password = reader.read_new(f"New password for {args.user}: ")
    # On a new server: the database, the group roles and the extensions (as 'server dev').
    prepare_empty_database(address, ca_certificate(args), owner, owner_password)
    made = ServerPractice.create(
        address,
        ca_certificate(args),
        owner_password=owner_password,
        user_name=args.user,
        full_name=args.full_name,
        password=password,
        owner=owner,
    )
    print(f"Created the practice at {made.address.url} with physician {made.actor.user_name}.")
    print("Each user logs in with their own password, checked by the server.")
    _print_recovery_key(made.recovery_key)
    return 0


def _print_recovery_key(recovery_key: str) -> None:
    """The recovery key, once, in the layout of a practice file's ``init``."""
    print()
    print("RECOVERY KEY (shown only once):")
    print(f"    {recovery_key}")
    print("Write it down and keep it offline, somewhere safe (like the backup passphrase). It")
    print("gives a user who manages users a new password ('server recover') if they forget")
    print("theirs; it cannot read any record.")


def recover_on_server(args: argparse.Namespace) -> int:
    """``server recover`` and ``recover --db postgresql://…``: the recovery key gives a user
    who manages users a new password (checked by the server's recovery role)."""
    from ketadesk.storage.server.server_recovery import recover_user_manager

    address = _server_address(args)
    reader = password_reader(args)
    recovery_key = reader.read("Recovery key: ")
    password = reader.read_new(f"New password for {args.user}: ")
    recover_user_manager(
        address, ca_certificate(args), recovery_key, args.user, password,
        workstation_certificate(args),
    )
    print(
        f"{args.user} has a new password and logs in with it; their next log-in makes them "
        "a new signing key. The reset is in the audit trail."
    )
    return 0


def _recovery_key(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.server_practice import ServerPractice

    address = _server_address(args)
    password = password_reader(args).read(f"Password for {args.as_user}: ")
    practice = ServerPractice.log_in(
        address, ca_certificate(args), args.as_user, password, workstation_certificate(args)
    )
    try:
        recovery_key = practice.replace_recovery_key()
    finally:
        practice.close()
    print("Made a new recovery key; the earlier one no longer works.")
    _print_recovery_key(recovery_key)
    return 0


def _certificates(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.certificate_files import make_server_certificates

    made = make_server_certificates(args.out, args.host, args.practice)
    if made.is_new_ca:
        print(f"Made the practice CA: {made.folder / 'ca.crt'} (install it on every "
              f"workstation) and {made.folder / 'ca.key'} (keep it offline).")
    else:
        print(f"Kept the practice CA in {made.folder}.")
    print(
        f"Server certificate for {', '.join(made.host_names)}, valid until {made.expires_on}: "
        f"{made.folder / 'server.crt'} and {made.folder / 'server.key'} (copy both to "
        "PostgreSQL's data folder, owned by postgres, the key 0600)."
    )
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from ketadesk.commands._server_backup import upgrade_server

    _server_address(args)
    return upgrade_server(args)


def _import_practice(args: argparse.Namespace) -> int:
    from ketadesk.commands._server_backup import import_practice_file

    _server_address(args)
    return import_practice_file(args)


def _login(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.server_practice import ServerPractice

    address = _server_address(args)
    password = password_reader(args).read(f"Password for {args.as_user}: ")
    practice = ServerPractice.log_in(
        address, ca_certificate(args), args.as_user, password, workstation_certificate(args)
    )
    try:
        actor = practice.actor
        manages = ", manages users" if actor.can_manage_users else ""
        print(f"Logged in to {address.url} as {actor.user_name} ({actor.role.value}{manages}).")
    finally:
        practice.close()
    return 0


def _give_server_the_list(folder: Path, revocation_list: Path) -> None:
    from ketadesk.storage.server.dev_cluster import holds_dev_cluster, use_workstation_certificates

    if holds_dev_cluster(folder):
        use_workstation_certificates(folder, revocation_list)
        print("The dev server has read the new revocation list.")
    else:
        print(
            f"Copy {revocation_list} to the server, name it in postgresql.conf "
            "(ssl_crl_file, with ssl_ca_file the practice's ca.crt) and reload PostgreSQL."
        )


def _enrol(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.workstation_certificates import (
        enrol_workstation,
        write_revocation_list,
    )

    out = args.out or args.data / "workstations"
    enrolled = enrol_workstation(args.data, args.name, out)
    print(f"Enrolled workstation {enrolled.name}.")
    print(f"Certificate: {enrolled.certificate}")
    print(f"Key: {enrolled.key}")
    print(
        "Copy both to that workstation only (the key is its own; keep it private) and give "
        "them when logging in (--cert FILE --key FILE, or in the log-in dialog)."
    )
    _give_server_the_list(args.data, write_revocation_list(args.data))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.workstation_certificates import revoke_workstation

    revocation_list = revoke_workstation(args.data, args.name)
    print(f"Revoked workstation {args.name}: the server refuses its certificate from now on.")
    _give_server_the_list(args.data, revocation_list)
    return 0


def _require(args: argparse.Namespace) -> int:
    from ketadesk.storage.server.dev_cluster import holds_dev_cluster, use_workstation_certificates
    from ketadesk.storage.server.workstation_certificates import write_revocation_list

    if not holds_dev_cluster(args.data):
        raise UserFacingError(
            f"No dev server was made in {args.data}. On a production server, add "
            "clientcert=verify-ca to the hostssl line of pg_hba.conf, set ssl_ca_file and "
            "ssl_crl_file, and reload PostgreSQL."
        )
    use_workstation_certificates(
        args.data, write_revocation_list(args.data), required=not args.off
    )
    if args.off:
        print("The dev server accepts any workstation again (each user still needs a password).")
    else:
        print(
            "The dev server now accepts only enrolled workstations whose certificate was not "
            "revoked, on top of each user's password."
        )
    return 0
