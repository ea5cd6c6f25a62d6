"""Shared pieces of the headless commands: options, password input, JSON output."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadesk.core.errors import UserFacingError

if TYPE_CHECKING:
    from ketadesk.core.permissions import Actor
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.server.server_engine import WorkstationCertificate
    from ketadesk.storage.server.server_practice import ServerPractice

Handler = Callable[[argparse.Namespace], int]


def new_command(
    subparsers: Any, name: str, *, help: str, handler: Handler, needs_login: bool = False
) -> argparse.ArgumentParser:
    """Add one command; ``--db`` is accepted after the command name as well as before it."""
    from ketadesk.cli import add_db_option

    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=help)
    add_db_option(parser, is_subcommand=True)
    if needs_login:
        add_login_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def add_login_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as", dest="as_user", metavar="NAME", required=True, help="your KetaDesk user name"
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read passwords from standard input, one per line",
    )


class PasswordReader:
    """Reads passwords one per line from stdin (``--password-stdin``) or from a TTY prompt.

    Passwords never come from argv or the environment.
    """

    def __init__(self, from_stdin: bool) -> None:
        self._from_stdin = from_stdin

    def read(self, prompt: str) -> str:
        if self._from_stdin:
            line = sys.stdin.readline()
            if not line:
                raise UserFacingError(
                    f"Expected a password on standard input ({prompt.rstrip(': ')}), "
                    "but there was none."
                )
            return line.rstrip("\r\n")
        if not sys.stdin.isatty():
            raise UserFacingError(
                "No terminal to ask for a password; use --password-stdin to pipe it in."
            )
        return getpass.getpass(prompt)

    def read_new(self, prompt: str) -> str:
        """A new password: asked twice on a TTY, once from stdin."""
        first = self.read(prompt)
        if not self._from_stdin:
            second = self.read("Repeat it: ")
            if first != second:
                raise UserFacingError("The two passwords do not match; nothing was changed.")
        return first


def password_reader(args: argparse.Namespace) -> PasswordReader:
    return PasswordReader(bool(getattr(args, "password_stdin", False)))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def command_words(args: argparse.Namespace) -> str:
    """The command as typed (``checkin add``, ``user passwd``), for messages."""
    words = [str(getattr(args, "command", "") or "")]
    for name, value in sorted(vars(args).items()):
        if name.endswith(("_command", "_action")) and isinstance(value, str) and value:
            words.append(value)
    return " ".join(w for w in words if w)


def is_server_database(args: argparse.Namespace) -> bool:
    given = getattr(args, "db", None)
    return bool(given) and str(given).startswith(("postgresql://", "postgres://"))


def database_path(args: argparse.Namespace) -> Path:
    """The ``--db`` path, or the default practice database in the user data folder. A practice
    server's address is refused here, naming the command: it works on a file only."""
    given = getattr(args, "db", None)
    if is_server_database(args):
        raise UserFacingError(
            f"'{command_words(args)}' works on a practice database file only, not on a "
            "practice server (postgresql://...), which has commands of its own ('python -m "
            "ketadesk server --help': 'server init' makes a practice there); nothing was "
            "changed."
        )
    if given:
        path = Path(given).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("KetaDesk", appauthor=False)) / "practice.db"
    if path.is_dir():
        raise UserFacingError(
            f"{path} is a folder; --db needs the practice database file inside it "
            "(for example practice.db)."
        )
    return path


def _log_in_to_server(
    args: argparse.Namespace, reader: PasswordReader
) -> tuple[ServerPractice, Actor]:
    from ketadesk.storage.server.server_engine import parse_server_url
    from ketadesk.storage.server.server_practice import ServerPractice

    address = parse_server_url(str(args.db))
    certificate = ca_certificate(args)
    password = reader.read(f"Password for {args.as_user}: ")
    practice = ServerPractice.log_in(
        address, certificate, args.as_user, password, workstation_certificate(args)
    )
    return practice, practice.actor


# Commands that need the whole practice, refused on a visit pack (what they do, in words).
NEEDS_WHOLE_PRACTICE = {
    "user": "Managing users",
    "backup": "A backup of the practice",
    "import-patients": "Importing patients",
    "visit": "Managing visit packs",
}


def ca_certificate(args: argparse.Namespace) -> Path:
    """``--ca FILE``: the practice CA certificate a server is checked with (required there)."""
    given = getattr(args, "ca", None)
    if given is None:
        raise UserFacingError(
            "A practice server needs the practice certificate: add --ca FILE (the ca.crt "
            "installed on this workstation; 'server dev' prints where it is)."
        )
    return Path(given).expanduser()


def workstation_certificate(args: argparse.Namespace) -> WorkstationCertificate | None:
    """``--cert FILE --key FILE``: this workstation's certificate, given both or neither."""
    from ketadesk.storage.server.server_engine import WorkstationCertificate

    certificate, key = getattr(args, "cert", None), getattr(args, "key", None)
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        raise UserFacingError(
            "A workstation certificate needs both --cert FILE and --key FILE (the two files "
            "'server enrol-workstation' wrote for this workstation)."
        )
    return WorkstationCertificate(Path(certificate).expanduser(), Path(key).expanduser())


def open_database_as(
    args: argparse.Namespace,
) -> tuple[PracticeDatabase | ServerPractice, Actor]:
    """Unlock the database as ``--as NAME`` with the first password from stdin or the TTY; on
    a practice server (``--db postgresql://...``), log in to it as that user's own role."""
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.visit_pack_identity import refuse_in_visit_pack

    reader = password_reader(args)
    if is_server_database(args):
        return _log_in_to_server(args, reader)
    password = reader.read(f"Password for {args.as_user}: ")
    database, outcome = PracticeDatabase.unlock(database_path(args), args.as_user, password)
    needs_practice = NEEDS_WHOLE_PRACTICE.get(str(getattr(args, "command", "")))
    if needs_practice is not None and database.visit_pack is not None:
        try:
            refuse_in_visit_pack(database.visit_pack, needs_practice)
        finally:
            database.close()
    if not outcome.audit.is_intact and outcome.actor.can_manage_users:
        print(f"ketadesk: warning: {outcome.audit.describe()}", file=sys.stderr)
    return database, outcome.actor
