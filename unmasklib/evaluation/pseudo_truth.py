"""How good the pseudo ground truth of a folder of photos is, measured where the truth is known.

    report = pseudo_truth_accuracy(clean, landmarks, coeffs, face_model)
    report.nme.mean(), report.pose_error.mean(0)

Synthetic faces are written out as PNG photos and read back through `MaskedFaceFolder`, as a
user's photos are: found by YuNet, aligned by their five points, fitted from the mean face.
Their true landmarks and pose, carried into each photo's aligned crop, are what the fitted
faces are held against.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..alignment import transform_points
from ..data.folder import MaskedFaceFolder
from ..face3d import MorphableModel
from ..images import save_image, to_uint8
from ..metrics import landmark_errors


@dataclass
class PseudoTruthReport:
    """nme `(M,)`: landmark error of each fitted face over the inter-ocular distance;
    pose_error `(M, 3)`: |yaw|, |pitch|, |roll| errors in degrees; found: M of `faces` photos
    had a face YuNet found (the others are skipped, as the folder skips them)."""

    nme: torch.Tensor
    pose_error: torch.Tensor
    faces: int

    @property
    def found(self) -> int:
        return len(self.nme)


def landmarks_into_crop(landmarks: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Renderer landmarks `(68, 2)` of a photo (pixel centres at half integers) -> the same
    convention in the crop that `matrix` `(2, 3)` (photo -> crop, centres at integers) makes."""
    photo = landmarks.double().numpy() - 0.5
    return torch.from_numpy(transform_points(photo, matrix) + 0.5)


def pseudo_truth_accuracy(clean: torch.Tensor, landmarks: torch.Tensor, coeffs: torch.Tensor,
                          face_model: MorphableModel,
                          progress: bool = False) -> PseudoTruthReport:
    """Pseudo ground truth of clean synthetic faces `(N, 3, S, S)` in [-1, 1] against their
    true landmarks `(N, 68, 2)` and coefficients `(N, size)`."""
    with tempfile.TemporaryDirectory() as folder:
        for i, image in enumerate(to_uint8(clean)):
            save_image(image, Path(folder) / f"{i:05d}.png")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # faces YuNet misses are counted below instead
            photos = MaskedFaceFolder(folder, clean.shape[-1], model=face_model,
                                      pseudo_truth=True, progress=progress)
        kept = [int(path.stem) for path in photos.files]
    truth = torch.stack([landmarks_into_crop(landmarks[i], matrix)
                         for i, matrix in zip(kept, photos.matrices, strict=True)])
    nme = landmark_errors(photos.truth.landmarks.double(), truth).mean(1)
    angles = face_model.layout.pose(coeffs[kept].double())[0]
    fitted = face_model.layout.pose(photos.truth.coeffs.double())[0]
    # A positive roll turns the eye line by -roll on screen (y down), and the alignment turns
    # it by its own angle: in the crop, the true roll is the photo's minus that angle.
    turn = torch.tensor([math.atan2(m[1, 0], m[0, 0]) for m in photos.matrices])
    expected = angles.clone()
    expected[:, 2] -= turn.double()
    pose_error = (fitted - expected).abs() * 180 / math.pi
    return PseudoTruthReport(nme, pose_error, len(clean))
