"""`make bench`: run every ``benchmarks/bench_*.py`` (or those named) and print figures.

    python -m benchmarks                 # all
    python -m benchmarks collector       # bench_collector.py only

Each module defines ``main() -> None`` and prints its own figures and ratios.
Benchmarks never assert; targets are printed beside the figures.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = [n for n in names if not argv or n in argv]
    if not chosen:
        print(f"no benchmark named {' '.join(argv)}; there are: {', '.join(names)}")
        return 2
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main()
        print(f"({name}: {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
