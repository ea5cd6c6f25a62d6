"""A visit-pack return run as its own process, to be killed in the middle (run as a script).

    _visit_returner.py PRACTICE PACK USER     (password on stdin)

It unlocks the practice, then returns the pack through ``return_visit_pack``. A statement hook
on the practice's engine (here, in the test's child only) prints ``WRITING <n>`` before each
INSERT or UPDATE and pauses 2 ms, so the test can kill it while the return's transaction is
open; ``DONE`` is printed after the return committed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from ketadesk.storage.roster.roster_status import install_status_tracking  # noqa: E402
from ketadesk.storage.security.database import PracticeDatabase  # noqa: E402
from ketadesk.storage.visits.visit_return import return_visit_pack  # noqa: E402


def main() -> None:
    practice, pack, user = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    password = sys.stdin.readline().rstrip("\n")
    install_status_tracking()
    db, outcome = PracticeDatabase.unlock(practice, user, password)
    writes = [0]

    def announce(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes[0] += 1
            print(f"WRITING {writes[0]}", flush=True)
            time.sleep(0.002)

    print("READY", flush=True)
    event.listen(db.engine, "before_cursor_execute", announce)
    return_visit_pack(db, outcome.actor, pack, password)
    print("DONE", flush=True)
    db.close()


if __name__ == "__main__":
    main()
