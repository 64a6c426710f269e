"""What frozen N3D says about faces, in the form the inpainting generator G takes it.

    dilation, band = profile.painting_map()
    guidance = n3d_guidance(n3d, images, dilation, fit=FaceFit.of_profile(profile, model),
                            band=band)
    guidance.occlusion, guidance.coeffs        # (N, 1, H, W) in {0, 1}, (N, size)

The occlusion map G gets is N3D's, thresholded at probability 0.5, snapped to the colour
edges of what it covers where the images are at hand (`snap_to_colour_edges`) and grown by a
few pixels (`occlusion_map`): a mask remnant left outside the map is far worse than skin
painted over. The coefficients are N3D's, fitted to the face outside that map when a
`FaceFit` is given. Training G, evaluating it and the Unmasker all take their guidance from
here (G trains on the map grown only: snapping it is for use).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .devices import device_of, in_batches
from .fitting import FaceFit
from .images import dilate, to_uint8
from .models import N3D, N3DOutput

# GrabCut's rounds of re-estimating its colour models and cutting again (not tuned).
SNAP_ITERATIONS = 3
# The cut runs in the box of the map grown by this many bands: wide enough that, around a map
# that caught only a strip of the mask, the mask's colour is a minor part of the
# surroundings' colour model (at 2 bands the astronaut's N95 was cut away as surroundings:
# 0.2 % of it covered, at 4 bands 83 %; on the training-split faces and Grace Hopper's
# portrait 2 and 4 differ by < 0.1 % of the mask), and a large photo costs what its mask's
# area does, not the photo's.
BOX_BANDS = 4
# Cuts in a row, each from the last one's map, until the map stops moving: one cut moves the
# border by at most the band, and a map that caught only a strip of a mask needs more. On the
# 200 training-split faces of `benchmarks/choose_dilation.py` (cpu run of 061cd24's code), mask
# left 0.33 % after one cut and 0.28 % after up to 3, skin painted needlessly 13.5 / 13.9 % of
# the mask's size; on Grace Hopper's portrait the same cover at 1 and 3 (`astronaut_masks.py
# --photo hopper --rounds 1 3`: each mask already stops moving after the first cut).
SNAP_ROUNDS = 3


@dataclass
class Guidance:
    """What frozen N3D says about N faces: occlusion `(N, 1, H, W)` in {0, 1} (`occlusion_map`)
    and coefficients `(N, size)`."""

    occlusion: torch.Tensor
    coeffs: torch.Tensor


def snap_to_colour_edges(pixels: np.ndarray, occlusion: np.ndarray, band: int,
                         rounds: int | None = None,
                         mask_free: np.ndarray | None = None) -> np.ndarray:
    """An occlusion map `(H, W)` bool moved onto the colour edges of what it covers in
    `pixels` `(H, W, 3)` uint8 RGB, within `band` pixels of its border per cut, for up to
    `rounds` cuts (default `SNAP_ROUNDS`, read when called), each from the last one's map,
    until it stops moving; `(H, W)` bool.

    N3D learned masks from synthetic faces only, and on a photo its map stops short of parts
    of the mask (a side, a corner) or reaches onto the eyes or a collar. The mask itself is
    plain to see: one colour model for what the map covers and one for its surroundings, and
    a graph cut that follows colour edges (OpenCV's GrabCut, Rother et al. 2004). Pixels
    deeper than `band` inside the map stay in it (in a thinner map, its deepest pixels),
    those further than `band` outside stay out, so a cut can only move the border; a cut
    that keeps less than half of the map gives the map back. Deterministic (OpenCV's random
    generator is seeded). `mask_free` `(H, W)` bool, optional: where a mask cannot be (e.g.
    `alignment.above_the_eyes`), taken out of the map and given to the cut as sure
    surroundings. band = 0, an empty map or a full one: the map as it is (less `mask_free`).
    """
    rounds = SNAP_ROUNDS if rounds is None else rounds
    if band < 0 or rounds < 1:
        raise ValueError(f"need band >= 0 pixels and rounds >= 1, got {band} and {rounds}")
    if pixels.dtype != np.uint8 or pixels.shape != (*occlusion.shape, 3):
        raise ValueError(f"pixels must be uint8 {(*occlusion.shape, 3)} like the map, got "
                         f"{pixels.dtype} {pixels.shape}")
    snapped = occlusion & ~mask_free if mask_free is not None else occlusion.copy()
    if band == 0 or not snapped.any() or snapped.all():
        return snapped
    for _ in range(rounds):
        moved = cut_along_colour_edges(pixels, snapped, band, mask_free)
        if (moved == snapped).all():
            break
        snapped = moved
    return snapped


def cut_along_colour_edges(pixels: np.ndarray, occlusion: np.ndarray, band: int,
                           mask_free: np.ndarray | None = None) -> np.ndarray:
    """One cut of `snap_to_colour_edges`: a non-empty map `(H, W)` bool whose border moves
    by at most `band` > 0 pixels onto the colour edges of `pixels` `(H, W, 3)` uint8 RGB,
    never into `mask_free` `(H, W)` bool."""
    square = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    rows, cols = np.nonzero(cv2.dilate(occlusion.astype(np.uint8), square, iterations=BOX_BANDS))
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    inside, covered = occlusion[box], occlusion[box].astype(np.uint8)
    labels = np.full(inside.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(covered, square) > 0] = cv2.GC_PR_BGD
    labels[inside] = cv2.GC_PR_FGD
    # Sure foreground: deeper than `band` inside the map, or, in a map too thin for that, its
    # deepest pixels, so that the cut cannot empty a map that caught only a piece of the mask.
    depth = cv2.distanceTransform(np.pad(covered, 1, mode="edge"), cv2.DIST_C, 3)[1:-1, 1:-1]
    labels[depth > min(band, depth.max() - 1)] = cv2.GC_FGD
    if mask_free is not None:
        labels[mask_free[box]] = cv2.GC_BGD
    cv2.setRNGSeed(0)  # GrabCut starts its colour models from k-means
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(pixels[box][..., ::-1]), labels, None, *models,
                SNAP_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    snapped = np.zeros_like(occlusion)
    snapped[box] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    # A cut that keeps less than half of the map found no colour edge to follow (the mask's
    # colour as common around the map as in it): the map it started from is the better guess.
    if (snapped & occlusion).sum() < occlusion.sum() / 2:
        return occlusion.copy()
    return snapped


def occlusion_map(logits: torch.Tensor, dilation: int, images: torch.Tensor | None = None,
                  band: int = 0) -> torch.Tensor:
    """N3D's occlusion as G gets it: logits `(N, 1, H, W)` thresholded at 0 (probability
    0.5), snapped to the colour edges of `images` `(N, 3, H, W)` in [-1, 1] within `band`
    pixels when they are given (`snap_to_colour_edges`), then grown by `dilation` pixels
    (`images.dilate`); `(N, 1, H, W)` in {0, 1}."""
    found = logits > 0
    if band and images is not None:
        found = torch.from_numpy(np.stack([
            snap_to_colour_edges(pixels, covered[0].cpu().numpy(), band)
            for pixels, covered in zip(to_uint8(images), found, strict=True)]))[:, None]
    return dilate(found.float().to(logits.device), dilation)


def guidance_of(output: N3DOutput, dilation: int, images: torch.Tensor | None = None,
                band: int = 0) -> Guidance:
    """N3D's output as G's guidance: its `occlusion_map` (snapped to `images` within `band`
    pixels where given) and its coefficients as they are."""
    return Guidance(occlusion_map(output.occlusion_logits, dilation, images, band),
                    output.coeffs)


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
                 fit: FaceFit | None = None, progress: bool = False,
                 band: int = 0) -> Guidance:
    """N3D's guidance for `(N, 3, H, W)` images in [-1, 1], on the CPU: its occlusion map
    (snapped to the images' colour edges within `band` pixels, see `occlusion_map`) grown by
    `dilation` pixels and its coefficients, fitted to the face outside that map when a `fit`
    is given (see `fitted`)."""
    return fitted(guidance_of(n3d_outputs(n3d, images, batch_size), dilation, images, band),
                  images, fit, batch_size, progress)
