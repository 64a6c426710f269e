"""What every benchmark here shares: the median wall time of a step after a warm-up, and a
note on how busy the machine was."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import torch

from unmasklib.host_speed import median_seconds

__all__ = ["bench_parser", "load_note", "median_seconds", "seconds_line", "start_bench"]


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


def bench_parser(description: str, configs: Sequence[str]) -> argparse.ArgumentParser:
    """The options every phase benchmark takes: --configs, --repeats, --threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--configs", nargs="+", choices=sorted(configs), default=["paper", "cpu"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def start_bench(args: argparse.Namespace, batch: int) -> None:
    """Set torch's thread count from `args` and print the header line."""
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}, batch {batch}; {load_note()}")
