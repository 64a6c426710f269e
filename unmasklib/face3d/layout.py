"""Named blocks of a 3DMM coefficient vector.

A face is described by one flat vector per sample (what a network predicts). `CoeffLayout`
is the single place that knows which entries belong to which block; every other module asks
it instead of hard-coding offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CoeffLayout:
    """Ordered `(name, size)` blocks, e.g. `(("identity", 80), ("expression", 44), ...)`."""

    blocks: tuple[tuple[str, int], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.blocks]

    @property
    def size(self) -> int:
        return sum(size for _, size in self.blocks)

    def slice(self, name: str) -> slice:
        """Where block `name` sits in the flat vector."""
        start = 0
        for block, size in self.blocks:
            if block == name:
                return slice(start, start + size)
            start += size
        raise KeyError(f"no coefficient block {name!r}; blocks are {self.names}")

    def split(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        """`(..., size)` -> `{name: (..., block_size)}` (views, no copy)."""
        if coeffs.shape[-1] != self.size:
            raise ValueError(
                f"coefficients have {coeffs.shape[-1]} entries in their last dimension, "
                f"this layout needs {self.size} ({self.describe()})"
            )
        return {name: coeffs[..., self.slice(name)] for name in self.names}

    def join(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Inverse of `split`: `{name: (..., block_size)}` -> `(..., size)`."""
        missing = [name for name in self.names if name not in parts]
        extra = [name for name in parts if name not in self.names]
        if missing or extra:
            raise ValueError(f"join needs exactly the blocks {self.names}; "
                             f"missing {missing}, unexpected {extra}")
        for name, size in self.blocks:
            if parts[name].shape[-1] != size:
                raise ValueError(f"block {name!r} has {parts[name].shape[-1]} entries, "
                                 f"expected {size}")
        return torch.cat([parts[name] for name in self.names], dim=-1)

    def zeros(self, batch_size: int, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> torch.Tensor:
        """A `(batch_size, size)` vector of zeros: the mean face, default pose and light."""
        return torch.zeros(batch_size, self.size, dtype=dtype, device=device)

    def pose(self, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, size)` -> angles `(B, 3)` (yaw, pitch, roll in radians), translation `(B, 3)`.

        The embedded model keeps both in one `pose` block; the Basel layout of Deep3DFaceRecon
        keeps them apart (`rotation`, `translation`).
        """
        parts = self.split(coeffs)
        if "pose" in parts:
            return parts["pose"][..., :3], parts["pose"][..., 3:]
        return parts["rotation"], parts["translation"]

    def describe(self) -> str:
        return " + ".join(f"{name} {size}" for name, size in self.blocks)
