"""Alembic environment: always runs on a connection KetaDesk opened (and keyed) itself."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from ketadesk.models import Base
from ketadesk.models.base import UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("KetaDesk migrations run only through ketadesk.storage.security.migrate")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render KetaDesk's UTCDateTime as a plain DateTime so migrations do not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, _other: Any) -> bool:
    """Leave the roster's FTS5 search tables (and their shadow tables) and the cover index to
    their migration: they are not models, and autogenerate must not propose dropping them."""
    if reflected and name and (name.startswith("patient_") and "_fts" in name):
        return False
    return not (reflected and type_ == "index" and name == "ix_patients_roster_cover")


context.configure(
    include_object=_include_object,
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
