"""A workstation writing to a practice server, to be killed (run as a script).

    _server_writer.py PORT DBNAME CA USER   (password on stdin, then one command a line)

A fork server: after the password it prints ``SERVING``; each ``go`` line forks a child that
logs in as USER (its own connections) and saves through the services as ``_writer.py`` does
(one new chart with vitals, then a 25-row roster import, each one transaction, a line printed
only after the commit); each ``hold`` line forks a child that saves a chart, flushes it to the
server, prints ``HOLDING`` and waits inside the open transaction (holding the practice's write
lock). The test kills the child; the server prints ``DONE <status>``.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ketadesk.storage.patients.patients import add_vitals, create_patient  # noqa: E402
from ketadesk.storage.server.dev_cluster import HOST  # noqa: E402
from ketadesk.storage.server.server_engine import ServerAddress  # noqa: E402
from ketadesk.storage.server.server_practice import ServerPractice  # noqa: E402
from tests.reliability._writer import SINGLE, say, write_forever  # noqa: E402


def _hold(practice: ServerPractice) -> None:
    now = datetime.now(UTC)
    with practice.session() as session:
        record = create_patient(
            session, practice.actor, SINGLE, today=now.date(), allow_duplicate=True
        )
        add_vitals(session, practice.actor, record.id, measured_at=now, heart_rate=71)
        session.flush()
        say(f"HOLDING {record.id}")
        time.sleep(600)


def main(argv: list[str]) -> int:
    port, database, ca, user = int(argv[0]), argv[1], Path(argv[2]), argv[3]
    address = ServerAddress(HOST, port, database)
    password = sys.stdin.readline().rstrip("\n")
    # Warm the caches once (imports, mappers), then close every connection before forking.
    ServerPractice.log_in(address, ca, user, password).close()
    say("SERVING")
    for trial, line in enumerate(sys.stdin):
        command = line.strip()
        if command not in ("go", "hold"):
            break
        pid = os.fork()
        if pid == 0:
            try:
                practice = ServerPractice.log_in(address, ca, user, password)
                say("READY")
                if command == "hold":
                    _hold(practice)
                else:
                    write_forever(practice, practice.actor, f"s{trial}", 25, 0)  # type: ignore[arg-type]
            except BaseException as error:  # reported to the test, never silently
                say(f"ERROR {type(error).__name__}: {error}")
                os._exit(3)
            os._exit(0)
        say(f"PID {pid}")
        _pid, status = os.waitpid(pid, 0)
        say(f"DONE {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
