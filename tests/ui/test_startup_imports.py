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
