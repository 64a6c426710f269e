"""Unmasker: a trained run as one object that removes masks and lets you steer the result.

    u = Unmasker.from_run("runs/cpu")              # N3D, the generator and the face model
    r = u.unmask("photo.png", seed=0)              # r.image (H, W, 3) uint8: the input's size
    r = u.unmask(image, expression={"jaw_open": 1.5}, pose={"yaw": 0.2}, seed=0)
    rs = u.sample(image, k=8, seed=0)              # hidden expression drawn from the 3DMM prior
    s = u.session(image)                           # N3D runs once here ...
    s.update(expression={"jaw_open": 1.0})         # ... each slider move only renders and paints

The networks see square crops of the profile's size: an input of another shape is padded to a
square (edges repeated), resized, unmasked, and the painting is resized back and pasted into
the input inside the (resized) occlusion, so pixels outside it are the input's, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import PROFILES, Profile, get_profile
from .face3d import MorphableModel, load_face_model, render_faces
from .images import load_rgb, to_uint8
from .models.inpainting import InpaintingGenerator
from .phase1 import load_n3d
from .phase2 import Guidance, load_inpainting, n3d_guidance, with_prior_expressions
from .training import pick_device

POSE_NAMES = ("yaw", "pitch", "roll")


@dataclass
class UnmaskResult:
    """image `(H, W, 3)` uint8 at the input's size; occlusion `(H, W)` bool, where the mask
    was found and painted over; render `(S, S, 3)` uint8, the 3D face G followed, at the
    working size S; coeffs `(size,)`: its 3DMM coefficients."""

    image: np.ndarray
    occlusion: np.ndarray
    render: np.ndarray
    coeffs: torch.Tensor


def as_rgb_array(image: str | Path | Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """Any accepted input as uint8 RGB `(H, W, 3)`: a path (grey, RGBA, 16-bit converted), a
    PIL image, an `(H, W)`, `(H, W, 3)` or `(H, W, 4)` uint8 array, or a `(3, H, W)` tensor in
    [-1, 1]. Raises ValueError naming what is wrong, FileNotFoundError for a missing file."""
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise FileNotFoundError(f"no image file at {image}")
        return load_rgb(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"a tensor image must be (3, H, W) in [-1, 1], got "
                             f"{tuple(image.shape)}")
        if not torch.isfinite(image).all():
            raise ValueError("the image tensor contains NaN or infinite values")
        return to_uint8(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"an image array must be uint8, got {image.dtype}")
        if image.ndim == 2:
            return np.repeat(image[..., None], 3, axis=2)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return np.ascontiguousarray(image[..., :3])
        raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got "
                         f"{image.shape}")
    raise ValueError(f"cannot read an image from a {type(image).__name__}")


def to_working_square(pixels: np.ndarray, size: int) -> torch.Tensor:
    """uint8 `(H, W, 3)` padded to a square (edges repeated, image centred) and resized to
    `(1, 3, size, size)` in [-1, 1]."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = np.pad(pixels, ((top, side - height - top), (left, side - width - left), (0, 0)),
                    mode="edge")
    resized = np.asarray(Image.fromarray(square).resize((size, size),
                                                        Image.Resampling.LANCZOS))
    return torch.from_numpy(resized.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def from_working_square(image: torch.Tensor, height: int, width: int,
                        mode: str) -> torch.Tensor:
    """The inverse of `to_working_square` for `(1, C, S, S)`: resized to the padded square
    (`mode` "bilinear" for pictures, "nearest" for masks) and cropped to `(1, C, H, W)`."""
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    options = {"align_corners": False} if mode == "bilinear" else {}
    square = F.interpolate(image, size=(side, side), mode=mode, **options)
    return square[..., top:top + height, left:left + width]


def edit_coeffs(face_model: MorphableModel, coeffs: torch.Tensor,
                expression: dict[str, float] | None = None,
                pose: dict[str, float] | None = None) -> torch.Tensor:
    """`coeffs` `(B, size)` with named expression components set to `expression` values and
    the head's yaw / pitch / roll (radians) to `pose` values; unknown names raise KeyError."""
    edited = face_model.with_expression(coeffs, expression or {})
    unknown = [name for name in (pose or {}) if name not in POSE_NAMES]
    if unknown:
        raise KeyError(f"no pose angle {unknown[0]!r}; angles are {list(POSE_NAMES)}")
    block = "pose" if "pose" in face_model.layout.names else "rotation"
    start = face_model.layout.slice(block).start
    for name, value in (pose or {}).items():
        edited[:, start + POSE_NAMES.index(name)] = value
    return edited


class UnmaskSession:
    """One input prepared for editing: N3D has run; `update` renders and paints only.

    pixels `(H, W, 3)` uint8: the input; occlusion `(H, W)` bool: where it is painted (N3D's
    map, or the one given); working `(1, 3, S, S)` and guidance: what the networks see."""

    def __init__(self, unmasker: Unmasker, pixels: np.ndarray,
                 occlusion: np.ndarray | None = None) -> None:
        self.unmasker, self.pixels = unmasker, pixels
        size = unmasker.image_size
        self.working = to_working_square(pixels, size)
        self.guidance = n3d_guidance(unmasker.n3d, self.working, unmasker.dilation)
        height, width = pixels.shape[:2]
        if occlusion is None:
            found = from_working_square(self.guidance.occlusion, height, width, "nearest")
            self.occlusion = found[0, 0].numpy() > 0.5
        else:
            if occlusion.shape != (height, width):
                raise ValueError(f"occlusion must be ({height}, {width}) like the image, got "
                                 f"{occlusion.shape}")
            self.occlusion = occlusion.astype(bool)
            mask = np.repeat(self.occlusion[..., None].astype(np.uint8) * 255, 3, axis=2)
            working = to_working_square(mask, size)[:, :1] > 0
            self.guidance = Guidance(working.float(), self.guidance.coeffs)

    @torch.no_grad()
    def update(self, expression: dict[str, float] | None = None,
               pose: dict[str, float] | None = None, seed: int = 0,
               coeffs: torch.Tensor | None = None) -> UnmaskResult:
        """The result with N3D's coefficients edited (or `coeffs` `(size,)` as given); `seed`
        fixes the noise G paints from."""
        u = self.unmasker
        chosen = (edit_coeffs(u.face_model, self.guidance.coeffs.to(u.device), expression, pose)
                  if coeffs is None else coeffs.reshape(1, -1).to(u.device))
        render = render_faces(u.face_model, chosen, u.image_size).image
        painted = u.generator(self.working.to(u.device), self.guidance.occlusion.to(u.device),
                              render, torch.Generator().manual_seed(seed)).cpu()
        height, width = self.pixels.shape[:2]
        full = from_working_square(painted, height, width, "bilinear")
        image = self.pixels.copy()
        image[self.occlusion] = to_uint8(full[0])[self.occlusion]
        return UnmaskResult(image, self.occlusion.copy(), to_uint8(render[0].cpu()),
                            chosen[0].cpu())


class Unmasker:
    """The trained N3D and inpainting generator of one run, ready to unmask images."""

    def __init__(self, n3d: torch.nn.Module, generator: InpaintingGenerator,
                 face_model: MorphableModel, dilation: int) -> None:
        self.n3d, self.generator, self.dilation = n3d, generator, dilation
        self.device = next(generator.parameters()).device
        self.face_model = face_model.to(self.device)
        self.image_size = generator.image_size

    @classmethod
    def from_run(cls, run_folder: str | Path, profile: Profile | str | None = None,
                 device: str | torch.device | None = None) -> Unmasker:
        """The networks of `run_folder` (e.g. "runs/cpu"), made with `profile` (default: the
        folder's name when it is a profile's, else `$UNMASK_PROFILE` or cpu). A missing
        checkpoint raises FileNotFoundError naming the notebook or call that makes it."""
        folder = Path(run_folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no run folder at {folder}: make one with `make demo` or "
                                    "the notebooks 02-04")
        if profile is None:
            profile = folder.name if folder.name in PROFILES else None
        profile = profile if isinstance(profile, Profile) else get_profile(profile)
        device = pick_device(device)
        return cls(load_n3d(profile, folder, device), load_inpainting(profile, folder,
                                                                      device=device),
                   load_face_model(), profile.occlusion_dilation)

    def session(self, image: str | Path | Image.Image | np.ndarray | torch.Tensor,
                occlusion: np.ndarray | None = None) -> UnmaskSession:
        """Prepare `image` for repeated edits (see `UnmaskSession.update`). `occlusion`
        `(H, W)` bool, optional: where to paint, instead of the map N3D finds."""
        return UnmaskSession(self, as_rgb_array(image), occlusion)

    def unmask(self, image: str | Path | Image.Image | np.ndarray | torch.Tensor,
               expression: dict[str, float] | None = None,
               pose: dict[str, float] | None = None, seed: int = 0) -> UnmaskResult:
        """The unmasked image, N3D's 3D face optionally edited (named expression components,
        yaw / pitch / roll in radians)."""
        return self.session(image).update(expression, pose, seed)

    def sample(self, image: str | Path | Image.Image | np.ndarray | torch.Tensor, k: int = 8,
               seed: int = 0) -> list[UnmaskResult]:
        """K completions with the hidden expression drawn from the 3DMM prior and a new noise
        draw each; `seed` fixes them all."""
        session = self.session(image)
        coeffs = with_prior_expressions(self.face_model, session.guidance.coeffs[0], k,
                                        torch.Generator().manual_seed(seed))
        return [session.update(coeffs=coeffs[i], seed=seed + 1 + i) for i in range(k)]

