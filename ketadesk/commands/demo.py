"""``demo``: a practice database full of synthetic patients, for trying KetaDesk out."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

from ketadesk.commands._common import (
    database_path,
    is_server_database,
    new_command,
    password_reader,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role

# Later features add demo records once the patients exist: "module:function(database, physician)".
DEMO_STEPS: tuple[str, ...] = (
    "ketadesk.storage.demo.demo_reviews:populate",
    "ketadesk.storage.demo.demo_protocols:populate_signed",
    "ketadesk.storage.demo.demo_outcomes:populate",
    "ketadesk.storage.demo.demo_compliance:populate",
)


# A fictional practice for the letterhead (555-01xx numbers are reserved for fiction).
DEMO_PRACTICE = {
    "practice_name": "Harbor Light Ketamine Care (demo practice)",
    "practice_address": "100 Example Way, Suite 2, Gainesville, FL 32601",
    "practice_phone": "(352) 555-0100",
}


def register(subparsers: Any) -> None:
    demo = new_command(
        subparsers,
        "demo",
        help="create a demo database of synthetic patients "
        "(users 'physician' and 'admin', both with the password from stdin)",
        handler=_demo,
    )
    demo.add_argument("--patients", type=int, default=200, metavar="N")
    demo.add_argument("--password-stdin", action="store_true")


def _demo(args: argparse.Namespace) -> int:
    from ketadesk.storage.demo import demo_data
    from ketadesk.storage.practice.settings_store import set_setting
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.users import add_user

    if is_server_database(args):
        # Decided: no demo practice straight onto a server. Its users would be login roles of
        # the whole cluster sharing one password; a demo file moved there is the same practice
        # with each user's server password asked for one by one.
        raise UserFacingError(
            "A demo practice is made in a file, not on a practice server. Make one with "
            "'python -m ketadesk demo --db demo.db', then move it onto an empty server "
            "database with 'python -m ketadesk server import-practice demo.db --db "
            "postgresql://… --ca FILE --as physician' ('server dev' starts a throwaway "
            "server to try it on). Nothing was changed."
        )
    if not 0 <= args.patients <= 200_000:
        raise UserFacingError("--patients must be between 0 and 200000.")
    password = password_reader(args).read_new("Password for the demo users: ")
    path = database_path(args)
    started = time.perf_counter()
    database, physician, _recovery = PracticeDatabase.create(
        path, user_name="physician", full_name="Dr. Avery Demo-Physician", password=password
    )
    try:
        add_user(
            database,
            physician,
            user_name="admin",
            full_name="Morgan Demo-Admin",
            role=Role.ADMIN,
            password=password,
        )
        from ketadesk.storage.security.users import set_credentials

        set_credentials(
            database,
            physician,
            "physician",
            npi="1234567893",
            dea_number="AD1234563",
            licence_states=("FL", "NJ"),
        )
        with database.session() as session:
            for key, value in DEMO_PRACTICE.items():
                set_setting(session, physician, key, value)
            demo_data.populate_demo_patients(session, args.patients, entered_by=physician.user_name)
        for step in DEMO_STEPS:
            module_name, function_name = step.split(":")
            getattr(importlib.import_module(module_name), function_name)(database, physician)
        # The front desk's part runs with the admin logged in, so the admin's own key signs
        # the audit events that name them (the audit check flags any event it does not).
        from ketadesk.storage.demo.demo_protocols import populate_front_desk

        front_desk = database.unlock_again("admin", password)
        populate_front_desk(database, front_desk)
        from ketadesk.storage.roster.roster_query import build_search_index
        from ketadesk.storage.roster.roster_status import rebuild_roster_status

        with database.session() as session:  # built now, so the first open builds nothing
            build_search_index(session)
            rebuild_roster_status(session)
    finally:
        database.close()
    print(
        f"Demo database with {args.patients} synthetic patients written to {path} "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0
