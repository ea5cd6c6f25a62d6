"""``python -m ketadesk``: with no command, open the app; with a command, run it headless."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from ketadesk.cli import build_parser

    parser = build_parser()
    namespace = parser.parse_args(args)
    if namespace.self_test or getattr(namespace, "command", None):
        from ketadesk.cli import run_cli

        return run_cli(args)
    from ketadesk.ui.app import run_app

    return run_app(db_path=namespace.db)


if __name__ == "__main__":
    sys.exit(main())
