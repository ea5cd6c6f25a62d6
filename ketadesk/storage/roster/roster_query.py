"""The roster: search, filter, sort and page through patients in SQL (50,000+ patients).

What the search box means is decided by ``core.search_text.parse_search_query``; this module
turns it into SQL. Name words are matched as word prefixes through an FTS5 index of the
folded names ("zoe" finds "Zoë", "luk" finds "Ñúñez-Łukasiewicz"); phone digits and MRN
endings (3+ digits) through trigram FTS5 indexes; MRN prefixes and dates of birth through the
ordinary indexes. Scanning 50,000 encrypted rows per keystroke measured 40-50 ms here, which
is why the FTS5 indexes exist.

A page is two statements: the ids (conditions and sort only, stopping after the page), then
the columns and the clinical extras for those ids. Broad searches are counted only up to
``COUNT_CAP``. On a practice server a new search is one statement (one round trip over the
network: ``server_first_page_statement``): the count, then the first page with its columns
and extras, the matches sorted when they are few and the sort order walked when not.

The FTS5 tables and their triggers are built at write time: by the migration that added them,
the demo and the CSV import (``build_search_index``). Batch migrations that rebuild
``patients`` drop its triggers: ``ensure_search_index`` checks once per engine and rebuilds.
Alembic autogenerate is told to ignore the virtual tables (``migrations/env.py``).

Extra columns and filters (interaction-review status, protocol status, next check-in, safety
alerts; "Review stale", "Check-in overdue", "Safety alert open") live in
``storage.roster.roster_columns`` and are added with ``register_column`` / ``register_filter`` when
``roster_columns.install_roster_columns()`` is called (by the roster model and the CLI).

Another system's record number (``Patient.external_id``, from an imported roster) is found
by prefix when the search text is one word containing a digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from weakref import WeakSet

from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ketadesk.core.search_text import SearchQuery, parse_search_query
from ketadesk.models.patients import PATIENT_STATUSES, Patient
from ketadesk.models.roster_status import PatientRosterStatus
from ketadesk.models.visits import VisitLease, VisitLeasePatient
from ketadesk.storage.roster.roster_sql import (
    SHORT_MRN_ENDINGS,
    is_server,
    mrn_ending,
    name_words_match,
    unindexed,
)
from ketadesk.storage.roster.roster_status import require_writable
from ketadesk.storage.visits.visit_leases import OUTSTANDING, VisitMarker

NAME_INDEX = "patient_name_fts"
PHONE_INDEX = "patient_phone_fts"
MRN_INDEX = "patient_mrn_fts"
# Keyed by id and holding every roster column: looking up the ids an FTS search found reads
# this narrow index (about 6 MB for 50,000 patients, inside the page cache) instead of the
# wide patients rows. Measured: 200 ms -> 20 ms for a one-letter search.
COVER_INDEX = "ix_patients_roster_cover"
MRN_END_INDEX = "patient_mrn_end_fts"
_MRN_ENDING = "substr({row}.mrn, -1) || ' e' || substr({row}.mrn, -2)"
DEFAULT_PAGE_SIZE = 100  # about three screens of rows; scrolling fetches the next page
# Counting every match of a broad search costs more than the page itself: past this many the
# roster says "2,500+" (``RosterResult.total_is_lower_bound``).
COUNT_CAP = 2500

# Built by the migration that added them (and its twin here for databases whose triggers went
# missing: batch migrations that rebuild ``patients`` drop them).
_SCHEMA = (
    f"CREATE INDEX IF NOT EXISTS {COVER_INDEX} ON patients(id, last_name_folded, "
    "first_name_folded, mrn, first_name, middle_name, last_name, dob, sex, phone, state, "
    "county, status, last_visit_on)",
    # MRN endings of one and two digits as words ("2 e42" for KD-00000042): "42" typed alone
    # finds 1 % of patients without reading every MRN. Its own small table, not an expression
    # index on patients (batch migrations cannot reflect those).
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {MRN_END_INDEX} USING fts5(ending)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {NAME_INDEX} USING fts5("
    "first_name_folded, last_name_folded, content='patients', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0', prefix='1 2 3')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {PHONE_INDEX} USING fts5("
    "phone_digits, content='patients', content_rowid='id', tokenize='trigram')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {MRN_INDEX} USING fts5("
    "mrn, content='patients', content_rowid='id', tokenize='trigram')",
    "DROP TRIGGER IF EXISTS patients_search_ai",
    "DROP TRIGGER IF EXISTS patients_search_ad",
    "DROP TRIGGER IF EXISTS patients_search_au",
    f"CREATE TRIGGER IF NOT EXISTS patients_search_ai2 AFTER INSERT ON patients BEGIN "
    f"INSERT INTO {NAME_INDEX}(rowid, first_name_folded, last_name_folded) "
    "VALUES (new.id, new.first_name_folded, new.last_name_folded); "
    f"INSERT INTO {PHONE_INDEX}(rowid, phone_digits) VALUES (new.id, new.phone_digits); "
    f"INSERT INTO {MRN_INDEX}(rowid, mrn) VALUES (new.id, new.mrn); "
    f"INSERT INTO {MRN_END_INDEX}(rowid, ending) "
    f"VALUES (new.id, {_MRN_ENDING.format(row='new')}); END",
    f"CREATE TRIGGER IF NOT EXISTS patients_search_ad2 AFTER DELETE ON patients BEGIN "
    f"INSERT INTO {NAME_INDEX}({NAME_INDEX}, rowid, first_name_folded, last_name_folded) "
    "VALUES ('delete', old.id, old.first_name_folded, old.last_name_folded); "
    f"INSERT INTO {PHONE_INDEX}({PHONE_INDEX}, rowid, phone_digits) "
    "VALUES ('delete', old.id, old.phone_digits); "
    f"INSERT INTO {MRN_INDEX}({MRN_INDEX}, rowid, mrn) VALUES ('delete', old.id, old.mrn); "
    f"DELETE FROM {MRN_END_INDEX} WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS patients_search_au2 AFTER UPDATE OF "
    "first_name_folded, last_name_folded, phone_digits, mrn ON patients BEGIN "
    f"INSERT INTO {NAME_INDEX}({NAME_INDEX}, rowid, first_name_folded, last_name_folded) "
    "VALUES ('delete', old.id, old.first_name_folded, old.last_name_folded); "
    f"INSERT INTO {NAME_INDEX}(rowid, first_name_folded, last_name_folded) "
    "VALUES (new.id, new.first_name_folded, new.last_name_folded); "
    f"INSERT INTO {PHONE_INDEX}({PHONE_INDEX}, rowid, phone_digits) "
    "VALUES ('delete', old.id, old.phone_digits); "
    f"INSERT INTO {PHONE_INDEX}(rowid, phone_digits) VALUES (new.id, new.phone_digits); "
    f"INSERT INTO {MRN_INDEX}({MRN_INDEX}, rowid, mrn) VALUES ('delete', old.id, old.mrn); "
    f"INSERT INTO {MRN_INDEX}(rowid, mrn) VALUES (new.id, new.mrn); "
    f"DELETE FROM {MRN_END_INDEX} WHERE rowid = old.id; "
    f"INSERT INTO {MRN_END_INDEX}(rowid, ending) "
    f"VALUES (new.id, {_MRN_ENDING.format(row='new')}); END",
)
_SCHEMA_NAMES = (
    COVER_INDEX,
    MRN_END_INDEX,
    NAME_INDEX,
    PHONE_INDEX,
    MRN_INDEX,
    "patients_search_ai2",
    "patients_search_ad2",
    "patients_search_au2",
)
_indexed_engines: WeakSet[Engine] = WeakSet()


def build_search_index(session: Session) -> bool:
    """Create the search indexes and their triggers if any is missing; return True if they
    were (re)built. The demo, the CSV import and the migrations call it at write time."""
    names = {f"n{i}": name for i, name in enumerate(_SCHEMA_NAMES)}
    placeholders = ", ".join(f":{key}" for key in names)
    present = {
        name
        for (name,) in session.execute(
            text(f"SELECT name FROM sqlite_master WHERE name IN ({placeholders})"), names
        )
    }
    if present == set(_SCHEMA_NAMES):
        return False
    require_writable(session, "build the search indexes")
    for statement in _SCHEMA:
        session.execute(text(statement))
    # Rows written while a trigger was missing are not in the index: rebuild from patients.
    for index in (NAME_INDEX, PHONE_INDEX, MRN_INDEX):
        session.execute(text(f"INSERT INTO {index}({index}) VALUES ('rebuild')"))
    session.execute(text(f"DELETE FROM {MRN_END_INDEX}"))
    session.execute(
        text(
            f"INSERT INTO {MRN_END_INDEX}(rowid, ending) "
            f"SELECT id, {_MRN_ENDING.format(row='patients')} FROM patients"
        )
    )
    return True


def ensure_search_index(session: Session) -> bool:
    """``build_search_index`` once per database engine (the schema lookup is not repeated at
    every keystroke); True if it built anything."""
    engine = session.get_bind().engine
    if engine in _indexed_engines:
        return False
    # A server's trigram indexes are made with its schema (``roster_sql``), not here.
    built = False if is_server(session) else build_search_index(session)
    _indexed_engines.add(engine)
    return built


def forget_index_checks() -> None:
    """Make the next ``ensure_search_index`` look again (tests that drop a trigger)."""
    _indexed_engines.clear()


# --------------------------------------------------------------------------- columns


class RosterSort(StrEnum):
    """Built-in sort keys (registered extra columns sort by their ``key``)."""

    NAME = "name"
    FIRST_NAME = "first_name"
    DOB = "dob"
    MRN = "mrn"
    STATE = "state"
    STATUS = "status"
    PHONE = "phone"
    LAST_VISIT = "last_visit"


_STATUS_ORDER = {status: index for index, status in enumerate(PATIENT_STATUSES)}


def _builtin_sort(key: str) -> tuple[Any, ...] | None:
    name: tuple[Any, ...] = (Patient.last_name_folded, Patient.first_name_folded)
    orders: dict[str, tuple[Any, ...]] = {
        RosterSort.NAME: name,
        RosterSort.FIRST_NAME: (Patient.first_name_folded, Patient.last_name_folded),
        RosterSort.DOB: (Patient.dob,),
        RosterSort.MRN: (Patient.mrn,),
        RosterSort.STATE: (Patient.state, *name),
        RosterSort.STATUS: (case(_STATUS_ORDER, value=Patient.status, else_=99), *name),
        RosterSort.PHONE: (Patient.phone_digits,),
        RosterSort.LAST_VISIT: (Patient.last_visit_on, *name),
    }
    return orders.get(key)


@dataclass(frozen=True)
class RosterColumn:
    """An extra roster column another feature provides.

    ``expression`` returns a SQL expression correlated on ``Patient.id`` (e.g. a scalar
    subquery giving "none" / "current" / "stale"); its value lands in ``RosterRow.extras``.
    ``sort_expression`` (default: ``expression``) orders rows when sorting by this column.
    ``prepare(session)`` runs before any roster query that uses the column (e.g. to fill a
    TEMP table the expression reads). A column with ``visible=False`` is fetched into
    ``extras`` but not shown as a table column.
    """

    key: str
    label: str
    expression: Callable[[], ColumnElement[Any]]
    sort_expression: Callable[[], ColumnElement[Any]] | None = None
    prepare: Callable[[Session], None] | None = None
    visible: bool = True


@dataclass(frozen=True)
class RosterFilterOption:
    """An extra yes/no filter another feature provides (e.g. "Interaction review stale")."""

    key: str
    label: str
    condition: Callable[[], ColumnElement[bool]]
    prepare: Callable[[Session], None] | None = None
    # False for a ``prepare`` that only reads and costs time at any size (the compliance
    # worklist reads every active patient): it runs when the filter is chosen, not when the
    # roster opens after log-in.
    prepare_at_open: bool = True


_COLUMNS: dict[str, RosterColumn] = {}
_FILTERS: dict[str, RosterFilterOption] = {}


def register_column(column: RosterColumn) -> None:
    """Add (or replace, by key) an extra roster column."""
    if column.key in {s.value for s in RosterSort}:
        raise ValueError(f"roster column key {column.key!r} is built in")
    _COLUMNS[column.key] = column


def register_filter(option: RosterFilterOption) -> None:
    """Add (or replace, by key) an extra roster filter."""
    _FILTERS[option.key] = option


def registered_columns() -> tuple[RosterColumn, ...]:
    return tuple(_COLUMNS.values())


def visible_columns() -> tuple[RosterColumn, ...]:
    """The registered columns a table shows (in registration order)."""
    return tuple(c for c in _COLUMNS.values() if c.visible)


def _prepare_extras(session: Session, roster_filter: RosterFilter, *, columns: bool) -> None:
    """Run each ``prepare`` hook the query needs, once each."""
    hooks: list[Callable[[Session], None]] = []
    sources: list[RosterColumn | RosterFilterOption] = list(_COLUMNS.values()) if columns else []
    sources.extend(_FILTERS[k] for k in sorted(roster_filter.flags) if k in _FILTERS)
    for source in sources:
        if source.prepare is not None and source.prepare not in hooks:
            hooks.append(source.prepare)
    for hook in hooks:
        hook(session)


def prepare_roster(session: Session) -> None:
    """Everything the roster queries need in place (search indexes, the stored statuses), in
    a session that may write; cheap after the first call per database engine. After it, the
    roster reads in read-only sessions."""
    ensure_search_index(session)
    at_open = frozenset(key for key, option in _FILTERS.items() if option.prepare_at_open)
    _prepare_extras(session, RosterFilter(flags=at_open), columns=True)


def registered_filters() -> tuple[RosterFilterOption, ...]:
    return tuple(_FILTERS.values())


# --------------------------------------------------------------------------- query


@dataclass(frozen=True)
class RosterFilter:
    """What the roster shows: search text, state and status filters, extra filter keys.

    Empty ``states``/``statuses`` mean "all". ``flags`` are keys of registered filters, all
    of which must hold.
    """

    search_text: str = ""
    states: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RosterRow:
    """One roster line. ``extras`` holds registered columns' values by key."""

    patient_id: int
    mrn: str
    first_name: str
    middle_name: str
    last_name: str
    dob: date
    sex: str
    phone: str
    state: str
    county: str
    status: str
    last_visit_on: date | None
    extras: Mapping[str, Any] = field(default_factory=dict)
    on_visit: VisitMarker | None = None  # on a visit laptop: the newest outstanding lease

    def age_on(self, today: date) -> int:
        """Completed years of age on ``today``."""
        years = today.year - self.dob.year
        return years - ((today.month, today.day) < (self.dob.month, self.dob.day))


def _fts_match(terms: Sequence[str]) -> str:
    # Terms are folded to letters/digits, but quote them anyway: FTS5 syntax is not for users.
    return " AND ".join('"' + t.replace('"', '""') + '"*' for t in terms)


def _external_id_text(search_text: str) -> str | None:
    """The search text as a possible external record number (one word with a digit, no
    control character: a server refuses a NUL in any text it is sent)."""
    stripped = search_text.strip()
    if (
        2 <= len(stripped) <= 64
        and " " not in stripped
        and any(c.isdigit() for c in stripped)
        and stripped.isprintable()
    ):
        return stripped
    return None


def _external_id_match(search_text: str, *, walk: bool = False) -> ColumnElement[bool]:
    # A range on the indexed column is "starts with" (\uffff sorts after every character);
    # tried as typed and in capitals, since other systems mostly print IDs in capitals.
    variants = sorted({search_text, search_text.upper()})
    value: Any = _EXTERNAL_ID_VALUE if walk else Patient.external_id
    return or_(*(and_(value >= v, value < v + "\uffff") for v in variants))


LOOKUP = "lookup"  # few matches: look each up by id, then sort them
WALK = "walk"  # up to COUNT_CAP matches: walk the sort index, test ids against the match set
ROWS = "rows"  # more (broad): walk the sort index, test each row; stops after the page
WALK_AFTER = 400  # matches beyond which walking the (covering) sort index beats sorting them


def _conditions(
    query: SearchQuery, roster_filter: RosterFilter, *, strategy: str = LOOKUP, server: bool = False
) -> list[ColumnElement[bool]]:
    # A server has no FTS5 indexes: its conditions test rows, which its own indexes answer.
    rows = strategy == ROWS or server
    external = _external_id_text(query.text)
    sets = _id_sets(query) if not rows else []
    if not rows and external is not None and len(sets) <= 1:
        # Another system's number as one more set of ids: the sort index stays covering.
        others = select(Patient.id).where(_external_id_match(external))
        key: Any = Patient.id + 0 if strategy == WALK else Patient.id
        # SQLite takes no nested compound selects: one flat UNION ALL.
        parts = [p for ids in sets for p in (getattr(ids, "selects", None) or [ids])]
        conditions = [key.in_(union_all(*parts, others) if parts else others)]
    else:
        if rows:
            conditions = _row_conditions(query, server=server)
        else:
            conditions = _set_conditions(query, walk=strategy == WALK)
        if external is not None:
            matched = _external_id_match(external, walk=rows)
            conditions = [or_(and_(*conditions), matched) if conditions else matched]
    conditions.extend(_filter_conditions(roster_filter))
    return conditions


def _fts_select(index: str, match: str) -> Select[Any]:
    return (
        select(literal_column("rowid"))
        .select_from(text(index))
        .where(text(f"{index} MATCH :{index}_match"))
        .params(**{f"{index}_match": match})
    )


def _id_sets(query: SearchQuery) -> list[Any]:
    """The search as sets of ids read from narrow indexes (FTS, MRN, DOB); all must hold."""
    sets: list[Any] = []
    if query.name_terms:
        sets.append(_fts_select(NAME_INDEX, _fts_match(query.name_terms)))
    alternatives: list[Any] = []
    if query.dob is not None:
        alternatives.append(select(Patient.id).where(Patient.dob == query.dob))
    if query.phone_digits:
        if len(query.phone_digits) >= 3:
            alternatives.append(_fts_select(PHONE_INDEX, f'"{query.phone_digits}"'))
        else:
            phone = Patient.phone_digits.contains(query.phone_digits, autoescape=True)
            alternatives.append(select(Patient.id).where(phone))
    if query.mrn_prefix:
        prefix = query.mrn_prefix
        in_range = and_(Patient.mrn >= prefix, Patient.mrn < prefix + "~")
        alternatives.append(select(Patient.id).where(in_range))
    if query.mrn_suffix:
        ending = Patient.mrn.endswith(query.mrn_suffix, autoescape=True)
        if len(query.mrn_suffix) >= 3:
            fts = _fts_select(MRN_INDEX, f'"{query.mrn_suffix}"')
            alternatives.append(select(Patient.id).where(Patient.id.in_(fts), ending))
        else:
            alternatives.append(select(Patient.id).where(_short_mrn_ending(query.mrn_suffix)))
    if query.digits_only and len(alternatives) > 1:
        sets.append(union_all(*alternatives))  # bare digits: any reading may match
    else:
        sets.extend(alternatives)
    return sets


def _short_mrn_ending(suffix: str) -> ColumnElement[bool]:
    word = suffix if len(suffix) == 1 else f"e{suffix}"  # see _MRN_ENDING
    return Patient.id.in_(_fts_select(MRN_END_INDEX, f'"{word}"'))


def _set_conditions(query: SearchQuery, *, walk: bool) -> list[ColumnElement[bool]]:
    # "id + 0" keeps SQLite from looking each id up: it walks the sort index instead (which
    # holds the names and the id) and stops after the page.
    key: Any = Patient.id + 0 if walk else Patient.id
    return [key.in_(ids) for ids in _id_sets(query)]


# Unary plus: the same value, but SQLite will not use an index for it, so a broad search
# walks the sort index (and stops after the page) instead of collecting every match first.
_MRN_VALUE: ColumnElement[str] = unindexed(Patient.mrn)
_EXTERNAL_ID_VALUE: ColumnElement[str] = unindexed(Patient.external_id)


def _row_conditions(query: SearchQuery, *, server: bool = False) -> list[ColumnElement[bool]]:
    """The search as tests on each row, for broad searches: walking the sort index and testing
    rows stops after one page, where looking every match up in an FTS index first (then
    sorting them) reads all of them. On a server, every search: its full-text and trigram
    indexes answer these tests."""
    conditions: list[ColumnElement[bool]] = []
    if server and query.name_terms:
        conditions.append(name_words_match(query.name_terms))
    elif query.name_terms:
        space = literal_column("' '", String)
        words = space + Patient.first_name_folded + space + Patient.last_name_folded
        for term in query.name_terms:  # folded terms are letters and digits: nothing to escape
            conditions.append(words.like(f"% {term}%"))
    alternatives: list[ColumnElement[bool]] = []
    if query.dob is not None:
        alternatives.append(unindexed(Patient.dob) == query.dob)
    if query.phone_digits:
        alternatives.append(Patient.phone_digits.contains(query.phone_digits, autoescape=True))
    if query.mrn_prefix:
        alternatives.append(
            and_(_MRN_VALUE >= query.mrn_prefix, _MRN_VALUE < query.mrn_prefix + "~")
        )
    if query.mrn_suffix and server and len(query.mrn_suffix) in SHORT_MRN_ENDINGS:
        alternatives.append(mrn_ending(len(query.mrn_suffix)) == query.mrn_suffix)
    elif query.mrn_suffix:
        alternatives.append(_MRN_VALUE.endswith(query.mrn_suffix, autoescape=True))
    if query.digits_only and len(alternatives) > 1:
        conditions.append(or_(*alternatives))
    else:
        conditions.extend(alternatives)
    return conditions


def _capped(statement: Select[Any], cap: int) -> Select[Any]:
    return select(func.count()).select_from(statement.limit(cap + 1).subquery())


def _fts_candidates(index: str, match: str, cap: int) -> Select[Any]:
    return _capped(_fts_select(index, match), cap)


def candidate_estimate(session: Session, query: SearchQuery, cap: int) -> int:
    """How many patients the search alone could match, counted up to ``cap + 1`` from its
    most selective index (cheap: each count stops at ``cap + 1``). No search: every patient."""
    counts: list[Select[Any]] = []
    if query.name_terms:
        counts.append(_fts_candidates(NAME_INDEX, _fts_match(query.name_terms), cap))
    else:
        if query.dob is not None:
            counts.append(_capped(select(Patient.id).where(Patient.dob == query.dob), cap))
        if query.phone_digits and len(query.phone_digits) >= 3:
            counts.append(_fts_candidates(PHONE_INDEX, f'"{query.phone_digits}"', cap))
        if query.mrn_prefix:
            prefix = query.mrn_prefix
            in_range = and_(Patient.mrn >= prefix, Patient.mrn < prefix + "~")
            counts.append(_capped(select(Patient.id).where(in_range), cap))
        if query.mrn_suffix:
            suffix = query.mrn_suffix
            if len(suffix) >= 3:
                fts = _fts_select(MRN_INDEX, f'"{suffix}"')
                ending = and_(Patient.id.in_(fts), Patient.mrn.endswith(suffix, autoescape=True))
            else:
                ending = _short_mrn_ending(suffix)
            counts.append(_capped(select(Patient.id).where(ending), cap))
    if not counts:
        return cap + 1
    found = [int(session.execute(c).scalar_one()) for c in counts]
    # Alternatives add up (bare digits); otherwise the most selective term bounds the rest.
    return min(cap + 1, sum(found)) if query.digits_only else min(found)


def _server_count(session: Session, roster_filter: RosterFilter, cap: int) -> int:
    """On a server: the patients the roster shows (search, another system's number and the
    filters) counted up to ``cap + 1`` through the server's indexes; nothing asked for: every
    patient (``cap + 1``, not counted)."""
    query = parse_search_query(roster_filter.search_text)
    if query.is_empty and not _has_filters(roster_filter):
        return cap + 1
    _prepare_extras(session, roster_filter, columns=False)
    conditions = _conditions(query, roster_filter, strategy=ROWS, server=True)
    return int(session.execute(_capped(select(Patient.id).where(*conditions), cap)).scalar_one())


def _estimate_is_exact(query: SearchQuery) -> bool:
    """True when ``candidate_estimate`` counted exactly the search's matches: one index
    answered it (a name search, or a single reading of the digits)."""
    if query.name_terms:
        return not (query.dob or query.phone_digits or query.mrn_prefix or query.mrn_suffix)
    readings = [query.dob, query.phone_digits, query.mrn_prefix, query.mrn_suffix]
    return sum(r is not None for r in readings) == 1 and (
        query.phone_digits is None or len(query.phone_digits) >= 3
    )


def _filter_conditions(roster_filter: RosterFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if roster_filter.states:
        conditions.append(Patient.state.in_(sorted(roster_filter.states)))
    if roster_filter.statuses:
        conditions.append(Patient.status.in_(sorted(roster_filter.statuses)))
    for key in sorted(roster_filter.flags):
        option = _FILTERS.get(key)
        if option is None:
            raise ValueError(f"unknown roster filter {key!r}")
        conditions.append(option.condition())
    return conditions


def count_roster(
    session: Session, roster_filter: RosterFilter, *, cap: int | None = None, strategy: str = LOOKUP
) -> int:
    """Return how many patients match ``roster_filter``; with ``cap``, at most ``cap + 1``
    (more than ``cap``: counting stops there). ``strategy``: see ``search_strategy``."""
    ensure_search_index(session)
    _prepare_extras(session, roster_filter, columns=False)
    server = is_server(session)
    query = parse_search_query(roster_filter.search_text)
    only_names = not server and query.name_terms and not (
        query.dob
        or query.mrn_prefix
        or query.mrn_suffix
        or query.phone_digits
        or _has_filters(roster_filter)
        or _external_id_text(query.text)
    )
    if only_names:
        # The name index alone knows how many rows match: no patients rows are read.
        if cap is not None:
            return int(
                session.execute(
                    _fts_candidates(NAME_INDEX, _fts_match(query.name_terms), cap)
                ).scalar_one()
            )
        statement = text(f"SELECT count(*) FROM {NAME_INDEX} WHERE {NAME_INDEX} MATCH :m")
        return int(session.execute(statement, {"m": _fts_match(query.name_terms)}).scalar_one())
    # A count needs no order: look the matches up rather than walk the sort index.
    strategy = LOOKUP if strategy == WALK else strategy
    conditions = _conditions(query, roster_filter, strategy=strategy, server=server)
    if cap is None or not conditions:
        counted = select(func.count()).select_from(Patient).where(*conditions)
    else:
        matching = select(Patient.id).where(*conditions).limit(cap + 1).subquery()
        counted = select(func.count()).select_from(matching)
    return int(session.execute(counted).scalar_one())


def _has_filters(roster_filter: RosterFilter) -> bool:
    return bool(roster_filter.states or roster_filter.statuses or roster_filter.flags)


_ROW_COLUMNS = (
    Patient.id,
    Patient.mrn,
    Patient.first_name,
    Patient.middle_name,
    Patient.last_name,
    Patient.dob,
    Patient.sex,
    Patient.phone,
    Patient.state,
    Patient.county,
    Patient.status,
    Patient.last_visit_on,
)


# Every roster row with its stored clinical state (SQLite drops the join when a statement
# reads none of its columns).
_WITH_STATUS = Patient.__table__.outerjoin(
    PatientRosterStatus.__table__, PatientRosterStatus.patient_id == Patient.id
)

# Each row's newest outstanding visit lease (``patients_on_visit``'s marker), read with the
# row: one index lookup per row shown, in the same statement (no round trip of its own).
_ON_VISIT = VisitLease.__table__.alias("on_visit")
_NEWEST_LEASE = (
    select(VisitLease.id)
    .join(VisitLeasePatient, VisitLeasePatient.lease_id == VisitLease.id)
    .where(VisitLeasePatient.patient_id == Patient.id, VisitLease.status.in_(OUTSTANDING))
    .order_by(VisitLease.checked_out_at.desc(), VisitLease.id.desc())
    .limit(1)
    .correlate(Patient.__table__)
    .scalar_subquery()
)
_VISIT_COLUMNS = (
    _ON_VISIT.c.pack_id,
    _ON_VISIT.c.checked_out_by,
    _ON_VISIT.c.checked_out_at,
    _ON_VISIT.c.expires_at,
    _ON_VISIT.c.status,
)


def _with_visits(rows: Any) -> Any:
    """``rows`` (a FROM holding ``patients``) with each patient's outstanding lease, if any."""
    return rows.outerjoin(_ON_VISIT, _ON_VISIT.c.id == _NEWEST_LEASE)


def _sort_keys(sort: str) -> tuple[Any, ...]:
    """What the rows are ordered by, ties broken by id (so pages never overlap or skip)."""
    order = _builtin_sort(sort)
    if order is None:
        column = _COLUMNS.get(sort)
        if column is None:
            raise ValueError(f"unknown roster sort {sort!r}")
        by = column.sort_expression or column.expression
        order = (by(), Patient.last_name_folded, Patient.first_name_folded)
    return (*order, Patient.id)


def _order_by(sort: str, ascending: bool) -> list[Any]:
    return [o.asc() if ascending else o.desc() for o in _sort_keys(sort)]


def search_strategy(
    session: Session, roster_filter: RosterFilter, cap: int = COUNT_CAP
) -> tuple[str, int]:
    """How to run this search (``LOOKUP``, ``WALK`` or ``ROWS``) and the estimate it rests
    on (matches of the search alone, counted up to ``cap + 1``)."""
    if is_server(session):
        # Everything the roster shows is counted (up to the cap) through the server's indexes:
        # few enough matches are collected and sorted (LOOKUP); more walk the name order
        # (ROWS) and stop after the page. The planner cannot tell the two apart: it walks the
        # name order for "nunez" too, reading half the practice to reach the Ns.
        estimate = _server_count(session, roster_filter, cap)
        return (LOOKUP if estimate <= cap else ROWS), estimate
    query = parse_search_query(roster_filter.search_text)
    estimate = candidate_estimate(session, query, cap)
    if estimate > cap:
        return ROWS, estimate
    return (WALK if estimate > WALK_AFTER else LOOKUP), estimate


def page_ids_statement(
    roster_filter: RosterFilter,
    sort: str,
    ascending: bool,
    offset: int,
    limit: int,
    *,
    strategy: str = LOOKUP,
    server: bool = False,
) -> Select[Any]:
    """The ids of one page, in order: the sort index is walked and stops after the page.
    On a server (``server``) with ``LOOKUP``: the matches are collected first, then sorted."""
    query = parse_search_query(roster_filter.search_text)
    conditions = _conditions(query, roster_filter, strategy=strategy, server=server)
    if server and strategy == LOOKUP:
        # MATERIALIZED: the matches are collected once, and no index order can be used to
        # sort them, so the planner cannot choose to walk the name order instead.
        keys = _sort_keys(sort)
        matches = (
            select(*(key.label(f"k{i}") for i, key in enumerate(keys)))
            .select_from(_WITH_STATUS)
            .where(*conditions)
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        columns = list(matches.c)
        return (
            select(columns[-1])
            .order_by(*(c.asc() if ascending else c.desc() for c in columns))
            .offset(offset)
            .limit(limit)
        )
    return (
        select(Patient.id)
        .select_from(_WITH_STATUS)
        .where(*conditions)
        .order_by(*_order_by(sort, ascending))
        .offset(offset)
        .limit(limit)
    )


def rows_statement(patient_ids: Sequence[int]) -> Select[Any]:
    """Every roster column, the registered extras included, for these patients only."""
    extras = registered_columns()
    columns: list[Any] = [*_ROW_COLUMNS, *_VISIT_COLUMNS]
    columns.extend(c.expression().label(f"extra_{i}") for i, c in enumerate(extras))
    return (
        select(*columns)
        .select_from(_with_visits(_WITH_STATUS))
        .where(Patient.id.in_(patient_ids))
    )


def fetch_roster_page(
    session: Session,
    roster_filter: RosterFilter,
    *,
    sort: str = RosterSort.NAME,
    ascending: bool = True,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    strategy: str | None = None,
) -> list[RosterRow]:
    """Return up to ``limit`` matching patients starting at ``offset``, sorted in SQL.

    Two statements: the page's ids (search, filters and sort), then the columns and the
    registered extras for those ids only. ``sort`` is a ``RosterSort`` value or a registered
    column's key. ``strategy`` (None: decided by ``search_strategy``) is how it is run.
    Raises ValueError for an unknown sort or filter key (a programming error).
    """
    ensure_search_index(session)
    _prepare_extras(session, roster_filter, columns=True)
    server = is_server(session)
    if strategy is None:
        strategy, _estimate = search_strategy(session, roster_filter)
    elif server and strategy != LOOKUP:
        strategy = ROWS  # no FTS5 indexes on a server: collect and sort, or walk
    statement = page_ids_statement(
        roster_filter, sort, ascending, offset, limit, strategy=strategy, server=server
    )
    ids = list(session.execute(statement).scalars())
    if not ids:
        return []
    extras = registered_columns()
    by_id: dict[int, RosterRow] = {}
    for row in session.execute(rows_statement(ids)):
        values = tuple(row)
        by_id[values[0]] = _roster_row(values, extras)
    return [by_id[i] for i in ids if i in by_id]


def _roster_row(values: Sequence[Any], extras: Sequence[RosterColumn]) -> RosterRow:
    """A ``RosterRow`` from the columns of ``rows_statement`` (in its order)."""
    return RosterRow(
        patient_id=values[0],
        mrn=values[1],
        first_name=values[2],
        middle_name=values[3] or "",
        last_name=values[4],
        dob=values[5],
        sex=values[6],
        phone=values[7] or "",
        state=values[8],
        county=values[9] or "",
        status=values[10],
        last_visit_on=values[11],
        extras={c.key: values[17 + i] for i, c in enumerate(extras)},
        on_visit=None
        if values[12] is None
        else VisitMarker(values[12], values[13], values[14], values[15], values[16] == "revoked"),
    )


def server_first_page_statement(
    roster_filter: RosterFilter, sort: str, ascending: bool, limit: int, cap: int
) -> Select[Any]:
    """On a server, a new search in one statement (one round trip): how many patients match,
    counted up to ``cap + 1``, and the first page with every roster column, extra and visit
    lease.

    The matches are collected up to ``cap + 1`` through the server's indexes. When that is
    all of them they are sorted (the planner cannot walk the name order for them: they are
    MATERIALIZED); otherwise the search is broad and the sort order is walked, stopping
    after the page. Each row carries the count in its first column. The matches carry their
    sort keys: the indexes that find them (full-text, trigram, MRN endings) are checked
    against each row, which is read anyway, and looking the keys up afterwards costs a read
    of each row again."""
    query = parse_search_query(roster_filter.search_text)
    conditions = _conditions(query, roster_filter, strategy=ROWS, server=True)
    keys = [key.label(f"k{i}") for i, key in enumerate(_sort_keys(sort))]
    matches = (
        select(*keys)
        .select_from(_WITH_STATUS)
        .where(*conditions)
        .limit(cap + 1)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    counted = select(func.count().label("total")).select_from(matches).cte("counted")
    total = select(counted.c.total).scalar_subquery()

    def ordered(columns: Sequence[Any]) -> list[Any]:
        return [c.asc() if ascending else c.desc() for c in columns]

    few = select(*matches.c).where(total <= cap).order_by(*ordered(list(matches.c))).limit(limit)
    broad = (
        select(*keys)
        .select_from(_WITH_STATUS)
        .where(total > cap, *conditions)
        .order_by(*_order_by(sort, ascending))
        .limit(limit)
    )
    page = union_all(few, broad).subquery("page")
    page_keys = list(page.c)
    extras = registered_columns()
    columns: list[Any] = [total.label("total"), *_ROW_COLUMNS, *_VISIT_COLUMNS]
    columns.extend(c.expression().label(f"extra_{i}") for i, c in enumerate(extras))
    rows = _with_visits(
        Patient.__table__.join(page, Patient.id == page_keys[-1]).outerjoin(
            PatientRosterStatus.__table__, PatientRosterStatus.patient_id == Patient.id
        )
    )
    return select(*columns).select_from(rows).order_by(*ordered(page_keys))


def _server_first_page(
    session: Session, roster_filter: RosterFilter, sort: str, ascending: bool, limit: int, cap: int
) -> RosterResult:
    _prepare_extras(session, roster_filter, columns=True)
    statement = server_first_page_statement(roster_filter, sort, ascending, limit, cap)
    extras = registered_columns()
    total = 0
    rows: list[RosterRow] = []
    for row in session.execute(statement):
        values = tuple(row)
        total = int(values[0])
        rows.append(_roster_row(values[1:], extras))
    strategy = LOOKUP if total <= cap else ROWS
    if total > cap:
        return RosterResult(cap, tuple(rows), total_is_lower_bound=True, strategy=strategy)
    return RosterResult(total, tuple(rows), strategy=strategy)


@dataclass(frozen=True)
class RosterResult:
    """A first page plus the count, fetched in one session.

    ``total_is_lower_bound``: more than ``total`` patients match (counting stopped at
    ``COUNT_CAP``; show it as "2,500+").
    """

    total: int
    rows: tuple[RosterRow, ...]
    total_is_lower_bound: bool = False
    strategy: str = LOOKUP  # pass on to ``fetch_roster_page`` for the next pages


def query_roster(
    session: Session,
    roster_filter: RosterFilter,
    *,
    sort: str = RosterSort.NAME,
    ascending: bool = True,
    limit: int = DEFAULT_PAGE_SIZE,
    count_cap: int | None = COUNT_CAP,
) -> RosterResult:
    """Return the count (exact up to ``count_cap``) and the first page for a new search,
    filter or sort."""
    ensure_search_index(session)
    if is_server(session) and count_cap is not None:
        query = parse_search_query(roster_filter.search_text)
        if not query.is_empty or _has_filters(roster_filter):  # everyone: counted exactly
            return _server_first_page(session, roster_filter, sort, ascending, limit, count_cap)
    strategy, estimate = search_strategy(session, roster_filter)
    rows = fetch_roster_page(
        session,
        roster_filter,
        sort=sort,
        ascending=ascending,
        offset=0,
        limit=limit,
        strategy=strategy,
    )
    if len(rows) < limit:
        return RosterResult(len(rows), tuple(rows), strategy=strategy)
    query = parse_search_query(roster_filter.search_text)
    plain = not _has_filters(roster_filter) and _external_id_text(query.text) is None
    if query.is_empty and plain:
        count_cap = None  # everyone: the exact number is one cheap count
    if plain and (
        (count_cap is not None and strategy == ROWS) or _estimate_is_exact(query)
    ):
        total = estimate  # the search alone was counted already (up to the cap)
    else:
        total = count_roster(session, roster_filter, cap=count_cap, strategy=strategy)
    if count_cap is not None and total > count_cap:
        return RosterResult(count_cap, tuple(rows), total_is_lower_bound=True, strategy=strategy)
    return RosterResult(total, tuple(rows), strategy=strategy)


def warm_up_roster_sql() -> None:
    """Compile the statements of the roster's first page once, with no database: SQLAlchemy
    builds its compiler dispatch and ORM compile state once per process (≈ 20-30 ms the
    first time), so the app does it while the key is derived and the first page after
    unlock only pays its own engine's compile. Reads and writes nothing."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    everyone = RosterFilter()
    statements: list[Any] = [
        page_ids_statement(everyone, RosterSort.NAME, True, 0, DEFAULT_PAGE_SIZE),
        rows_statement([0]),
        select(func.count()).select_from(Patient),
    ]
    for statement in statements:
        statement.compile(dialect=dialect)
