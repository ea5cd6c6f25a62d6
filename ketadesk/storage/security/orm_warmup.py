"""Work that needs no key, done on other threads while argon2id derives the key.

argon2id releases the GIL while it hashes, so configuring the ORM's mappers (the first use
of any model otherwise pays it, ≈ 70–300 ms) costs the log-in nothing. Loading SQLAlchemy's
SQLite dialect (≈ 100 ms of imports at the first engine) and the knowledge base (read and
validated once per process, ≈ 150–300 ms; the roster's first query compares its version) run
beside it on a thread nobody joins.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy.orm import configure_mappers

import ketadesk.models  # noqa: F401  (registers every mapped class)

log = logging.getLogger(__name__)


def _configure() -> None:
    try:
        configure_mappers()
    except Exception as error:  # the first real use raises it again, where it is reported
        log.warning("mapper configuration failed (%s)", type(error).__name__)


def _prepare_engine_and_knowledge_base() -> None:
    from ketadesk.core.knowledge_base import load_knowledge_base
    from ketadesk.storage.security.engine import create_keyed_engine

    try:  # an engine that never connects: the first one loads SQLAlchemy's SQLite dialect
        create_keyed_engine(Path(), b"").dispose()
    except Exception as error:  # the real engine raises it again, where it is reported
        log.warning("engine warm-up failed (%s)", type(error).__name__)
    try:
        load_knowledge_base()
    except Exception as error:  # its first real use raises it again, where it is reported
        log.warning("knowledge base warm-up failed (%s)", type(error).__name__)


def start_orm_warm_up() -> threading.Thread:
    """Configure the mappers on a thread of its own (``join()`` it before the first query),
    and load the SQLite dialect and the knowledge base on another (not joined: their first
    real use waits for what is still loading)."""
    threading.Thread(
        target=_prepare_engine_and_knowledge_base, name="ketadesk-kb-warm-up", daemon=True
    ).start()
    thread = threading.Thread(target=_configure, name="ketadesk-orm-warm-up", daemon=True)
    thread.start()
    return thread
