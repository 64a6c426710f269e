"""G paints: the masked faces, N3D's guidance and the render of its coefficients in, the
composite out; with the expression edited, or drawn K times from the 3DMM prior.

    results = paint(G, face_model, masked, guidance, seed=0)                 # (N, 3, H, W)
    smiles = paint_edited(G, face_model, masked, guidance, {"jaw_open": 1.5})
    samples = paint_prior_samples(G, face_model, masked[:1], guidance, k=8)  # (8, 3, H, W)
"""

from __future__ import annotations

import torch

from .devices import device_of, in_batches
from .face3d import MorphableModel, render_faces
from .guidance import Guidance
from .models import InpaintingGenerator


@torch.no_grad()
def paint(generator: InpaintingGenerator, face_model: MorphableModel, masked: torch.Tensor,
          guidance: Guidance, seed: int = 0, batch_size: int = 32) -> torch.Tensor:
    """G's composites `(N, 3, H, W)` in [-1, 1] of masked faces `(N, 3, H, W)` with N3D's
    `guidance` (render of its coefficients, its occlusion), on the CPU; noise fixed by `seed`.
    `face_model` on G's device."""
    noise = torch.Generator().manual_seed(seed)

    def paint_batch(images: torch.Tensor, occlusion: torch.Tensor,
                    coeffs: torch.Tensor) -> torch.Tensor:
        render = render_faces(face_model, coeffs, generator.image_size).image
        return generator(images, occlusion, render, noise)

    return in_batches(paint_batch, masked, guidance.occlusion, guidance.coeffs,
                      batch_size=batch_size, device=device_of(generator))


def paint_edited(generator: InpaintingGenerator, face_model: MorphableModel,
                 masked: torch.Tensor, guidance: Guidance, expression: dict[str, float],
                 seed: int = 0) -> torch.Tensor:
    """`paint` with N3D's coefficients edited: the named expression components set to
    `expression` (e.g. {"jaw_open": 1.5}) for every face. `(N, 3, H, W)` in [-1, 1]."""
    edited = face_model.with_expression(guidance.coeffs.to(face_model.device), expression)
    return paint(generator, face_model, masked, Guidance(guidance.occlusion, edited), seed)


def with_prior_expressions(face_model: MorphableModel, coeffs: torch.Tensor, k: int,
                           generator: torch.Generator) -> torch.Tensor:
    """K copies `(k, size)` of one face's coefficients `(size,)` whose expression block is
    drawn from the 3DMM prior (`sample_coeffs`, on the CPU from `generator`)."""
    expression = face_model.layout.slice("expression")
    out = coeffs.reshape(1, -1).repeat(k, 1)
    out[:, expression] = face_model.sample_coeffs(k, generator)[:, expression].to(out)
    return out


def paint_prior_samples(generator: InpaintingGenerator, face_model: MorphableModel,
                        masked: torch.Tensor, guidance: Guidance, k: int,
                        seed: int = 0) -> torch.Tensor:
    """K completions `(K, 3, H, W)` in [-1, 1] of one masked face `(1, 3, H, W)` with its
    N3D `guidance`: the expression block of N3D's coefficients replaced by K draws from the
    3DMM prior (`sample_coeffs`), each painted with its own noise. What the mask hides is
    unknowable; these are K plausible answers. `seed` fixes the draws and the noise."""
    coeffs = with_prior_expressions(face_model, guidance.coeffs[0], k,
                                    torch.Generator().manual_seed(seed))
    occlusion = guidance.occlusion[:1].expand(k, -1, -1, -1)
    return paint(generator, face_model, masked[:1].expand(k, -1, -1, -1),
                 Guidance(occlusion, coeffs), seed)
