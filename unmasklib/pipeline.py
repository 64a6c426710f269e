"""Unmasker: a trained run as one object that removes masks and lets you steer the result.

    u = Unmasker.from_run("runs/cpu")              # N3D, the generator and the face model
    r = u.unmask("photo.png", seed=0)              # r.image (H, W, 3) uint8: the input's size
    r = u.unmask(image, expression={"jaw_open": 1.5}, pose={"yaw": 0.2}, seed=0)
    rs = u.sample(image, k=8, seed=0)              # hidden expression drawn from the 3DMM prior
    s = u.session(image)                           # N3D runs once here ...
    s.update(expression={"jaw_open": 1.0})         # ... each slider move only renders and paints
    r = u.unmask("photo.jpg", find_face=True)      # a whole photo: align, unmask, paste back

The networks see aligned square crops of the profile's size. An aligned face of any shape is
fitted into one (longer side to the crop's, edges repeated); a whole photo is aligned by its
five points or eyes (given, or found by YuNet; `alignment`). The painting is carried back to the
input and pasted inside the occlusion only, so pixels outside it are the input's, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .alignment import (
    above_the_eyes,
    alignment_to,
    find_face_points,
    mask_to_crop,
    mask_to_photo,
    square_fit,
    transform_points,
    warp_to_crop,
    warp_to_photo,
    window_of,
)
from .config import PROFILES, Profile, get_profile
from .devices import device_of, pick_device
from .face3d import (
    MorphableModel,
    light_direction,
    load_face_model,
    render_faces,
    with_light_direction,
)
from .fitting import PHOTO_FIT_STOPS, PHOTO_OUTLIER_SCALE, PHOTO_POINT_WEIGHT, FaceFit
from .guidance import Guidance, fitted, n3d_guidance, snap_to_colour_edges
from .images import dilate, from_uint8, load_rgb, to_uint8
from .models import InpaintingGenerator
from .painting import paint_render, with_prior_expressions
from .trained import load_inpainting, load_n3d

POSE_NAMES = ("yaw", "pitch", "roll")
LIGHT_NAMES = ("azimuth", "elevation")
ImageInput = str | Path | Image.Image | np.ndarray | torch.Tensor


@dataclass
class UnmaskResult:
    """image `(H, W, 3)` uint8 at the input's size; occlusion `(H, W)` bool, where the mask
    was found and painted over; crop `(S, S, 3)` uint8, G's painting of the aligned working
    crop (S: the profile's image size); render `(S, S, 3)` uint8, the 3D face G followed;
    coeffs `(size,)`: its 3DMM coefficients."""

    image: np.ndarray
    occlusion: np.ndarray
    crop: np.ndarray
    render: np.ndarray
    coeffs: torch.Tensor


def as_rgb_array(image: ImageInput) -> np.ndarray:
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


def edit_coeffs(face_model: MorphableModel, coeffs: torch.Tensor,
                expression: dict[str, float] | None = None,
                pose: dict[str, float] | None = None,
                light: dict[str, float] | None = None) -> torch.Tensor:
    """`coeffs` `(B, size)` with named expression components set to `expression` values, the
    head's yaw / pitch / roll (radians) to `pose` values, and the light turned to `light`'s
    azimuth / elevation (radians; one left out keeps its value). Unknown names raise
    KeyError."""
    edited = face_model.with_expression(coeffs, expression or {})
    for given, known in ((pose or {}, POSE_NAMES), (light or {}, LIGHT_NAMES)):
        unknown = [name for name in given if name not in known]
        if unknown:
            raise KeyError(f"no angle {unknown[0]!r} here; the angles are {list(known)}")
    block = "pose" if "pose" in face_model.layout.names else "rotation"
    start = face_model.layout.slice(block).start
    for name, value in (pose or {}).items():
        edited[:, start + POSE_NAMES.index(name)] = value
    if light:
        lighting = face_model.layout.slice("lighting")
        azimuth, elevation = light_direction(edited[:, lighting])
        edited[:, lighting] = with_light_direction(edited[:, lighting],
                                                   light.get("azimuth", azimuth),
                                                   light.get("elevation", elevation))
    return edited


def snapped_on_photo(pixels: np.ndarray, occlusion: np.ndarray, matrix: np.ndarray,
                     dilation: int, band: int, mask_free: np.ndarray | None = None) -> np.ndarray:
    """N3D's map carried to a photo, `occlusion` `(H, W)` bool, snapped to the colour edges
    of `pixels` `(H, W, 3)` uint8 within `band` and grown by `dilation`, both given in crop
    pixels (`matrix` `(2, 3)`: photo -> crop) and applied at the photo's own resolution, so
    that the painted region follows the mask's edge as sharply as the photo shows it; never
    into `mask_free` `(H, W)` bool where given (see `snap_to_colour_edges`)."""
    crop_per_photo = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    snapped = snap_to_colour_edges(pixels, occlusion, max(1, round(band / crop_per_photo)),
                                   mask_free=mask_free)
    grown = dilate(torch.from_numpy(snapped).float()[None, None], round(dilation / crop_per_photo))
    grown = grown[0, 0].numpy() > 0
    return grown & ~mask_free if mask_free is not None else grown


class UnmaskSession:
    """One input prepared for editing: N3D has run and its coefficients are fitted to the face
    outside the occlusion (`Unmasker.fit`); `update` renders and paints only.

    pixels `(H, W, 3)` uint8: the input; matrix `(2, 3)`: input pixels -> working crop
    (`alignment`); occlusion `(H, W)` bool: where it is painted (N3D's map carried back to the
    input, or the one given, kept as it is); mask_free `(H, W)` bool or None: where the eyes
    are known and no map is given, what lies above them (`alignment.above_the_eyes`), which
    N3D's map is kept off; working `(1, 3, S, S)` in [-1, 1] and guidance: what the networks
    see; anchors `(1, 5, 2)` or None: the face's five points in the crop, where given or
    found, which anchor the fit.
    """

    def __init__(self, unmasker: Unmasker, pixels: np.ndarray,
                 occlusion: np.ndarray | None = None, eyes: np.ndarray | None = None,
                 find_face: bool = False) -> None:
        self.unmasker, self.pixels = unmasker, pixels
        size, (height, width) = unmasker.image_size, pixels.shape[:2]
        # The face's five points, where given or found, anchor the fit (`PHOTO_POINT_WEIGHT`).
        points = (np.asarray(eyes, np.float64) if eyes is not None
                  else find_face_points(pixels) if find_face else None)
        if points is not None:
            self.matrix = alignment_to(unmasker.face_model, size, points)
        else:
            self.matrix = square_fit(height, width, size)
        self.anchors = (torch.from_numpy(transform_points(points, self.matrix)).float()[None]
                        if points is not None and points.shape == (5, 2) else None)
        self.working = from_uint8(warp_to_crop(pixels, self.matrix, size))[None]
        # Where the face's eyes are known, N3D's map is kept off what a mask never covers.
        crop_free = (above_the_eyes(transform_points(points[:2], self.matrix), size)
                     if occlusion is None and points is not None else None)
        self.mask_free = (mask_to_photo(crop_free, self.matrix, height, width)
                          if crop_free is not None else None)
        snapping = occlusion is None and unmasker.band > 0
        found = n3d_guidance(unmasker.n3d, self.working, 0 if snapping else unmasker.dilation)
        if crop_free is not None and not snapping:
            found = Guidance(found.occlusion * torch.from_numpy(~crop_free).float(), found.coeffs)
        if occlusion is None:
            self.occlusion = mask_to_photo(found.occlusion[0, 0].numpy() > 0.5, self.matrix,
                                           height, width)
            if snapping:  # at the photo's resolution, then carried to the crop
                self.occlusion = snapped_on_photo(pixels, self.occlusion, self.matrix,
                                                  unmasker.dilation, unmasker.band,
                                                  self.mask_free)
            elif self.mask_free is not None:
                self.occlusion &= ~self.mask_free
        elif occlusion.shape != (height, width):
            raise ValueError(f"occlusion must be ({height}, {width}) like the image, got "
                             f"{occlusion.shape}")
        else:
            self.occlusion = occlusion.astype(bool)
        if occlusion is not None or snapping:
            working = torch.from_numpy(mask_to_crop(self.occlusion, self.matrix, size))
            found = Guidance(working[None, None].float(), found.coeffs)
        self.guidance = fitted(found, self.working, unmasker.fit, points=self.anchors)
        # Each update pastes into the occlusion's bounding box only: on a large photo, warping
        # the crop back to the whole photo would dominate a slider move.
        rows, cols = np.nonzero(self.occlusion)
        self.box = ((slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
                    if len(rows) else (slice(0, 0), slice(0, 0)))

    @torch.no_grad()
    def update(self, expression: dict[str, float] | None = None,
               pose: dict[str, float] | None = None, light: dict[str, float] | None = None,
               seed: int = 0, coeffs: torch.Tensor | None = None) -> UnmaskResult:
        """The result with N3D's coefficients edited (or `coeffs` `(size,)` as given); `seed`
        fixes the noise G paints from. `light`: {"azimuth", "elevation"} in radians, see
        `face3d.with_light_direction`."""
        u = self.unmasker
        chosen = (edit_coeffs(u.face_model, self.guidance.coeffs.to(u.device), expression,
                              pose, light)
                  if coeffs is None else coeffs.reshape(1, -1).to(u.device))
        render = render_faces(u.face_model, chosen, u.image_size)
        painted = paint_render(u.generator, render, self.working.to(u.device),
                               self.guidance.occlusion.to(u.device),
                               torch.Generator().manual_seed(seed)).cpu()
        crop = to_uint8(painted[0])
        image = self.pixels.copy()
        rows, cols = self.box
        if rows.stop > rows.start:  # an empty box: nothing found to paint, the photo as it is
            window = warp_to_photo(crop, window_of(self.matrix, cols.start, rows.start),
                                   rows.stop - rows.start, cols.stop - cols.start)
            inside = self.occlusion[self.box]
            image[self.box][inside] = window[inside]
        return UnmaskResult(image, self.occlusion.copy(), crop, to_uint8(render.image[0].cpu()),
                            chosen[0].cpu())


class Unmasker:
    """The trained N3D and inpainting generator of one run, ready to unmask images."""

    def __init__(self, n3d: torch.nn.Module, generator: InpaintingGenerator,
                 face_model: MorphableModel, dilation: int, fit: FaceFit | None = None,
                 band: int = 0) -> None:
        # The painted map: N3D's, snapped to the photo's colour edges within `band` crop
        # pixels (0: not snapped) and grown by `dilation` (`Profile.painting_map`).
        self.n3d, self.generator, self.dilation, self.band = n3d, generator, dilation, band
        self.device = device_of(generator)
        self.face_model = face_model.to(self.device)
        self.image_size = generator.image_size
        # Fits N3D's coefficients to the visible face (`fitting.FaceFit`, on the generator's
        # device); None uses them as N3D gives them.
        self.fit = fit

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
        face_model = load_face_model().to(device)
        dilation, band = profile.painting_map()
        return cls(load_n3d(profile, folder, device),
                   load_inpainting(profile, folder, device=device), face_model, dilation,
                   FaceFit.of_profile(profile, face_model, PHOTO_POINT_WEIGHT,
                                      PHOTO_OUTLIER_SCALE, PHOTO_FIT_STOPS), band)

    def session(self, image: ImageInput, occlusion: np.ndarray | None = None,
                eyes: np.ndarray | None = None, find_face: bool = False) -> UnmaskSession:
        """Prepare `image` for repeated edits (see `UnmaskSession.update`).

        occlusion `(H, W)` bool, optional: where to paint, instead of the map N3D finds (which,
        where the eyes are given or found, never reaches above them).
        eyes: the eye centres `((x, y), (x, y))` in pixels, or the five points (eyes, nose tip,
        mouth corners; `alignment.FIVE_POINTS`) of a face in a whole photo, which is then
        aligned to the working crop and the result pasted back; `find_face=True` finds the
        five points with YuNet instead. With neither, `image` is taken as an aligned face.
        """
        return UnmaskSession(self, as_rgb_array(image), occlusion, eyes, find_face)

    def unmask(self, image: ImageInput, expression: dict[str, float] | None = None,
               pose: dict[str, float] | None = None, seed: int = 0,
               eyes: np.ndarray | None = None, find_face: bool = False) -> UnmaskResult:
        """The unmasked image, N3D's 3D face optionally edited (named expression components,
        yaw / pitch / roll in radians); `eyes`, `find_face` as in `session`."""
        return self.session(image, eyes=eyes, find_face=find_face).update(expression, pose,
                                                                          seed=seed)

    def sample(self, image: ImageInput, k: int = 8, seed: int = 0,
               eyes: np.ndarray | None = None, find_face: bool = False) -> list[UnmaskResult]:
        """K completions with the hidden expression drawn from the 3DMM prior and a new noise
        draw each; `seed` fixes them all; `eyes`, `find_face` as in `session`."""
        session = self.session(image, eyes=eyes, find_face=find_face)
        return sample_session(session, k, seed)


def sample_session(session: UnmaskSession, k: int, seed: int) -> list[UnmaskResult]:
    """K completions of a prepared input: expression from the 3DMM prior, noise seed
    `seed + 1 + i` for the i-th."""
    u = session.unmasker
    coeffs = with_prior_expressions(u.face_model, session.guidance.coeffs[0], k,
                                    torch.Generator().manual_seed(seed))
    return [session.update(coeffs=coeffs[i], seed=seed + 1 + i) for i in range(k)]
