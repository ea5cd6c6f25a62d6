"""SQLAlchemy ORM models, one module per entity group.

``load_all_models()`` imports every module here so each table is registered on
``Base.metadata`` (used by migrations and tests); it is discovered, not listed.
"""

from __future__ import annotations

import importlib
import pkgutil

from ketadesk.models.base import Base


def load_all_models() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


load_all_models()

__all__ = ["Base", "load_all_models"]
