"""How fast this machine is, in a unit every timing here can be given in: the median seconds
of one ResNet-50 forward+backward (random weights, batch 8 at 256x256). Hosts differ up to 2x
in speed; a time divided by this one does not."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torchvision

# `make demo`'s budget, the whole series with training, in ResNet-50 steps of its host (45
# minutes where one step takes 2.52 s).
DEMO_BUDGET_STEPS = 1070


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


def resnet50_step_seconds(batch: int = 8, size: int = 256, repeats: int = 5) -> float:
    """Median seconds of a ResNet-50 forward+backward on `(batch, 3, size, size)` noise."""
    resnet = torchvision.models.resnet50()
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))

    def step() -> None:
        resnet.zero_grad(set_to_none=True)
        resnet(images).mean().backward()

    return median_seconds(step, repeats)
