"""``python -m ketadesk --self-test`` as a subprocess: every check passes from the source tree,
a broken piece is reported as FAIL with a non-zero exit, and the temp folder is always removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.cli_runner import ROOT, run_ketadesk

EXPECTED_CHECKS = (
    "resources found",
    "encrypted database created with a key slot",
    "database file is not plain SQLite",
    "database reopened with the password",
    "wrong password refused",
    "interaction check against the bundled knowledge base",
    "protocol calendar computed",
    "PDF plan rendered",
    "PDF plans rendered on worker processes",
    "keyring backends loadable",
    "main window opened and closed",
)


def _check_names(stdout: str) -> list[str]:
    names = []
    for line in stdout.splitlines():
        assert line.startswith(("ok   ", "FAIL ")), f"unexpected output line: {line!r}"
        body = line[5:]
        names.append(body.split(":")[0] if line.startswith("FAIL") else body.split(" (")[0])
    return names


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob("ketadesk-selftest-*"))


def _run(
    args: list[str], tmp_path: Path, qpa: str = "offscreen"
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        TMPDIR=str(tmp_path),
        QT_QPA_PLATFORM=qpa,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )


def _run_patched(patch: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the self-test in a fresh interpreter after ``patch`` (Python) broke one piece."""
    code = (
        f"{patch}\n"
        "from ketadesk.self_test import run_self_test\n"
        "raise SystemExit(run_self_test())"
    )
    return _run(["-c", code], tmp_path)


def test_every_check_passes_and_the_temp_folder_is_removed(tmp_path):
    # The self-test forces offscreen itself: a display setting must not make it open a window.
    result = _run(["-m", "ketadesk", "--self-test"], tmp_path, qpa="xcb")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("ok   ") for line in lines), result.stdout
    assert _check_names(result.stdout) == list(EXPECTED_CHECKS)
    assert "Qt platform offscreen" in result.stdout
    assert _leftovers(tmp_path) == []


def test_keyring_line_names_the_backends_or_says_none(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = run_ketadesk("--self-test", timeout=180)
    keyring_line = next(line for line in result.stdout.splitlines() if "keyring" in line)
    assert keyring_line.startswith("ok   keyring backends loadable (known: ")
    for backend in ("SecretService", "libsecret", "KWallet", "chainer"):
        assert backend in keyring_line
    assert "usable here: " in keyring_line


def test_an_unencrypted_database_is_reported_as_a_failure(tmp_path):
    result = _run_patched(
        "import ketadesk.storage.security.engine as engine\n"
        "engine.is_plain_sqlite = lambda path: True",
        tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert failures == [
        "FAIL database file is not plain SQLite: the file starts with the plain SQLite header: "
        "it is NOT encrypted"
    ]
    assert _leftovers(tmp_path) == []


def test_a_crashing_check_fails_alone_and_the_others_still_run(tmp_path):
    result = _run_patched(
        "import ketadesk.core.interaction_check as ic\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('knowledge base unreadable')\n"
        "ic.check_patient = broken",
        tmp_path,
    )
    assert result.returncode == 1
    assert _check_names(result.stdout) == list(EXPECTED_CHECKS)
    failure = next(line for line in result.stdout.splitlines() if line.startswith("FAIL"))
    assert failure.startswith(
        "FAIL interaction check against the bundled knowledge base: "
        "RuntimeError: knowledge base unreadable"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert _leftovers(tmp_path) == []


def test_a_wrong_password_that_opens_the_database_fails(tmp_path):
    # Simulate broken key slots: any password unwraps the key.
    result = _run_patched(
        "from ketadesk.storage.security.keyslots import KeySlotFile\n"
        "original = KeySlotFile.open_user_slot\n"
        "def lenient(self, user, password):\n"
        "    return original(self, user, 'self-test passphrase 1')\n"
        "KeySlotFile.open_user_slot = lenient",
        tmp_path,
    )
    assert result.returncode == 1
    assert "FAIL wrong password refused: the database opened with a wrong password" in (
        result.stdout
    )
    assert _leftovers(tmp_path) == []


def test_keyring_without_its_backend_metadata_is_a_failure(tmp_path):
    # What a bundle without keyring's dist-info looks like: no entry points, so no backends.
    result = _run_patched(
        "import importlib.metadata as md\n"
        "real = md.entry_points\n"
        "def no_keyring(**params):\n"
        "    if params.get('group') == 'keyring.backends':\n"
        "        return md.EntryPoints(())\n"
        "    return real(**params)\n"
        "md.entry_points = no_keyring",
        tmp_path,
    )
    assert result.returncode == 1
    failure = next(line for line in result.stdout.splitlines() if line.startswith("FAIL"))
    assert failure.startswith("FAIL keyring backends loadable: keyring's backend list lacks ")
    assert "SecretService" in failure
