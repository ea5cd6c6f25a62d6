"""The roster's SQL that SQLite and PostgreSQL spell differently, both forms side by side.

Each construct compiles to the form of the database the statement runs on, so the roster's
statements are built once, without knowing the back end:

- ``days_between(today, column)``: whole days from a stored date to ``today`` (SQLite:
  ``julianday`` arithmetic; PostgreSQL: date subtraction).
- ``greater_of(a, b)``: SQLite's two-argument ``max``; PostgreSQL's ``GREATEST``.
- ``unindexed(column)``: the same value, but SQLite will not use an index for it (unary ``+``),
  so a broad search walks the sort index and stops after the page; PostgreSQL's planner needs
  no such hint (and has no unary plus for text or dates).

Search: on a file practice the roster reads FTS5 indexes (``roster_query``); on a server,
name words are matched with PostgreSQL full-text search (``name_words_match``: a ``tsvector``
of the folded names under the ``ketadesk_search`` configuration, ``simple`` after
``unaccent``, each word a prefix as FTS5's ``"word"*``), and phone digits and MRN endings
with ``LIKE``, which trigram (``pg_trgm``) indexes answer (one- and two-digit MRN endings:
``mrn_ending``, an index each, as the file's MRN-ending table); all are made at server set-up
(``SERVER_SEARCH_INDEXES``). Names are folded (accents and case removed) by KetaDesk
before they are stored, on both back ends, so the two find the same patients for the same
words (``tests/unit/test_roster_search_parity.py`` checks every form on both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, func, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from ketadesk.models.patients import Patient


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


# The text search configuration of the name index: PostgreSQL's ``simple`` (lower case, no
# stemming: names are not English words) after ``unaccent``. Names are folded by KetaDesk
# before they are stored, so ``unaccent`` rarely has work left; it keeps a name written
# without KetaDesk's folding findable as the file practice finds it.
SEARCH_CONFIGURATION = "public.ketadesk_search"
_WORD_TOKENS = (
    "asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part, "
    "hword_numpart"
)


def _configuration() -> ColumnElement[Any]:
    return literal_column(f"'{SEARCH_CONFIGURATION}'::regconfig")


def name_words_vector() -> ColumnElement[Any]:
    """The folded first and last names as a ``tsvector``: the expression the server's name
    index (``ix_patients_name_fts``) holds, spelled the same so the planner uses it."""
    space = literal_column("' '", String)
    words = Patient.first_name_folded + space + Patient.last_name_folded
    return func.to_tsvector(_configuration(), words)


def name_prefix_query(terms: Sequence[str]) -> str:
    """The ``tsquery`` text for folded name words, each a word prefix (``'zoe':* & 'nu':*``):
    what FTS5's ``"zoe"* AND "nu"*`` means on a practice file."""
    quoted = ("'" + t.replace("\\", "\\\\").replace("'", "''") + "':*" for t in terms)
    return " & ".join(quoted)


def name_words_match(terms: Sequence[str]) -> ColumnElement[bool]:
    """On a server: every term is a prefix of a word of the folded first or last name,
    answered by the name index (PostgreSQL full-text search)."""
    query = func.to_tsquery(_configuration(), literal(name_prefix_query(terms), String))
    return name_words_vector().bool_op("@@")(query)


SHORT_MRN_ENDINGS = (1, 2)  # digits; longer endings are found through the trigram index


def mrn_ending(digits: int) -> ColumnElement[str]:
    """On a server: the MRN's last ``digits`` characters (one of ``SHORT_MRN_ENDINGS``), the
    expression an index holds, so "8" typed alone reads the tenth of the practice whose MRN
    ends in 8 from that index instead of testing every MRN."""
    if digits not in SHORT_MRN_ENDINGS:
        raise ValueError(f"no index of MRN endings of {digits} digits")
    return func.right(Patient.mrn, literal_column(str(digits), Integer))


# Made by ``server init`` and ``server upgrade`` (as the schema's owner, through
# ``server_upgrade.apply_server_objects``): a full-text index of the folded names answers
# name words as FTS5 does on a file; trigram indexes answer the phone digits and MRN endings
# (``LIKE '%…%'``); a name-ordered index holding the id lets a broad search walk the roster's
# order and stop after the page without reading the rows.
SERVER_SEARCH_INDEXES = (
    "DO $$ BEGIN IF NOT EXISTS "
    "(SELECT 1 FROM pg_ts_config WHERE cfgname = 'ketadesk_search' "
    "AND cfgnamespace = 'public'::regnamespace) THEN "
    f"CREATE TEXT SEARCH CONFIGURATION {SEARCH_CONFIGURATION} (COPY = pg_catalog.simple); "
    "END IF; END $$",
    f"ALTER TEXT SEARCH CONFIGURATION {SEARCH_CONFIGURATION} ALTER MAPPING FOR {_WORD_TOKENS} "
    "WITH public.unaccent, pg_catalog.simple",
    "CREATE INDEX IF NOT EXISTS ix_patients_name_fts ON patients USING gin "
    f"(to_tsvector('{SEARCH_CONFIGURATION}'::regconfig, "
    "(first_name_folded || ' ' || last_name_folded)))",
    "CREATE INDEX IF NOT EXISTS ix_patients_name_order ON patients "
    "(last_name_folded, first_name_folded, id)",
    # Names were answered by a trigram index before the full-text one.
    "DROP INDEX IF EXISTS ix_patients_name_trgm",
    "CREATE INDEX IF NOT EXISTS ix_patients_phone_trgm ON patients USING gin "
    "(phone_digits gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_patients_mrn_trgm ON patients USING gin (mrn gin_trgm_ops)",
    *(
        f"CREATE INDEX IF NOT EXISTS ix_patients_mrn_end{n} ON patients (right(mrn, {n}))"
        for n in SHORT_MRN_ENDINGS
    ),
)
