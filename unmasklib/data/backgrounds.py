"""Backgrounds behind the faces: flat colours, gradients, noise, rooms and bokeh.

Varied, often skin-like, colours keep a network from finding the face by colour alone; rooms
(out-of-focus walls, doors and windows) and bokeh (soft discs of light) give it the structure
real photos have behind a person.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..images import gaussian_blur

BACKGROUND_KINDS = ("flat", "gradient", "noise", "room", "bokeh")


def _colour(generator: torch.Generator) -> torch.Tensor:
    """A random colour `(3, 1, 1)` in [-1, 1]."""
    return (torch.rand(3, 1, 1, generator=generator) * 2 - 1)


def _muted(generator: torch.Generator) -> torch.Tensor:
    """A random colour `(3, 1, 1)` in [-1, 1], pulled half-way to its grey, as walls are."""
    colour = _colour(generator)
    return (colour + colour.mean()) / 2


def _room(image_size: int, generator: torch.Generator) -> torch.Tensor:
    """Out-of-focus rectangles (walls, a door, a window, shelves) over a muted wall."""
    image = _muted(generator).expand(3, image_size, image_size).clone()
    for _ in range(int(torch.randint(3, 8, (1,), generator=generator))):
        x0, y0 = (torch.rand(2, generator=generator) * image_size).long().tolist()
        w, h = (torch.rand(2, generator=generator) * image_size * 0.7 + 4).long().tolist()
        bright = float(torch.rand(1, generator=generator)) < 0.2  # a window
        colour = torch.full((3, 1, 1), 0.9) if bright else _muted(generator)
        image[:, y0:y0 + h, x0:x0 + w] = colour
    sigma = image_size * (0.01 + 0.03 * float(torch.rand(1, generator=generator)))
    return gaussian_blur(image[None], sigma, padding="reflect")[0]


def _bokeh(image_size: int, generator: torch.Generator) -> torch.Tensor:
    """Soft bright discs of a few colours (lights out of focus) over a darker gradient."""
    ramp = torch.linspace(0, 1, image_size)[:, None]
    image = (_muted(generator) * 0.6 - 0.4) * (1 - ramp) + (_muted(generator) * 0.6 - 0.4) * ramp
    image = image.expand(3, image_size, image_size).clone()
    ys, xs = torch.meshgrid(torch.arange(image_size), torch.arange(image_size), indexing="ij")
    for _ in range(int(torch.randint(6, 25, (1,), generator=generator))):
        cx, cy = (torch.rand(2, generator=generator) * image_size).tolist()
        radius = image_size * (0.03 + 0.08 * float(torch.rand(1, generator=generator)))
        disc = torch.sigmoid((radius - torch.hypot(xs - cx, ys - cy)) / (radius * 0.15))
        light = (_colour(generator) + 1.5) / 2.5
        image = image + 0.5 * disc * (light - image)
    return image.clamp(-1, 1)


def random_background(image_size: int, generator: torch.Generator) -> torch.Tensor:
    """One background `(3, image_size, image_size)` in [-1, 1], drawn from `generator`."""
    kind = BACKGROUND_KINDS[int(torch.randint(len(BACKGROUND_KINDS), (1,), generator=generator))]
    if kind == "room":
        return _room(image_size, generator)
    if kind == "bokeh":
        return _bokeh(image_size, generator)
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
