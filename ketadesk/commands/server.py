"""Practice server commands: ``server dev`` (a throwaway local PostgreSQL cluster)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
