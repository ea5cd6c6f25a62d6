"""Every screen of the app, one after another, on the demo practice's main window.

The wheel, layout and log-out tests walk these. A screen is shown as a user would meet it (its
tab current, its dialog open, its data loaded); the walker closes each dialog after use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QApplication, QDialog, QWidget

from ketadesk.core.questionnaires import load_instrument
from ketadesk.ui.chart.patient_chart import PatientChart
from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
from ketadesk.ui.protocol.protocol_editor import ProtocolEditor
from ketadesk.ui.review.interaction_review import ReviewScreen

# In the demo practice made by tests/ui/conftest.py: patient 4 has a signed review, a signed
# protocol, check-ins and home doses; patient 9 also has a draft protocol (an editable form).
FULL_CHART_PATIENT = 4
DRAFT_PROTOCOL_PATIENT = 9

IMPORT_CSV = (
    "Patient ID,Last Name,First Name,Date of Birth,Gender,State,County,Phone,Weight (lb)\n"
    "ACME-1001,Brightwater,Hana,1990-12-24,female,FL,Leon,,\n"
)


@dataclass
class Screen:
    name: str
    window: QWidget  # the top-level window the screen lives in
    root: QWidget  # the widgets that belong to this screen


def wait_loaded(qtbot, widget: QWidget) -> None:
    """Wait until a feature tab has its data (they load off the GUI thread)."""
    if isinstance(widget, ReviewScreen | ProtocolEditor):
        qtbot.waitUntil(lambda: widget.is_loaded, timeout=20_000)
    elif isinstance(widget, CheckInsTab):
        qtbot.waitUntil(lambda: widget.monitoring_label.text() != "Loading…", timeout=20_000)


def open_chart(qtbot, window: MainWindow, patient_id: int) -> PatientChart:
    chart = window.open_patient(patient_id)
    qtbot.waitUntil(lambda: chart.record is not None, timeout=20_000)
    for index in range(chart.tabs.count()):
        wait_loaded(qtbot, chart.tabs.widget(index))
    return chart


def chart_screens(qtbot, window: MainWindow, chart: PatientChart, label: str) -> Iterator[Screen]:
    for index in range(chart.tabs.count()):
        chart.tabs.setCurrentIndex(index)
        tab = chart.tabs.widget(index)
        wait_loaded(qtbot, tab)
        qtbot.wait(10)
        # The tab's words without its Alt+letter mark ("Interaction &review", "Check-ins && ...").
        title = chart.tabs.tabText(index).replace("&&", "\0").replace("&", "").replace("\0", "&")
        yield Screen(f"{label} / {title}", window, tab)


def dialog_screen(qtbot, name: str, dialog: QDialog) -> Iterator[Screen]:
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # Xvfb has no window manager to do it
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=5_000)
    try:
        yield Screen(name, dialog, dialog)
    finally:
        dialog.reject()
        dialog.deleteLater()


def all_screens(qtbot, window: MainWindow, tmp_path: Path) -> Iterator[Screen]:
    """Each screen in turn (the window keeps its size; dialogs open over it)."""
    from ketadesk.ui.admin.settings_dialog import SettingsDialog
    from ketadesk.ui.admin.users_dialog import ChangePasswordDialog, UserFormDialog, UsersDialog
    from ketadesk.ui.outcomes.checkin_dialog import CheckInDialog
    from ketadesk.ui.outcomes.dose_dialog import DoseDialog
    from ketadesk.ui.outcomes.questionnaire_dialog import QuestionnaireDialog
    from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog
    from ketadesk.ui.roster.import_dialog import ImportDialog
    from ketadesk.ui.visits.checkout_dialog import CheckOutDialog, PatientChoice
    from ketadesk.ui.visits.leases_dialog import LeasesDialog
    from ketadesk.ui.visits.return_dialog import ReturnDialog

    context = window.context
    window.tabs.setCurrentIndex(0)
    yield Screen("Roster", window, window.roster)

    chart = open_chart(qtbot, window, FULL_CHART_PATIENT)
    yield from chart_screens(qtbot, window, chart, "Chart")
    draft = open_chart(qtbot, window, DRAFT_PROTOCOL_PATIENT)
    for index in range(draft.tabs.count()):
        if isinstance(draft.tabs.widget(index), ProtocolEditor):
            draft.tabs.setCurrentIndex(index)
            yield Screen("Chart with a draft / Protocol", window, draft.tabs.widget(index))

    window.limits_action.trigger()
    limits = window.tabs.currentWidget()
    qtbot.waitUntil(lambda: limits.is_loaded, timeout=20_000)
    yield Screen("Practice limits", window, limits)
    window.templates_action.trigger()
    templates = window.tabs.currentWidget()
    qtbot.waitUntil(lambda: templates.is_loaded, timeout=20_000)
    yield Screen("Protocol templates", window, templates)
    window.audit_action.trigger()
    yield Screen("Audit log", window, window.tabs.currentWidget())
    window.visit_conflicts_action.trigger()
    yield Screen("Visit conflicts", window, window.tabs.currentWidget())

    rows = [window.roster.model.row_at(n) for n in range(2)]
    choices = [PatientChoice(r.mrn, f"{r.last_name}, {r.first_name} · {r.mrn}") for r in rows if r]
    yield from dialog_screen(
        qtbot, "Check out for a home visit", CheckOutDialog(context, choices, window)
    )
    yield from dialog_screen(qtbot, "Return a visit pack", ReturnDialog(context, window))
    yield from dialog_screen(qtbot, "Visit packs out", LeasesDialog(context, window))
    yield from dialog_screen(qtbot, "Practice settings", SettingsDialog(context, window))
    yield from dialog_screen(qtbot, "Users", UsersDialog(context, window))
    yield from dialog_screen(qtbot, "New user", UserFormDialog(context, window))
    yield from dialog_screen(qtbot, "Change my password", ChangePasswordDialog(context, window))
    yield from dialog_screen(qtbot, "Log home dose", DoseDialog(window))
    yield from dialog_screen(
        qtbot, "New check-in", CheckInDialog(context.actor.full_name, window)
    )
    for name in ("PHQ-9", "GAD-7"):
        yield from dialog_screen(
            qtbot, f"Enter {name}", QuestionnaireDialog(load_instrument(name), window)
        )
    yield from dialog_screen(
        qtbot, "Export plan", PlanExportDialog.for_patient(context, FULL_CHART_PATIENT, window)
    )
    csv = tmp_path / "import.csv"
    csv.write_text(IMPORT_CSV, encoding="utf-8")
    importer = ImportDialog(context, window)
    with qtbot.waitSignal(importer.file_inspected, timeout=10_000):
        importer.open_file(csv)
    importer.next_button.click()  # the column mapping page: one combo box per field
    yield from dialog_screen(qtbot, "Import patients (columns)", importer)
