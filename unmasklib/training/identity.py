"""Training the identity encoder: ArcFace on the synthetic train identities.

    encoder, run = train_identity_encoder("cpu")     # or reuse runs/cpu/identity.pt
    encoder = load_or_train_identity_encoder("cpu")  # at an entry point: train only if missing

Each step shows every face clean or masked (a coin per face) and shifted a few pixels, so
that the encoder knows a person with and without a mask; the loss is ArcFace's cross-entropy
over the training identities. `verification.evaluate_identity_encoder` checks the result on
held-out identities.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Profile, resolve_run
from ..data import identity_of, identity_train_faces
from ..data.synthetic import DATA_VERSION
from ..devices import pick_device
from ..models.identity import ARCFACE_MARGIN, ARCFACE_SCALE, IdentityEncoder
from ..trained import IDENTITY_NAME, build_identity_models, load_identity_encoder
from .batches import Batches, step_generator
from .loop import Run, StepFn, adam, fit, load_or_train


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of `(B, C, H, W)` moved by a random whole number of pixels in [-max_shift,
    max_shift] along x and y, edges repeated. No horizontal flips: the appearance layer's
    marks (freckles, moles) are not symmetric, so a mirrored face is another face."""
    if max_shift == 0:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    return torch.stack([padded[i, :, y:y + height, x:x + width]
                        for i, (y, x) in enumerate(offsets.tolist())])


def identity_settings(profile: Profile, imagenet_weights: str | Path | None = None) -> dict:
    """What an identity training run of `profile` is made with (stored in its checkpoint)."""
    return {
        "data_version": DATA_VERSION, "train_samples": profile.identity_train_samples,
        "image_size": profile.image_size, "batch": profile.identity_batch,
        "num_classes": identity_of("train", profile.identity_train_samples - 1) + 1,
        "backbone": profile.identity_backbone, "width": profile.identity_width,
        "working_size": profile.identity_image_size, "max_shift": profile.image_size // 16,
        "scale": ARCFACE_SCALE, "margin": ARCFACE_MARGIN,
        "imagenet_weights": "" if imagenet_weights is None else str(imagenet_weights),
    }


def identity_step(seed: int, max_shift: int) -> StepFn:
    """The step function of identity training (networks "encoder" and "head"): per sample,
    its clean or its masked image (a fair coin per sample and step), shifted a little;
    ArcFace cross-entropy as "total"."""
    def step_fn(networks: Mapping[str, nn.Module], batch: dict,
                step: int) -> dict[str, torch.Tensor]:
        generator = step_generator(seed, step)
        labels = batch["identity"]
        masked = (torch.rand(len(labels), generator=generator) < 0.5).to(labels.device)
        images = torch.where(masked[:, None, None, None], batch["masked"], batch["clean"])
        images = random_shift(images, max_shift, generator)
        logits = networks["head"](networks["encoder"](images), labels)
        return {"total": F.cross_entropy(logits, labels)}
    return step_fn


def train_identity_encoder(profile: Profile | str | None = None,
                           run_folder: str | Path | None = None, retrain: bool = False,
                           device: str | torch.device | None = None, progress: bool = True,
                           imagenet_weights: str | Path | None = None,
                           stop_at: int | None = None) -> tuple[IdentityEncoder, Run]:
    """Train the identity encoder of `profile` (default `$UNMASK_PROFILE`, else cpu), or reuse
    its finished checkpoint `<run_folder>/identity.pt` (default `runs/<profile>/`).

    Adam at `identity_lr`, a tenth of it from the mid-point; `identity_steps` steps of
    `identity_batch` faces from `identity_train_samples` train samples; resumes an
    interrupted run exactly.
    Returns the encoder in eval mode on `device` (default: CUDA, MPS, else CPU) and the
    `training.Run` (its `history["total"]` is the ArcFace loss per step).
    """
    profile, folder = resolve_run(profile, run_folder)
    device = pick_device(device)
    settings = identity_settings(profile, imagenet_weights)
    models = {name: module.to(device) for name, module
              in build_identity_models(settings, profile.seed, imagenet_weights).items()}
    parameters = [p for module in models.values() for p in module.parameters()]
    optimizers = {"adam": adam(parameters)}
    run = fit(IDENTITY_NAME, profile, folder, models, optimizers,
              identity_step(profile.seed, settings["max_shift"]),
              lambda: Batches(identity_train_faces(profile, folder, progress),
                              profile.identity_batch, profile.seed),
              profile.identity_steps, seed=profile.seed, lr=profile.identity_lr,
              settings=settings,
              checkpoint_every=profile.checkpoint_every, stop_at=stop_at, retrain=retrain,
              progress=progress)
    return models["encoder"].eval(), run


def load_or_train_identity_encoder(profile: Profile | str | None = None,
                                   folder: str | Path | None = None,
                                   device: str | torch.device | None = None,
                                   progress: bool = True) -> IdentityEncoder:
    """The run's trained identity encoder, frozen; trained first (with a note) when the run
    folder lacks it. For entry points: library functions take the encoder they use."""
    profile, folder = resolve_run(profile, folder)
    return load_or_train(lambda: load_identity_encoder(profile, folder, device),
                         lambda: train_identity_encoder(profile, folder, device=device,
                                                        progress=progress))
