"""MaskedFaceFolder: a user's own aligned face photos, with synthetic masks drawn on them.

Photos carry no 3D ground truth, so the mask is placed with a canonical template instead:
the embedded model's mean face, seen from the front, is scaled and shifted so that its eye
centres land where aligned crops (FFHQ / CelebA-HQ style) put them, and the same 3D mask
meshes as in `SyntheticMaskedFaces` are rendered there, shaded by a default light.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..alignment import alignment_to, mask_to_photo, scale_of, warp_to_photo
from ..face3d import MorphableModel, load_face_model, posed_vertices, project
from ..images import from_uint8, load_rgb, paste, square_resize, to_uint8
from ..seeding import generator_for
from .masks import MaskStyle, check_wearable, mask_kind_of, render_masks, sample_mask_style

# Eye centres (x, y) in aligned crops, as fractions of the image side.
ALIGNED_EYES = ((0.37, 0.46), (0.63, 0.46))
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)  # iBUG-68 (the subject's right and left)


def template_similarity(model: MorphableModel, image_size: int) -> tuple[float, torch.Tensor]:
    """Scale and shift `(2,)` that map the mean face's frontal screen to an aligned crop."""
    landmarks = project(posed_vertices(model, model.zero_coeffs(1), model.mean_shape[None]),
                        image_size, image_size)[0, model.landmark_index, :2]
    source = torch.stack([landmarks[RIGHT_EYE].mean(0), landmarks[LEFT_EYE].mean(0)])
    target = torch.tensor(ALIGNED_EYES).to(source) * image_size
    scale = float((target[1] - target[0]).norm() / (source[1] - source[0]).norm())
    return scale, target.mean(0) - scale * source.mean(0)


@torch.no_grad()
def render_template_masks(model: MorphableModel, styles: list[MaskStyle], image_size: int,
                          similarity: tuple[float, torch.Tensor] | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks on the aligned template: image `(B, 3, H, W)` in [-1, 1], coverage `(B, H, W)`.

    similarity: `template_similarity(model, image_size)`, computed here when not given.
    """
    if similarity is None:
        similarity = template_similarity(model, image_size)
    out = render_masks(model, model.zero_coeffs(len(styles)), styles, image_size,
                       similarity=similarity)
    return out.image, out.face_mask[:, 0] > 0


class MaskedFaceFolder(Dataset):
    """Every readable image under `root` (recursively), as a masked-face sample.

    Items have the keys of `SyntheticMaskedFaces`: clean, masked `(3, H, W)` in [-1, 1],
    occlusion `(1, H, W)` in {0, 1}, identity (-1: unknown), mask_type; coeffs `(237,)` and
    landmarks `(68, 2)` are NaN and `has_ground_truth` is False, so losses that need them can
    skip these samples. The mask of item i depends only on (seed, i). Every file is decoded
    once when the folder is opened, so that a broken one is reported then, not mid-training.
    """

    def __init__(self, root: str | Path, image_size: int = 256, seed: int = 0,
                 model: MorphableModel | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"image folder {root} does not exist or is not a folder")
        self.image_size, self.seed = image_size, seed
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.model = model if model is not None else load_face_model()
        check_wearable(self.model)
        self.similarity = template_similarity(self.model, image_size)  # the same for every item
        self.files: list[Path] = []
        unreadable: list[str] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                load_rgb(path)
                self.files.append(path)
            except ValueError:
                unreadable.append(str(path.relative_to(root)))
        if unreadable:
            warnings.warn(f"skipped {len(unreadable)} unreadable file(s) in {root}: "
                          f"{', '.join(unreadable)}", stacklevel=2)
        if not self.files:
            raise ValueError(f"no readable images in {root}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        photo = square_resize(load_rgb(self.files[index]), self.image_size)
        kind = mask_kind_of(index)
        clean = from_uint8(photo)
        masked, occlusion = clean, torch.zeros(self.image_size, self.image_size, dtype=torch.bool)
        if kind != "none":
            style = sample_mask_style(kind, generator_for(self.seed, "folder", index))
            mask, occlusion = render_template_masks(self.model, [style], self.image_size,
                                                    self.similarity)
            occlusion = occlusion[0].cpu()
            masked = from_uint8(paste(photo[None], mask, occlusion[None])[0])
        return {
            "clean": clean, "masked": masked, "occlusion": occlusion.float()[None],
            "coeffs": torch.full((self.model.layout.size,), torch.nan),
            "landmarks": torch.full((68, 2), torch.nan),
            "identity": -1, "mask_type": kind, "has_ground_truth": False,
        }



@torch.no_grad()
def mask_photo(photo: np.ndarray, eyes: np.ndarray, kind: str = "surgical", seed: int = 0,
               model: MorphableModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic mask of `kind` worn by the face in photo `(H, W, 3)` uint8, whose eye
    centres are `eyes` `(2, 2)` (x, y pixels): the mask is rendered on the mean face in the
    canonical crop (`alignment.canonical_points`) and carried into the photo. Returns the
    masked photo `(H, W, 3)` uint8 and where the mask covers it `(H, W)` bool."""
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
