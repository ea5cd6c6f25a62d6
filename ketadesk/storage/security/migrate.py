"""Schema migrations (Alembic) run on an open, keyed connection.

Opening a database only compares its stored revision (one SELECT) with ``PACKAGED_HEAD``;
Alembic is imported only when an upgrade is actually needed (importing it and parsing the
scripts costs ≈ 200 ms, paid at every log-in before).

To add a migration after changing models,
``python -m ketadesk.storage.security.migrate new "message"`` autogenerates one against a scratch
encrypted database at the current head.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

if TYPE_CHECKING:  # alembic is imported only when a migration check runs
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# The newest migration script's revision. tests/unit/test_schema_upgrade.py fails when a new
# script is added without updating it.
PACKAGED_HEAD = "e5f6a7b80017"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The head as Alembic reads it from the scripts (slow: for tests and the developer tool)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads; add a merge migration")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The revision stored in the database (Alembic's own table), read without Alembic."""
    with engine.connect() as connection:
        try:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except (OperationalError, ProgrammingError) as error:
            # SQLite: "no such table"; PostgreSQL: relation "alembic_version" does not exist
            if "no such table" in str(error) or "does not exist" in str(error):
                return None
            raise
    if len(rows) > 1:
        raise RuntimeError("the database records more than one schema revision")
    return None if not rows else str(rows[0][0])


def upgrade_to_head(engine: Engine) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def needs_upgrade(engine: Engine) -> bool:
    return current_revision(engine) != PACKAGED_HEAD


def _new_migration(message: str) -> None:  # developer tool
    import tempfile

    from alembic import command

    from ketadesk.storage.security.engine import create_keyed_engine
    from ketadesk.storage.security.keyslots import new_database_key

    with tempfile.TemporaryDirectory() as folder:
        engine = create_keyed_engine(Path(folder) / "scratch.db", new_database_key())
        upgrade_to_head(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "new":
        _new_migration(sys.argv[2])
    else:
        print('usage: python -m ketadesk.storage.security.migrate new "message"')
