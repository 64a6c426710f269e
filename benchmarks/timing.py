"""What every benchmark here shares: the median wall time of a step after a warm-up."""

from __future__ import annotations

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
