"""The page check off the critical path: reads may start at once, writes wait for it.

``IntegrityGate.start`` runs SQLCipher's ``cipher_integrity_check`` (every page's HMAC) on a
thread of its own. Until it passes, no write reaches the database: writes the caller wants made
as soon as it passes (the log-in events, and audit events of what the user looked at, such as
a chart opened: ``PracticeDatabase.record_event_when_writable``) are held in memory by
``when_passed``, so the GUI thread never waits for them, and ``guard(engine)`` makes any other
data-changing statement wait for the check (a few seconds at most, and only for a change saved
in the first moments after log-in). When it fails, held
writes are dropped and later ones refused with the damage error, so a damaged file is never
written to.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from ketadesk.storage.security.engine import cipher_damaged_pages

log = logging.getLogger(__name__)

_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"})


def is_write(statement: str) -> bool:
    """True for SQL that changes data or schema (reads, PRAGMAs and BEGIN/COMMIT pass)."""
    words = statement.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in _WRITES


def _yield_the_cpu() -> None:
    """Lower this thread's scheduling priority (Linux: per thread; this thread is the check's
    alone), so unlocking and the first paint get the cores first."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass


class IntegrityGate:
    """One page check of one database file; ``passed`` once it finished without problems."""

    def __init__(self, path: Path, key: bytes, damaged: Callable[[], Exception]) -> None:
        self._path = path
        self._key = key
        self._damaged = damaged
        self._checked = threading.Event()  # the pages are checked: writes may go
        self._done = threading.Event()  # ... and the held writes were made
        self._lock = threading.Lock()
        self._held: list[Callable[[], None]] = []
        self.problems: list[str] = []
        self._error: BaseException | None = None  # a held write that failed

    @classmethod
    def already_checked(cls) -> IntegrityGate:
        """A gate for a database whose pages were checked before it was opened."""
        gate = cls(Path(), b"", lambda: RuntimeError("unused"))
        gate._checked.set()
        gate._done.set()
        return gate

    def start(self) -> None:
        threading.Thread(target=self._run, name="ketadesk-page-check", daemon=True).start()

    def _run(self) -> None:
        _yield_the_cpu()
        try:
            problems = cipher_damaged_pages(self._path, self._key)
        except BaseException as error:  # never leave writers waiting
            problems = [type(error).__name__]
        self._key = b""
        with self._lock:
            self.problems = problems
            self._checked.set()
        try:
            while not problems:  # writes held while earlier ones were made go after them
                with self._lock:
                    held, self._held = self._held, []
                    if not held:
                        self._done.set()
                        break
                for write in held:
                    write()
        except BaseException as error:  # reported by wait()
            log.error("a held write failed after the page check: %s", type(error).__name__)
            self._error = error
        finally:
            with self._lock:
                self._held = []
                self._done.set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    @property
    def passed(self) -> bool:
        return self._checked.is_set() and not self.problems

    @property
    def failed(self) -> bool:
        return self._checked.is_set() and bool(self.problems)

    def wait(self) -> None:
        """Block until the check and the held writes are done; raise the damage error when
        the check failed, or the error of a held write."""
        self._done.wait()
        if self.problems:
            raise self._damaged()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def when_passed(self, write: Callable[[], None]) -> None:
        """Make ``write`` now if the check passed and the writes held for it are made, right
        after them if it is still running (held in memory meanwhile: the caller never waits),
        never if it failed (``wait`` reports the damage, however fast the check was). Held
        writes are made in the order they were given, on the check's thread."""
        with self._lock:
            if not self._done.is_set():
                if not self._checked.is_set() or not self.problems:
                    self._held.append(write)
                return
        if not self.problems:
            write()

    def guard(self, engine: Engine) -> None:
        """Hold every data-changing statement on ``engine`` until the check is done; refuse
        it when the check failed."""

        @event.listens_for(engine, "before_cursor_execute")
        def _hold_writes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self._checked.is_set() and not self.problems:
                return
            if not is_write(statement):
                return
            self._checked.wait()
            if self.problems:
                raise self._damaged()
