"""Backgrounds behind the faces: flat colours, gradients and noise textures.

Varied, often skin-like, colours keep a network from finding the face by colour alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BACKGROUND_KINDS = ("flat", "gradient", "noise")


def _colour(generator: torch.Generator) -> torch.Tensor:
    """A random colour `(3, 1, 1)` in [-1, 1]."""
    return (torch.rand(3, 1, 1, generator=generator) * 2 - 1)


def random_background(image_size: int, generator: torch.Generator) -> torch.Tensor:
    """One background `(3, image_size, image_size)` in [-1, 1], drawn from `generator`."""
    kind = BACKGROUND_KINDS[int(torch.randint(len(BACKGROUND_KINDS), (1,), generator=generator))]
    first, second = _colour(generator), _colour(generator)
    if kind == "flat":
        return first.expand(3, image_size, image_size).clone()
    if kind == "gradient":
        angle = float(torch.rand(1, generator=generator)) * 2 * math.pi
        ramp = torch.linspace(-1, 1, image_size)
        t = (math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]) / math.sqrt(2)
        t = (t + 1) / 2
    else:  # smooth value noise at a random scale, plus a little grain
        cells = int(torch.randint(3, 12, (1,), generator=generator))
        coarse = torch.rand(1, 1, cells, cells, generator=generator)
        t = F.interpolate(coarse, size=(image_size, image_size), mode="bicubic",
                          align_corners=False)[0, 0].clamp(0, 1)
        t = t + 0.05 * torch.randn(image_size, image_size, generator=generator)
    return (first + (second - first) * t[None]).clamp(-1, 1)
