"""The main window on a visit pack shows the visit-pack bar; on the practice it does not."""

from __future__ import annotations

from pathlib import Path

from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.visits.visit_checkout import check_out_patients
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from tests.conftest import PASSWORD, PHYSICIAN
from tests.visit_pack_data import make_visit_practice, opened


def test_visit_pack_bar(prepared_practice: Path, tmp_path: Path, qtbot) -> None:
    from tests.conftest import copy_practice

    practice = copy_practice(prepared_practice, tmp_path / "practice")
    mrns = make_visit_practice(practice, patients=2, weeks=1)
    pack = tmp_path / "laptop" / "visit.db"
    pack.parent.mkdir()
    with opened(practice) as (db, physician):
        check_out_patients(db, physician, mrns, pack, PASSWORD)
        window = MainWindow(AppContext(db, physician))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        assert not window.visit_pack_bar.isVisible()
        window.close()
    db, outcome = PracticeDatabase.unlock(pack, PHYSICIAN, PASSWORD)
    try:
        window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
        qtbot.addWidget(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        bar = window.visit_pack_bar
        assert bar.isVisible()
        assert bar.text().startswith("Visit pack: 2 patients, checked out by Dr. Rowan Quill until")
        qtbot.waitUntil(lambda: window.roster.model.rowCount() == 2, timeout=10_000)
        window.close()
        window.context.ops.wait_for_done(10_000)
    finally:
        db.close()
