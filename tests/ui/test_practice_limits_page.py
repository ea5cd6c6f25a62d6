"""The practice limits page on a real encrypted practice database (qtbot, offscreen)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt

from ketadesk.core.protocols import Route
from ketadesk.storage.practice.practice_limits_store import (
    get_practice_limits,
)
from ketadesk.ui.admin.practice_limits_page import PracticeLimitsPage
from ketadesk.ui.common.context import AppContext


def open_page(qtbot: Any, practice: Any, actor: Any) -> PracticeLimitsPage:
    page = PracticeLimitsPage(AppContext(practice.db, actor))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.is_loaded, timeout=10000)
    return page


def test_limits_start_empty_with_the_shipped_reason_shown(qtbot: Any, practice: Any) -> None:
    page = open_page(qtbot, practice, practice.physician)
    row = page.rows[("sublingual", "max_single_dose_mg_per_kg")]
    assert row.value.text() == "" and row.status.text() == "NOT SET"
    assert row.note.text().startswith("Not shipped.")
    assert row.source.text() == ""  # the practice writes its own source
    assert page.summary_label.text() == "21 of the 21 limits are not set yet."
    assert page.route_tabs.tabText(0) == "Sublingual (5 not set)"
    assert "fda-2023-compounded-ketamine" in page.references_label.text()


def test_a_managing_physician_sets_a_limit_with_its_source(qtbot: Any, practice: Any) -> None:
    page = open_page(qtbot, practice, practice.physician)
    row = page.rows[("sublingual", "max_single_dose_mg_per_kg")]
    qtbot.keyClicks(row.value, "1.5")
    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    assert "Say where the maximum single dose in mg/kg for sublingual comes from." in (
        row.message.text())
    assert row.message.isVisibleTo(page)
    qtbot.keyClicks(row.source, "Practice policy 2026-03, reviewed by the medical director")
    with qtbot.waitSignal(page.limits_saved, timeout=10000):
        qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    with practice.db.session() as s:
        stored = get_practice_limits(s).for_route(Route.SUBLINGUAL)
    assert stored.max_single_dose_mg_per_kg.value == 1.5
    assert stored.max_single_dose_mg_per_kg.source.startswith("Practice policy 2026-03")
    assert stored.max_single_dose_mg.value is None
    assert stored.max_single_dose_mg.source.startswith("Not shipped.")  # kept for unset ones
    assert page.route_tabs.tabText(0) == "Sublingual (4 not set)"
    assert row.status.text() == "set"


def test_admins_and_physicians_who_do_not_manage_users_see_it_read_only(
    qtbot: Any, practice: Any
) -> None:
    for actor in (practice.admin, replace(practice.physician, can_manage_users=False)):
        page = open_page(qtbot, practice, actor)
        assert not page.save_button.isEnabled()
        assert page.rows[("intranasal", "max_daily_mg")].value.isReadOnly()
        assert "Read-only" in page.access_label.text()
