"""Timing helpers the benchmarks share (imported by scripts run as `python bench/<name>.py`, whose
own folder is first on sys.path)."""
from __future__ import annotations

import resource
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timed calls of `fn`, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (reaped) children: on a shared
    machine, what an idle one would take."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
