"""Defect 13: in a fresh practice the protocol's "limit not set" errors name the right page,
and a link in the sign panel opens it (one page, however often the link is followed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from PySide6.QtCore import QPoint, Qt

from ketadesk.models.patients import Patient, VitalSign
from ketadesk.ui.admin.practice_limits_page import PracticeLimitsPage
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.protocol.protocol_editor import ProtocolEditor


def test_limit_errors_point_to_the_limits_page_and_the_link_opens_it(practice, qtbot) -> None:
    with practice.db.session() as s:  # no practice limits set: a fresh practice
        patient = Patient(mrn="KD-LNK1", first_name="Noor", last_name="Test",
                          dob=date(1984, 5, 6), state="FL", status="active")
        s.add(patient)
        s.flush()
        s.add(VitalSign(patient_id=patient.id, weight_kg=61.0, entered_by="drquill",
                        measured_at=datetime.now(UTC) - timedelta(days=1)))
        patient_id = patient.id
    window = MainWindow(AppContext(practice.db, practice.physician))
    qtbot.addWidget(window)
    window.show()
    chart = window.open_patient(patient_id)
    editor = chart.findChild(ProtocolEditor)
    assert editor is not None
    qtbot.waitUntil(lambda: editor.is_loaded, timeout=10_000)
    chart.tabs.setCurrentWidget(editor)
    panel = editor.sign_panel
    editor.side_tabs.setCurrentWidget(panel)
    texts = [panel.message_list.item(i).text() for i in range(panel.message_list.count())]
    limit_errors = [t for t in texts if "has not set a" in t]
    assert limit_errors and all(
        "Practice ▸ Practice limits for protocols…" in t and "Practice settings" not in t
        for t in limit_errors
    )
    link = panel.limits_link
    qtbot.waitUntil(link.isVisible)
    with qtbot.waitSignal(editor.practice_limits_requested):
        qtbot.mouseClick(link, Qt.MouseButton.LeftButton,
                         pos=QPoint(12, link.fontMetrics().height() // 2 + 1))
    assert isinstance(window.tabs.currentWidget(), PracticeLimitsPage)
    # Following the link again brings the same page forward rather than a second one.
    window.tabs.setCurrentWidget(chart)
    qtbot.mouseClick(link, Qt.MouseButton.LeftButton,
                     pos=QPoint(12, link.fontMetrics().height() // 2 + 1))
    pages = [w for w in window.patient_tabs() if isinstance(w, PracticeLimitsPage)]
    assert len(pages) == 1 and window.tabs.currentWidget() is pages[0]
    window.context.ops.wait_for_done()
