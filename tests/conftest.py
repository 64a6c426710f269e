"""Shared fixtures: the face model (float32 and float64), and one tiny smoke-profile run whose
identity encoder, N3D and generator the phase-2 and evaluation tests read."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable

import pytest
import torch
from torch import nn

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.training import Run
from unmasklib.training.inpainting import load_or_train_inpainting

TINY = dataclasses.replace(get_profile("smoke"), inpaint_steps=4, n3d_steps=4, identity_steps=4)


def flat(models: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Network name -> state dict, as one dict of "<network>.<key>" -> tensor."""
    return {f"{name}.{key}": value for name, state in models.items()
            for key, value in state.items()}


def toy_weights(out, rank: int = 0) -> dict[str, torch.Tensor]:
    """The final weights a `tests/toy_training.py` process of `rank` wrote into `out` (its
    network's and its critic's, "net.*" and "critic.*")."""
    return flat(torch.load(out / f"rank{rank}.pt", weights_only=True))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold the same tensors, bit for bit."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="session")
def model():
    """The embedded model, float32 on the CPU (cached by the library)."""
    return face3d.load_face_model()


@pytest.fixture(scope="session")
def model64(model):
    """The embedded model in float64, for finite-difference checks."""
    return model.to(dtype=torch.float64)


def printed_by(call: Callable[[], object]) -> str:
    """What `call()` prints to stdout (the notes of a load-or-train call, say)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        call()
    return printed.getvalue()


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory):
    """An empty run folder after `load_or_train_inpainting(TINY)` trained everything G needs
    (once per session), and what that call printed."""
    folder = tmp_path_factory.mktemp("tiny_run")
    return folder, printed_by(lambda: load_or_train_inpainting(TINY, folder, progress=False))


@pytest.fixture(scope="session")
def tiny_run(tiny_training):
    """The run folder of `tiny_training`: identity encoder, N3D and G of TINY."""
    return tiny_training[0]


def check_reused_and_frozen(trained: nn.Module, run: Run, loaded: nn.Module, printed: str,
                            terms: set[str], steps: int) -> None:
    """What every phase's second training call must give: the finished run reused (and said
    so), the loaded network frozen with the trained weights, a history of `steps` per term."""
    assert run.reused and "reusing" in printed
    assert not any(p.requires_grad for p in loaded.parameters())
    for ours, theirs in zip(trained.state_dict().values(), loaded.state_dict().values(),
                            strict=True):
        assert torch.equal(ours.cpu(), theirs.cpu())
    assert set(run.history) == terms
    assert all(len(values) == steps for values in run.history.values())
