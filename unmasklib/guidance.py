"""What frozen N3D says about faces, in the form the inpainting generator G takes it.

    guidance = n3d_guidance(n3d, images, dilation=2, fit=FaceFit.of_profile(profile, model))
    guidance.occlusion, guidance.coeffs        # (N, 1, H, W) in {0, 1}, (N, size)

The occlusion map G gets is N3D's, thresholded at probability 0.5 and grown by a few pixels
(`occlusion_map`): a mask remnant left outside the map is far worse than skin painted over.
The coefficients are N3D's, fitted to the face outside that map when a `FaceFit` is given.
Training G, evaluating it and the Unmasker all take their guidance from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .devices import device_of, in_batches
from .fitting import FaceFit
from .images import dilate
from .models import N3D, N3DOutput


@dataclass
class Guidance:
    """What frozen N3D says about N faces: occlusion `(N, 1, H, W)` in {0, 1} (`occlusion_map`)
    and coefficients `(N, size)`."""

    occlusion: torch.Tensor
    coeffs: torch.Tensor


def occlusion_map(logits: torch.Tensor, dilation: int) -> torch.Tensor:
    """N3D's occlusion as G gets it: logits `(N, 1, H, W)` thresholded at 0 (probability
    0.5), then grown by `dilation` pixels (`images.dilate`); `(N, 1, H, W)` in {0, 1}."""
    return dilate((logits > 0).float(), dilation)


def guidance_of(output: N3DOutput, dilation: int) -> Guidance:
    """N3D's output as G's guidance: its `occlusion_map` and its coefficients as they are."""
    return Guidance(occlusion_map(output.occlusion_logits, dilation), output.coeffs)


@torch.no_grad()
def n3d_outputs(n3d: N3D, images: torch.Tensor, batch_size: int = 32) -> N3DOutput:
    """N3D's occlusion logits `(N, 1, H, W)` and coefficients `(N, size)` for images
    `(N, 3, H, W)` in [-1, 1], run on N3D's device in batches, returned on the CPU."""
    return in_batches(n3d, images, batch_size=batch_size, device=device_of(n3d))


def predict(n3d: N3D, images: torch.Tensor,
            batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlusion probabilities `(N, 1, H, W)` in [0, 1] and coefficients `(N, size)` of images
    `(N, 3, H, W)` in [-1, 1], on the CPU."""
    logits, coeffs = n3d_outputs(n3d, images, batch_size)
    return torch.sigmoid(logits), coeffs


def fitted(guidance: Guidance, images: torch.Tensor, fit: FaceFit | None,
           batch_size: int = 32, progress: bool = False,
           points: torch.Tensor | None = None) -> Guidance:
    """`guidance` with its coefficients fitted to `images` outside its occlusion map
    (`fitting.FaceFit`, with a bar over its batches when `progress`; `points` `(N, 5, 2)`,
    the images' five points where known, anchor it); as given without a `fit`."""
    if fit is None:
        return guidance
    return Guidance(guidance.occlusion,
                    fit(images, guidance.occlusion, guidance.coeffs, points,
                        batch_size=batch_size, progress=progress))


def n3d_guidance(n3d: N3D, images: torch.Tensor, dilation: int, batch_size: int = 32,
                 fit: FaceFit | None = None, progress: bool = False) -> Guidance:
    """N3D's guidance for `(N, 3, H, W)` images in [-1, 1], on the CPU: its occlusion map
    grown by `dilation` pixels and its coefficients, fitted to the face outside that map when
    a `fit` is given (see `fitted`)."""
    return fitted(guidance_of(n3d_outputs(n3d, images, batch_size), dilation), images, fit,
                  batch_size, progress)
