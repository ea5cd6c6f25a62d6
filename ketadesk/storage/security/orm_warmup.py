"""Work that needs no key, done on another thread while argon2id derives the key.

argon2id releases the GIL while it hashes, so configuring the ORM's mappers (the first use
of any model otherwise pays it, ≈ 70–300 ms) costs the log-in nothing.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import configure_mappers

import ketadesk.models  # noqa: F401  (registers every mapped class)

log = logging.getLogger(__name__)


def _configure() -> None:
    try:
        configure_mappers()
    except Exception as error:  # the first real use raises it again, where it is reported
        log.warning("mapper configuration failed (%s)", type(error).__name__)


def start_orm_warm_up() -> threading.Thread:
    """Configure the mappers on a thread of its own; ``join()`` it before the first query."""
    thread = threading.Thread(target=_configure, name="ketadesk-orm-warm-up", daemon=True)
    thread.start()
    return thread
