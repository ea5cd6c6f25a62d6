"""A second workstation on the same practice: the front-desk admin's (or the physician's) own
connection (a second unlock of the same file, or a second log-in to the same server
database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ketadesk.core.permissions import Actor


@contextmanager
def front_desk_workstation(practice: Any, password: str) -> Iterator[tuple[Any, Actor]]:
    """``(db, actor)`` for the admin of ``practice`` (a ``PracticeOn``), closed afterwards."""
    with other_workstation(practice, password) as opened:
        yield opened


@contextmanager
def other_workstation(
    practice: Any, password: str, *, physician: bool = False
) -> Iterator[tuple[Any, Actor]]:
    """``(db, actor)`` for the admin (or, with ``physician``, the physician) of ``practice``
    on a connection of its own, closed afterwards."""
    from tests.conftest import ADMIN, PHYSICIAN

    if practice.back_end == "file":
        from ketadesk.storage.security.database import PracticeDatabase

        user = PHYSICIAN if physician else ADMIN
        db, outcome = PracticeDatabase.unlock(practice.path, user, password)
        actor = outcome.actor
    else:
        from ketadesk.storage.server.server_engine import parse_server_url
        from ketadesk.storage.server.server_practice import ServerPractice
        from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN

        address = parse_server_url(practice.url)
        user = SERVER_PHYSICIAN if physician else SERVER_ADMIN
        db = ServerPractice.log_in(address, practice.ca, user, password)
        actor = db.actor
    try:
        yield db, actor
    finally:
        db.close()
