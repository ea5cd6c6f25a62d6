"""``python -m benchmarks [--json] [NAME ...]``: run ``benchmarks/bench_*.py`` and print a table.

Each module exposes ``run() -> list[BenchResult]``. Figures are recorded, not asserted.
``NAME`` is a module's short name (``roster`` for ``bench_roster.py``). With ``--json`` the
table goes to stderr and stdout holds one JSON list of
``{"name", "median_ms", "p95_ms" (where it applies), "floor_name", "floor_ms", "goal"}``.

The app's bytecode is compiled first (``compileall``), as it is in an installed app (a wheel
or the bundle): otherwise an environment with ``PYTHONDONTWRITEBYTECODE`` set (this project's
development machine has it) compiles every module from source at each start, and the unlock
and start-up figures time the compiler (≈ 100-300 ms), not what a user waits on.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str]) -> int:
    import benchmarks
    from benchmarks._harness import BenchResult

    _compile_bytecode()

    as_json = "--json" in argv
    wanted = {a for a in argv if a != "--json"}
    rows: list[BenchResult] = []
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        short = info.name.removeprefix("bench_")
        if wanted and short not in wanted:
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        print(f"running {short} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    table = sys.stderr if as_json else sys.stdout
    header = f"{'benchmark':44} {'median ms':>10}  {'floor':34} {'floor ms':>9}  goal / notes"
    print(header, file=table)
    print("-" * len(header), file=table)
    for r in rows:
        floor = f"{r.floor_ms:9.1f}" if r.floor_ms is not None else " " * 9
        p95 = f"p95 {r.p95_ms:.1f} ms" if r.p95_ms is not None else ""
        notes = "; ".join(x for x in (r.goal, p95, r.extra) if x)
        print(f"{r.name:44} {r.median_ms:10.1f}  {r.floor_name:34} {floor}  {notes}", file=table)
    if as_json:
        print(json.dumps([r.as_json() for r in rows], indent=2))
    return 0


def _compile_bytecode() -> None:
    """Write the ``__pycache__`` files an installed app has; Python reads them even when
    ``PYTHONDONTWRITEBYTECODE`` stops it from writing them itself."""
    import compileall
    from pathlib import Path

    import ketadesk

    package = Path(ketadesk.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        print(f"warning: some of {package} did not compile", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
