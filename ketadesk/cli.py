"""Headless commands: ``python -m ketadesk [--db PATH] COMMAND ...``.

Each module in ``ketadesk.commands`` exposes ``register(subparsers)``; it adds its parsers
and sets ``handler=function(args) -> int``. Modules are discovered, so adding a command
never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ketadesk import __version__
from ketadesk.core.errors import UserFacingError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one plain line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"ketadesk: {message} (see 'python -m ketadesk --help')\n")


def add_db_option(parser: argparse.ArgumentParser, *, is_subcommand: bool) -> None:
    """``--db PATH`` (and ``--ca FILE`` for a server) is accepted before or after the command
    name."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=argparse.SUPPRESS if is_subcommand else None,
        help=(
            "practice database file (default: in your user data folder), or a practice "
            "server: postgresql://HOST[:PORT]/DBNAME"
        ),
    )
    parser.add_argument(
        "--ca",
        metavar="FILE",
        type=Path,
        default=argparse.SUPPRESS if is_subcommand else None,
        help="on a practice server: the practice CA certificate the server is checked with",
    )
    for option, what in (("--cert", "certificate"), ("--key", "key")):
        parser.add_argument(
            option,
            metavar="FILE",
            type=Path,
            default=argparse.SUPPRESS if is_subcommand else None,
            help=f"on a practice server that requires it: this workstation's {what}",
        )


def build_parser() -> argparse.ArgumentParser:
    import ketadesk.commands as commands_pkg

    parser = _Parser(prog="python -m ketadesk", description="KetaDesk practice workstation")
    parser.add_argument("--version", action="version", version=f"KetaDesk {__version__}")
    parser.add_argument(
        "--self-test", action="store_true", help="run the built-in self-test and exit"
    )
    add_db_option(parser, is_subcommand=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ketadesk.commands.{info.name}")
        module.register(subparsers)
    return parser


def run_cli(argv: Sequence[str]) -> int:
    """Run one headless command; return the process exit code."""
    from ketadesk.crash_report import default_log_folder, install_crash_hook

    if sys.excepthook is sys.__excepthook__:  # keep a hook the caller installed already
        install_crash_hook(default_log_folder() / "crash-reports")
    from ketadesk.storage.roster.roster_status import install_status_tracking

    install_status_tracking()  # every write keeps the roster's stored statuses current
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.self_test:
        from ketadesk.self_test import run_self_test

        return run_self_test()
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except UserFacingError as error:
        print(f"ketadesk: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("ketadesk: interrupted; nothing further was changed.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): say so once; stdout must not be flushed again.
        _silence_stdout()
        print("ketadesk: the output was closed before everything was written.", file=sys.stderr)
        return 1
    except OSError as error:
        from ketadesk.core.os_errors import os_error_in_words

        print(f"ketadesk: a file could not be read or written: {os_error_in_words(error)}.",
              file=sys.stderr)
        return 1
    except RecursionError:
        print("ketadesk: the input is nested too deeply to read; nothing was changed.",
              file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
