"""The one place where images change representation.

Inside the library an image is a float tensor in [-1, 1], `(3, H, W)` or `(B, 3, H, W)`.
Files and figures want `uint8` `(H, W, 3)` arrays; these helpers convert both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """`(3, H, W)` or `(B, 3, H, W)` in [-1, 1] -> `(H, W, 3)` or `(B, H, W, 3)` uint8."""
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.movedim(-3, -1).cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float in [-1, 1]."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    return torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1


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
