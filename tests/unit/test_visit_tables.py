"""The list of what travels to a visit pack cannot go stale: every table that holds a
patient's records has a decision (travels, read-only on the laptop, stays at the office) with
its reason, and what the decisions say is what the check-out and return code use."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Table

import ketadesk.models
from ketadesk.models.base import Base
from ketadesk.storage.visits.visit_tables import (
    PATIENT_TABLES,
    PRACTICE_TABLES,
    READ_ONLY,
    SIGNATURES,
    SIGNED_SUBJECTS,
    TRAVELLING,
    Journey,
)


def _all_tables() -> dict[str, Table]:
    for module in pkgutil.iter_modules(ketadesk.models.__path__):
        importlib.import_module(f"ketadesk.models.{module.name}")
    return dict(Base.metadata.tables)


def _patient_tables() -> set[str]:
    """Tables with a ``patient_id``, and tables linked (at any depth) to one of them."""
    tables = _all_tables()
    found = {name for name, table in tables.items() if "patient_id" in table.c} | {"patients"}
    grew = True
    while grew:
        linked = {
            name
            for name, table in tables.items()
            if any(fk.column.table.name in found for fk in table.foreign_keys)
        }
        grew = not linked <= found
        found |= linked
    return found


def test_every_patient_table_has_a_decision_with_its_reason() -> None:
    undecided = _patient_tables() - set(PATIENT_TABLES)
    assert not undecided, (
        f"New patient tables {sorted(undecided)}: say in visit_tables.PATIENT_TABLES whether "
        "they travel to a visit pack (and add them to TRAVELLING), go read-only, or stay at "
        "the office, and why."
    )
    assert set(PATIENT_TABLES) <= _patient_tables() | {"content_signatures"}
    assert all(len(d.reason) > 20 for d in (*PATIENT_TABLES.values(),
                                            *PRACTICE_TABLES.values()))


def test_the_decisions_are_what_the_code_carries() -> None:
    travelling = {spec.name for spec in TRAVELLING}
    assert {n for n, d in PATIENT_TABLES.items() if d.journey is Journey.TRAVELS} == travelling
    read_only = {n for n, d in (*PATIENT_TABLES.items(), *PRACTICE_TABLES.items())
                 if d.journey is Journey.READ_ONLY}
    assert read_only == {spec.name for spec in READ_ONLY}
    assert PATIENT_TABLES[SIGNATURES.name].journey is Journey.STAYS
    assert set(SIGNED_SUBJECTS.values()) <= travelling


def test_travelling_tables_are_recognised_on_both_sides_and_parents_come_first() -> None:
    seen: set[str] = set()
    read_only = {spec.name for spec in READ_ONLY}
    for spec in TRAVELLING:
        assert "uid" in spec.table.c and spec.table.c.uid.unique, spec.name
        for column, target in spec.links.items():
            assert column in spec.table.c, (spec.name, column)
            assert target in seen or target in read_only, (spec.name, target)
        if spec.via not in ("id", "patient_id"):
            assert spec.via in spec.links, spec.name
        assert all(c in spec.table.c for c in (*spec.recomputed, *spec.same_when))
        seen.add(spec.name)
    for spec in READ_ONLY:
        assert not spec.key or spec.key in spec.table.c
