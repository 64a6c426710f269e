"""N3D: the multi-task network of phase 1. One ResNet backbone, two heads:

    occlusion head    FPN-lite over the four stages -> occlusion logits at input resolution
    coefficient head  gated convolution over the last stage -> 3DMM coefficients

The seed's occlusion head runs a 3x3 convolution from all stages concatenated (1,792 channels)
to 512 channels at 1/4 resolution: 6.3 times the FLOPs of the whole ResNet-50 at 256 px,
over half of its training step. Here each stage is projected to `head_width` channels by a 1x1
convolution and merged top-down (a feature pyramid, Lin et al. 2017); one 3x3 convolution
adds context at 1/8 resolution, one more sharpens the boundary with the finest stage (1/4),
and the logits are upsampled bilinearly. A mask's body is a large smooth blob, so a quarter-
resolution map with interpolated logits places its edge to a fraction of a pixel; but its ear
loops are a pixel or two wide, thinner than one cell of that map, and were never found (the
slivers of mask a painting left beside the face). A full-resolution detail step (`detail_width`
channels of two 3x3 convolutions on the image itself, mixed with the upsampled pyramid
features) gives the head the pixels to see them. At 256 px the head costs 4.5 % of the
ResNet-50's FLOPs without the detail step (`benchmarks/bench_phase1.py` counts both).

The coefficient head gates the last stage's features (Yu et al. 2019, gated convolution):
`relu(conv_f(x)) * sigmoid(conv_g(x))`, so positions on the mask can be switched off before
the features are pooled. It pools to a 4x4 grid rather than to one vector, so the linear
layer still knows where on the image a feature was (the pose's translation needs that).
Its final layer starts at zero: the first prediction is the zero vector, which in the
embedded layout is the mean face with the default pose and light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..face3d import EMBEDDED_LAYOUT, CoeffLayout
from .backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone

POOLED_SIZE = 4       # the coefficient head's grid: coarse position survives the pooling
MAX_GATE_CHANNELS = 512
MAX_HEAD_WIDTH = 64


class N3DOutput(NamedTuple):
    """occlusion_logits `(B, 1, H, W)`: logits of "the mask covers this pixel" (sigmoid gives
    a probability); coeffs `(B, layout.size)`: 3DMM coefficients."""

    occlusion_logits: torch.Tensor
    coeffs: torch.Tensor


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`x` resized (bilinear) to the spatial size of `like`; sizes need not be powers of 2."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def last_conv_channels(stage: nn.Module) -> int:
    """Output channels of a ResNet stage: those of the last convolution of its last block."""
    return [m for m in stage[-1].modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class OcclusionHead(nn.Module):
    """FPN-lite: stage features, finest first, and the image -> logits `(B, 1, H, W)` at the
    image's size.

    Stages are projected to `width` channels (1x1) and summed top-down; a 3x3 block at the
    second-finest level adds context, a 3x3 block at the finest level (after adding its
    projection) sharpens the boundary. With `detail_width` > 0, those features, projected to
    `detail_width` channels and upsampled to the image's size, are added to as many channels
    computed from the image itself (3x3), mixed (3x3) and turned into logits (1x1), so that
    structures thinner than the finest stage's cells reach the logits; otherwise a 1x1
    convolution gives logits at the finest level, upsampled bilinearly.
    """

    def __init__(self, in_channels: Sequence[int], width: int, detail_width: int = 0) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.context = conv_bn_relu(width, width)
        self.boundary = conv_bn_relu(width, width // 2)
        if detail_width:
            # Kept narrow and free of normalisation: at full resolution every channel is
            # paid for at each pixel, and these layers are memory-bound on a CPU.
            self.coarse = nn.Conv2d(width // 2, detail_width, 1)
            self.detail = nn.Conv2d(3, detail_width, 3, padding=1)
            self.mix = nn.Conv2d(detail_width, detail_width, 3, padding=1)
            self.logits = nn.Conv2d(detail_width, 1, 1)
        else:
            self.detail = None
            self.logits = nn.Conv2d(width // 2, 1, 1)

    def forward(self, features: Sequence[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        levels = [lateral(f) for lateral, f in zip(self.lateral, features, strict=True)]
        top = levels[-1]
        for level in reversed(levels[1:-1]):
            top = level + upsample_to(top, level)
        top = self.context(top)
        top = self.boundary(levels[0] + upsample_to(top, levels[0]))
        if self.detail is None:
            return upsample_to(self.logits(top), image)
        x = F.relu(upsample_to(self.coarse(top), image) + self.detail(image))
        return self.logits(F.relu(self.mix(x)))


class GatedConv2d(nn.Module):
    """1x1 gated convolution: `(B, C_in, h, w)` -> `relu(conv_f(x)) * sigmoid(conv_g(x))`
    `(B, C_out, h, w)`. A very negative gate bias closes the gate: the output becomes zero."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.feature = nn.Conv2d(in_channels, out_channels, 1)
        self.gate = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.feature(x)) * torch.sigmoid(self.gate(x))


class N3D(nn.Module):
    """Masked face -> occlusion logits and 3DMM coefficients.

    forward: `(B, 3, image_size, image_size)` in [-1, 1] -> `N3DOutput(occlusion_logits
    (B, 1, image_size, image_size), coeffs (B, layout.size))`.
    backbone: "resnet50" (the paper's), "resnet18", or "small" (channels `width` ..
    `8 * width`); `weights_path` names a local torchvision ImageNet state dict for the
    torchvision backbones (nothing is downloaded; None: random weights).
    head_width: channels of the occlusion head's pyramid; None: 64, or fewer when the finest
    stage has fewer (a pyramid wider than the stage it refines buys nothing; it would make
    the head of a "small" backbone cost more than the backbone). detail_width: channels of the
    occlusion head's full-resolution detail step (0: none; see `OcclusionHead`).
    """

    def __init__(self, backbone: str = "resnet18", image_size: int = 128,
                 layout: CoeffLayout = EMBEDDED_LAYOUT, weights_path: str | Path | None = None,
                 width: int = 32, head_width: int | None = None, detail_width: int = 0) -> None:
        super().__init__()
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.image_size, self.layout = image_size, layout
        self.stem, self.stages = build_backbone(backbone, width, weights_path)
        channels = [last_conv_channels(stage) for stage in self.stages]
        head_width = head_width or min(MAX_HEAD_WIDTH, channels[0])
        self.config = {"backbone": backbone, "image_size": image_size, "width": width,
                       "head_width": head_width, "detail_width": detail_width,
                       "num_coeffs": layout.size}
        self.occlusion_head = OcclusionHead(channels, head_width, detail_width)
        gate_channels = min(channels[-1], MAX_GATE_CHANNELS)
        self.gate = GatedConv2d(channels[-1], gate_channels)
        self.pool = nn.AdaptiveAvgPool2d(POOLED_SIZE)
        self.coeff_head = nn.Linear(gate_channels * POOLED_SIZE ** 2, layout.size)
        nn.init.zeros_(self.coeff_head.weight)
        nn.init.zeros_(self.coeff_head.bias)
        # ImageNet statistics: the torchvision backbones may carry ImageNet weights.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> N3DOutput:
        size = (self.image_size, self.image_size)
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != size:
            raise ValueError(f"N3D input must be (B, 3, {size[0]}, {size[1]}) in [-1, 1], "
                             f"got {tuple(images.shape)}")
        normalised = ((images + 1) / 2 - self.mean) / self.std
        x = self.stem(normalised)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits = self.occlusion_head(features, normalised)
        pooled = self.pool(self.gate(features[-1])).flatten(1)
        # Coefficients drive the renderer: under bfloat16 autocast, 8 bits of mantissa would
        # round them to steps of 1/128 near 1, so this small layer always runs in float32.
        with torch.autocast(images.device.type, enabled=False):
            coeffs = self.coeff_head(pooled.float())
        return N3DOutput(logits, coeffs)
