"""What every benchmark here shares: the median wall time of a step after a warm-up, and a
note on how busy the machine was."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import torch

from unmasklib.host_speed import median_seconds, resnet50_step_seconds

__all__ = ["bench_parser", "load_note", "median_seconds", "seconds_line", "seed_ratio",
           "start_bench"]

# The seed's own training steps (its notebook's cells 6-12, `paper` configuration, batch 8 at
# 256 px) as the speed issue measured them, on a host whose ResNet-50 step took 2.52 s, and the
# share of them each of ours may take there (the targets).
SEED_HOST_RESNET50_SECONDS = 2.52
SEED_STEP_SECONDS = {"phase-1": 17.74, "phase-2": 31.32}
SEED_RATIO_TARGETS = {"phase-1": 0.08, "phase-2": 0.10}


def load_note() -> str:
    """The 1-minute load average, flagged when other work may share the cores."""
    load = os.getloadavg()[0]
    busy = " (other work may share the cores: figures would be slower than they should be)"
    return f"1-minute load average before: {load:.2f}" + (busy if load > 0.5 else "")


def seconds_line(label: str, seconds: float, target: float | None = None) -> str:
    """`  <label>: <seconds> s`, with the ratio to `target` seconds when there is one."""
    line = f"  {label}: {seconds:6.2f} s"
    if target is not None:
        line += f"   ratio to the {target} s target: {seconds / target:.2f}"
    return line


def seed_ratio(phase: str, seconds: float, resnet_seconds: float) -> str:
    """`seconds` of our `phase` ("phase-1" or "phase-2") step against the seed's, the seed's
    scaled to this host by the ResNet-50 step (`resnet_seconds` here, 2.52 s where it was
    measured): an estimate; the issue's figure is both measured in one run on one host."""
    seed_here = SEED_STEP_SECONDS[phase] * resnet_seconds / SEED_HOST_RESNET50_SECONDS
    return (f"    the seed's {phase} step scaled to this host: {seed_here:.1f} s; ours / seed's "
            f"{seconds / seed_here:.3f} (target <= {SEED_RATIO_TARGETS[phase]})")


def bench_parser(description: str, configs: Sequence[str]) -> argparse.ArgumentParser:
    """The options every phase benchmark takes: --configs, --repeats, --threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--configs", nargs="+", choices=sorted(configs), default=["paper", "cpu"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def start_bench(args: argparse.Namespace, batch: int) -> float:
    """Set torch's thread count from `args`, print the header line and this host's ResNet-50
    forward+backward (`host_speed`), and return that in seconds."""
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}, batch {batch}; {load_note()}")
    resnet = resnet50_step_seconds()
    print(f"ResNet-50 forward+backward (batch 8, 256 px) on this host: {resnet:.2f} s")
    return resnet
