"""The appearance layer: what real skin has and a 3D morphable model cannot express.

A 3DMM colours each vertex, so its faces are smooth and matte, and a perfect coefficient
estimate would render the clean image exactly. The data generator therefore paints, over the
plain render, detail that no coefficient describes:

- skin mottling and pores, for everyone; freckles or moles for some identities;
- stubble or a beard shadow on the lower face for some: mostly under the mask, so what the
  unmasked result shows there is a guess that nobody can check;
- forehead lines and crow's feet for some;
- nasolabial folds whose depth follows the `smile` and `jaw_open` coefficients;
- a Blinn-Phong specular sheen, lit by the sample's own light, stronger on the T-zone.

Detail lives in maps over the face's surface coordinates (u: arc length around the head,
v: height, model units on the mean face), sampled per pixel through the interpolated surface
coordinates: finer than the mesh, and it moves with the face. The maps are drawn from an
identity's own generator, so a person has the same freckles in every sample. Only the data
generator uses this layer: N3D and the inpainting generator see `face3d.render_faces`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..face3d import MorphableModel
from ..face3d.camera import FOCAL_PER_PIXEL
from ..face3d.render import RenderOutput, scene_light
from ..face3d.shading import DEFAULT_LIGHT
from ..images import gaussian_blur

# The part of the (u, v) plane the maps cover, model units: (u_min, u_max, v_min, v_max).
MAP_BOUNDS = (-1.7, 1.7, -1.4, 1.35)
# Texels per pixel of the face on screen (a unit of the face spans FOCAL_PER_PIXEL / 10 of
# the image height): a little finer than the image, so the detail is sampled per pixel.
TEXELS_PER_PIXEL = 1.25
FOLD_DARKENING = 0.35  # log-albedo drop at the centre of a fold of strength 1
# Colours as albedo factors (< 1 darkens): what each kind of detail does to the skin.
FRECKLE = (0.80, 0.70, 0.64)
MOLE = (0.45, 0.36, 0.32)
HAIR = (0.36, 0.33, 0.33)
BEARD_SHADOW = (0.80, 0.80, 0.86)
WRINKLE = (0.80, 0.78, 0.78)


@dataclass(frozen=True)
class Appearance:
    """One identity's detail maps over the `MAP_BOUNDS` surface rectangle.

    maps `(5, H, W)`: log albedo factor (3 channels, added to log albedo), fold profile
    in [0, 1] (scaled per sample by `fold_strength`), specular strength >= 0.
    shininess: Blinn-Phong exponent; fold_depth: the fold strength of a neutral face;
    traits: the optional features this identity has ("freckles", "moles", "stubble",
    "wrinkles"), for figures and for choosing examples.
    """

    maps: torch.Tensor
    shininess: float
    fold_depth: float
    traits: tuple[str, ...] = ()


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=generator))


def _chance(generator: torch.Generator, p: float) -> bool:
    return float(torch.rand(1, generator=generator)) < p


def map_shape(image_size: int) -> tuple[int, int]:
    """(H, W) of the detail maps for faces rendered at `image_size` pixels."""
    per_unit = TEXELS_PER_PIXEL * FOCAL_PER_PIXEL / 10 * image_size
    u0, u1, v0, v1 = MAP_BOUNDS
    return math.ceil((v1 - v0) * per_unit), math.ceil((u1 - u0) * per_unit)


def _texel_coordinates(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """u, v `(H, W)` at the texel centres; row 0 is the top (largest v)."""
    u0, u1, v0, v1 = MAP_BOUNDS
    height, width = shape
    u = u0 + (torch.arange(width) + 0.5) * (u1 - u0) / width
    v = v1 - (torch.arange(height) + 0.5) * (v1 - v0) / height
    return u[None, :].expand(height, width), v[:, None].expand(height, width)


def _smooth_noise(generator: torch.Generator, scale: float, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-mean value noise `(H, W)` of feature size `scale` model units, std about 1.

    The coarse lattice depends on `scale` only, so the pattern is the same at every resolution.
    """
    u0, u1, v0, v1 = MAP_BOUNDS
    lattice = torch.randn(1, 1, math.ceil((v1 - v0) / scale) + 1,
                          math.ceil((u1 - u0) / scale) + 1, generator=generator)
    noise = F.interpolate(lattice, size=shape, mode="bicubic", align_corners=True)[0, 0]
    return noise / 0.6  # bicubic smoothing shrinks the std of a unit lattice to about 0.6


def _map_fraction(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Surface coordinates -> where they fall in the maps, as fractions: x of the width from
    the left, y of the height from the top (row 0 holds the largest v)."""
    u0, u1, v0, v1 = MAP_BOUNDS
    return (u - u0) / (u1 - u0), (v1 - v) / (v1 - v0)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """`images.gaussian_blur` of one map `(H, W)`, zeros beyond its border."""
    return gaussian_blur(image[None, None], sigma)[0, 0]


def _spots(u: torch.Tensor, v: torch.Tensor, weight: torch.Tensor, shape: tuple[int, int],
           radius: float) -> torch.Tensor:
    """Round spots of `radius` model units and peak ~`weight` at (u, v) `(K,)`: `(H, W)`."""
    height, width = shape
    x, y = _map_fraction(u, v)
    col = (x * width).long().clamp(0, width - 1)
    row = (y * height).long().clamp(0, height - 1)
    impulses = torch.zeros(height * width).index_add_(0, row * width + col, weight)
    sigma = max(radius * width / (MAP_BOUNDS[1] - MAP_BOUNDS[0]), 0.5)
    # A blurred impulse has peak 1 / (2 pi sigma^2); scale back so a spot reaches `weight`.
    return _blur(impulses.view(height, width), sigma) * 2 * math.pi * sigma ** 2


def _band(t: torch.Tensor, lo: float, hi: float, soft: float) -> torch.Tensor:
    """~1 for lo < t < hi, falling off over `soft` on either side."""
    return torch.sigmoid((t - lo) / soft) * torch.sigmoid((hi - t) / soft)


@lru_cache(maxsize=4)
def _fold_profile(shape: tuple[int, int]) -> torch.Tensor:
    """The two nasolabial folds `(H, W)` in [0, 1]: from beside the nose wings to below the
    mouth corners, deepest near the top. The same for everyone; the depth is not."""
    u, v = _texel_coordinates(shape)
    t = torch.linspace(0, 1, 24)
    curve_u = 0.12 + 0.17 * t + 0.05 * t * (1 - t)
    curve_v = -0.24 - 0.42 * t
    du = u.abs()[..., None] - curve_u
    dv = v[..., None] - curve_v
    distance, nearest = torch.sqrt(du ** 2 + dv ** 2).min(-1)
    return torch.exp(-0.5 * (distance / 0.022) ** 2) * (1 - 0.6 * t[nearest])


def _log_colour(colour: tuple[float, float, float]) -> torch.Tensor:
    return torch.log(torch.tensor(colour))[:, None, None]


def draw_appearance(generator: torch.Generator, image_size: int) -> Appearance:
    """One identity's appearance, for faces rendered at `image_size` pixels.

    Draws from `generator` in a fixed order, so an identity's generator gives the same
    freckles, stubble and sheen every time (pores, drawn per texel, depend on the size).
    """
    shape = map_shape(image_size)
    u, v = _texel_coordinates(shape)
    au = u.abs()
    tone = _uniform(generator, 0.012, 0.03) * _smooth_noise(generator, 0.25, shape)
    blotch = _uniform(generator, 0.005, 0.015) * _smooth_noise(generator, 0.06, shape)
    log_albedo = (tone + blotch)[None] * torch.tensor([1.0, 0.9, 0.85])[:, None, None]
    redness = _uniform(generator, 0.0, 0.035) * _smooth_noise(generator, 0.3, shape).clamp(min=0)
    log_albedo = log_albedo + redness[None] * torch.tensor([0.4, -0.5, -0.5])[:, None, None]

    pores = torch.randn(shape, generator=generator).sub(1.2).clamp(min=0)
    log_albedo = log_albedo - _uniform(generator, 0.06, 0.15) * pores[None]

    traits = []
    if _chance(generator, 0.3):  # freckles over the cheeks and the nose
        traits.append("freckles")
        count = int(_uniform(generator, 40, 160))
        side = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
        fu = side * (0.25 + 0.15 * torch.randn(count, generator=generator)).abs()
        fv = 0.0 + 0.14 * torch.randn(count, generator=generator)
        strength = 0.4 + 0.6 * torch.rand(count, generator=generator)
        freckles = _spots(fu, fv, strength, shape, radius=0.007).clamp(max=1)
        log_albedo = log_albedo + freckles[None] * _log_colour(FRECKLE)
    if _chance(generator, 0.35):  # a few moles anywhere on the face
        traits.append("moles")
        count = int(_uniform(generator, 1, 4))
        mu = (torch.rand(count, generator=generator) * 2 - 1) * 0.7
        mv = -1.0 + 1.8 * torch.rand(count, generator=generator)
        moles = _spots(mu, mv, torch.ones(count), shape, radius=0.012).clamp(max=1)
        log_albedo = log_albedo + moles[None] * _log_colour(MOLE)

    if _chance(generator, 0.35):  # stubble: dark hair stumps and a blue-grey shadow
        traits.append("stubble")
        density = _uniform(generator, 0.3, 1.0)
        lower_face = (torch.sigmoid((-0.33 - v) / 0.03) * torch.sigmoid((0.8 - au) / 0.04)
                      + torch.sigmoid((au - 0.55) / 0.04) * torch.sigmoid((0.85 - au) / 0.03)
                      * torch.sigmoid((0.3 - v) / 0.05)).clamp(max=1)
        lower_face = lower_face * (0.6 + 0.4 * _smooth_noise(generator, 0.2, shape).clamp(-1, 1))
        stumps = (torch.rand(shape, generator=generator) < 0.35 * density).float()
        stumps = _blur(stumps, 0.5)
        log_albedo = log_albedo + lower_face[None] * (
            density * _log_colour(BEARD_SHADOW) + stumps[None] * _log_colour(HAIR) * 0.7)
        sheen_damping = 1 - 0.8 * lower_face * density
    else:
        sheen_damping = torch.ones(shape)

    if _chance(generator, 0.3):  # forehead lines and crow's feet
        traits.append("wrinkles")
        depth = _uniform(generator, 0.5, 1.0)
        lines = int(_uniform(generator, 2, 5))
        phase = _uniform(generator, 0, 2 * math.pi)
        waves = torch.cos(v * (2 * math.pi * lines / 0.35) + 0.4 * torch.sin(3 * u) + phase)
        forehead = (waves.clamp(min=0) ** 8) * _band(v, 0.52, 0.78, 0.03) * torch.sigmoid(
            (0.4 - au) / 0.05)
        dx, dy = au - 0.48, v - 0.25
        angle, radius = torch.atan2(dy, dx), torch.sqrt(dx ** 2 + dy ** 2)
        crows = (torch.cos(angle * 14).clamp(min=0) ** 6) * _band(radius, 0.05, 0.16, 0.015) * (
            torch.cos(angle).clamp(min=0) ** 2)
        log_albedo = log_albedo + depth * (forehead + crows)[None] * _log_colour(WRINKLE)

    t_zone = (torch.exp(-0.5 * (u / 0.12) ** 2) * _band(v, -0.3, 0.45, 0.05)
              + _band(v, 0.5, 0.95, 0.05) * torch.exp(-0.5 * (u / 0.45) ** 2))
    sheen = _uniform(generator, 0.08, 0.35) * (0.5 + 0.8 * t_zone) * sheen_damping * (
        1 - 0.5 * pores.clamp(max=1))
    maps = torch.cat([log_albedo, _fold_profile(shape)[None], sheen[None]])
    return Appearance(maps=maps, shininess=_uniform(generator, 8, 30),
                      fold_depth=_uniform(generator, 0.1, 0.5), traits=tuple(traits))


def surface_coordinates(model: MorphableModel) -> torch.Tensor:
    """Per-vertex (u, v, skin) `(V, 3)`: arc length around the head and height on the mean
    face (model units), and how much of the vertex is skin (0 on lips, eyes, hair, mouth).

    Vertices off the surface grid (the lower lip's copies, the mouth interior) sit near the
    middle of the face, where the arc length is their x.
    """
    if model.surface is None or "skin" not in model.vertex_regions:
        raise ValueError(f"the appearance layer needs the embedded face model's surface grid "
                         f"and skin regions; model {model.name!r} has none")
    positions = model.mean_shape.detach().cpu().double()
    grid = model.surface.index.cpu()
    coords = positions[:, :2].clone()
    rows = positions[grid]  # (R, C, 3)
    steps = (rows[:, 1:, [0, 2]] - rows[:, :-1, [0, 2]]).norm(dim=-1)
    arc = torch.cat([torch.zeros(len(grid), 1), steps.cumsum(1)], 1)
    arc = arc - arc[:, grid.shape[1] // 2, None]
    coords[grid.reshape(-1), 0] = arc.reshape(-1)
    skin = model.vertex_regions["skin"].detach().cpu().double()
    return torch.cat([coords, skin[:, None]], 1).to(model.dtype)


def fold_strength(model: MorphableModel, coeffs: torch.Tensor,
                  appearances: list[Appearance]) -> torch.Tensor:
    """`(B,)` how deep each face's nasolabial folds are: its identity's neutral depth, deeper
    with a smile and an open jaw."""
    expression = model.layout.split(coeffs)["expression"]
    names = model.expression_names
    smile = expression[:, names.index("smile")].clamp(min=0)
    jaw_open = expression[:, names.index("jaw_open")].clamp(min=0)
    neutral = torch.tensor([a.fold_depth for a in appearances]).to(coeffs)
    return neutral + 0.45 * smile + 0.25 * jaw_open


def specular(normals: torch.Tensor, sh: torch.Tensor, shininess: float) -> torch.Tensor:
    """Blinn-Phong highlights `(N, 3)` >= 0 of one image: unit camera-space normals `(N, 3)`,
    its SH light `(3, 9)`.

    The light comes from the direction of the SH light's linear band, with that band's
    per-channel strength relative to `DEFAULT_LIGHT` as its colour; the viewer looks along -z.
    """
    band1 = sh[:, [3, 1, 2]]  # (3 colours, xyz)
    direction = F.normalize(band1.mean(0), dim=0)
    colour = band1.norm(dim=1) / torch.tensor(DEFAULT_LIGHT[1:4]).norm()
    half = F.normalize(direction + torch.tensor([0.0, 0.0, 1.0]).to(sh), dim=0)
    cosine = (normals @ half).clamp(min=0) ** shininess
    return torch.where(normals @ direction > 0, cosine, 0)[:, None] * colour


def _shade(stages: tuple[torch.Tensor, ...], where: torch.Tensor, skin: torch.Tensor,
           appearance: Appearance, sh: torch.Tensor, fold: torch.Tensor) -> torch.Tensor:
    """The pixels `(N, 3)` in [-1, 1] of one image with its appearance. stages: the plain
    render's albedo, normals and irradiance `(N, 3)` each; where `(N, 2)` grid_sample
    coordinates into the maps; skin `(N, 1)`; sh `(3, 9)`; fold: this face's fold strength."""
    albedo, normals, light = stages
    detail = F.grid_sample(appearance.maps[None].to(where), where.view(1, 1, -1, 2),
                           mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T
    log_factor = detail[:, :3] - FOLD_DARKENING * fold * detail[:, 3:4]
    shine = specular(normals, sh, appearance.shininess)
    return (albedo * torch.exp(skin * log_factor) * light
            + skin * detail[:, 4:] * shine).clamp(0, 1) * 2 - 1


def apply_appearance(out: RenderOutput, model: MorphableModel, coeffs: torch.Tensor,
                     appearances: list[Appearance]) -> torch.Tensor:
    """The plain render `out` of faces `coeffs` `(B, size)` with skin detail and sheen:
    `(B, 3, H, W)` in [-1, 1]. Background pixels are `out.image`'s, unchanged."""
    if len(appearances) != len(coeffs):
        raise ValueError(f"need one appearance per face: {len(appearances)} appearances, "
                         f"{len(coeffs)} faces")
    fragments = out.fragments
    coeffs = model.validate(coeffs)
    coords = surface_coordinates(model).to(coeffs.device)
    surface = fragments.interpolate(coords.expand(len(coeffs), -1, -1), model.faces)
    x, y = _map_fraction(surface[:, 0], surface[:, 1])
    where = torch.stack([x * 2 - 1, y * 2 - 1], -1)  # grid_sample's (x, y) in [-1, 1]
    counts = torch.bincount(fragments.batch, minlength=len(coeffs)).tolist()
    folds = fold_strength(model, coeffs, appearances).tolist()
    parts = zip(zip(*(stage.split(counts) for stage in out.pixel_stages), strict=True),
                where.split(counts), surface[:, 2:].split(counts), appearances,
                scene_light(model, coeffs), folds, strict=True)
    shaded = torch.cat([_shade(*part) for part in parts])
    # Covered pixels replaced in place of a copy: the background stays `out.image`'s.
    pixels = out.image.permute(0, 2, 3, 1).reshape(-1, 3).clone()
    pixels.index_copy_(0, fragments.pixels, shaded)
    return pixels.view(*fragments.tri_id.shape, 3).permute(0, 3, 1, 2)
