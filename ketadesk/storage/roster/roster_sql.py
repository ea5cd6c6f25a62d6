"""The roster's SQL that SQLite and PostgreSQL spell differently, both forms side by side.

Each construct compiles to the form of the database the statement runs on, so the roster's
statements are built once, without knowing the back end:

- ``days_between(today, column)``: whole days from a stored date to ``today`` (SQLite:
  ``julianday`` arithmetic; PostgreSQL: date subtraction).
- ``greater_of(a, b)``: SQLite's two-argument ``max``; PostgreSQL's ``GREATEST``.
- ``unindexed(column)``: the same value, but SQLite will not use an index for it (unary ``+``),
  so a broad search walks the sort index and stops after the page; PostgreSQL's planner needs
  no such hint (and has no unary plus for text or dates).

Search: on a file practice the roster reads FTS5 indexes (``roster_query``); on a server it
tests the folded names, phone digits and MRN of each row with ``LIKE``, which the trigram
(``pg_trgm``) indexes made at server set-up (``SERVER_SEARCH_INDEXES``) answer. Names are
folded (accents and case removed) by KetaDesk before they are stored, on both back ends, so
the two find the same patients for the same words.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement


def is_server(session: Session) -> bool:
    """True when the session runs on a practice server (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


class days_between(FunctionElement[int]):
    """Whole days from the date in the second argument to the date in the first."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"CAST(julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)}) AS INTEGER)"
    )


@compiles(days_between, "postgresql")
def _days_between_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"(CAST({compiler.process(later, **kw)} AS DATE) - "
        f"CAST({compiler.process(earlier, **kw)} AS DATE))"
    )


class greater_of(FunctionElement[Any]):
    """The larger of two values (NULL-free arguments)."""

    inherit_cache = True
    name = "greater_of"


@compiles(greater_of)
def _greater_of_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(greater_of, "postgresql")
def _greater_of_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


class unindexed(FunctionElement[Any]):
    """The column's value, without letting SQLite use an index on it."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


# Made by ``server init`` (as the schema's owner): trigram indexes answer the roster's
# ``LIKE '%…%'`` tests on a server as the FTS5 indexes do on a file.
SERVER_SEARCH_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_patients_name_trgm ON patients USING gin "
    "((' ' || first_name_folded || ' ' || last_name_folded) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_patients_phone_trgm ON patients USING gin "
    "(phone_digits gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_patients_mrn_trgm ON patients USING gin (mrn gin_trgm_ops)",
)
