"""Lambertian shading under second-order spherical-harmonics (SH) lighting.

Light is 9 SH coefficients per colour channel, `(B, 3, 9)`. The irradiance at a surface with
unit normal n is `sum_k gamma[c, k] * Y_k(n)`, where Y_k are the real SH functions already
convolved with the cosine lobe (Ramamoorthi & Hanrahan 2001), so a pixel is
`albedo * irradiance`. Normals are in camera space: light stays fixed to the camera while the
head turns.

The lighting block of a coefficient vector is an offset from `DEFAULT_LIGHT`, so zero
coefficients mean a soft light from the front and above rather than darkness.
"""

from __future__ import annotations

import math

import torch

# Cosine-lobe factors times the normalisation of the real SH functions, per band.
_BAND0 = math.pi * math.sqrt(1 / (4 * math.pi))
_BAND1 = (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi))
_BAND2 = (math.pi / 4) * math.sqrt(15 / (4 * math.pi))

# Per channel: ambient 0.9, a light from the camera (z) and a little from above (y).
DEFAULT_LIGHT = (0.9, 0.15, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """Unit normals `(..., 3)` -> the 9 cosine-convolved SH values `(..., 9)`.

    Order: constant; y, z, x; xy, yz, 3z^2 - 1, xz, x^2 - y^2 (the usual real-SH order).
    """
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, _BAND0),
        _BAND1 * y,
        _BAND1 * z,
        _BAND1 * x,
        _BAND2 * x * y,
        _BAND2 * y * z,
        _BAND2 / (2 * math.sqrt(3)) * (3 * z * z - 1),
        _BAND2 * x * z,
        _BAND2 / 2 * (x * x - y * y),
    ], dim=-1)


def lighting_from_coeffs(lighting: torch.Tensor) -> torch.Tensor:
    """Lighting block `(B, 27)` (offsets, channel-major) -> SH coefficients `(B, 3, 9)`."""
    default = torch.tensor(DEFAULT_LIGHT, dtype=lighting.dtype, device=lighting.device)
    return lighting.view(-1, 3, 9) + default


def irradiance(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Unit normals `(..., 3)` and SH coefficients `(..., 3, 9)` -> irradiance `(..., 3)`.

    The leading dimensions broadcast, e.g. normals `(B, H, W, 3)` with sh `(B, 1, 1, 3, 9)`.
    """
    return (sh_basis(normals)[..., None, :] * sh).sum(-1)


def irradiance_by_image(normals: torch.Tensor, sh: torch.Tensor,
                        counts: list[int]) -> torch.Tensor:
    """`irradiance(normals, sh[image])` for pixels grouped by image, one product per image.

    normals `(N, 3)`, the first counts[0] from image 0, then counts[1] from image 1, ...;
    sh `(B, 3, 9)`. Returns `(N, 3)`. Several times faster than gathering a light per pixel.
    """
    basis = sh_basis(normals)
    if not counts:  # an empty batch
        return basis.new_zeros(0, 3)
    return torch.cat([part @ light.T for part, light in zip(basis.split(counts), sh, strict=True)])


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The cross product of `(..., 3)` vectors, written out: on the CPU, forward and backward
    together take about 60 % of `torch.linalg.cross`'s time on a face model's triangles."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals `(B, V, 3)` of a mesh `(B, V, 3)`, faces `(F, 3)`.

    With counter-clockwise faces seen from outside, normals point outwards.
    """
    batch, count = vertices.shape[:2]
    # Vertex-major `(V, B * 3)`: gathering and scattering rows is several times faster on
    # the CPU than along the second dimension, forwards and backwards (a fit step of one face
    # spent a third of its time in this function's scatter along dim 1).
    rows = vertices.transpose(0, 1).reshape(count, batch * 3)
    v0, v1, v2 = (rows.index_select(0, faces[:, k]).view(len(faces), batch, 3)
                  for k in range(3))
    face_normals = cross(v1 - v0, v2 - v0)  # (F, B, 3), length = twice the area
    # Each face adds its normal to its three corners, in one scatter.
    normals = rows.new_zeros(count, batch * 3).index_add(
        0, faces.T.reshape(-1), face_normals.repeat(3, 1, 1).view(3 * len(faces), batch * 3))
    return torch.nn.functional.normalize(normals.view(count, batch, 3).transpose(0, 1),
                                         dim=-1, eps=1e-12)


# The first SH band holds the light's direction: entries 1, 2, 3 weigh y, z, x.
_FIRST_BAND = [3, 1, 2]  # where x, y, z sit in the SH order


def light_direction(lighting: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the light comes from, for a lighting block `(B, 27)`: azimuth `(B,)` (radians,
    > 0 from the image right) and elevation `(B,)` (> 0 from above), of the first SH band
    summed over the colour channels."""
    band = lighting_from_coeffs(lighting)[..., _FIRST_BAND].sum(1)  # (B, 3): x, y, z
    x, y, z = band.unbind(-1)
    return torch.atan2(x, z), torch.atan2(y, torch.hypot(x, z))


def with_light_direction(lighting: torch.Tensor, azimuth: float | torch.Tensor,
                         elevation: float | torch.Tensor) -> torch.Tensor:
    """The lighting block `(B, 27)` with its light turned to come from (`azimuth`,
    `elevation`) as in `light_direction`: each channel's first SH band keeps its strength and
    changes direction; ambient and the second band stay."""
    azimuth, elevation = torch.broadcast_tensors(
        *(torch.as_tensor(a, dtype=lighting.dtype, device=lighting.device)
          for a in (azimuth, elevation)))
    direction = torch.stack([torch.cos(elevation) * torch.sin(azimuth), torch.sin(elevation),
                             torch.cos(elevation) * torch.cos(azimuth)], -1)
    sh = lighting_from_coeffs(lighting).clone()
    strength = sh[..., _FIRST_BAND].norm(dim=-1, keepdim=True)  # (B, 3, 1)
    sh[..., _FIRST_BAND] = strength * direction.expand(len(sh), 3).unsqueeze(1)
    return (sh - lighting_from_coeffs(torch.zeros_like(lighting))).reshape(-1, 27)
