"""``python -m ketadesk``: with no command, open the app; with a command, run it headless."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import argparse
    import multiprocessing

    multiprocessing.freeze_support()  # batch plan export starts worker processes, bundle too
    args = sys.argv[1:] if argv is None else argv
    # Decide cheaply whether this is the app or a command: building the full command parser
    # imports every command module, which the app's start-up does not need.
    gui = argparse.ArgumentParser(add_help=False)
    gui.add_argument("--db")
    known, rest = gui.parse_known_args(args)
    if rest:
        from ketadesk.cli import run_cli

        return run_cli(args)
    from ketadesk.ui.app import run_app

    return run_app(db_path=known.db)


if __name__ == "__main__":
    sys.exit(main())
