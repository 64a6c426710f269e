"""Phase 1: train N3D to find the occlusion and the 3D face under it.

    n3d, run = train_n3d(encoder, "cpu")   # or reuse runs/cpu/n3d.pt when it is finished
    n3d = load_or_train_n3d("cpu")         # at an entry point: train (and the encoder) if missing

Each step: N3D reads the masked faces, its coefficients are rendered by `face3d.render_faces`,
and `losses.phase1_loss` compares occlusion logits, coefficients, render, identity embedding
and landmarks with the exact ground truth of the synthetic data. The identity encoder of
notebook 02 is frozen; `evaluation.n3d` measures the result.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ..config import Profile, resolve_run
from ..data import train_faces
from ..data.synthetic import DATA_VERSION
from ..devices import computes_bfloat16_natively, pick_device
from ..face3d import MorphableModel, load_face_model, render_faces
from ..losses import COEFF_SCALES, phase1_loss, visibility_scales
from ..models import N3D
from ..models.identity import identity_similarity
from ..trained import N3D_NAME, build_n3d, load_n3d
from .batches import Batches, step_generator
from .distributed import unwrapped
from .identity import load_or_train_identity_encoder
from .loop import Run, StepFn, adam, fit, load_or_train

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # Profile.n3d_precision -> autocast


def autocast_dtype_of(precision: str) -> torch.dtype | None:
    """The autocast dtype of a profile's `n3d_precision` (None: float32); ValueError if unknown."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose one of "
                         f"{sorted(AUTOCAST_DTYPES)}")
    return AUTOCAST_DTYPES[precision]


def runnable_dtype(device_type: str, dtype: torch.dtype | None) -> torch.dtype | None:
    """The autocast dtype that runs when `dtype` is asked for on `device_type`: `dtype`, but
    None (float32) for bfloat16 on a device that would emulate it
    (`devices.computes_bfloat16_natively`): a profile asks for bfloat16 to be faster, and
    emulated it is 13 times slower."""
    if dtype == torch.bfloat16 and not computes_bfloat16_natively(device_type):
        return None
    return dtype


def autocast_in(device_type: str, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `runnable_dtype(device_type, dtype)`, with a warning where that is not the
    dtype asked for; a no-op for None (float32)."""
    runs = runnable_dtype(device_type, dtype)
    if runs != dtype:
        warnings.warn(f"this {device_type} has no bfloat16 in hardware (on a CPU: AVX-512 or "
                      "AMX); running in float32 instead, which is far faster here", stacklevel=2)
    return torch.autocast(device_type, dtype=runs, enabled=runs is not None)


def similarity_in(similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  device_type: str, dtype: torch.dtype | None,
                  ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`similarity(a, b)` run under `autocast_in(device_type, dtype)`, its result in float32
    for the losses."""
    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with autocast_in(device_type, dtype):
            return similarity(a, b).float()
    return run


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
            "detail_width": profile.n3d_detail_width,
            "lambda_id": profile.lambda_id, "lambda_lm": profile.lambda_lm,
            "unmasked_probability": profile.n3d_unmasked_probability,
            "coefficient_weights": "visibility", "precision": profile.n3d_precision}


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


def n3d_step(face_model: MorphableModel, encoder: nn.Module, settings: dict,
             seed: int) -> StepFn:
    """The step function of phase 1 (network "n3d"): `phase1_terms` of N3D on the batch's
    masked faces, a share `unmasked_probability` of them shown without their mask
    (`unmask_some`), the networks in the settings' "precision"; `encoder` frozen."""
    autocast_dtype = autocast_dtype_of(settings["precision"])
    similarity = functools.partial(identity_similarity, encoder)
    scales = visibility_scales(face_model)

    def step_fn(networks: Mapping[str, nn.Module], batch: dict,
                step: int) -> dict[str, torch.Tensor]:
        batch = unmask_some(batch, settings["unmasked_probability"],
                            step_generator(seed, step, "unmask"))
        return phase1_terms(networks["n3d"], face_model, batch, similarity,
                            settings["lambda_id"], settings["lambda_lm"], autocast_dtype,
                            scales)
    return step_fn


def phase1_terms(n3d: nn.Module, face_model: MorphableModel, batch: Mapping[str, torch.Tensor],
                 similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 lambda_id: float = 0.1, lambda_lm: float = 0.001,
                 autocast_dtype: torch.dtype | None = None,
                 coeff_scales: Mapping[str, float | Sequence[float]] = COEFF_SCALES,
                 ) -> dict[str, torch.Tensor]:
    """The loss terms of one phase-1 step (`losses.phase1_loss`: "bce", "coef", "photo",
    "id", "lm", "total"): N3D (or its distributed replica) on `batch["masked"]`,
    `face3d.render_faces` of its coefficients at the batch's image size, every term against
    the batch (keys as `phase1_loss` reads).

    similarity(a, b) -> `(B,)`: the identity cosine, e.g.
    `functools.partial(identity_similarity, encoder)` with a frozen encoder in eval mode.
    autocast_dtype: None for float32; e.g. `torch.bfloat16` runs N3D and the identity
    encoder under autocast on the batch's device (with channels-last weights, phase-1 steps
    1.8x faster than float32 on a CPU with AMX, see `benchmarks/bench_phase1.py`). The
    renderer and the losses always run in float32: screen coordinates and coefficients need
    its precision.
    """
    layout = unwrapped(n3d).layout
    if layout != face_model.layout:
        raise ValueError(f"N3D predicts {layout.describe()}, the face model needs "
                         f"{face_model.layout.describe()}")
    device_type = batch["masked"].device.type

    with autocast_in(device_type, autocast_dtype):
        logits, coeffs = n3d(batch["masked"])
    render = render_faces(face_model, coeffs, batch["masked"].shape[-1])
    return phase1_loss(logits.float(), coeffs, render, batch, face_model.layout,
                       similarity_in(similarity, device_type, autocast_dtype), lambda_id,
                       lambda_lm, coeff_scales)


def train_n3d(encoder: nn.Module, profile: Profile | str | None = None,
              run_folder: str | Path | None = None, retrain: bool = False,
              device: str | torch.device | None = None, progress: bool = True,
              stop_at: int | None = None, photos: str | Path | None = None) -> tuple[N3D, Run]:
    """Train N3D for `profile` (default `$UNMASK_PROFILE`, else cpu) with the run's frozen
    identity `encoder` (`trained.load_identity_encoder`), or reuse the finished checkpoint
    `<run_folder>/n3d.pt` (default `runs/<profile>/`); resumes an interrupted run.

    Adam at the profile's `n3d_lr`, a tenth of it after `n3d_lr_drop_at` of the `n3d_steps`
    steps of `n3d_batch` faces, the networks in its `n3d_precision`. Returns N3D in eval mode on
    `device` (default CUDA, MPS, else CPU) and the `training.Run` with the per-term loss
    history. `photos`: a folder of aligned face photos trained on beside the synthetic faces
    (`data.train_faces`).
    """
    profile, folder = resolve_run(profile, run_folder)
    device = pick_device(device)
    face_model = load_face_model().to(device)
    settings = {**n3d_settings(profile), **photo_settings(photos)}
    n3d = build_n3d(settings, profile.seed, face_model)
    # Channels-last suits oneDNN's convolutions (5-10 % faster steps on 2 CPU cores, as
    # `benchmarks/bench_phase1.py` measures), and bfloat16 needs it to be fast at all. The
    # encoder is copied first: `Module.to` converts in place, and the caller's encoder (G's
    # too, in `load_or_train_inpainting`) must keep its layout, and with it G's float rounding.
    n3d = n3d.to(device, memory_format=torch.channels_last)
    encoder = copy.deepcopy(encoder).to(device, memory_format=torch.channels_last)
    run = fit(N3D_NAME, profile, folder, {"n3d": n3d}, {"adam": adam(n3d.parameters())},
              n3d_step(face_model, encoder, settings, profile.seed),
              lambda: Batches(train_faces(profile, folder, progress, photos),
                              profile.n3d_batch, profile.seed),
              profile.n3d_steps, seed=profile.seed, lr=profile.n3d_lr,
              lr_drop_step=round(profile.n3d_steps * profile.n3d_lr_drop_at), settings=settings,
              checkpoint_every=profile.checkpoint_every, stop_at=stop_at, retrain=retrain,
              progress=progress)
    return n3d.eval(), run


def load_or_train_n3d(profile: Profile | str | None = None, folder: str | Path | None = None,
                      device: str | torch.device | None = None, progress: bool = True,
                      encoder: nn.Module | None = None) -> N3D:
    """The run's trained N3D, frozen; trained first (with a note) when the run folder lacks
    it, with `encoder`, else the run's identity encoder (itself trained first when missing).
    For entry points: library functions take the N3D they use."""
    profile, folder = resolve_run(profile, folder)

    def train() -> None:
        frozen = (encoder if encoder is not None
                  else load_or_train_identity_encoder(profile, folder, device, progress))
        train_n3d(frozen, profile, folder, device=device, progress=progress)
    return load_or_train(lambda: load_n3d(profile, folder, device), train)
