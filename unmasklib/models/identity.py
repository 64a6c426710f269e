"""The identity encoder: a ResNet that maps a face to a unit 512-d embedding, trained with an
ArcFace margin on synthetic identities; `identity_similarity` is what losses and metrics call.

The seed's ArcFace is an untrained ResNet, so its identity loss and metric are noise. Ours is
trained here, on the synthetic set's train identities (clean and masked images alike), and
checked by face verification on held-out test identities.

Encoder input: `(B, 3, H, W)` in [-1, 1], any size; it is resized (bilinear, antialiased) to
the profile's working resolution (`identity_image_size`: 32 px smoke, 64 px cpu, 112 px
paper) because identity is carried by coarse shape and colour, and small images are what
make training fit a laptop CPU's minutes.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..config import Profile, resolve_run
from ..data.seeding import seeded_torch
from ..data.synthetic import DATA_VERSION, SyntheticMaskedFaces, identity_of
from ..training import (
    Batches,
    Run,
    adam,
    fit,
    load_finished_checkpoint,
    load_weights_only,
    pick_device,
    step_generator,
)
from ..training.loop import StepFn
from ..verification import Verification, verify_identities

MODEL_NAME = "identity"
EMBEDDING_DIM = 512
# Scale s = 30 rather than ArcFace's 64, which suits its 85k classes; with a few hundred,
# s = 30 already lets the softmax saturate. Margin m = 0.3 rather than 0.5: trained from
# scratch for minutes, 0.5 learns more slowly (cpu profile, 400 steps: held-out AUC 0.900
# with 0.5, 0.913 with 0.3, training loss falling faster).
ARCFACE_SCALE = 30.0
ARCFACE_MARGIN = 0.3
POOLED_SIZE = 4  # the embedding layer sees a 4x4 feature map: where a feature is matters
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("small", "resnet18", "resnet50")


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    down = None
    if stride != 1 or in_channels != out_channels:
        down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                             nn.BatchNorm2d(out_channels))
    return nn.Sequential(BasicBlock(in_channels, out_channels, stride, down),
                         *[BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)])


def small_resnet(width: int) -> tuple[nn.Sequential, int]:
    """A ResNet-18 layout (torchvision's BasicBlock, 2-2-2-2) of channels `width * (1, 2, 4,
    8)`, with a stride-2 3x3 stem and no max-pool, for 32-96 px inputs; and its output
    channels. A 64 px input gives a `(8 * width, 4, 4)` feature map."""
    widths = [width * 2 ** i for i in range(4)]
    layers = [nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
              nn.ReLU(inplace=True)]
    for i, channels in enumerate(widths):
        layers.append(_stage(widths[max(i - 1, 0)], channels, 2, 1 if i == 0 else 2))
    return nn.Sequential(*layers), widths[-1]


def torchvision_resnet(name: str, imagenet_weights: str | Path | None) -> tuple[nn.Sequential,
                                                                                 int]:
    """torchvision's `resnet18` / `resnet50` without its pooling and classifier, with random
    weights or ImageNet weights read from the local file `imagenet_weights` (torchvision's
    state-dict format, e.g. `resnet50-0676ba61.pth`); and its output channels."""
    network = getattr(torchvision.models, name)(weights=None)
    if imagenet_weights is not None:
        path = Path(imagenet_weights)
        if not path.is_file():
            raise FileNotFoundError(f"ImageNet weight file {path} not found; nothing is "
                                    "downloaded: pass the path of a torchvision state dict, "
                                    "or None for random weights")
        network.load_state_dict(load_weights_only(path, "weights file"))
    body = nn.Sequential(*list(network.children())[:-2])
    return body, network.fc.in_features


class IdentityEncoder(nn.Module):
    """Face -> identity embedding.

    forward: `(B, 3, H, W)` in [-1, 1] -> `(B, 512)` of unit L2 norm. Resized to
    `image_size` first; BatchNorm layers make the output depend on the batch in train mode,
    so use `eval()` for embeddings and losses.
    backbone: "small" (ResNet-18 layout, channels `width` .. `8 * width`), "resnet18" or
    "resnet50" (torchvision; `imagenet_weights` may name a local ImageNet weight file).
    Head: ArcFace's output layer, BN - flatten a 4x4 map - linear - BN.
    """

    def __init__(self, backbone: str = "small", width: int = 32, image_size: int = 64,
                 imagenet_weights: str | Path | None = None) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if backbone == "small":
            if imagenet_weights is not None:
                raise ValueError("ImageNet weights fit the torchvision backbones only, "
                                 "not 'small'")
            self.body, channels = small_resnet(width)
        else:
            self.body, channels = torchvision_resnet(backbone, imagenet_weights)
        self.image_size = image_size
        self.pool = nn.AdaptiveAvgPool2d(POOLED_SIZE)
        self.embed = nn.Sequential(nn.BatchNorm2d(channels), nn.Flatten(),
                                   nn.Linear(channels * POOLED_SIZE ** 2, EMBEDDING_DIM),
                                   nn.BatchNorm1d(EMBEDDING_DIM))
        # ImageNet statistics only where ImageNet weights may be loaded.
        self.imagenet_input = backbone != "small"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"identity encoder input must be (B, 3, H, W), "
                             f"got {tuple(images.shape)}")
        size = self.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=True)
        if self.imagenet_input:
            images = ((images + 1) / 2 - self.mean) / self.std
        return F.normalize(self.embed(self.pool(self.body(images))), dim=1)


def arcface_logits(cosine: torch.Tensor, labels: torch.Tensor, scale: float = ARCFACE_SCALE,
                   margin: float = ARCFACE_MARGIN) -> torch.Tensor:
    """ArcFace logits: `scale * cos(theta + margin)` for each row's target class, `scale *
    cos(theta)` for the others.

    cosine `(B, C)` in [-1, 1]: cos(theta) between embeddings and class centres; labels `(B,)`.
    Where `theta + margin` would pass pi the target logit continues as `cos(theta) - margin
    * sin(margin)` (insightface's choice), so it keeps decreasing as theta grows.
    """
    sine = (1 - cosine.square()).clamp_min(1e-12).sqrt()
    with_margin = cosine * math.cos(margin) - sine * math.sin(margin)
    with_margin = torch.where(cosine > math.cos(math.pi - margin), with_margin,
                              cosine - margin * math.sin(margin))
    target = F.one_hot(labels, cosine.shape[1]).bool()
    return scale * torch.where(target, with_margin, cosine)


class ArcFaceHead(nn.Module):
    """Additive angular margin classifier over training identities (Deng et al., 2019).

    forward(embeddings `(B, D)`, labels `(B,)` in [0, num_classes)) -> logits `(B,
    num_classes)` for cross-entropy; class centres are normalised, embeddings too.
    """

    def __init__(self, num_classes: int, embedding_dim: int = EMBEDDING_DIM,
                 scale: float = ARCFACE_SCALE, margin: float = ARCFACE_MARGIN) -> None:
        super().__init__()
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.01)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """`(B, D)` -> `(B, num_classes)` cosine to each class centre."""
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return arcface_logits(self.cosine(embeddings), labels, self.scale, self.margin)


def identity_similarity(encoder: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity `(B,)` in [-1, 1] of the identity embeddings of images `a` and `b`,
    both `(B, 3, H, W)` in [-1, 1]. Differentiable w.r.t. the images (the identity loss is
    `1 - identity_similarity`); call it with the encoder in eval mode."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"identity_similarity needs as many images in a as in b, "
                         f"got {a.shape[0]} and {b.shape[0]}")
    return (encoder(a) * encoder(b)).sum(dim=1)


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


def build_identity_models(settings: dict, seed: int,
                          imagenet_weights: str | Path | None = None) -> dict[str, nn.Module]:
    """The encoder and ArcFace head of `settings` (see `identity_settings`), on the CPU, their
    random initial weights fixed by `seed`."""
    with seeded_torch(seed, MODEL_NAME, "init"):
        encoder = IdentityEncoder(settings["backbone"], settings["width"],
                                  settings["working_size"], imagenet_weights)
        head = ArcFaceHead(settings["num_classes"], scale=settings["scale"],
                           margin=settings["margin"])
    return {"encoder": encoder, "head": head}


def identity_step(encoder: IdentityEncoder, head: ArcFaceHead, seed: int,
                  max_shift: int) -> StepFn:
    """The step function of identity training: per sample, its clean or its masked image (a
    fair coin per sample and step), shifted a little; ArcFace cross-entropy as "total"."""
    def step_fn(batch: dict, step: int) -> dict[str, torch.Tensor]:
        generator = step_generator(seed, step)
        labels = batch["identity"]
        masked = (torch.rand(len(labels), generator=generator) < 0.5).to(labels.device)
        images = torch.where(masked[:, None, None, None], batch["masked"], batch["clean"])
        images = random_shift(images, max_shift, generator)
        return {"total": F.cross_entropy(head(encoder(images), labels), labels)}
    return step_fn


def identity_train_set(profile: Profile, run_folder: str | Path,
                       progress: bool = True) -> SyntheticMaskedFaces:
    """The identity encoder's training faces: the synthetic train split, cached in the run's
    data folder (its first `train_samples` are the phase sets' training faces)."""
    return SyntheticMaskedFaces.of_run(profile, run_folder, "train",
                                       profile.identity_train_samples, progress)


def identity_test_set(profile: Profile, run_folder: str | Path,
                      progress: bool = True) -> SyntheticMaskedFaces:
    """Held-out faces for verification: the synthetic test split (identities never trained
    on), `identity_test_samples` of them, 8 per identity."""
    return SyntheticMaskedFaces.of_run(profile, run_folder, "test",
                                       profile.identity_test_samples, progress)


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
    run = fit(MODEL_NAME, profile, folder, models, optimizers,
              identity_step(models["encoder"], models["head"], profile.seed,
                            settings["max_shift"]),
              lambda: Batches(identity_train_set(profile, folder, progress),
                              profile.identity_batch, profile.seed),
              profile.identity_steps, seed=profile.seed, lr=profile.identity_lr,
              settings=settings,
              checkpoint_every=profile.checkpoint_every, stop_at=stop_at, retrain=retrain,
              progress=progress)
    return models["encoder"].eval(), run


def load_identity_encoder(profile: Profile | str | None = None,
                          run_folder: str | Path | None = None,
                          device: str | torch.device | None = None) -> IdentityEncoder:
    """The trained encoder of `profile` from its finished checkpoint, in eval mode with frozen
    weights (as the identity loss and metrics use it). FileNotFoundError when there is none."""
    profile, folder = resolve_run(profile, run_folder)
    state = load_finished_checkpoint(folder, MODEL_NAME, profile.name,
                                     f"train_identity_encoder({profile.name!r}) or notebook 02")
    encoder = build_identity_models(state["settings"], profile.seed)["encoder"]
    encoder.load_state_dict(state["models"]["encoder"])
    return encoder.requires_grad_(False).eval().to(pick_device(device))


def evaluate_identity_encoder(encoder: nn.Module, profile: Profile | str | None = None,
                              run_folder: str | Path | None = None, far_target: float = 1e-2,
                              progress: bool = True) -> dict[str, Verification]:
    """Verification on `profile`'s held-out test identities (`identity_test_set`):
    {"clean-clean": ..., "masked-clean": ...}, each with ROC, AUC and TAR at `far_target`."""
    profile, folder = resolve_run(profile, run_folder)
    return verify_identities(encoder, identity_test_set(profile, folder, progress), far_target,
                             progress=progress)
