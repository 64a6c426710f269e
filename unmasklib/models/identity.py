"""The identity encoder: a ResNet that maps a face to a unit 512-d embedding, trained with an
ArcFace margin on synthetic identities; `identity_similarity` is what losses and metrics call.

The seed's ArcFace is an untrained ResNet, so its identity loss and metric are noise. Ours is
trained on the synthetic set's train identities (clean and masked images alike,
`training.identity`) and checked by face verification on held-out test identities
(`verification`).

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
from torch import nn

from .backbones import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, small_resnet, torchvision_resnet

EMBEDDING_DIM = 512
# Scale s = 30 rather than ArcFace's 64, which suits its 85k classes; with a few hundred,
# s = 30 already lets the softmax saturate. Margin m = 0.3 rather than 0.5: trained from
# scratch for minutes, 0.5 learns more slowly (cpu profile, 400 steps: held-out AUC 0.900
# with 0.5, 0.913 with 0.3, training loss falling faster).
ARCFACE_SCALE = 30.0
ARCFACE_MARGIN = 0.3
POOLED_SIZE = 4  # the embedding layer sees a 4x4 feature map: where a feature is matters


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
