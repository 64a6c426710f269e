"""Baselines: what the 3D face model alone explains (the oracle render, the gap it leaves,
the oracle-render paste) and classical inpainting (scikit-image's biharmonic).

The oracle render is the plain 3DMM render (`face3d.render_faces`) of a sample's exact
coefficients: what a perfect N3D would hand the inpainting generator. The synthetic faces
carry an appearance layer the coefficients do not describe (pores, freckles, stubble, sheen,
folds), so the oracle render differs from the clean image even inside the face: that
difference is the gap the generator must close with what it sees around the mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.restoration import inpaint_biharmonic

from .data.loading import dataset_batches
from .face3d import MorphableModel, RenderOutput, load_face_model, render_faces
from .images import from_uint8, quantize, to_uint8
from .metrics import mean_std, psnr, region_mean, ssim_map


@torch.no_grad()
def oracle_render(model: MorphableModel, coeffs: torch.Tensor, image_size: int) -> RenderOutput:
    """The plain 3DMM render of exact coefficients `(B, size)`, on a black background."""
    return render_faces(model, coeffs, image_size)


@torch.no_grad()
def oracle_paste(model: MorphableModel, batch: dict) -> torch.Tensor:
    """The oracle render of each sample's true coefficients pasted into its masked image
    inside the true occlusion: `(B, 3, H, W)` in [-1, 1]. What the 3DMM alone gives a
    generator that copied its render (black where the mask reaches past the face)."""
    masked = batch["masked"]
    render = oracle_render(model, batch["coeffs"], masked.shape[-1]).image
    return torch.where(batch["occlusion"] > 0.5, render, masked)


def biharmonic_inpaint(masked: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
    """scikit-image's biharmonic inpainting of each image `(B, 3, H, W)` in [-1, 1] inside
    `occlusion` `(B, 1, H, W)` in {0, 1}: smooth colour continued in from the hole's border.
    Outside the occlusion the input is kept exactly; a hole over the whole image (nothing to
    continue from) is filled with mid-grey."""
    out = []
    for image, hole in zip(masked, occlusion, strict=True):
        hole = hole[0].cpu().numpy() > 0.5
        if hole.all():
            out.append(torch.zeros_like(image))
            continue
        pixels = to_uint8(image).astype(np.float64) / 255
        filled = inpaint_biharmonic(pixels, hole, channel_axis=-1) if hole.any() else pixels
        out.append(from_uint8(np.round(filled.clip(0, 1) * 255).astype(np.uint8)))
    return torch.where(occlusion > 0.5, torch.stack(out), masked)


@dataclass
class OracleGap:
    """Per-sample quality of the oracle render against the clean image, `(N,)` each.

    face_*: inside the face region (pixels the mesh covers); occluded_*: inside the part of
    the face the mask hides (NaN for samples without a mask). PSNR in dB, SSIM in [-1, 1].
    """

    mask_type: list[str]
    face_psnr: torch.Tensor
    face_ssim: torch.Tensor
    occluded_psnr: torch.Tensor
    occluded_ssim: torch.Tensor

    def table(self) -> list[dict]:
        """One row per mask type and one for all samples: mean, std and count of each metric."""
        kinds = sorted(set(self.mask_type))
        rows = []
        for kind in [*kinds, "all"]:
            chosen = torch.tensor([kind in ("all", t) for t in self.mask_type])
            row: dict = {"mask_type": kind}
            for name in ("face_psnr", "face_ssim", "occluded_psnr", "occluded_ssim"):
                mean, std, count = mean_std(getattr(self, name)[chosen])
                row[name], row[f"{name}_std"], row[f"{name}_n"] = mean, std, count
            rows.append(row)
        return rows


def oracle_gap(dataset: Sequence[dict], model: MorphableModel | None = None,
               batch_size: int = 32, progress: bool = True) -> OracleGap:
    """Compare the oracle render of every sample of `dataset` with its clean image.

    Both are compared as stored images (8-bit levels), so a data set without an appearance
    layer gives infinite PSNR. Use the test split: these are the faces results are judged on.
    """
    model = model if model is not None else load_face_model()
    metrics: dict[str, list[torch.Tensor]] = {name: [] for name in (
        "face_psnr", "face_ssim", "occluded_psnr", "occluded_ssim")}
    kinds: list[str] = []
    for batch in dataset_batches(dataset, batch_size, "oracle render gap", progress):
        clean = batch["clean"]
        out = oracle_render(model, batch["coeffs"], clean.shape[-1])
        render = quantize(out.image.float())
        face = out.face_mask.float()
        hidden = face * batch["occlusion"]
        similarity = ssim_map(render, clean)  # one map serves both regions
        metrics["face_psnr"].append(psnr(render, clean, face))
        metrics["face_ssim"].append(region_mean(similarity, face))
        metrics["occluded_psnr"].append(psnr(render, clean, hidden))
        metrics["occluded_ssim"].append(region_mean(similarity, hidden))
        kinds += batch["mask_type"]
    return OracleGap(kinds, **{name: torch.cat(values).float()
                               for name, values in metrics.items()})
