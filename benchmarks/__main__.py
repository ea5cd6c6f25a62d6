"""``python -m benchmarks [NAME ...]``: run every ``benchmarks/bench_*.py`` and print a table.

Each module exposes ``run() -> list[BenchResult]``. Figures are recorded, not asserted.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str]) -> int:
    import benchmarks
    from benchmarks._harness import BenchResult

    wanted = set(argv)
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
    header = f"{'benchmark':44} {'median ms':>10}  {'floor':34} {'floor ms':>9}  goal / notes"
    print(header)
    print("-" * len(header))
    for r in rows:
        floor = f"{r.floor_ms:9.1f}" if r.floor_ms is not None else " " * 9
        notes = "; ".join(x for x in (r.goal, r.extra) if x)
        print(f"{r.name:44} {r.median_ms:10.1f}  {r.floor_name:34} {floor}  {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
