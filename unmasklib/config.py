"""Run profiles: how big and how long, from a CI smoke run to the paper's settings.

    smoke  tiny and fast: what CI and `pytest --nbval-lax notebooks/` run
    cpu    the default: a laptop CPU finishes every notebook in minutes
    paper  the seed's settings (800 + 200 samples at 256x256); meant for a GPU

Notebooks and command-line entry points read the profile name from `UNMASK_PROFILE`.
Artefacts of a profile live under `runs/<profile>/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    name: str
    image_size: int      # side of every image, pixels
    train_samples: int   # synthetic training set size
    test_samples: int    # synthetic test set size
    seed: int = 0


PROFILES = {
    "smoke": Profile("smoke", image_size=64, train_samples=48, test_samples=16),
    "cpu": Profile("cpu", image_size=128, train_samples=800, test_samples=200),
    "paper": Profile("paper", image_size=256, train_samples=800, test_samples=200),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name`, else `$UNMASK_PROFILE`, else `cpu`."""
    name = name or os.environ.get("UNMASK_PROFILE") or "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def runs_root() -> Path:
    """`$UNMASK_RUNS`, else `runs/` in the source checkout, else `runs/` in the working dir."""
    if "UNMASK_RUNS" in os.environ:
        return Path(os.environ["UNMASK_RUNS"])
    checkout = Path(__file__).resolve().parents[1]
    return checkout / "runs" if (checkout / "pyproject.toml").exists() else Path.cwd() / "runs"


def run_dir(profile: Profile) -> Path:
    """`runs/<profile>/`, created on first use."""
    path = runs_root() / profile.name
    path.mkdir(parents=True, exist_ok=True)
    return path
