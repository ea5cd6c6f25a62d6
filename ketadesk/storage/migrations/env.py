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


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
