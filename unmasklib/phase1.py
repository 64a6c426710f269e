"""Phase 1: train N3D to find the occlusion and the 3D face under it, and measure it.

    n3d, run = train_n3d("cpu")          # or reuse runs/cpu/n3d.pt when it is finished
    report = evaluate_n3d(n3d, "cpu")    # held-out test identities: IoU, NME, pose, blocks

Each step: N3D reads the masked faces, its coefficients are rendered by `face3d.render_faces`,
and `losses.phase1_loss` compares occlusion logits, coefficients, render, identity embedding
and landmarks with the exact ground truth of the synthetic data. The identity encoder of
notebook 02 is loaded frozen (and trained first, with a note, when the run folder lacks it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from .config import Profile, resolve_run
from .data.folder import MaskedFaceFolder
from .data.seeding import seeded_torch
from .data.synthetic import DATA_VERSION, SyntheticMaskedFaces, wears_mask
from .face3d import CoeffLayout, MorphableModel, load_face_model, render_faces
from .fitting import FaceFit, lower_face_expressions
from .images import dilate
from .losses import visibility_scales
from .metrics import LANDMARK_REGIONS, landmark_errors, occlusion_iou, pearson_r
from .models.identity import identity_similarity, load_identity_encoder, train_identity_encoder
from .models.n3d import N3D, phase1_terms
from .training import (
    Batches,
    Run,
    adam,
    dataset_batches,
    fit,
    load_finished_checkpoint,
    load_or_train,
    pick_device,
    step_generator,
)

MODEL_NAME = "n3d"
POSE_NAMES = ("yaw", "pitch", "roll")
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # Profile.n3d_precision -> autocast


def phase_sets(profile: Profile, folder: Path, progress: bool = True,
               photos: str | Path | None = None) -> tuple[Dataset, SyntheticMaskedFaces]:
    """The phase sets: `train_samples` training and `test_samples` held-out faces, cached in
    the run's data folder (the same cache notebook 01 writes). `photos`: a folder of the
    user's aligned face photos (`MaskedFaceFolder`) trained on beside the synthetic faces."""
    train = SyntheticMaskedFaces.of_run(profile, folder, "train", profile.train_samples, progress)
    if photos is not None:
        train = ConcatDataset([train, MaskedFaceFolder(photos, profile.image_size, profile.seed)])
    return (train,
            SyntheticMaskedFaces.of_run(profile, folder, "test", profile.test_samples, progress))


def photo_settings(photos: str | Path | None) -> dict:
    """What a folder of photos adds to a run's settings, so that a checkpoint trained with
    other data (or none) is not taken for this run's: its path and how many files it holds
    (counted, not decoded: `MaskedFaceFolder` decodes them once, when training needs them)."""
    if photos is None:
        return {}
    root = Path(photos).resolve()
    return {"photos": str(root), "photo_count": sum(p.is_file() for p in root.rglob("*"))}


def n3d_settings(profile: Profile) -> dict:
    """What a phase-1 run of `profile` is made with (stored in its checkpoint)."""
    return {"data_version": DATA_VERSION, "train_samples": profile.train_samples,
            "image_size": profile.image_size, "batch": profile.n3d_batch,
            "backbone": profile.n3d_backbone, "width": profile.n3d_width,
            "lambda_id": profile.lambda_id, "lambda_lm": profile.lambda_lm,
            "unmasked_probability": profile.n3d_unmasked_probability,
            "coefficient_weights": "visibility", "precision": profile.n3d_precision}


def build_n3d(settings: dict, seed: int, face_model: MorphableModel) -> N3D:
    """An N3D of `settings` on the CPU, its random initial weights fixed by `seed`."""
    with seeded_torch(seed, MODEL_NAME, "init"):
        return N3D(settings["backbone"], settings["image_size"], face_model.layout,
                   width=settings["width"])


def frozen_identity_encoder(profile: Profile, folder: Path, device: torch.device) -> nn.Module:
    """The run's trained identity encoder, frozen; trained first (with a note) when missing."""
    return load_or_train(lambda: load_identity_encoder(profile, folder, device),
                         lambda: train_identity_encoder(profile, folder, device=device))


def unmask_some(batch: dict, probability: float, generator: torch.Generator) -> dict:
    """`batch` with, per sample and with `probability`, the mask taken off: "masked" becomes
    "clean" and "occlusion" zero. Only samples with a clean image (`has_clean`, default all)
    qualify. N3D then also learns to read bare faces, whose mouth shows the expression: it
    reads G's unmasked results back for edit fidelity, and photos without a mask."""
    coin = torch.rand(len(batch["masked"]), generator=generator) < probability
    has_clean = batch.get("has_clean", torch.ones(len(coin), dtype=torch.bool))
    bare = (coin.to(has_clean.device) & has_clean.bool()).view(-1, 1, 1, 1)
    return {**batch, "masked": torch.where(bare, batch["clean"], batch["masked"]),
            "occlusion": torch.where(bare, 0.0, batch["occlusion"])}


def n3d_step(n3d: N3D, face_model: MorphableModel, encoder: nn.Module, settings: dict,
             seed: int):
    """The step function of phase 1: `phase1_terms` of N3D on the batch's masked faces, a
    share `unmasked_probability` of them shown without their mask (`unmask_some`), the
    networks in the settings' "precision"."""
    if settings["precision"] not in AUTOCAST_DTYPES:
        raise ValueError(f"unknown precision {settings['precision']!r}; choose one of "
                         f"{sorted(AUTOCAST_DTYPES)}")
    similarity = functools.partial(identity_similarity, encoder)
    scales = visibility_scales(face_model)
    autocast_dtype = AUTOCAST_DTYPES[settings["precision"]]

    def step_fn(batch: dict, step: int) -> dict[str, torch.Tensor]:
        batch = unmask_some(batch, settings["unmasked_probability"],
                            step_generator(seed, step, "unmask"))
        return phase1_terms(n3d, face_model, batch, similarity, settings["lambda_id"],
                            settings["lambda_lm"], autocast_dtype, scales)
    return step_fn


def train_n3d(profile: Profile | str | None = None, run_folder: str | Path | None = None,
              retrain: bool = False, device: str | torch.device | None = None,
              progress: bool = True, stop_at: int | None = None,
              photos: str | Path | None = None) -> tuple[N3D, Run]:
    """Train N3D for `profile` (default `$UNMASK_PROFILE`, else cpu), or reuse the finished
    checkpoint `<run_folder>/n3d.pt` (default `runs/<profile>/`); resumes an interrupted run.

    Adam at the profile's `n3d_lr`, a tenth of it after `n3d_lr_drop_at` of the `n3d_steps`
    steps of `n3d_batch` faces, the networks in its `n3d_precision`. Returns N3D in eval mode on
    `device` (default CUDA, MPS, else CPU) and the `training.Run` with the per-term loss
    history. `photos`: see `phase_sets`.
    """
    profile, folder = resolve_run(profile, run_folder)
    device = pick_device(device)
    face_model = load_face_model().to(device)
    settings = {**n3d_settings(profile), **photo_settings(photos)}
    n3d = build_n3d(settings, profile.seed, face_model)
    encoder = frozen_identity_encoder(profile, folder, device)
    # Channels-last suits oneDNN's convolutions (5-10 % faster steps on 2 CPU cores, as
    # `benchmarks/bench_phase1.py` measures), and bfloat16 needs it to be fast at all.
    n3d, encoder = (m.to(device, memory_format=torch.channels_last) for m in (n3d, encoder))
    run = fit(MODEL_NAME, profile, folder, {"n3d": n3d}, {"adam": adam(n3d.parameters())},
              n3d_step(n3d, face_model, encoder, settings, profile.seed),
              lambda: Batches(phase_sets(profile, folder, progress, photos)[0],
                              profile.n3d_batch, profile.seed),
              profile.n3d_steps, seed=profile.seed, lr=profile.n3d_lr,
              lr_drop_step=round(profile.n3d_steps * profile.n3d_lr_drop_at), settings=settings,
              checkpoint_every=profile.checkpoint_every, stop_at=stop_at, retrain=retrain,
              progress=progress)
    return n3d.eval(), run


def load_n3d(profile: Profile | str | None = None, run_folder: str | Path | None = None,
             device: str | torch.device | None = None) -> N3D:
    """The trained N3D of `profile` from its finished checkpoint, frozen, in eval mode.
    FileNotFoundError (naming notebook 03) when there is none."""
    profile, folder = resolve_run(profile, run_folder)
    state = load_finished_checkpoint(folder, MODEL_NAME, profile.name,
                                     f"train_n3d({profile.name!r}) or notebook 03")
    n3d = build_n3d(state["settings"], profile.seed, load_face_model())
    n3d.load_state_dict(state["models"]["n3d"])
    return n3d.requires_grad_(False).eval().to(pick_device(device))


@dataclass
class N3DReport:
    """N3D on held-out faces, per sample (N of them).

    iou `(N,)` occlusion IoU; predicted, truth `(N, size)`: N3D's and the true coefficients;
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
        out = {"iou": float(self.iou[worn].mean()), "nme": float(self.nme.mean()),
               "nme_floor": float(self.floor_landmark_error.mean())}
        out.update({f"{name}_mae_deg": float(self.pose_error[:, k].mean())
                    for k, name in enumerate(POSE_NAMES)})
        return out


@torch.no_grad()
def predict(n3d: N3D, images: torch.Tensor,
            batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlusion probabilities `(N, 1, H, W)` in [0, 1] and coefficients `(N, size)` of images
    `(N, 3, H, W)` in [-1, 1], on the network's device, returned on the CPU."""
    device = next(n3d.parameters()).device
    maps, coeffs = [], []
    for start in range(0, len(images), batch_size):
        out = n3d(images[start:start + batch_size].to(device))
        maps.append(torch.sigmoid(out.occlusion_logits).cpu())
        coeffs.append(out.coeffs.cpu())
    return torch.cat(maps), torch.cat(coeffs)


def evaluate_n3d(n3d: N3D, profile: Profile | str | None = None,
                 run_folder: str | Path | None = None, batch_size: int = 32,
                 progress: bool = True, fit: bool = True) -> N3DReport:
    """N3D on the profile's held-out test faces against their exact ground truth; with `fit`,
    its coefficients fitted to the visible face first (`fitting.FaceFit`, the profile's
    settings, outside N3D's occlusion map grown as G gets it), as every later use of N3D
    does."""
    profile, folder = resolve_run(profile, run_folder)
    train, test = phase_sets(profile, folder, progress)
    face_model = load_face_model()
    face_fit = FaceFit.of_profile(profile, face_model) if fit else None
    mean_coeffs = torch.stack([train[i]["coeffs"] for i in range(len(train))]).mean(0)
    hidden = lower_face_expressions(face_model, profile.image_size)
    parts: dict[str, list] = {"iou": [], "predicted": [], "truth": [], "landmark": [],
                              "floor": [], "surface": [], "mean_surface": []}
    kinds: list[str] = []
    for batch in dataset_batches(test, batch_size, "evaluating N3D", progress):
        occlusion, coeffs = predict(n3d, batch["masked"], batch_size)
        if face_fit is not None:
            occluded = dilate((occlusion > 0.5).float(), profile.occlusion_dilation)
            coeffs = face_fit(batch["masked"], occluded, coeffs)
        truth = batch["coeffs"]
        floor = masked_expression_guess(truth, mean_coeffs, hidden,
                                        wears_mask(batch["mask_type"]), face_model.layout)
        with torch.no_grad():
            landmarks, floor_landmarks = render_faces(
                face_model, torch.cat([coeffs, floor]), profile.image_size
            ).landmarks.split(len(coeffs))
        parts["iou"].append(occlusion_iou(occlusion, batch["occlusion"]))
        parts["predicted"].append(coeffs)
        parts["truth"].append(truth)
        parts["landmark"].append(landmark_errors(landmarks, batch["landmarks"]))
        parts["floor"].append(landmark_errors(floor_landmarks, batch["landmarks"]))
        parts["surface"].append(surface_errors(face_model, coeffs, truth))
        parts["mean_surface"].append(surface_errors(face_model, mean_coeffs.expand_as(truth),
                                                    truth))
        kinds += batch["mask_type"]
    return N3DReport(
        iou=torch.cat(parts["iou"]).float(), predicted=torch.cat(parts["predicted"]),
        truth=torch.cat(parts["truth"]), mean_coeffs=mean_coeffs,
        landmark_error=torch.cat(parts["landmark"]).float(),
        floor_landmark_error=torch.cat(parts["floor"]).float(),
        hidden_expressions=[name for name, hides in
                            zip(face_model.expression_names, hidden, strict=True) if hides],
        surface_error={name: torch.cat([p[name] for p in parts["surface"]])
                       for name in ("shape", "albedo")},
        mean_face_surface_error={name: torch.cat([p[name] for p in parts["mean_surface"]])
                                 for name in ("shape", "albedo")},
        mask_type=kinds, layout=face_model.layout)


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
