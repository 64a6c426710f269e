"""The one place where images change representation, and the filters images share.

Inside the library an image is a float tensor in [-1, 1], `(3, H, W)` or `(B, 3, H, W)`.
Files and figures want `uint8` `(H, W, 3)` arrays; these helpers convert both ways.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """`(3, H, W)` or `(B, 3, H, W)` in [-1, 1] -> `(H, W, 3)` or `(B, H, W, 3)` uint8."""
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    pixels = _levels(image.detach().float()).to(torch.uint8)
    return pixels.movedim(-3, -1).cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float in [-1, 1]."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 127.5 - 1


def batch_of(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 images `(H, W, 3)` of one size -> a batch `(N, 3, H, W)` in [-1, 1]."""
    return torch.stack([from_uint8(array) for array in arrays])


def _levels(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> the nearest of the 256 levels 0 .. 255, as floats."""
    return ((image.clamp(-1, 1) + 1) * 127.5).round()


def quantize(image: torch.Tensor) -> torch.Tensor:
    """`(..., 3, H, W)` in [-1, 1] rounded to the 256 levels an 8-bit image file holds."""
    return _levels(image) / 127.5 - 1


def gaussian_blur(images: torch.Tensor, sigma: float, radius: int | None = None,
                  padding: str = "constant") -> torch.Tensor:
    """Separable Gaussian blur of `(B, C, H, W)`, each channel alone, same size out.

    radius: taps on each side (default ceil(3 sigma), at least 1); padding: `F.pad`'s mode
    for the border ("constant": zeros, "reflect": mirrored).
    """
    radius = max(1, math.ceil(3 * sigma)) if radius is None else radius
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=images.dtype,
                                          device=images.device) / sigma) ** 2)
    taps = (taps / taps.sum()).repeat(images.shape[1], 1, 1, 1)  # (C, 1, 1, K)
    groups = images.shape[1]
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode=padding), taps, groups=groups)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode=padding),
                    taps.transpose(2, 3), groups=groups)


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """`(B, 1, H, W)` binary mask grown by `pixels` in every direction (a square structuring
    element); N3D's map, grown a little, still covers the mask's edge where it misses it."""
    if pixels == 0:
        return mask
    return F.max_pool2d(mask, 2 * pixels + 1, stride=1, padding=pixels)


def erode(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """`(B, 1, H, W)` binary mask shrunk by `pixels` in every direction (`dilate`'s dual)."""
    return 1 - dilate(1 - mask, pixels)


def push_pull_fill(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """`values` `(B, C, H, W)` where `known` `(B, 1, H, W)` in {0, 1} is 1, and elsewhere a
    smooth continuation of them (push-pull, as in Gortler et al. 1996's Lumigraph).

    Pull: a pyramid of 2 x 2 cells, each the mean of its known children, known as soon as one
    child is (weight min(1, 4 x the children's mean weight)). Push: from the one-pixel top
    back down, each level keeps its own mean where it is known and takes the coarser level's,
    bilinearly upsampled, where it is not:
        estimate_k = weight_k * mean_k + (1 - weight_k) * upsample(estimate_k+1).
    An unknown pixel gets the known values nearest it; zeros where nothing is known."""
    means, weights = [values], [known.to(values)]
    while min(means[-1].shape[-2:]) > 1:
        weight = F.avg_pool2d(weights[-1], 2, ceil_mode=True)
        total = F.avg_pool2d(means[-1] * weights[-1], 2, ceil_mode=True)
        means.append(total / weight.clamp(min=1e-12))
        weights.append((4 * weight).clamp(max=1))
    estimate = means[-1] * weights[-1]
    for mean, weight in zip(reversed(means[:-1]), reversed(weights[:-1]), strict=True):
        coarse = F.interpolate(estimate, size=mean.shape[-2:], mode="bilinear",
                               align_corners=False)
        estimate = weight * mean + (1 - weight) * coarse
    return estimate


def region_median(values: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """`(B, C)`: the median of each channel of `values` `(B, C, H, W)` over the pixels where
    `region` `(B, 1, H, W)` is 1 (the lower middle value for an even count); 0 where the
    region is empty."""
    outside = (region < 0.5).expand_as(values)
    medians = values.masked_fill(outside, float("nan")).flatten(2).nanmedian(2).values
    return medians.nan_to_num(0.0)


def paste(base: np.ndarray, overlay: torch.Tensor, where: torch.Tensor) -> np.ndarray:
    """uint8 images `(B, H, W, 3)` with `overlay` `(B, 3, H, W)` in [-1, 1] pasted where
    `where` `(B, H, W)` is True; elsewhere the result is `base`, bit for bit."""
    return np.where(where.cpu().numpy()[..., None], to_uint8(overlay), base)


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """`(B, 3, H, W)` in [-1, 1] -> one uint8 mosaic `(rows * H, columns * W, 3)`, black padding."""
    batch, _, height, width = images.shape
    rows = -(-batch // columns)
    tiles = np.zeros((rows * columns, height, width, 3), dtype=np.uint8)
    tiles[:batch] = to_uint8(images)
    return (tiles.reshape(rows, columns, height, width, 3).transpose(0, 2, 1, 3, 4)
            .reshape(rows * height, columns * width, 3))


def save_image(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 `(H, W, 3)` array losslessly (PNG); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


_TRANSPARENT_MODES = ("P", "PA", "LA", "La", "RGBA", "RGBa")
# Single-channel modes wider than 8 bits, and the value that means white in each: PIL opens
# 16-bit PNGs and TIFFs as "I;16*" or "I"; "F" holds floats in [0, 1].
_HIGH_DEPTH_WHITE = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535,
                     "I": 65535, "F": 1.0}


def load_rgb(path: str | Path) -> np.ndarray:
    """Read any image PIL can open as uint8 RGB `(H, W, 3)`.

    Grey becomes three equal channels, transparency is composited over white, and 16-bit or
    float images are scaled to 8 bits by their type's full range. Raises ValueError naming the
    file when it cannot be read as an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in _TRANSPARENT_MODES:
                rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
                alpha = rgba[..., 3:] / 255
                return np.round(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
            if image.mode not in _HIGH_DEPTH_WHITE:
                return np.asarray(image.convert("RGB"))
            white = _HIGH_DEPTH_WHITE[image.mode]
            grey = np.asarray(image).astype(np.float64)
    except Image.DecompressionBombError as error:
        raise ValueError(f"{path} is too large to read safely ({error}); downscale it first"
                         ) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read {path} as an image: {error}") from error
    grey = np.round(np.clip(grey, 0, white) * 255 / white).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def square_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop uint8 `(H, W, 3)` to a square and resize it to `(size, size, 3)`."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(pixels[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))
