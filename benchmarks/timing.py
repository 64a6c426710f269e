"""What every benchmark here shares: the median wall time of a step after a warm-up, and a
note on how busy the machine was."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def median_seconds(step: Callable[[], None], repeats: int) -> float:
    """Median seconds of `repeats` calls of `step`, after one untimed warm-up call (memory
    allocator, oneDNN kernels, lazy initialisation)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_note() -> str:
    """The 1-minute load average, flagged when other work may share the cores."""
    load = os.getloadavg()[0]
    busy = " (other work may share the cores: figures would be slower than they should be)"
    return f"1-minute load average before: {load:.2f}" + (busy if load > 0.5 else "")
