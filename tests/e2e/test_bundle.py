"""The desktop bundle: build.spec builds a one-folder KetaDesk that passes its own self-test.

Slow (a PyInstaller build: minutes on a loaded 2-CPU machine), so it carries the ``bundle``
marker; ``-m "not bundle"`` deselects it, and ``KETADESK_SKIP_BUNDLE=1`` skips it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli_runner import ROOT

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(
        os.environ.get("KETADESK_SKIP_BUNDLE") == "1", reason="KETADESK_SKIP_BUNDLE=1 is set"
    ),
]

BUILD_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundle once for this module into a temp dist/work path; return its folder."""
    base = tmp_path_factory.mktemp("bundle")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(base / "dist"),
            "--workpath",
            str(base / "work"),
            str(ROOT / "build.spec"),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    folder = base / "dist" / "KetaDesk"
    assert (folder / "KetaDesk").is_file()
    return folder


def _run_bundle(bundle: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        # A clean environment: the bundle must not lean on the developer's virtualenv.
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [str(bundle / "KetaDesk"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
        env=env,
    )


def _bundled_python_modules(bundle: Path) -> set[str]:
    """Names of the pure-Python modules frozen into the executable's PYZ archive."""
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(bundle / "KetaDesk"))
    return set(archive.open_embedded_archive("PYZ.pyz").toc)


def test_the_bundled_self_test_passes(bundle: Path, tmp_path: Path) -> None:
    result = _run_bundle(bundle, "--self-test", tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 11, result.stdout
    assert all(line.startswith("ok   ") for line in lines), result.stdout
    assert f"from the bundle: {bundle / '_internal' / 'resources'}" in result.stdout
    assert "Qt platform offscreen" in result.stdout
    assert list(tmp_path.glob("ketadesk-selftest-*")) == []


def test_the_bundled_keyring_knows_its_backends(bundle: Path, tmp_path: Path) -> None:
    result = _run_bundle(bundle, "--self-test", tmp=tmp_path)
    line = next(line for line in result.stdout.splitlines() if "keyring" in line)
    assert line.startswith("ok   keyring backends loadable (known: "), line
    for backend in ("SecretService", "libsecret", "KWallet", "chainer", "macOS", "Windows"):
        assert backend in line


def test_the_bundled_cli_runs_a_headless_command(bundle: Path, tmp_path: Path) -> None:
    version = _run_bundle(bundle, "--version", tmp=tmp_path)
    assert version.returncode == 0
    from ketadesk import __version__

    assert version.stdout.strip() == f"KetaDesk {__version__}"
    templates = _run_bundle(bundle, "protocol", "templates", tmp=tmp_path)
    assert templates.returncode == 0, templates.stderr
    assert "Microdose" in templates.stdout


def test_the_bundle_carries_what_it_needs_and_nothing_it_does_not(bundle: Path) -> None:
    internal = bundle / "_internal"
    present = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    for needed in (
        "resources/kb/drug_rules.json",
        "resources/icons/ketadesk.png",
        "resources/fonts/DejaVuSans.ttf",
        "ketadesk/storage/migrations/env.py",
        "ketadesk/storage/migrations/versions/0001_foundation.py",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
    ):
        assert needed in present, needed
    assert any(p.startswith("keyring-") and p.endswith(".dist-info") for p in present)
    assert any(p.startswith("sqlcipher3/_sqlite3") for p in present)
    unwanted = ("pytest", "_pytest", "hypothesis", "mypy", "tkinter", "_tkinter", "tests")
    for name in unwanted:
        assert name not in present, name
    modules = _bundled_python_modules(bundle)
    assert {m.split(".")[0] for m in modules}.isdisjoint(unwanted)
    for backend in (
        "SecretService", "kwallet", "libsecret", "macOS", "Windows", "chainer", "fail", "null",
    ):
        assert f"keyring.backends.{backend}" in modules, backend
    assert "alembic.op" in modules
    assert "ketadesk.self_test" in modules
    qt_libs = {Path(p).name.split(".")[0] for p in present if p.startswith("PySide6/Qt/lib/")}
    for module in ("Qml", "Quick", "WebEngineCore", "Multimedia", "3DCore", "Network", "Pdf"):
        assert f"libQt6{module}" not in qt_libs, module
    dangling = [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()]
    assert dangling == []
    plugin_types = {p.split("/")[3] for p in present if p.startswith("PySide6/Qt/plugins/")}
    assert plugin_types <= {
        "platforms", "xcbglintegrations", "imageformats", "iconengines", "platformthemes",
    }, plugin_types
