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
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 127.5 - 1


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
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def load_rgb(path: str | Path) -> np.ndarray:
    """Read any image PIL can open as uint8 RGB `(H, W, 3)`.

    Grey becomes three equal channels, transparency is composited over white, and 16-bit
    images are scaled to 8 bits by their full range. Raises ValueError naming the file when it
    cannot be read as an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in _TRANSPARENT_MODES:
                rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
                alpha = rgba[..., 3:] / 255
                return np.round(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
            if image.mode not in _HIGH_DEPTH_MODES:
                return np.asarray(image.convert("RGB"))
            grey = np.asarray(image).astype(np.float64)
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read {path} as an image: {error}") from error
    # PIL keeps 16-bit PNGs in these modes; 8-bit data stored in them stays as it is.
    top = 65535 if grey.max() > 255 else 255
    grey = np.round(np.clip(grey, 0, top) * 255 / top).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def square_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop uint8 `(H, W, 3)` to a square and resize it to `(size, size, 3)`."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(pixels[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))
