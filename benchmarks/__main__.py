"""Run benchmarks and print one table each: ``python -m benchmarks [name] [args...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import benchmarks


def available() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = [" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    out.append("-|-".join("-" * w for w in widths))
    out += [" | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        for n in names:
            print(f"  {n}: {importlib.import_module(f'benchmarks.bench_{n}').DESCRIPTION}")
        return 0
    todo = [argv[0]] if argv else names
    rest = argv[1:] if argv else []
    for name in todo:
        if name not in names:
            print(f"unknown benchmark {name!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"\n== {name}: {mod.DESCRIPTION}")
        print(render(mod.main(rest)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
