"""MaskedFaceFolder: a user's own face photos, aligned by their five points, with synthetic
masks drawn on them, and (optionally) pseudo ground truth from a 3D fit.

Each photo is aligned as `find_face=True` aligns one (`alignment.find_face_points`: YuNet's
five points onto the canonical crop), so any photo with a face will do, not only crops in one
dataset's template. Photos carry no 3D ground truth; the paper distils a 3D reconstructor's
coefficients instead, and so do we, with the analysis-by-synthesis fit (`fitting.FaceFit`,
the whole face visible, from the mean face, which the alignment has already put in place):
`pseudo_ground_truth`. With it, a photo's sample carries coefficients and landmarks and its
masks are worn by its own fitted 3D face, so phase 1 and 2 train on it with every loss term;
without it, masks sit on the mean face and the 3D terms skip the photo.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..alignment import (
    FaceNotFoundError,
    alignment_to,
    find_face_points,
    mask_to_photo,
    scale_of,
    transform_points,
    warp_to_crop,
    warp_to_photo,
)
from ..face3d import MorphableModel, load_face_model, render_faces
from ..fitting import FaceFit
from ..images import from_uint8, load_rgb, paste, to_uint8
from ..seeding import generator_for
from .masks import check_wearable, mask_kind_of, render_masks, sample_mask_style

# Bumped when what the cache holds, or how it is made, changes.
TRUTH_VERSION = 2
# The pseudo ground truth's fit: pose and light alone first, then every block (Adam steps),
# anchored to YuNet's five points with POINT_WEIGHT. Chosen on 40 unseen training-split
# faces (train indices 8000-8039) at 128 px: landmark NME mean / median 0.108 / 0.031
# without the anchor, 0.067 / 0.027 at 0.1, 0.072 / 0.027 at 0.3, 0.065 / 0.052 at 1 (YuNet's
# points sit 0.18 eye distances from ours on synthetic faces: a strong anchor pulls there).
TURN_STEPS, SHAPE_STEPS = 60, 140
FIT_LR, FIT_PRIOR_WEIGHT, POINT_WEIGHT = 0.05, 3e-4, 0.1


@dataclass
class PseudoTruth:
    """The fitted 3D faces of a folder's photos: coeffs `(N, size)`, landmarks `(N, 68, 2)`
    (renderer pixels of the aligned crop)."""

    coeffs: torch.Tensor
    landmarks: torch.Tensor


class MaskedFaceFolder(Dataset):
    """Every image under `root` (recursively) in which YuNet finds a face, as a masked-face
    sample; unreadable files and photos without a face are reported (a warning) and skipped.

    Items have the keys of `SyntheticMaskedFaces`: clean, masked `(3, H, W)` in [-1, 1] (the
    photo aligned by its five points), occlusion `(1, H, W)` in {0, 1}, identity (-1:
    unknown), mask_type. With `pseudo_truth` (`cache`: a file it is kept in between runs),
    coeffs `(237,)` and landmarks `(68, 2)` are the fitted face's and `has_ground_truth` is
    True; without, they are NaN and it is False, so losses that need them
    skip these samples. The mask of item i depends only on (seed, i). Every photo is decoded
    and its face found once, when the folder is opened, so a bad one is reported then.
    """

    def __init__(self, root: str | Path, image_size: int = 256, seed: int = 0,
                 model: MorphableModel | None = None, pseudo_truth: bool = False,
                 cache: str | Path | None = None, progress: bool = False) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"image folder {root} does not exist or is not a folder")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.image_size, self.seed = image_size, seed
        self.model = model if model is not None else load_face_model()
        check_wearable(self.model)
        self.files: list[Path] = []
        self.matrices: list[np.ndarray] = []  # photo -> aligned crop, one per file
        self.points: list[np.ndarray] = []    # YuNet's five points in the aligned crop
        skipped: dict[str, list[str]] = {"unreadable": [], "without a face": []}
        paths = sorted(p for p in root.rglob("*") if p.is_file())
        for path in tqdm(paths, desc="finding faces", disable=not progress):
            try:
                points = find_face_points(load_rgb(path))
            except FaceNotFoundError:
                skipped["without a face"].append(str(path.relative_to(root)))
                continue
            except ValueError:
                skipped["unreadable"].append(str(path.relative_to(root)))
                continue
            matrix = alignment_to(self.model, image_size, points)
            self.files.append(path)
            self.matrices.append(matrix)
            self.points.append(transform_points(points, matrix))
        for why, names in skipped.items():
            if names:
                warnings.warn(f"skipped {len(names)} file(s) {why} in {root}: "
                              f"{', '.join(names)}", stacklevel=2)
        if not self.files:
            raise ValueError(f"no readable images with a face in {root}")
        self.truth = (self._pseudo_truth(cache, root, progress) if pseudo_truth else None)

    def __len__(self) -> int:
        return len(self.files)

    def aligned(self, index: int) -> np.ndarray:
        """Photo `index` aligned to the canonical crop, `(S, S, 3)` uint8."""
        return warp_to_crop(load_rgb(self.files[index]), self.matrices[index], self.image_size)

    def _pseudo_truth(self, cache: str | Path | None, root: Path,
                      progress: bool) -> PseudoTruth:
        key = {"version": TRUTH_VERSION, "image_size": self.image_size,
               "files": [(str(p.relative_to(root)), p.stat().st_size) for p in self.files],
               "matrices": [m.tolist() for m in self.matrices]}
        if cache is not None and Path(cache).is_file():
            kept = torch.load(cache, weights_only=True)
            if kept["key"] == key:
                return PseudoTruth(kept["coeffs"], kept["landmarks"])
        crops = torch.stack([from_uint8(self.aligned(i)) for i in range(len(self))])
        points = torch.from_numpy(np.stack(self.points)).float()
        truth = pseudo_ground_truth(self.model, crops, points, progress)
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            torch.save({"key": key, "coeffs": truth.coeffs, "landmarks": truth.landmarks},
                       cache)
        return truth

    def __getitem__(self, index: int) -> dict:
        photo = self.aligned(index)
        size, layout = self.image_size, self.model.layout
        kind = mask_kind_of(index)
        face = (self.truth.coeffs[index][None] if self.truth is not None
                else self.model.zero_coeffs(1).cpu())
        clean = from_uint8(photo)
        masked, occlusion = clean, torch.zeros(size, size, dtype=torch.bool)
        if kind != "none":
            style = sample_mask_style(kind, generator_for(self.seed, "folder", index))
            with torch.no_grad():
                mask = render_masks(self.model, face.to(self.model.device, self.model.dtype),
                                    [style], size)
            occlusion = (mask.face_mask[0, 0] > 0).cpu()
            masked = from_uint8(paste(photo[None], mask.image.cpu(), occlusion[None])[0])
        known = self.truth is not None
        return {
            "clean": clean, "masked": masked, "occlusion": occlusion.float()[None],
            "coeffs": (self.truth.coeffs[index].clone() if known
                       else torch.full((layout.size,), torch.nan)),
            "landmarks": (self.truth.landmarks[index].clone() if known
                          else torch.full((68, 2), torch.nan)),
            "identity": -1, "mask_type": kind, "has_ground_truth": known,
        }


@torch.no_grad()
def pseudo_ground_truth(model: MorphableModel, crops: torch.Tensor,
                        points: torch.Tensor | None = None,
                        progress: bool = False) -> PseudoTruth:
    """The 3D faces fitted to aligned, unmasked crops `(N, 3, S, S)` in [-1, 1], every pixel
    visible, from the mean face: `TURN_STEPS` steps of pose and light alone (from the front, a
    turned face otherwise settles in a wrong depth and shape that its colours make up for),
    then `SHAPE_STEPS` of every block; `points` `(N, 5, 2)`, the crops' five points as YuNet
    found them, anchor the fit (`POINT_WEIGHT`). Landmarks are the fitted faces' projections."""
    size = crops.shape[-1]
    coeffs = model.zero_coeffs(len(crops)).cpu()
    nothing_hidden = torch.zeros(len(crops), 1, size, size)
    for steps, blocks in ((TURN_STEPS, ("pose", "lighting")), (SHAPE_STEPS, None)):
        fit = FaceFit(model, size, steps, FIT_LR, FIT_PRIOR_WEIGHT, blocks, POINT_WEIGHT)
        coeffs = fit(crops, nothing_hidden, coeffs, points, progress=progress)
    landmarks = render_faces(model, coeffs.to(model.device, model.dtype),
                             crops.shape[-1]).landmarks.cpu()
    return PseudoTruth(coeffs.float(), landmarks.float())


@torch.no_grad()
def mask_photo(photo: np.ndarray, eyes: np.ndarray, kind: str = "surgical", seed: int = 0,
               model: MorphableModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic mask of `kind` worn by the face in photo `(H, W, 3)` uint8, whose eye
    centres are `eyes` `(2, 2)` (or five points `(5, 2)`; x, y pixels): the mask is rendered on
    the mean face in the canonical crop (`alignment.canonical_points`) and carried into the
    photo. Returns the masked photo `(H, W, 3)` uint8 and where the mask covers it `(H, W)`
    bool."""
    model = model if model is not None else load_face_model()
    check_wearable(model)
    height, width = photo.shape[:2]
    # Render at about the photo's own resolution of the face, so edges stay sharp.
    probe = alignment_to(model, 256, eyes)
    size = int(np.clip(256 / scale_of(probe), 64, 1024))
    matrix = alignment_to(model, size, eyes)
    style = sample_mask_style(kind, generator_for(seed, "photo", 0))
    rendered = render_masks(model, model.zero_coeffs(1), [style], size)
    colour = warp_to_photo(to_uint8(rendered.image[0]), matrix, height, width)
    covered = mask_to_photo(rendered.face_mask[0, 0].cpu().numpy() > 0, matrix, height, width)
    return np.where(covered[..., None], colour, photo), covered
