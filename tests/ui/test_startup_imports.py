"""Log-in to roster painted loads no module only a later action needs (the plan PDFs'
reportlab and pypdf, ≈ 0.3–0.5 s on the GUI thread)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import PASSWORD, PHYSICIAN, copy_practice

ROOT = Path(__file__).resolve().parents[2]
LATER_ONLY = ("reportlab", "pypdf")


def test_the_main_window_opens_without_loading_the_pdf_modules(
    prepared_practice, tmp_path
) -> None:
    path = copy_practice(prepared_practice, tmp_path / "db")
    script = textwrap.dedent(f"""
        import sys
        from PySide6.QtWidgets import QApplication
        from ketadesk.storage.security.database import PracticeDatabase
        from ketadesk.ui.common.context import AppContext
        from ketadesk.ui.main_window import MainWindow

        app = QApplication([])
        db, outcome = PracticeDatabase.unlock({str(path)!r}, {PHYSICIAN!r}, {PASSWORD!r})
        window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
        window.show()
        app.processEvents()
        assert window.roster.isVisible()
        print(sorted(m for m in sys.modules if m.split(".")[0] in {LATER_ONLY!r}))
        window.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT, env=env)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_main_window_modules_load_while_the_log_in_dialog_waits(
    prepared_practice, tmp_path
) -> None:
    """While the user types the password, the main window's modules load on a thread of their
    own (nothing else happens before Log in); after Log in the main window opens as before."""
    path = copy_practice(prepared_practice, tmp_path / "db")
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from PySide6.QtCore import QTimer
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QApplication
        from ketadesk.storage.security.secret_store import MemorySecretStore
        from ketadesk.ui.app import SessionFlow
        from ketadesk.ui.session.login_dialog import LoginDialog

        app = QApplication([])
        seen = {{}}

        def type_and_log_in():
            dialogs = [w for w in app.topLevelWidgets() if isinstance(w, LoginDialog)]
            if not dialogs or not dialogs[0].isVisible():
                QTimer.singleShot(20, type_and_log_in)
                return
            dialog = dialogs[0]
            seen["at_show"] = "ketadesk.ui.main_window" in sys.modules
            deadline = time.monotonic() + 30
            while "ketadesk.ui.main_window" not in sys.modules and time.monotonic() < deadline:
                app.processEvents()  # the dialog keeps answering while they load
                time.sleep(0.01)
            seen["before_log_in"] = "ketadesk.ui.main_window" in sys.modules
            QTest.keyClicks(dialog.user_edit, {PHYSICIAN!r})
            QTest.keyClicks(dialog.password_edit, {PASSWORD!r})
            dialog.login_button.click()

        QTimer.singleShot(0, type_and_log_in)
        flow = SessionFlow(Path({str(path)!r}), MemorySecretStore(available=False))
        assert flow.start()
        window = flow.window
        assert window is not None and window.roster.isVisible()
        print(seen["at_show"], seen["before_log_in"])
        window.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT, env=env)
    assert result.stdout.strip().splitlines()[-1] == "False True"


def test_the_safety_banners_first_read_loads_only_the_alert_queries(
    prepared_practice, tmp_path
) -> None:
    """The banner's first read is made before the roster's first paint, inside the unlock's
    time: it loads the safety-alert queries, not the check-in and questionnaire services
    (``outcomes``), which only a chart needs."""
    path = copy_practice(prepared_practice, tmp_path / "db")
    script = textwrap.dedent(f"""
        import sys, time
        from PySide6.QtWidgets import QApplication
        from ketadesk.storage.security.database import PracticeDatabase
        from ketadesk.ui.common.context import AppContext
        from ketadesk.ui.main_window import MainWindow

        app = QApplication([])
        db, outcome = PracticeDatabase.unlock({str(path)!r}, {PHYSICIAN!r}, {PASSWORD!r})
        window = MainWindow(AppContext(db, outcome.actor), outcome.audit)
        window.show()
        deadline = time.monotonic() + 20
        while window.safety_banner.alerts_seen is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        assert window.safety_banner.alerts_seen is not None, "the banner never read"
        print(sorted(m for m in sys.modules if m.startswith("ketadesk.storage.outcomes.")))
        window.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT, env=env)
    loaded = result.stdout.strip().splitlines()[-1]
    assert "ketadesk.storage.outcomes.safety_alerts" in loaded
    assert "ketadesk.storage.outcomes.outcomes'" not in loaded
