"""Launch-to-login-dialog vs a bare PySide6 window; unlock vs the bare key derivation."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import BenchResult, median_ms

_BARE_WINDOW = """
import time, sys
t0 = float(sys.argv[1])
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
w = QWidget(); w.show(); app.processEvents()
print((time.time() - t0) * 1000)
"""

_LOGIN_DIALOG = """
import time, sys
t0 = float(sys.argv[1])
from pathlib import Path
from ketadesk.ui.app import create_application
from ketadesk.ui.session.login_dialog import LoginDialog
from ketadesk.storage.security.secret_store import KeyringSecretStore
app = create_application()
d = LoginDialog(Path(sys.argv[2]), KeyringSecretStore()); d.show(); app.processEvents()
print((time.time() - t0) * 1000)
"""


def _launch_ms(script: str, *extra: str, runs: int = 5) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    samples = []
    for _ in range(runs):
        start = time.time()
        out = subprocess.run([sys.executable, "-c", script, repr(start), *extra],
                             capture_output=True, text=True, env=env, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def run() -> list[BenchResult]:
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.keyslots import KdfParams

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db, _actor, _ = PracticeDatabase.create(path, user_name="bench",
                                                full_name="Dr Bench", password="benchmark pw")
        db.close()
        bare = _launch_ms(_BARE_WINDOW)
        login = _launch_ms(_LOGIN_DIALOG, str(path))

        def unlock() -> None:
            database, _outcome = PracticeDatabase.unlock(path, "bench", "benchmark pw")
            database.close()

        params = KdfParams()
        kdf = median_ms(lambda: params.derive(b"benchmark pw", b"0123456789abcdef"), repeat=5)
        unlock_ms = median_ms(unlock, repeat=5)
    return [
        BenchResult("launch to login dialog", login, "bare PySide6 window", bare,
                    "goal <= 2x floor", f"{login / bare:.2f}x"),
        BenchResult("unlock (empty practice)", unlock_ms, "argon2id KDF alone", kdf,
                    "goal <= KDF + 50 ms", f"+{unlock_ms - kdf:.0f} ms"),
    ]
