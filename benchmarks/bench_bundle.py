"""Bundle benchmarks: self-test wall time (source tree, and the bundle when one is built),
bundle size, and optionally the build itself.

``python -m benchmarks bundle`` measures an existing ``dist/KetaDesk`` (from ``make bundle``, or
the folder named by ``KETADESK_BUNDLE_DIR``); set ``KETADESK_BENCH_BUILD=1`` to build one into a
temp folder first (minutes). The floor is a
bare ``python -c pass``: the self-test pays interpreter start-up, argon2id (three slots of
64 MiB) and Qt start-up on top of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import BenchResult

ROOT = Path(__file__).resolve().parents[1]
ISSUE_REFERENCE = "comparable app: ~25 s build, 231 MB"


def _wall_ms(command: list[str], repeat: int = 3) -> float:
    samples = []
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
        samples.append((time.perf_counter() - start) * 1000)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}{result.stderr}")
    return sorted(samples)[len(samples) // 2]


def _folder_mb(folder: Path) -> float:
    """Apparent size in MB (1e6 bytes); symbolic links count once, as links."""
    total = 0
    for parent, _dirs, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files)
    return total / 1e6


def _build(dist: Path, work: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
            "--log-level", "WARN", "--distpath", str(dist), "--workpath", str(work),
            str(ROOT / "build.spec"),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return (time.perf_counter() - start) * 1000


def run() -> list[BenchResult]:
    floor = _wall_ms([sys.executable, "-c", "pass"], repeat=5)
    rows = [
        BenchResult(
            "bundle: self-test from source",
            _wall_ms([sys.executable, "-m", "ketadesk", "--self-test"]),
            "python -c pass",
            floor,
        )
    ]
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-") as scratch:
        bundle = Path(os.environ.get("KETADESK_BUNDLE_DIR") or ROOT / "dist" / "KetaDesk")
        if os.environ.get("KETADESK_BENCH_BUILD") == "1":
            build_ms = _build(Path(scratch) / "dist", Path(scratch) / "work")
            bundle = Path(scratch) / "dist" / "KetaDesk"
            rows.append(
                BenchResult("bundle: PyInstaller build (--clean)", build_ms,
                            extra=ISSUE_REFERENCE)
            )
        if not (bundle / "KetaDesk").is_file():
            rows.append(BenchResult("bundle: not built (run make bundle)", 0.0))
            return rows
        rows.append(
            BenchResult(
                "bundle: self-test from the bundle",
                _wall_ms([str(bundle / "KetaDesk"), "--self-test"]),
                "python -c pass",
                floor,
                extra=f"size {_folder_mb(bundle):.0f} MB ({ISSUE_REFERENCE})",
            )
        )
    return rows
