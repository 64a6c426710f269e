"""G paints: the masked faces, N3D's guidance and the render of its coefficients in, the
composite out; with the expression edited, or drawn K times from the 3DMM prior.

The render G follows is first made to agree with the photo (`photo_matched_render`): the
fitted face's colours are right on average but not pixel by pixel (its light is a few
spherical harmonics, its albedo a linear model), so at the occlusion's border the render
jumps against the visible skin. The difference between photo and render on the visible face
is carried smoothly into the occlusion (`images.push_pull_fill`) and added to the render;
what lies off the face (background, neck) is continued from the visible pixels around it.
Which differences count is judged by the visible skin next to the occlusion (`TYPICAL_RING`):
on a photo, hair over the forehead can be most of the visible face.

    results = paint(G, face_model, masked, guidance, seed=0)                 # (N, 3, H, W)
    smiles = paint_edited(G, face_model, masked, guidance, {"jaw_open": 1.5})
    samples = paint_prior_samples(G, face_model, masked[:1], guidance, k=8)  # (8, 3, H, W)
"""

from __future__ import annotations

import torch

from .devices import device_of, in_batches
from .face3d import MorphableModel, RenderOutput, render_faces
from .guidance import Guidance
from .images import dilate, erode, push_pull_fill, region_median
from .models import InpaintingGenerator

# Face pixels this close to the render's silhouette do not say how the photo differs from the
# render: where the photo's outline is a pixel off, they compare skin with background.
SILHOUETTE_MARGIN = 2
# Nor do visible face pixels whose difference from the render is further than this, in some
# channel ([-1, 1] units), from the face's typical difference (its median): a mask remnant
# beside N3D's map, hair over the forehead, the background past a misplaced outline. Filled
# in, they would tint the whole painting. The typical difference itself is the photo's and
# is kept: on a photo the fitted face can be darker or paler all over (the astronaut's by 15
# in L*), and a test against the render itself threw away the very pixels that say so.
AGREEMENT = 0.3
# The typical difference is the median over the visible face within this share of the image's
# side of the occlusion (16 px at 128): the skin beside the mask, which says how the skin
# under it differs from the render. Over the whole visible face, the median was that of the
# astronaut's bangs, which cover most of her visible face, and her cheeks were left out as
# too far from it (her cloth-masked lower face was painted about 16 L* too dark). Chosen on
# Grace Hopper's portrait wearing each mask kind in seven styles (`benchmarks/
# choose_photo_fit.py --rings 1 0.25 0.125 --seeds 0 1 2 3 4 5 6`, cpu networks of d4d2b09):
# painted-mask colour error 3.07 over the whole visible face, 2.72 within 1/4, 2.52 within
# 1/8. On 200 unseen training-split faces (no hair over them) the pasted guide scores the same
# either way: 19.22 dB inside the true occlusion, median ΔE 2.30.
TYPICAL_RING = 1 / 8


def photo_matched_render(render: RenderOutput, masked: torch.Tensor,
                         occlusion: torch.Tensor) -> torch.Tensor:
    """The render `(B, 3, H, W)` in [-1, 1] made to agree with the visible photo: equal to
    `masked` `(B, 3, H, W)` in [-1, 1] outside `occlusion` `(B, 1, H, W)` in {0, 1}; inside
    it, on the face, the render plus the photo-minus-render difference of the visible face
    (`SILHOUETTE_MARGIN` pixels inside its outline, where it is within `AGREEMENT` of its
    median beside the occlusion, `typical_difference`) filled in smoothly; off the face, the
    visible pixels off the face filled in."""
    visible, face = 1 - occlusion, render.face_mask
    difference = masked - render.image
    compared = visible * erode(face, SILHOUETTE_MARGIN)
    typical = typical_difference(difference, compared, occlusion)[..., None, None]
    agrees = ((difference - typical).abs().amax(1, keepdim=True) < AGREEMENT).to(masked)
    offset = push_pull_fill(difference, compared * agrees)
    surround = push_pull_fill(masked, visible * (1 - face))
    inside = torch.where(face > 0.5, render.image + offset, surround).clamp(-1, 1)
    return torch.where(occlusion > 0.5, inside, masked)


def typical_difference(difference: torch.Tensor, compared: torch.Tensor,
                       occlusion: torch.Tensor) -> torch.Tensor:
    """`(B, 3)`: the median photo-minus-render `difference` `(B, 3, H, W)` over the `compared`
    `(B, 1, H, W)` visible face pixels within `TYPICAL_RING` of the image's side of
    `occlusion` `(B, 1, H, W)`; over all of them where none lies that near."""
    ring = max(1, round(TYPICAL_RING * occlusion.shape[-1]))
    near = compared * dilate(occlusion, ring)
    none_near = near.flatten(1).sum(1) == 0
    return region_median(difference, torch.where(none_near[:, None, None, None], compared, near))


def render_guide(generator: InpaintingGenerator, render: RenderOutput, masked: torch.Tensor,
                 occlusion: torch.Tensor) -> torch.Tensor:
    """The render channel `(B, 3, H, W)` `generator` was trained to follow: the
    `photo_matched_render` when it was trained so (`generator.matched_guide`), else the
    render's image as it is."""
    if generator.matched_guide:
        return photo_matched_render(render, masked, occlusion)
    return render.image


def paint_render(generator: InpaintingGenerator, render: RenderOutput, masked: torch.Tensor,
                 occlusion: torch.Tensor, noise: torch.Generator | None = None) -> torch.Tensor:
    """G's composite `(B, 3, H, W)` in [-1, 1] of `masked` faces following `render` (made
    into the guide G was trained on, `render_guide`); `noise` fixes the hidden region's."""
    return generator(masked, occlusion, render_guide(generator, render, masked, occlusion),
                     noise)


@torch.no_grad()
def paint(generator: InpaintingGenerator, face_model: MorphableModel, masked: torch.Tensor,
          guidance: Guidance, seed: int = 0, batch_size: int = 32) -> torch.Tensor:
    """G's composites `(N, 3, H, W)` in [-1, 1] of masked faces `(N, 3, H, W)` with N3D's
    `guidance` (render of its coefficients, its occlusion), on the CPU; noise fixed by `seed`.
    `face_model` on G's device."""
    noise = torch.Generator().manual_seed(seed)

    def paint_batch(images: torch.Tensor, occlusion: torch.Tensor,
                    coeffs: torch.Tensor) -> torch.Tensor:
        render = render_faces(face_model, coeffs, generator.image_size)
        return paint_render(generator, render, images, occlusion, noise)

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
