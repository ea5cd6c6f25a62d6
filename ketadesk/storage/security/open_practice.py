"""What services ask of an open practice, on a database file or on a practice server.

``PracticeDatabase`` (an encrypted file) and ``ServerPractice`` (PostgreSQL) both answer it, so
a service that takes an ``OpenPractice`` runs on either back end.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session


class OpenPractice(Protocol):
    """An unlocked practice: sessions, and the file it lives in (None on a server)."""

    @property
    def path(self) -> Path | None: ...

    def session(self) -> AbstractContextManager[Session]: ...

    def read_session(self, *, snapshot: bool = True) -> AbstractContextManager[Session]: ...

    def close(self) -> None: ...
