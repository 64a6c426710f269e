"""Checkpoints: one file per model under `runs/<profile>/`, written atomically, loaded safely.

Training writes them (`training.fit`); using a model only reads them (`trained`), so this
module belongs to neither and imports nothing of training.

A checkpoint is a plain dict that `torch.load(..., weights_only=True)` can read:

    format      CHECKPOINT_FORMAT
    model       the phase's model name, e.g. "identity" (also the file's stem)
    profile     the profile name, e.g. "cpu"
    step        training steps done
    finished    True once the run has done all its steps
    settings    what the run was made with (steps, learning rate, sizes, data version, ...)
    models      name -> state dict (one entry per network: {"encoder", "head"}, {"G", "D"})
    optimizers  name -> optimiser state dict
    rng         torch (CPU and, when used, CUDA), python and numpy global generator states;
                the batch order and per-step draws need none: they are functions of the
                seed (in settings) and the step
    history     loss term -> one float per step done
"""

from __future__ import annotations

import pickle
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .files import write_atomically

CHECKPOINT_FORMAT = 1


def checkpoint_path(folder: str | Path, model_name: str) -> Path:
    """`<folder>/<model_name>.pt`: where a phase's checkpoint lives."""
    return Path(folder) / f"{model_name}.pt"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write `state` to `path` atomically (`files.write_atomically`), so that a crash mid-write
    leaves the previous checkpoint intact. Temporary files a killed write left behind are
    removed first (a run has one writer: rank 0)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.stem}.*.tmp"):
        stale.unlink(missing_ok=True)
    return write_atomically(path, lambda file: torch.save(state, file),
                            prefix=f".{path.stem}.")


def make_checkpoint(model_name: str, profile_name: str, step: int, finished: bool,
                    settings: Mapping, models: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer],
                    history: Mapping[str, list[float]]) -> dict:
    """The checkpoint dict of a run at `step` (the layout above), RNG states captured now."""
    return {
        "format": CHECKPOINT_FORMAT, "model": model_name, "profile": profile_name,
        "step": step, "finished": finished, "settings": dict(settings),
        "models": {name: model.state_dict() for name, model in models.items()},
        "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
        "rng": capture_rng(), "history": dict(history),
    }


def load_checkpoint(path: str | Path, model_name: str, profile_name: str) -> dict:
    """The checkpoint at `path`, on the CPU, checked to hold `model_name` of `profile_name`.

    Raises FileNotFoundError when there is none, ValueError when it is unreadable, of an
    unknown format, or of another model or profile (the message names both)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = load_weights_only(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of format {CHECKPOINT_FORMAT}")
    if (state["model"], state["profile"]) != (model_name, profile_name):
        raise ValueError(f"{path} holds model {state['model']!r} of profile "
                         f"{state['profile']!r}, expected {model_name!r} of profile "
                         f"{profile_name!r}")
    return state


def load_weights_only(path: str | Path, what: str = "checkpoint") -> object:
    """`torch.load(path, weights_only=True)` on the CPU: tensors and plain containers only, so
    loading never runs code stored in the file. A file that holds other Python objects (which
    unpickling would have to construct, possibly running code) is refused with ValueError, as
    is one that is truncated or not a PyTorch file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} was refused: it holds Python objects beyond tensors and plain "
                         f"containers, which loading would have to execute; only {what}s "
                         f"written by unmasklib are read ({str(error).splitlines()[0]})"
                         ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable {what}: {error}") from error


def load_finished_checkpoint(folder: str | Path, model_name: str, profile_name: str,
                             made_by: str) -> dict:
    """The finished checkpoint of `model_name` in `folder`, checked as `load_checkpoint` does.

    FileNotFoundError when there is none, ValueError when its run is unfinished; both name
    `made_by`, what trains or finishes it (e.g. "train_n3d('cpu') or notebook 03")."""
    path = checkpoint_path(folder, model_name)
    if not path.exists():
        raise FileNotFoundError(f"no {model_name} checkpoint at {path}: train it with {made_by}")
    state = load_checkpoint(path, model_name, profile_name)
    if not state["finished"]:
        raise ValueError(f"{path} holds an unfinished run (step {state['step']}): finish it "
                         f"with {made_by}")
    return state


def load_weights(state: dict, models: Mapping[str, nn.Module],
                 optimizers: Mapping[str, torch.optim.Optimizer] | None = None) -> None:
    """Copy a checkpoint's weights (and optimiser states) into `models` (and `optimizers`),
    which must have the same names."""
    _load_named(state["models"], models, "models")
    if optimizers is not None:
        _load_named(state["optimizers"], optimizers, "optimisers")


def _load_named(stored: dict, targets: Mapping, what: str) -> None:
    if set(stored) != set(targets):
        raise ValueError(f"checkpoint holds {what} {sorted(stored)}, expected {sorted(targets)}")
    for name, target in targets.items():
        target.load_state_dict(stored[name])


def capture_rng() -> dict:
    """The global random states (torch CPU and CUDA, python, numpy) as weights_only-safe
    values, for `restore_rng`."""
    # The legacy global numpy state on purpose: it is what a step function's
    # np.random.* calls would draw from.
    kind, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Set the global random states captured by `capture_rng`."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    random.setstate(state["python"])
    np.random.set_state(  # noqa: NPY002
        (kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
