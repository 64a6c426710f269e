"""Shared fixtures: the face model (float32 and float64), and one tiny smoke-profile run whose
identity encoder, N3D and generator the phase-2 and evaluation tests read."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.phase2 import train_inpainting
from unmasklib.training import Run

TINY = dataclasses.replace(get_profile("smoke"), inpaint_steps=4, n3d_steps=4, identity_steps=4)


def toy_weights(out, rank: int = 0) -> dict[str, torch.Tensor]:
    """The final weights a `tests/toy_training.py` process of `rank` wrote into `out`."""
    return torch.load(out / f"rank{rank}.pt", weights_only=True)


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run folder where `train_inpainting(TINY)` trained everything it needs (trained once
    per session)."""
    folder = tmp_path_factory.mktemp("tiny_run")
    train_inpainting(TINY, folder, progress=False)
    return folder


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
