"""Run the benchmarks: `python -m bench` (all) or `python -m bench NAME [NAME...]`.

Every module under bench/ with a ``main()`` is a benchmark. They print medians and ratios against a
baseline measured in the same run, since absolute figures on shared machines are noisy.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}")
        return 2
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        start = time.perf_counter()
        # Modules whose main() takes argv get an empty one: their own defaults, not this runner's arguments.
        module.main([]) if inspect.signature(module.main).parameters else module.main()
        print(f"=== bench.{name}: {time.perf_counter() - start:.1f}s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
