"""Backbones the networks share: a small ResNet for 32-96 px faces, and torchvision's ResNets
(random weights, or ImageNet weights from a local file; nothing is downloaded).

Both give a stem and four stages: the identity encoder pools the last stage, N3D's occlusion
head reads all four (`build_backbone`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

BACKBONES = ("small", "resnet18", "resnet50")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
        # weights_only: a file holding anything but tensors is refused, never executed.
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    body = nn.Sequential(*list(network.children())[:-2])
    return body, network.fc.in_features


def build_backbone(backbone: str, width: int,
                   weights_path: str | Path | None) -> tuple[nn.Sequential, nn.ModuleList]:
    """The stem and the four stages of `backbone`.

    "resnet18" / "resnet50": torchvision's, random or ImageNet weights from the local file
    `weights_path` (stages at 1/4 .. 1/32 of the input). "small": a ResNet-18 layout with
    channels `width * (1, 2, 4, 8)` and a lighter stem (stages at 1/2 .. 1/16), for 64 px.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    if backbone == "small":
        if weights_path is not None:
            raise ValueError("ImageNet weights fit the torchvision backbones only, not 'small'")
        body, _ = small_resnet(width)
    else:
        body, _ = torchvision_resnet(backbone, weights_path)
    return nn.Sequential(*body[:-4]), nn.ModuleList(body[-4:])
