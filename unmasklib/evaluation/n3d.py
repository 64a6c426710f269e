"""How well N3D reads held-out faces: occlusion IoU, landmark NME (by face region, against a
floor no reader of masked faces reaches), pose and per-block coefficient errors, each against
always guessing the mean face.

    report = evaluate_n3d(n3d, "cpu")        # N3D's coefficients fitted to the visible face
    report.summary()                          # {"iou", "snapped_iou", "nme", "yaw_mae_deg", ...}
    remnants = occlusion_remnants(n3d, "cpu")  # how far to grow its map: on training faces
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import guidance as snapping
from ..config import Profile, get_profile, resolve_run
from ..data import as_one_batch, collate, held_out_faces, wears_mask
from ..data.synthetic import SyntheticMaskedFaces, mean_coefficients
from ..devices import in_batches
from ..face3d import CoeffLayout, MorphableModel, load_face_model, render_faces
from ..files import write_atomically
from ..fitting import RASTER_EVERY, FaceFit, lower_face_expressions
from ..guidance import Guidance, fitted, guidance_of, n3d_outputs, occlusion_map
from ..images import dilate
from ..metrics import (
    LANDMARK_REGIONS,
    landmark_errors,
    occlusion_iou,
    pearson_r,
    uncovered_share,
)
from ..models import N3D

POSE_NAMES = ("yaw", "pitch", "roll")


@dataclass
class N3DReport:
    """N3D on held-out faces, per sample (N of them).

    iou `(N,)` occlusion IoU of N3D's map; snapped_iou `(N,)`: of that map snapped to the
    image's colour edges (`guidance.snap_to_colour_edges`, the profile's `occlusion_snap`),
    before it is grown; predicted, truth `(N, size)`: N3D's and the true coefficients;
    mean_coeffs `(size,)`: the training set's mean, the "always predict the mean face"
    baseline; landmark_error `(N, 68)`: each landmark's distance over the inter-ocular
    distance (`metrics.landmark_errors`); floor_landmark_error `(N, 68)`: the same for a reader
    that gets everything a mask leaves visible exactly and guesses the mean for the
    `hidden_expressions` (`masked_expression_guess`); surface_error,
    mean_face_surface_error: "shape" -> `(N,)` mean distance of the unposed vertices
    (identity and expression) from the true ones, model units; "albedo" -> `(N,)` mean
    absolute albedo error in [0, 1]: what the coefficients change on the face, each component
    weighted by how much it shows; mask_type: one per sample.
    """

    iou: torch.Tensor
    predicted: torch.Tensor
    truth: torch.Tensor
    mean_coeffs: torch.Tensor
    landmark_error: torch.Tensor
    floor_landmark_error: torch.Tensor
    hidden_expressions: list[str]
    surface_error: dict[str, torch.Tensor]
    mean_face_surface_error: dict[str, torch.Tensor]
    mask_type: list[str]
    layout: CoeffLayout
    snapped_iou: torch.Tensor

    @property
    def nme(self) -> torch.Tensor:
        """`(N,)` landmark NME: the mean landmark error over the inter-ocular distance."""
        return self.landmark_error.mean(1)

    @property
    def coeff_error(self) -> torch.Tensor:
        """`(N, size)` absolute coefficient errors of N3D."""
        return (self.predicted - self.truth).abs()

    @property
    def mean_face_coeff_error(self) -> torch.Tensor:
        """`(N, size)` absolute coefficient errors of always predicting `mean_coeffs`."""
        return (self.mean_coeffs - self.truth).abs()

    @property
    def pose_error(self) -> torch.Tensor:
        """`(N, 3)` |yaw|, |pitch|, |roll| errors in degrees."""
        angles = self.layout.slice("pose").start
        return self.coeff_error[:, angles:angles + 3] * 180 / math.pi

    def block_errors(self, weights: torch.Tensor | None = None) -> dict[str, tuple[float, float]]:
        """Block name -> (N3D, mean face): the mean absolute coefficient error over the block's
        components and the samples, each component weighted by `weights` `(size,)` (None:
        all alike; `losses.visibility_weights`: by how much it shows)."""
        weights = torch.ones(self.layout.size) if weights is None else weights
        ours, mean_face = (self.layout.split(error * weights)
                           for error in (self.coeff_error, self.mean_face_coeff_error))
        return {name: (float(ours[name].mean()), float(mean_face[name].mean()))
                for name, _ in self.layout.blocks}

    def component_r(self, block: str) -> torch.Tensor:
        """`(block size,)` Pearson r between N3D's and the true values of each component of
        `block` over the samples: does N3D read this component at all?"""
        ours, true = self.layout.split(self.predicted)[block], self.layout.split(self.truth)[block]
        return torch.stack([pearson_r(ours[:, k], true[:, k]) for k in range(ours.shape[1])])

    def region_nme(self) -> dict[str, tuple[float, float]]:
        """`metrics.LANDMARK_REGIONS` name -> (N3D, floor): the mean landmark error over the
        region's landmarks and the samples."""
        return {name: (float(self.landmark_error[:, list(indices)].mean()),
                       float(self.floor_landmark_error[:, list(indices)].mean()))
                for name, indices in LANDMARK_REGIONS.items()}

    def summary(self) -> dict[str, float]:
        """Means over the samples (IoU over masked samples only: an unmasked face has no
        occlusion to find)."""
        worn = wears_mask(self.mask_type)
        out = {"iou": float(self.iou[worn].mean()),
               "snapped_iou": float(self.snapped_iou[worn].mean()), "nme": float(self.nme.mean()),
               "nme_floor": float(self.floor_landmark_error.mean())}
        out.update({f"{name}_mae_deg": float(self.pose_error[:, k].mean())
                    for k, name in enumerate(POSE_NAMES)})
        return out


def _fingerprint(n3d: N3D, images: torch.Tensor, settings: tuple) -> str:
    """sha256 of N3D's weights, the images and `settings`: what a guidance depends on."""
    digest = hashlib.sha256(repr(settings).encode())
    for tensor in [*n3d.state_dict().values(), images]:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def held_out_guidance(n3d: N3D, masked: torch.Tensor, profile: Profile, face_model: MorphableModel,
                      cache: str | Path | None = None,
                      progress: bool = False) -> tuple[torch.Tensor, Guidance]:
    """N3D's map as predicted `(N, 1, H, W)` in {0, 1} (what its IoU scores) and the guidance
    G gets for the masked test faces `(N, 3, H, W)`: the map snapped and grown as the profile
    paints (`Profile.painting_map`),
    the coefficients fitted to the visible face (`FaceFit.of_profile`). The fit of 200 faces
    takes minutes, and notebooks 03, 04 and 05 all need it: with a `cache` file it is kept there,
    keyed by N3D's weights, the images and the settings, and reused while they stay."""
    dilation, band = profile.painting_map()
    settings = (dilation, band, snapping.SNAP_ROUNDS, profile.fit_steps, profile.fit_lr,
                profile.fit_prior_weight, profile.fit_tolerance, RASTER_EVERY)
    key = _fingerprint(n3d, masked, settings) if cache is not None else ""
    if cache is not None and Path(cache).is_file():
        kept = torch.load(cache, weights_only=True)
        if kept["key"] == key:
            return kept["found"].float(), Guidance(kept["occlusion"].float(), kept["coeffs"])
    output = n3d_outputs(n3d, masked)
    found = guidance_of(output, 0).occlusion
    guidance = fitted(guidance_of(output, dilation, masked, band), masked,
                      FaceFit.of_profile(profile, face_model), progress=progress)
    if cache is not None:
        state = {"key": key, "found": found.bool(), "occlusion": guidance.occlusion.bool(),
                 "coeffs": guidance.coeffs}
        write_atomically(cache, lambda file: torch.save(state, file))
    return found, guidance


def held_out_guidance_file(folder: str | Path) -> Path:
    """Where a run keeps `held_out_guidance`'s cache."""
    return Path(folder) / "data" / "held-out-guidance.pt"


def evaluate_n3d(n3d: N3D, profile: Profile | str | None = None,
                 run_folder: str | Path | None = None, batch_size: int = 32,
                 progress: bool = True, fit: bool = True) -> N3DReport:
    """N3D on the profile's held-out test faces against their exact ground truth; with `fit`,
    its coefficients fitted to the visible face first (`fitting.FaceFit`, the profile's
    settings, outside N3D's occlusion map grown as G gets it), as every later use of N3D
    does: that is `held_out_guidance`, kept in the run folder for notebooks 04 and 05.
    Reads the test split only: the mean face is that of the training split's drawn
    coefficients (`data.synthetic.mean_coefficients`), which needs no training image."""
    profile, folder = resolve_run(profile, run_folder)
    faces = as_one_batch(held_out_faces(profile, folder, progress))
    face_model = load_face_model()
    output = n3d_outputs(n3d, faces["masked"], batch_size)
    if fit:
        found, guidance = held_out_guidance(n3d, faces["masked"], profile, face_model,
                                            held_out_guidance_file(folder), progress)
        coeffs = guidance.coeffs
    else:
        found, coeffs = occlusion_map(output.occlusion_logits, 0), output.coeffs
    snapped = occlusion_map(output.occlusion_logits, 0, faces["masked"],
                            profile.occlusion_snap)
    truth, worn = faces["coeffs"], wears_mask(faces["mask_type"])
    mean_coeffs = mean_coefficients(face_model, profile.seed, "train", profile.train_samples)
    hidden = lower_face_expressions(face_model, profile.image_size)
    floor = masked_expression_guess(truth, mean_coeffs, hidden, worn, face_model.layout)
    with torch.no_grad():
        landmarks, floor_landmarks = in_batches(
            lambda c: render_faces(face_model, c, profile.image_size).landmarks,
            torch.cat([coeffs, floor]), batch_size=batch_size).split(len(coeffs))
    return N3DReport(
        iou=occlusion_iou(found, faces["occlusion"]).float(),
        snapped_iou=occlusion_iou(snapped, faces["occlusion"]).float(), predicted=coeffs,
        truth=truth,
        mean_coeffs=mean_coeffs,
        landmark_error=landmark_errors(landmarks, faces["landmarks"]).float(),
        floor_landmark_error=landmark_errors(floor_landmarks, faces["landmarks"]).float(),
        hidden_expressions=[name for name, hides in
                            zip(face_model.expression_names, hidden, strict=True) if hides],
        surface_error=surface_errors(face_model, coeffs, truth),
        mean_face_surface_error=surface_errors(face_model, mean_coeffs.expand_as(truth), truth),
        mask_type=list(faces["mask_type"]), layout=face_model.layout)


@dataclass
class OcclusionRemnants:
    """What painting inside N3D's occlusion map (snapped within `band` pixels, see
    `guidance.occlusion_map`) grown by `d` pixels would do to M masked faces, for each
    dilation `d` tried (the keys, in order): `left[d]` `(M,)` the share of each face's
    true occlusion outside the grown map (it would keep the mask's colour), `extra[d]` `(M,)`
    the pixels painted needlessly, as a share of the occlusion's size."""

    left: dict[int, torch.Tensor]
    extra: dict[int, torch.Tensor]
    band: int = 0

    def smallest_meeting(self, target: float) -> int | None:
        """The smallest dilation whose mean remnant is at most `target`; None if none is."""
        return next((d for d in self.left if self.left[d].mean() <= target), None)

    def table(self) -> str:
        """A markdown table: per dilation, the remnant's mean, median and max, and the mean
        share painted needlessly, in percent."""
        lines = ["| snapped within (px) | dilation (px) | mask left: mean | median | max | "
                 "painted needlessly |", "|---|---|---|---|---|---|"]
        lines += [f"| {self.band} | {d} | {100 * self.left[d].mean():.2f} % | "
                  f"{100 * self.left[d].median():.2f} % | {100 * self.left[d].max():.1f} % | "
                  f"{100 * self.extra[d].mean():.1f} % |" for d in self.left]
        return "\n".join(lines)


def unseen_training_faces(profile: Profile, faces: int) -> dict:
    """The `faces` training-split faces that follow the profile's training samples, as one
    batch (`data.collate`): its identities, never trained on, where a setting may be chosen
    without looking at the test faces."""
    first = profile.train_samples
    unseen = SyntheticMaskedFaces("train", size=first + faces, image_size=profile.image_size,
                                  seed=profile.seed, progress=False)
    return collate([unseen[i] for i in range(first, first + faces)])


def occlusion_remnants(n3d: N3D, profile: Profile | str | None = None, faces: int = 200,
                       dilations: range | list[int] = range(7),
                       band: int = 0) -> OcclusionRemnants:
    """How far to grow N3D's occlusion map before painting (snapped to the image's colour
    edges within `band` pixels first, see `guidance.occlusion_map`), measured where it may be
    chosen:
    on the `faces` training-split faces that follow the profile's training samples (its
    identities, never trained on), not on the test faces. Masked faces only."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    unseen = unseen_training_faces(profile, faces)
    worn = wears_mask(unseen["mask_type"])
    masked, true = unseen["masked"][worn], unseen["occlusion"][worn]
    snapped = occlusion_map(n3d_outputs(n3d, masked).occlusion_logits, 0, masked, band)
    left, extra = {}, {}
    for d in dilations:
        found = dilate(snapped, d)
        left[d] = uncovered_share(found, true).float()
        extra[d] = (found * (1 - true)).flatten(1).sum(1) / true.flatten(1).sum(1)
    return OcclusionRemnants(left, extra, band)


def masked_expression_guess(truth: torch.Tensor, mean_coeffs: torch.Tensor,
                            hidden: torch.Tensor, worn: torch.Tensor,
                            layout: CoeffLayout) -> torch.Tensor:
    """The coefficients `(N, size)` of a reader that gets everything a mask leaves visible
    exactly and guesses the training mean `mean_coeffs` `(size,)` for what it hides: `truth`
    `(N, size)` with the `hidden` `(expression size,)` components set to the mean in the
    samples that wear a mask (`worn` `(N,)` bool). The landmark error of these coefficients is
    a floor no N3D reaches without reading through the mask."""
    replace = torch.zeros_like(truth, dtype=torch.bool)
    replace[:, layout.slice("expression")] = worn[:, None] & hidden[None]
    return torch.where(replace, mean_coeffs.expand_as(truth), truth)


@torch.no_grad()
def surface_errors(face_model: MorphableModel, coeffs: torch.Tensor,
                   truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """How far the face of `coeffs` is from that of `truth` (both `(N, size)`): "shape",
    the mean vertex distance before posing, and "albedo", the mean absolute albedo
    difference, `(N,)` each."""
    vertices, albedo = face_model.decode(coeffs)
    true_vertices, true_albedo = face_model.decode(truth)
    return {"shape": (vertices - true_vertices).norm(dim=-1).mean(1),
            "albedo": (albedo - true_albedo).abs().mean((1, 2))}
