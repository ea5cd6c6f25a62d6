"""The roster reads who is on a visit laptop with its rows (no statement of its own), and says
the same as the chart's ``patients_on_visit``, on a practice file and on a practice server:
through a search's first page (one statement on a server), the pages fetched after it and
the whole roster; a revoked lease still marks its patients, as revoked."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from ketadesk.models.patients import Patient
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.roster import roster_query as rq
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.storage.visits.visit_leases import patients_on_visit, revoke_lease
from tests.conftest import PASSWORD

TODAY = date(2026, 3, 15)


@pytest.fixture
def with_leases(practice_on, tmp_path):
    """40 demo patients; two on pack "a", one on pack "b" whose lease is then revoked."""
    practice = practice_on
    with practice.db.session() as s:
        populate_demo_patients(s, 40, entered_by=practice.physician.user_name, today=TODAY)
    with practice.db.session() as s:
        rq.prepare_roster(s)
        patients = s.execute(select(Patient.id, Patient.mrn).order_by(Patient.id)).all()
    out_a = [patients[3], patients[17]]
    out_b = patients[29]
    check_out_patients(
        practice.db, practice.physician, [m for _, m in out_a], tmp_path / "a.kdv", PASSWORD
    )
    pack_b = check_out_patients(
        practice.db, practice.physician, [out_b[1]], tmp_path / "b.kdv", PASSWORD
    )
    with practice.db.session() as s:
        revoke_lease(s, practice.physician, pack_b.pack_id)
    return practice, {i for i, _ in out_a}, out_b[0]


def _all_pages(db, roster_filter: rq.RosterFilter) -> list[rq.RosterRow]:
    with db.read_session() as s:
        first = rq.query_roster(s, roster_filter, limit=7, count_cap=20)
        rows = list(first.rows)
        while True:
            more = rq.fetch_roster_page(
                s, roster_filter, offset=len(rows), limit=7, strategy=first.strategy
            )
            if not more:
                return rows
            rows.extend(more)


@pytest.mark.parametrize("search", ["", "KD-", "a"])
def test_the_roster_marks_the_patients_on_a_visit_laptop_as_the_chart_does(
    with_leases, search
):
    practice, on_pack_a, revoked = with_leases
    rows = _all_pages(practice.db, rq.RosterFilter(search_text=search))
    with practice.db.read_session() as s:
        expected = patients_on_visit(s)
    assert set(expected) == on_pack_a | {revoked}
    shown = {row.patient_id: row.on_visit for row in rows}
    assert len(shown) == len(rows) > 0  # none twice
    for patient_id, marker in shown.items():
        assert marker == expected.get(patient_id), patient_id
    marked = {i for i, marker in shown.items() if marker is not None}
    assert marked == set(expected) & set(shown)
    if search in ("", "KD-"):  # everyone, on several pages: every marked patient shown
        assert len(rows) == 40 and marked == set(expected)
        assert shown[revoked] is not None and shown[revoked].is_revoked
        assert all(not shown[i].is_revoked for i in on_pack_a)  # type: ignore[union-attr]
