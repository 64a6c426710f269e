"""Analysis by synthesis: refine N3D's coefficients until their render matches the visible face.

    fit = FaceFit.of_profile(profile, face_model)
    coeffs = fit(images, occlusion, n3d_coeffs)    # a few dozen Adam steps per batch

N3D reads a face in one forward pass, and at a laptop's training budget it places the visible
face to a few pixels only (landmark NME 0.07, most of it on the brows, eyes and nose, which
the mask leaves in plain sight). The renderer is differentiable and the face model is the one
the data was made with, so the coefficients can be corrected the classic way (Blanz and
Vetter's fitting): gradient steps on the photometric error over the pixels the mask leaves
visible, with a Gaussian prior that keeps them near N3D's estimate,

    E(d) = L_photo(render(c0 + s * d), image; visible) + prior_weight * |d|^2

with c0 N3D's coefficients, s the typical spread of each entry (`losses.COEFF_SCALES`) and d
what the fit changes, in units of that spread. Where a face's five points are known (YuNet's,
for a photo's pseudo ground truth), `point_weight` adds their mean squared distance from the
fitted face's, in eye distances: an anchor that keeps a fit from the front from turning the
face away to match its colours. The expression components a mask hides
(`lower_face_expressions`) stay N3D's on a face that wears one: the pixels around the mask say
nothing reliable about them, and the sliders and "sample another" set them anyway.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .alignment import five_points
from .config import Profile
from .devices import in_batches
from .face3d import MorphableModel, rasterize_faces, render_faces
from .losses import coefficient_scales, photometric_errors
from .metrics import LANDMARK_REGIONS

# A face whose occlusion map covers less than this share of the image wears no mask: its
# mouth shows, and the fit reads the whole expression. Face masks cover 15-35 % of a crop.
MIN_MASK_SHARE = 0.02
# The five-point term's weight where a photo's points are known (`Unmasker` sessions that find
# the face or are given its five points). On a real face the photometric error alone pulls the
# 3D face off: the skin model cannot match real skin, and a face moved into the occlusion has
# fewer pixels compared. Chosen on a real photo kept apart from the astronaut (the test photo):
# Grace Hopper's portrait from matplotlib's sample data, wearing each synthetic mask kind, the
# fitted face's five points against YuNet's on her unmasked photo: mean error 0.41, 0.32, 0.23,
# 0.19, 0.20 eye distances at weights 0, 0.1, 0.3, 1, 3 (`benchmarks/choose_point_weight.py
# --threads 1`, cpu N3D of commit e1a228e; 2 threads sum in another order: 0.409 at 0, 0.197 at 1).
PHOTO_POINT_WEIGHT = 1.0
# On a photo, each pixel's colour distance is bounded at this scale ([0, 1] units,
# `losses.bounded_distance`): hair over the forehead, glasses and a collar beside the jaw are
# no part of the face model, and compared as skin they darkened the astronaut's fitted face by
# 15 in L* and tinted it green. Chosen on Grace Hopper's portrait wearing each mask kind (three
# styles each), by the colour error of the painted mask against her photo: mean CIEDE2000
# 2.32 / 3.56 / 1.99 / 2.06 / 2.69 with the plain distance / at 0.05 / 0.1 / 0.15 / 0.2
# (`benchmarks/choose_photo_fit.py`, cpu networks of 246ee72). Synthetic faces have nothing
# the model cannot draw, so their fits keep the plain distance (NME on 96 unseen training-split
# faces 0.0528 plain, 0.0533 at 0.1).
PHOTO_OUTLIER_SCALE = 0.1
# Whether a photo's fit may end once it settles (`Profile.fit_tolerance`), as synthetic faces'
# fits do. It may not: on Grace Hopper's portrait wearing each mask kind (three styles each; cpu
# networks of 048423c, `benchmarks/choose_photo_fit.py`), painted-mask ΔE 2.68 / PSNR 14.82 dB
# / SFace 0.567 with every step, 2.98 / 14.77 / 0.555 stopping at 0.1 % (0.0003 and 0.0001:
# 2.94 / 14.78 / 0.556): her N95 fits flatten, then still move where it matters.
PHOTO_FIT_STOPS = False
# The fit rasterises anew every this many steps and reuses the triangle under each pixel in
# between, with barycentrics computed afresh (the z-buffer is a third of a step). On 96
# train-split faces after the cpu profile's training samples (never trained on; cpu N3D,
# `benchmarks/choose_fit.py`): NME 0.0527 / 0.0524 / 0.0524 / 0.0524 / 0.0530 / 0.0544
# and 64 / 52 / 48 / 46 / 44 / 43 s at 1 / 2 / 3 / 4 / 6 / 10.
RASTER_EVERY = 4
# Pixels by which the part of the face model a fit renders (`visible_part`) reaches past the
# visible pixels, so that it serves several rasterisations while the face moves under them.
PART_SLACK = 2
# Steps over which a face's energy must fall by at least the fit's `tolerance` (a share of
# it) for its fit to go on (`settled`); before that many steps, every fit goes on.
STOP_WINDOW = 10
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@torch.no_grad()
def lower_face_expressions(face_model: MorphableModel, image_size: int) -> torch.Tensor:
    """`(expression size,)` bool: the expression components a face mask hides, those whose
    unit change moves the jaw-line and mouth landmarks more than the others (on the frontal
    mean face rendered at `image_size`)."""
    expression = face_model.layout.slice("expression")
    count = expression.stop - expression.start
    coeffs = face_model.zero_coeffs(count + 1)
    coeffs[1:, expression] += torch.eye(count, dtype=coeffs.dtype, device=coeffs.device)
    landmarks = render_faces(face_model, coeffs, image_size).landmarks.cpu()
    moved = (landmarks[1:] - landmarks[:1]).norm(dim=-1)
    lower = torch.zeros(68, dtype=torch.bool)
    lower[[*LANDMARK_REGIONS["jaw"], *LANDMARK_REGIONS["mouth"]]] = True
    return moved[:, lower].sum(1) > moved[:, ~lower].sum(1)


class FaceFit:
    """Fits coefficients to images by `steps` Adam steps (rate `lr`, in units of each entry's
    spread) on `E(d)` above. Holds the face model and which expressions a mask hides.
    steps = 0 returns the coefficients as given. `blocks`: the coefficient blocks the fit may
    change (`layout.names`; None: all), e.g. pose and light alone, before the shape, so that
    a face far from its start is turned before its shape and colour bend to the error.
    `point_weight`: the five-point term's weight, for faces whose points are given.
    `raster_every`: steps between rasterisations (`RASTER_EVERY`); 1 rasterises each step.
    Between them, the fit renders only the part of the face model the visible pixels show
    (`visible_part`), which gives the same colours and gradients at less work.
    `outlier_scale`: where given, each pixel's colour distance is bounded
    (`losses.bounded_distance`), for photos (`PHOTO_OUTLIER_SCALE`).
    `tolerance`: where given, a face's fit stops once its energy fell by less than this share
    over the last `STOP_WINDOW` steps (`settled`), and the faces still moving go on without
    it; `steps` is then the most any face takes."""

    def __init__(self, face_model: MorphableModel, image_size: int, steps: int, lr: float,
                 prior_weight: float, blocks: Sequence[str] | None = None,
                 point_weight: float = 0.0, raster_every: int = RASTER_EVERY,
                 outlier_scale: float | None = None, tolerance: float | None = None) -> None:
        if steps < 0 or lr <= 0 or prior_weight < 0 or raster_every < 1:
            raise ValueError(f"need steps >= 0, lr > 0, prior_weight >= 0 and raster_every "
                             f">= 1, got {steps}, {lr}, {prior_weight}, {raster_every}")
        if outlier_scale is not None and outlier_scale <= 0:
            raise ValueError(f"outlier_scale must be > 0 or None, got {outlier_scale}")
        if tolerance is not None and not 0 < tolerance < 1:
            raise ValueError(f"tolerance must lie in (0, 1) or be None, got {tolerance}")
        self.face_model, self.image_size = face_model, image_size
        self.steps, self.lr, self.prior_weight = steps, lr, prior_weight
        self.point_weight, self.raster_every = point_weight, raster_every
        self.outlier_scale, self.tolerance = outlier_scale, tolerance
        layout = face_model.layout
        self.blocks = tuple(layout.names if blocks is None else blocks)
        unknown = set(self.blocks) - set(layout.names)
        if unknown:
            raise ValueError(f"unknown coefficient blocks {sorted(unknown)}: the layout has "
                             f"{layout.names}")
        self.scales = torch.zeros(layout.size, dtype=face_model.dtype, device=face_model.device)
        spread = coefficient_scales(layout).to(face_model.device, face_model.dtype)
        for name in self.blocks:
            self.scales[layout.slice(name)] = spread[layout.slice(name)]
        self.hidden = torch.zeros(layout.size, dtype=torch.bool, device=face_model.device)
        self.hidden[layout.slice("expression")] = lower_face_expressions(
            face_model, image_size).to(face_model.device)

    @classmethod
    def of_profile(cls, profile: Profile, face_model: MorphableModel,
                   point_weight: float = 0.0, outlier_scale: float | None = None,
                   stops: bool = True) -> FaceFit:
        """The profile's fit; `stops`: whether a face's fit ends once it settles (at the
        profile's `fit_tolerance`) or takes every step (photos, `PHOTO_FIT_STOPS`)."""
        return cls(face_model, profile.image_size, profile.fit_steps, profile.fit_lr,
                   profile.fit_prior_weight, point_weight=point_weight,
                   outlier_scale=outlier_scale,
                   tolerance=profile.fit_tolerance if stops else None)

    def __call__(self, images: torch.Tensor, occlusion: torch.Tensor, coeffs: torch.Tensor,
                 points: torch.Tensor | None = None, batch_size: int = 32,
                 progress: bool = False, return_steps: bool = False,
                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Fitted coefficients `(B, size)`, on the CPU; with `return_steps`, also the steps
        each face took `(B,)` long (fewer than `steps` where it settled, see `tolerance`).

        images `(B, 3, H, W)` in [-1, 1] (H = W = image_size); occlusion `(B, 1, H, W)` in
        {0, 1}: pixels left out of the comparison; coeffs `(B, size)`: where the fit starts;
        points `(B, 5, 2)`, optional: each face's five points (`alignment.FIVE_POINTS`, pixel
        centres at integers), NaN for a face without them.
        Each face is fitted on its own (its own mean error), so a face's result does not
        depend on the others in the batch; `batch_size` faces at a time bound the memory,
        with a bar over those batches when `progress`.
        """
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"images must be {self.image_size} px square like the fit, got "
                             f"{tuple(images.shape[-2:])}")
        if points is None:
            points = torch.full((len(images), 5, 2), torch.nan)
        fitted, steps = in_batches(self._fit_batch, images, occlusion, coeffs, points,
                                   batch_size=batch_size, device=self.face_model.device,
                                   desc="N3D + fit" if progress else None)
        return (fitted, steps) if return_steps else fitted

    def _fit_batch(self, images: torch.Tensor, occlusion: torch.Tensor, coeffs: torch.Tensor,
                   points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = coeffs.detach().to(self.face_model.dtype)
        worn = occlusion.flatten(1).mean(1) > MIN_MASK_SHARE
        visible = 1 - occlusion
        points = points.to(start)
        known = torch.isfinite(points).all(2).all(1)
        points = torch.nan_to_num(points)
        eye_distance = (points[:, 0] - points[:, 1]).norm(dim=-1).clamp(min=1)
        step = self.scales * ~(worn[:, None] & self.hidden[None])
        # What each face's fit needs, for the faces still being fitted: one that settles
        # leaves them (its result kept in `change`), so the others' steps no longer pay for it.
        faces = {"index": torch.arange(len(start), device=start.device), "images": images,
                 "visible": visible, "seen": visible[:, 0] > 0, "start": start, "step": step,
                 "points": points,
                 "point_weight": self.point_weight * known / eye_distance.square(),
                 "change": torch.zeros_like(start), "first": torch.zeros_like(start),
                 "second": torch.zeros_like(start)}
        change = torch.zeros_like(start)
        taken = torch.zeros(len(start), dtype=torch.long, device=start.device)
        energies: deque[torch.Tensor] = deque(maxlen=STOP_WINDOW + 1)
        part = None
        for k in range(self.steps):
            if k % self.raster_every == 0:
                part, tri_id = visible_part(self.face_model,
                                            faces["start"] + faces["change"] * faces["step"],
                                            self.image_size, faces["seen"], part)
            own = faces["change"].requires_grad_()
            with torch.enable_grad():
                render = render_faces(part.model, faces["start"] + own * faces["step"],
                                      self.image_size, tri_id=tri_id)
                energy = (photometric_errors(render.image, faces["images"], render.face_mask,
                                             faces["visible"], self.outlier_scale)
                          + self.prior_weight * own.square().sum(1))
                if self.point_weight:
                    misses = (five_points(render.landmarks) - faces["points"]).square().sum(-1)
                    energy = energy + faces["point_weight"] * misses.mean(1)
                energy.sum().backward()
            faces["change"], faces["first"], faces["second"] = adam_step(
                own.detach(), own.grad, faces["first"], faces["second"], k + 1, self.lr)
            energies.append(energy.detach())
            if self.tolerance is None or len(energies) <= STOP_WINDOW:
                continue
            going = ~settled(energies[0], energies[-1], self.tolerance)
            if not going.all():
                leaving = faces["index"][~going]
                change[leaving], taken[leaving] = faces["change"][~going], k + 1
                faces = {name: value[going] for name, value in faces.items()}
                tri_id = tri_id[going]
                energies = deque((e[going] for e in energies), maxlen=STOP_WINDOW + 1)
                if not going.any():
                    break
        # The faces still moving took every step (none are left where all settled).
        change[faces["index"]] = faces["change"]
        taken[faces["index"]] = self.steps
        return start + change * step, taken


def adam_step(param: torch.Tensor, grad: torch.Tensor, first: torch.Tensor,
              second: torch.Tensor, t: int, lr: float,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Adam (Kingma and Ba; `ADAM_BETAS`, `ADAM_EPS`, as `torch.optim.Adam` with
    its defaults computes it): `(param, first, second)` after step `t` >= 1 from the gradient
    and the moments before it. Written out rather than `torch.optim.Adam` because a fit drops
    the faces that settled and steps the others, which an optimiser over one tensor cannot."""
    beta1, beta2 = ADAM_BETAS
    first = beta1 * first + (1 - beta1) * grad
    second = beta2 * second + (1 - beta2) * grad.square()
    denominator = (second.sqrt() / (1 - beta2 ** t) ** 0.5) + ADAM_EPS
    return param - lr / (1 - beta1 ** t) * first / denominator, first, second


def settled(before: torch.Tensor, now: torch.Tensor, tolerance: float) -> torch.Tensor:
    """`(B,)` bool: which fits have settled, given each one's energy `(B,)` `STOP_WINDOW`
    steps ago and now: those whose energy fell by less than `tolerance` (a share) since."""
    return before - now < tolerance * before.abs()


@dataclass(frozen=True)
class VisiblePart:
    """A part of a face model (`MorphableModel.part`) that renders `exact` `(F,)` bool, the
    whole model's triangles it draws as the whole model would; `new_triangle` `(F,)` long:
    each whole-model triangle's index in `model`, -1 where it is left out."""

    model: MorphableModel
    exact: torch.Tensor
    new_triangle: torch.Tensor


@torch.no_grad()
def visible_part(face_model: MorphableModel, coeffs: torch.Tensor, image_size: int,
                 seen: torch.Tensor, part: VisiblePart | None = None,
                 ) -> tuple[VisiblePart, torch.Tensor]:
    """What a fit needs to render of `coeffs` `(B, size)` at the `seen` `(B, S, S)` bool
    pixels: a part of the face model that draws every triangle they show, and their triangle
    ids in it `(B, S, S)`, -1 elsewhere. Rendered with these ids, the part gives the whole
    model's colours at the seen pixels and its landmarks, at less work where a mask hides
    the lower face. `part`, an earlier one, is kept while it still draws every triangle
    seen: it is cut for every triangle whose centre lies within `PART_SLACK` pixels of a
    seen pixel (the triangles are smaller than a pixel, so which of them a pixel centre hits
    changes with every move), and serves while the face moves a little."""
    screen, whole = rasterize_faces(face_model, coeffs, image_size)
    tri_id = torch.where(seen, whole, -1)
    shown = tri_id[tri_id >= 0]
    if part is None or not part.exact[shown].all():
        grown = torch.nn.functional.max_pool2d(seen[:, None].float(), 2 * PART_SLACK + 1,
                                               stride=1, padding=PART_SLACK)[:, 0] > 0
        faces = face_model.faces.long()
        centre = screen[:, faces, :2].mean(2).floor().long().clamp(0, image_size - 1)
        batch = torch.arange(len(seen), device=seen.device)[:, None]
        exact = grown[batch, centre[..., 1], centre[..., 0]].any(0)
        exact[shown] = True
        model, new_triangle = face_model.part(exact)
        part = VisiblePart(model, exact, new_triangle)
    return part, torch.where(tri_id >= 0, part.new_triangle[tri_id.clamp(min=0)], -1)
