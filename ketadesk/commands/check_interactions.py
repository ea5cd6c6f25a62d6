"""``python -m ketadesk check-interactions --json FILE|-``: headless interaction check.

Needs no database. One JSON object in gives one object out; a JSON array in gives an array
out, in the same order. Bad JSON or a wrong shape is one plain line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from ketadesk.commands._common import new_command, print_json


def register(subparsers: Any) -> None:
    parser = new_command(
        subparsers,
        "check-interactions",
        help="check medications, conditions and vitals against the ketamine knowledge base",
        handler=run,
    )
    parser.add_argument(
        "--json",
        dest="json_path",
        metavar="FILE",
        required=True,
        help="JSON input file, or - for standard input",
    )


def run(args: argparse.Namespace) -> int:
    from ketadesk.core.interaction_check import check_request
    from ketadesk.core.interaction_check_json import parse_check_request, result_to_json
    from ketadesk.core.knowledge_base import load_knowledge_base

    document = _read_json(args.json_path)
    if isinstance(document, list):
        requests = [
            parse_check_request(item, f"Item {index} of the input array")
            for index, item in enumerate(document, start=1)
        ]
    else:
        requests = [parse_check_request(document)]
    kb = load_knowledge_base()
    results = [result_to_json(check_request(request, kb)) for request in requests]
    print_json(results if isinstance(document, list) else results[0])
    return 0


def _read_json(source: str) -> object:
    from ketadesk.core.json_input import parse_json_capped, read_capped_text

    return parse_json_capped(read_capped_text(source))
