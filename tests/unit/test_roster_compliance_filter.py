"""The roster's "Compliance due" filter shows exactly the patients on the compliance worklist
(a real encrypted database; the worklist decides, the roster only filters)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from ketadesk.storage.compliance.compliance_worklist import patients_on_worklist
from ketadesk.storage.patients.patients import change_status
from ketadesk.storage.roster.roster_columns import COMPLIANCE_DUE, install_roster_columns
from ketadesk.storage.roster.roster_query import RosterFilter, count_roster, prepare_roster
from tests.unit.signed_protocol_patients import patient_with_signed_protocol
from tests.unit.test_prescription_storage import TODAY


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


def test_the_filter_keeps_the_patients_on_the_worklist(practice: Any) -> None:
    install_roster_columns()
    with practice.db.session() as s:
        due = patient_with_signed_protocol(s, practice.physician, TODAY, last_name="Due")
        patient_with_signed_protocol(s, practice.physician, TODAY, last_name="Screening")
        change_status(s, practice.physician, due, "active", "Started treatment")
        prepare_roster(s)
    with practice.db.session() as s:
        on_list = patients_on_worklist(s, TODAY)
        assert on_list == {due}  # active, no consent: on the list; the screening one is not
        assert count_roster(s, RosterFilter()) == 2
        assert count_roster(s, RosterFilter(flags=frozenset({COMPLIANCE_DUE}))) == 1
        assert count_roster(s, RosterFilter(search_text="Screening",
                                            flags=frozenset({COMPLIANCE_DUE}))) == 0


def test_opening_the_roster_does_not_read_the_worklist(practice: Any) -> None:
    """The worklist reads every active patient (1.9 s at 50,000): the roster's opening after
    log-in leaves it to the moment the filter is chosen."""
    install_roster_columns()
    with practice.db.session() as s:
        due = patient_with_signed_protocol(s, practice.physician, TODAY, last_name="Due")
        change_status(s, practice.physician, due, "active", "Started treatment")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(practice.db.engine, "before_cursor_execute", seen)
    try:
        with practice.db.session() as s:
            prepare_roster(s)
        opening = list(statements)
        with practice.db.session() as s:
            assert count_roster(s, RosterFilter(flags=frozenset({COMPLIANCE_DUE}))) == 1
    finally:
        event.remove(practice.db.engine, "before_cursor_execute", seen)
    assert opening and not [q for q in opening if "prescriptions" in q or "consent_" in q]
    assert [q for q in statements[len(opening):] if "consent_records" in q]  # when chosen
