"""UI test set-up: the app-wide input policies the real start-up installs, QSettings in a temp
folder, and a small synthetic demo practice (made once per run, copied per test) whose screens
have something on them: signed reviews, signed and draft protocols, check-ins and doses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from ketadesk.ui.common.wheel_guard import install_wheel_guard
from tests.conftest import copy_practice

DEMO_PASSWORD = "demo-password-1"
DEMO_PHYSICIAN = "physician"
DEMO_ADMIN = "admin"


@pytest.fixture(scope="session", autouse=True)
def app_start_up(qapp, tmp_path_factory: pytest.TempPathFactory) -> None:
    """What ketadesk.ui.app.create_application installs, minus the developer's real settings."""
    settings = tmp_path_factory.mktemp("qsettings")
    for scope_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(scope_format, QSettings.Scope.UserScope, str(settings))
    install_wheel_guard(qapp)


@pytest.fixture(scope="session")
def prepared_demo_practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo practice of 12 synthetic patients made by the real ``demo`` command."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    subprocess.run(
        [sys.executable, "-m", "ketadesk", "--db", str(path), "demo", "--patients", "12",
         "--password-stdin"],
        input=f"{DEMO_PASSWORD}\n", text=True, check=True, capture_output=True, timeout=120,
    )
    return path


@pytest.fixture
def demo_window(qtbot, prepared_demo_practice: Path, tmp_path: Path) -> Iterator[object]:
    """The main window on a fresh copy of the demo practice, logged in as the physician."""
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.ui.chart.patient_chart import PatientChart
    from ketadesk.ui.common.context import AppContext
    from ketadesk.ui.main_window import MainWindow

    path = copy_practice(prepared_demo_practice, tmp_path / "demo")
    db, outcome = PracticeDatabase.unlock(path, DEMO_PHYSICIAN, DEMO_PASSWORD)
    window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.roster.model.rowCount() > 0, timeout=10_000)
    yield window
    for chart in window.patient_tabs():
        if isinstance(chart, PatientChart):  # a test's leftover edits: closing must not ask
            chart.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    window.close()  # (not left to qtbot: its close comes before this and would ask)
    window.deleteLater()
    window.context.ops.wait_for_done(10_000)
    if not window.context.db.is_locked:
        window.context.db.close()
