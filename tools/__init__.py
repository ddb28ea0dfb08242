"""Developer tools, run from the repository root and not packaged: the chaos driver
(``python -m tools.chaos``, ``make chaos``) and the benchmarks (``python -m tools.bench``,
``make bench``; ``python -m tools.bench_presence``)."""
