"""SyntheticMaskedFaces: masked faces rendered from the 3D face model, with exact ground truth.

Sample i of a split depends only on (seed, split, i): its identity, expression, pose, light,
mask and background are drawn from generators derived from those names. Samples are made in
chunks of CHUNK_SIZE consecutive indices, always whole, so batching never changes a byte.
With a `root` folder, chunks are cached there as uncompressed .npz files (lossless, fast to
read) and regenerated when missing or unreadable; without one they are kept in memory.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import Profile
from ..face3d import MorphableModel, load_face_model, render_faces
from ..files import write_atomically
from ..images import from_uint8, paste, to_uint8
from ..progress import progress_bar
from ..seeding import generator_for
from .appearance import Appearance, apply_appearance, draw_appearance
from .backgrounds import random_background
from .masks import (
    MASK_TYPES,
    MaskStyle,
    check_wearable,
    mask_kind_of,
    render_masks,
    sample_mask_style,
)

SPLITS = ("train", "test")
MASK_KINDS = (*MASK_TYPES, "none")
SAMPLES_PER_IDENTITY = 8
TEST_IDENTITY_OFFSET = 1_000_000  # test identities are numbered (and drawn) apart from train
CHUNK_SIZE = 16
# Part of the cache folder's name: bump it whenever a change alters generated samples, so that
# an old cache is never mistaken for the new data.
DATA_VERSION = 2  # 2: the appearance layer (skin detail, stubble, sheen)
# Uniform pose ranges (radians): yaw, pitch, roll; translation std in model units.
POSE_RANGE = (math.radians(30), math.radians(15), math.radians(10))
TRANSLATION_STD = (0.05, 0.05, 0.2)


def wears_mask(mask_types: Sequence[str]) -> torch.Tensor:
    """`(N,)` bool: which of `N` samples, by their `mask_type`, wear a mask ("none": bare)."""
    return torch.tensor([kind != "none" for kind in mask_types], dtype=torch.bool)


def identity_of(split: str, index: int) -> int:
    """Identity id of sample `index`: consecutive samples share one; splits never share."""
    return (TEST_IDENTITY_OFFSET if split == "test" else 0) + index // SAMPLES_PER_IDENTITY


def draw_coefficients(model: MorphableModel, seed: int, split: str, index: int) -> torch.Tensor:
    """The coefficients `(layout.size,)` of sample `index`: pooled identity, lively expression."""
    identity_generator = generator_for(seed, "identity", identity_of(split, index))
    generator = generator_for(seed, split, "sample", index)
    # Expression and light come from the model's sampler; identity, texture and pose are
    # replaced below (pooled identities, uniform pose ranges).
    parts = model.layout.split(model.sample_coeffs(1, generator=generator)[0].cpu().clone())
    sizes = dict(model.layout.blocks)
    parts["identity"] = torch.randn(sizes["identity"], generator=identity_generator)
    parts["texture"] = torch.randn(sizes["texture"], generator=identity_generator)

    expression, names = parts["expression"], model.expression_names
    open_wide = float(torch.rand(1, generator=generator)) < 0.5
    expression[names.index("jaw_open")] *= 1.4 if open_wide else 0.3
    expression[names.index("smile")] *= 1.3
    if float(torch.rand(1, generator=generator)) < 0.2:
        expression[names.index("pucker")] = 1.5 * expression[names.index("pucker")].abs()

    angles = (torch.rand(3, generator=generator) * 2 - 1) * torch.tensor(POSE_RANGE)
    shift = torch.randn(3, generator=generator) * torch.tensor(TRANSLATION_STD)
    parts["pose"] = torch.cat([angles, shift])
    return model.layout.join(parts)


def appearance_of(seed: int, identity: int, image_size: int) -> Appearance:
    """The skin detail and sheen of `identity`: the same in every sample of that person."""
    return draw_appearance(generator_for(seed, "appearance", identity), image_size)


def looks_of(seed: int, split: str, indices: Sequence[int],
             image_size: int) -> dict[str, list | torch.Tensor]:
    """What samples `indices` of `split` look like besides their coefficients: "styles" (one
    `MaskStyle` each, None for no mask), "backgrounds" `(N, 3, H, W)` and "appearances" (their
    identities' skin), as `render_masked_faces` takes them."""
    identities = [identity_of(split, i) for i in indices]
    skins = {person: appearance_of(seed, person, image_size) for person in set(identities)}
    styles, backgrounds = [], []
    for i in indices:
        generator = generator_for(seed, split, "look", i)
        kind = mask_kind_of(i)
        styles.append(None if kind == "none" else sample_mask_style(kind, generator))
        backgrounds.append(random_background(image_size, generator))
    return {"styles": styles, "backgrounds": torch.stack(backgrounds),
            "appearances": [skins[person] for person in identities]}


@torch.no_grad()
def render_masked_faces(model: MorphableModel, coeffs: torch.Tensor,
                        styles: list[MaskStyle | None], backgrounds: torch.Tensor,
                        image_size: int, appearances: list[Appearance] | None = None,
                        ) -> dict[str, torch.Tensor]:
    """Render faces with and without their masks.

    coeffs `(B, size)`; styles: one per face, None for no mask; backgrounds `(B, 3, H, W)`;
    appearances: one per face (skin detail and sheen), None for the plain 3DMM render.
    Returns uint8 `clean` and `masked` `(B, H, W, 3)`, bool `occlusion` `(B, H, W)` (mask
    visible), float `landmarks` `(B, 68, 2)`. `masked` equals `clean` wherever `occlusion` is
    False, exactly: it is composited from the two renders.
    """
    face = render_faces(model, coeffs, image_size, background=backgrounds)
    image = face.image if appearances is None else apply_appearance(face, model, coeffs,
                                                                    appearances)
    clean = to_uint8(image)
    masked = clean.copy()
    occlusion = torch.zeros(len(coeffs), image_size, image_size, dtype=torch.bool)
    worn = [i for i, style in enumerate(styles) if style is not None]
    if worn:
        mask = render_masks(model, coeffs[worn], [styles[i] for i in worn], image_size)
        visible = (mask.depth < face.depth[worn])[:, 0].cpu()
        occlusion[worn] = visible
        masked[worn] = paste(clean[worn], mask.image, visible)
    return {"clean": torch.from_numpy(clean), "masked": torch.from_numpy(masked),
            "occlusion": occlusion, "landmarks": face.landmarks.float().cpu()}


def generate_chunk(model: MorphableModel, seed: int, split: str, chunk: int,
                   image_size: int) -> dict[str, np.ndarray]:
    """Samples `chunk * CHUNK_SIZE ...` as arrays: the on-disk format of the cache."""
    indices = range(chunk * CHUNK_SIZE, (chunk + 1) * CHUNK_SIZE)
    coeffs = torch.stack([draw_coefficients(model, seed, split, i) for i in indices])
    identities = [identity_of(split, i) for i in indices]
    rendered = render_masked_faces(model, coeffs.to(model.dtype), image_size=image_size,
                                   **looks_of(seed, split, indices, image_size))
    return {
        "clean": rendered["clean"].numpy(), "masked": rendered["masked"].numpy(),
        "occlusion": rendered["occlusion"].numpy().astype(np.uint8),
        "coeffs": coeffs.float().numpy(), "landmarks": rendered["landmarks"].numpy(),
        "identity": np.array(identities, dtype=np.int64),
        "mask_type": np.array([MASK_KINDS.index(mask_kind_of(i)) for i in indices], np.int8),
    }


class SyntheticMaskedFaces(Dataset):
    """Masked faces with exact ground truth, deterministic per (seed, split, index).

    Each item is a dict:
      clean, masked  `(3, H, W)` float in [-1, 1]
      occlusion      `(1, H, W)` float in {0, 1}: where the mask is visible
      coeffs         `(237,)` the exact coefficients of the clean face
      landmarks      `(68, 2)` pixel coordinates (x, y), iBUG-68 order
      identity       int (train and test identities are disjoint)
      mask_type      "surgical" | "n95" | "cloth" | "none"
      has_ground_truth  True (False for `MaskedFaceFolder` photos)
    root: cache folder (e.g. `runs/<profile>/data`); None generates in memory, on first use.
    Chunks read or generated stay in memory for the data set's lifetime (about 0.4 MB per
    sample at 256x256, 0.1 MB at 128x128), and each DataLoader worker holds its own.
    """

    def __init__(self, split: str = "train", size: int = 800, image_size: int = 256,
                 seed: int = 0, root: str | Path | None = None,
                 model: MorphableModel | None = None, progress: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.split, self.size, self.image_size, self.seed = split, size, image_size, seed
        self.model = model if model is not None else load_face_model()
        check_wearable(self.model)
        self.progress = progress
        self.folder = (None if root is None
                       else Path(root) / f"{split}-seed{seed}-{image_size}px-v{DATA_VERSION}")
        self._chunks: dict[int, dict[str, np.ndarray]] = {}
        if self.folder is not None:
            self.prepare()

    @classmethod
    def of_run(cls, profile: Profile, folder: str | Path, split: str, size: int,
               progress: bool = True) -> SyntheticMaskedFaces:
        """`size` faces of `split` at the profile's image size and seed, cached in the run
        folder's `data/`: the one cache every notebook and phase of a run shares."""
        return cls(split, size=size, image_size=profile.image_size, seed=profile.seed,
                   root=Path(folder) / "data", progress=progress)

    @property
    def num_chunks(self) -> int:
        return -(-self.size // CHUNK_SIZE)

    def __len__(self) -> int:
        return self.size

    def _chunk_path(self, chunk: int) -> Path:
        assert self.folder is not None
        return self.folder / f"chunk{chunk:05d}.npz"

    def _read_chunk(self, chunk: int) -> dict[str, np.ndarray] | None:
        """A cached chunk, or None when it is missing, unreadable or of another shape."""
        path = self._chunk_path(chunk)
        try:
            with np.load(path) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        expected = (CHUNK_SIZE, self.image_size, self.image_size, 3)
        ok = all(key in arrays for key in ("clean", "masked", "occlusion", "coeffs",
                                           "landmarks", "identity", "mask_type"))
        return arrays if ok and arrays["clean"].shape == expected else None

    def _write_chunk(self, chunk: int, arrays: dict[str, np.ndarray]) -> None:
        # Two processes may fill the same chunk at once: each writes whole files.
        write_atomically(self._chunk_path(chunk), lambda file: np.savez(file, **arrays),
                         suffix=".npz")

    def prepare(self) -> None:
        """Load every chunk, generating (and caching, with a root) the missing ones, with a
        progress bar."""
        for chunk in progress_bar(range(self.num_chunks), desc=f"preparing {self.split} faces",
                          unit="chunk", disable=not self.progress):
            self._chunk(chunk)

    def _chunk(self, chunk: int) -> dict[str, np.ndarray]:
        """Chunk `chunk` from memory, else from the cache, else freshly generated (and cached)."""
        if chunk not in self._chunks:
            arrays = None if self.folder is None else self._read_chunk(chunk)
            if arrays is None:
                arrays = generate_chunk(self.model, self.seed, self.split, chunk,
                                        self.image_size)
                if self.folder is not None:
                    self._write_chunk(chunk, arrays)
            self._chunks[chunk] = arrays
        return self._chunks[chunk]

    def __getitem__(self, index: int) -> dict:
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} samples")
        index %= self.size
        arrays = self._chunk(index // CHUNK_SIZE)
        k = index % CHUNK_SIZE
        return {
            "clean": from_uint8(arrays["clean"][k]),
            "masked": from_uint8(arrays["masked"][k]),
            "occlusion": torch.from_numpy(arrays["occlusion"][k]).float()[None],
            # Copies: a caller changing a sample in place must not change the cache.
            "coeffs": torch.tensor(arrays["coeffs"][k]),
            "landmarks": torch.tensor(arrays["landmarks"][k]),
            "identity": int(arrays["identity"][k]),
            "mask_type": MASK_KINDS[int(arrays["mask_type"][k])],
            "has_ground_truth": True,
        }


def mean_coefficients(model: MorphableModel, seed: int, split: str, count: int) -> torch.Tensor:
    """The mean `(size,)` of the coefficients of samples 0 .. count-1 of `split`: the "mean
    face" of a data set, drawn as `draw_coefficients` draws them (the cached samples hold
    the same numbers), so no image is read or rendered."""
    return torch.stack([draw_coefficients(model, seed, split, i) for i in range(count)]).mean(0)
