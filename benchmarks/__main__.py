"""Run every benchmark in this folder: ``python -m benchmarks [NAME ...]`` (``make bench``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> int:
    """Run ``bench_<name>.py``'s ``main()`` for each name given, or for every benchmark."""
    found = {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}
    chosen = names or list(found)
    unknown = [name for name in chosen if name not in found]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(found)}", file=sys.stderr)
        return 2
    for name in chosen:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", found[name])
        if spec is None or spec.loader is None:
            print(f"cannot load {found[name]}", file=sys.stderr)
            return 3
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n== {name} ==")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
