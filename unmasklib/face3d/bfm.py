"""Load a user's own Basel Face Model in Deep3DFaceRecon's `BFM_model_front.mat` layout.

The file cannot ship with this project (its licence forbids redistribution), but a user who
has it gets the same interface as the embedded model. Coefficients follow Deep3DFaceRecon's
257-vector order: identity 80, expression 64, texture 80, rotation 3, lighting 27,
translation 3. Two differences from that code, so that both models behave alike here:
rotation is (yaw, pitch, roll) as in `camera.py`, and texture is scaled to [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from .layout import CoeffLayout
from .model import MorphableModel

BFM_LAYOUT = CoeffLayout((("identity", 80), ("expression", 64), ("texture", 80),
                          ("rotation", 3), ("lighting", 27), ("translation", 3)))
REQUIRED_KEYS = ("meanshape", "idBase", "exBase", "meantex", "texBase", "tri", "keypoints")


def _basis(matrix: np.ndarray, num_vertices: int, name: str, size: int) -> torch.Tensor:
    """`(3V, K)` column basis -> `(K, V, 3)`."""
    if matrix.shape != (3 * num_vertices, size):
        raise ValueError(f"{name} must be ({3 * num_vertices}, {size}), got {matrix.shape}")
    return torch.from_numpy(matrix.T.reshape(size, num_vertices, 3).astype(np.float32))


def load_bfm(path: str | Path) -> MorphableModel:
    """Read a `BFM_model_front.mat` file into a `MorphableModel` (float32, CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Basel Face Model file not found: {path}")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several types for a broken file
        raise ValueError(f"{path} is not a readable .mat file: {error}") from error
    missing = [key for key in REQUIRED_KEYS if key not in mat]
    if missing:
        raise ValueError(f"{path} lacks {missing}; expected Deep3DFaceRecon's "
                         f"BFM_model_front.mat layout with keys {list(REQUIRED_KEYS)}")

    mean_shape = mat["meanshape"].astype(np.float32).reshape(-1, 3)
    mean_shape -= mean_shape.mean(0)  # Deep3DFaceRecon centres the model on its mean
    num_vertices = len(mean_shape)
    if mat["meantex"].size != 3 * num_vertices:
        raise ValueError(f"meantex has {mat['meantex'].size} entries, meanshape has "
                         f"{3 * num_vertices}; they must describe the same vertices")
    for key in ("tri", "keypoints"):  # MATLAB counts from 1
        if mat[key].size and not 1 <= mat[key].min() <= mat[key].max() <= num_vertices:
            raise ValueError(f"{key} must hold 1-based vertex numbers in [1, {num_vertices}], "
                             f"found [{mat[key].min()}, {mat[key].max()}]")
    faces = mat["tri"].astype(np.int64) - 1
    model = MorphableModel(
        name=f"bfm:{path.name}",
        layout=BFM_LAYOUT,
        mean_shape=torch.from_numpy(mean_shape),
        identity_basis=_basis(mat["idBase"], num_vertices, "idBase", 80),
        expression_basis=_basis(mat["exBase"], num_vertices, "exBase", 64),
        mean_albedo=torch.from_numpy(mat["meantex"].astype(np.float32).reshape(-1, 3) / 255),
        texture_basis=_basis(mat["texBase"], num_vertices, "texBase", 80) / 255,
        faces=torch.from_numpy(_outward(faces, mean_shape)),
        landmark_index=torch.from_numpy(mat["keypoints"].astype(np.int64).reshape(-1) - 1),
        expression_names=[f"expression_{k:02d}" for k in range(64)],
        texture_names=[f"texture_{k:02d}" for k in range(80)],
        identity_names=[f"identity_{k:02d}" for k in range(80)],
    )
    if model.landmark_index.numel() != 68:
        raise ValueError(f"keypoints must list 68 vertices, got {model.landmark_index.numel()}")
    return model


def _outward(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Reorder triangle corners if needed so that normals of the front face point to +z."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    if np.cross(v1 - v0, v2 - v0)[:, 2].sum() < 0:
        return faces[:, [0, 2, 1]]
    return faces
