"""Shared fixtures for the face3d tests."""

import pytest
import torch

from unmasklib import face3d


@pytest.fixture(scope="session")
def model():
    """The embedded model, float32 on the CPU (cached by the library)."""
    return face3d.load_face_model()


@pytest.fixture(scope="session")
def model64(model):
    """The embedded model in float64, for finite-difference checks."""
    return model.to(dtype=torch.float64)
