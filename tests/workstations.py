"""A second workstation on the same practice: the front-desk admin's own connection (a second
unlock of the same file, or a second log-in to the same server database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ketadesk.core.permissions import Actor


@contextmanager
def front_desk_workstation(practice: Any, password: str) -> Iterator[tuple[Any, Actor]]:
    """``(db, actor)`` for the admin of ``practice`` (a ``PracticeOn``), closed afterwards."""
    from tests.conftest import ADMIN

    if practice.back_end == "file":
        from ketadesk.storage.security.database import PracticeDatabase

        db, outcome = PracticeDatabase.unlock(practice.path, ADMIN, password)
        actor = outcome.actor
    else:
        from ketadesk.storage.server.server_engine import parse_server_url
        from ketadesk.storage.server.server_practice import ServerPractice
        from tests.both_back_ends import SERVER_ADMIN

        address = parse_server_url(practice.url)
        db = ServerPractice.log_in(address, practice.ca, SERVER_ADMIN, password)
        actor = db.actor
    try:
        yield db, actor
    finally:
        db.close()
