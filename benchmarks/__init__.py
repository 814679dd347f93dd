"""Benchmarks: speed and memory figures, printed as tables (never timed assertions in tests).

Each ``benchmarks/bench_<name>.py`` module defines ``DESCRIPTION`` and ``main(argv) -> list[dict]``
(one dict per table row); ``python -m benchmarks`` runs them all, ``python -m benchmarks <name>
[args]`` one of them. Figures vary with the machine: compare ratios, not absolute seconds.
"""
