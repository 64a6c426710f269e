"""Face masks as 3D meshes worn on the 3D face.

A mask is a grid laid over a region of the face surface, described in the surface's own
(theta, y) coordinates (angle around the head, height): the region's outline gives the mask
type its shape (surgical rectangle, rounded N95 cup, polygonal cloth). Each mask vertex sits
on the posed, expressive face (bilinear in the face grid), lifted along the face normal, and
stretched over the nose like fabric: hollows between the nose and the cheeks are filled by a
smoothed upper envelope of the face. Ear loops are thin strips from the mask's side edges
to the side of the head. Because the mask is built from the face's own vertices, it follows
head pose, face shape and expression; because it is rendered with the same camera and light,
it is shaded consistently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..face3d import (
    MorphableModel,
    RenderOutput,
    SurfaceGrid,
    posed_vertices,
    render_mesh,
    scene_light,
    vertex_normals,
)
from ..face3d.embedded import grid_triangles

MASK_TYPES = ("surgical", "n95", "cloth")
MASK_ROWS, MASK_COLUMNS = 37, 49  # the mask grid (v top -> bottom, u left -> right)
LOOP_COLUMNS = 12                 # vertices along an ear loop
THICKNESS = 0.025                 # how far the fabric stands off the skin (model units)
LOOP_END_THETA = 1.62             # where the loops meet the side of the head (radians)

T = TypeVar("T")

_PALETTES = {
    "surgical": [(0.55, 0.72, 0.88), (0.93, 0.93, 0.93), (0.6, 0.85, 0.75), (0.95, 0.72, 0.8),
                 (0.12, 0.12, 0.14)],
    "n95": [(0.94, 0.93, 0.9), (0.7, 0.7, 0.7), (0.93, 0.88, 0.6), (0.15, 0.15, 0.16),
            (0.3, 0.45, 0.75)],
}
CLOTH_PATTERNS = ("plain", "stripes", "dots", "checks")
MASK_CYCLE = MASK_TYPES * 3 + ("none",)  # 30 % each type, 10 % unmasked, balanced per 10


def mask_kind_of(index: int) -> str:
    """The mask type of sample `index` of a data set: surgical, n95, cloth or none."""
    return MASK_CYCLE[index % len(MASK_CYCLE)]


@dataclass(frozen=True)
class MaskStyle:
    """What one mask looks like. kind: surgical | n95 | cloth.

    colour / accent: RGB in [0, 1]; pattern: "pleats" (surgical), "seam" or "valve" (n95),
    one of CLOTH_PATTERNS (cloth); width: scale of the outline's half-angle; top: y of the
    upper edge on the mean face; pattern_scale: cycles of the cloth print across the mask.
    """

    kind: str
    colour: tuple[float, float, float]
    accent: tuple[float, float, float]
    pattern: str
    width: float
    top: float
    pattern_scale: float = 6.0


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=generator))


def _choice(generator: torch.Generator, options: Sequence[T]) -> T:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def _jitter(colour: tuple[float, float, float], generator: torch.Generator,
            amount: float = 0.04) -> tuple[float, float, float]:
    noise = (torch.rand(3, generator=generator) * 2 - 1) * amount
    return tuple(float(c) for c in (torch.tensor(colour) + noise).clamp(0, 1))


def sample_mask_style(kind: str, generator: torch.Generator) -> MaskStyle:
    """A random style of mask type `kind`, drawn from `generator`."""
    if kind not in MASK_TYPES:
        raise ValueError(f"unknown mask type {kind!r}; choose one of {MASK_TYPES}")
    top = _uniform(generator, 0.04, 0.13)
    width = _uniform(generator, 0.9, 1.06)
    if kind == "cloth":
        colour = tuple(torch.rand(3, generator=generator).mul(0.8).add(0.1).tolist())
        accent = tuple(torch.rand(3, generator=generator).tolist())
        return MaskStyle(kind, colour, accent, _choice(generator, CLOTH_PATTERNS), width, top,
                         pattern_scale=_uniform(generator, 4, 9))
    colour = _jitter(_choice(generator, _PALETTES[kind]), generator)
    accent = tuple(0.8 * c for c in colour)
    pattern = "pleats" if kind == "surgical" else _choice(generator, ("seam", "valve"))
    return MaskStyle(kind, colour, accent, pattern, width, top)


def _outline(style: MaskStyle, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-angle (radians) and y of each mask row; v in [0, 1] from the top edge down."""
    if style.kind == "surgical":
        half, bottom = np.full_like(v, 1.2), -1.22
    elif style.kind == "n95":
        half, bottom = 1.12 * np.sqrt(np.clip(1 - (2 * v - 1) ** 2, 0.0025, 1)) ** 0.8, -1.18
    else:
        half, bottom = np.interp(v, [0, 0.3, 0.75, 1], [0.75, 1.25, 1.15, 0.55]), -1.25
    return style.width * half, style.top + (bottom - style.top) * v


@lru_cache(maxsize=1)
def mask_faces() -> torch.Tensor:
    """Triangles `(G, 3)` of every mask: the main grid, then four ear-loop strips.

    Mask rows are listed from the top down, so each grid is flipped to rows going up.
    """
    main = MASK_ROWS * MASK_COLUMNS
    grids = [np.arange(main).reshape(MASK_ROWS, MASK_COLUMNS)]
    grids += [main + k * 2 * LOOP_COLUMNS + np.arange(2 * LOOP_COLUMNS).reshape(2, LOOP_COLUMNS)
              for k in range(4)]
    return torch.from_numpy(np.concatenate([grid_triangles(grid[::-1]) for grid in grids]))


def _surface_coordinates(style: MaskStyle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, y) of every mask vertex `(M,)` each, and the main grid's (u, v) `(R, C, 2)`."""
    v = np.linspace(0, 1, MASK_ROWS)
    u = np.linspace(-1, 1, MASK_COLUMNS)
    half, y = _outline(style, v)
    theta = half[:, None] * u[None, :]
    ys = np.repeat(y[:, None], MASK_COLUMNS, 1)
    thetas, heights = [theta.reshape(-1)], [ys.reshape(-1)]
    # Loops leave the mask's side edge near its top and bottom and end on the side of the head.
    t = np.linspace(0, 1, LOOP_COLUMNS)
    for row_v, end_y in ((0.12, 0.12), (0.85, -0.08)):
        edge_half, edge_y = _outline(style, np.array([row_v]))
        for side in (-1, 1):
            start = side * edge_half[0]
            loop_theta = start + (side * LOOP_END_THETA - start) * t
            loop_y = edge_y[0] + (end_y - edge_y[0]) * np.sin(t * math.pi / 2)
            if side < 0:  # list every strip left to right, so its normals face outwards
                loop_theta, loop_y = loop_theta[::-1], loop_y[::-1]
            for dy in (0.012, -0.012):
                thetas.append(loop_theta)
                heights.append(loop_y + dy)
    uv = np.stack(np.meshgrid(u, v), -1)
    return np.concatenate(thetas), np.concatenate(heights), uv


def _bilinear(values: torch.Tensor, surface: SurfaceGrid, theta: np.ndarray,
              y: np.ndarray) -> torch.Tensor:
    """Per-vertex values `(B, V, C)` sampled at surface points (theta, y) `(B, M)` -> `(B, M, C)`.

    Bilinear in the surface grid's (row, column) index space, so it follows the mesh exactly.
    """
    rows, cols = surface.index.shape
    col = np.interp(theta, surface.theta.cpu().numpy(), np.arange(cols))
    row = np.interp(y, surface.height.cpu().numpy(), np.arange(rows))
    c0 = np.clip(np.floor(col).astype(int), 0, cols - 2)
    r0 = np.clip(np.floor(row).astype(int), 0, rows - 2)
    fc = torch.from_numpy(col - c0).to(values)[..., None]
    fr = torch.from_numpy(row - r0).to(values)[..., None]
    index = surface.index.cpu().numpy()

    def at(r: np.ndarray, c: np.ndarray) -> torch.Tensor:
        vertex = torch.from_numpy(index[r, c]).to(values.device)  # (B, M)
        return torch.gather(values, 1, vertex[..., None].expand(-1, -1, values.shape[-1]))

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def _filter(grid: torch.Tensor, size: tuple[int, int],
            pool: Callable[..., torch.Tensor]) -> torch.Tensor:
    """A separable box filter (`F.avg_pool2d` or `F.max_pool2d`) over `(B, R, C, K)` grids,
    same size out; the rows pass and the columns pass cost far less than one 2D window."""
    channels = grid.permute(0, 3, 1, 2)
    extra = {"count_include_pad": False} if pool is F.avg_pool2d else {}
    for kernel in ((size[0], 1), (1, size[1])):
        padding = (kernel[0] // 2, kernel[1] // 2)
        channels = pool(channels, kernel, stride=1, padding=padding, **extra)
    return channels.permute(0, 2, 3, 1)


def _smooth(grid: torch.Tensor, size: tuple[int, int] = (17, 9)) -> torch.Tensor:
    """Mean filter over `(B, R, C, K)` grids, taller than wide: fabric hangs from nose to chin."""
    return _filter(grid, size, F.avg_pool2d)


def _drape(points: torch.Tensor) -> torch.Tensor:
    """Fabric over face points `(B, R, C, 3)` (model space): same shape, never below the skin.

    Fabric spans the nose, lips and chin without following their hollows and bumps: its depth
    is a smoothed upper envelope of the face (a max filter, then a mean filter), and its x, y
    are smoothed so that an opening jaw stretches it evenly.
    """
    depth = points[..., 2:]
    envelope = _smooth(_filter(depth, (17, 9), F.max_pool2d))
    xy = _smooth(points[..., :2], (5, 5))
    return torch.cat([xy, torch.maximum(envelope, depth)], -1)


def _profile(style: MaskStyle, uv: np.ndarray) -> np.ndarray:
    """Extra stand-off `(R, C)` that gives each type its relief: pleats, the N95 cup."""
    u, v = uv[..., 0], uv[..., 1]
    if style.kind == "surgical":
        pleat = np.clip((v - 0.25) / 0.5, 0, 1)
        return 0.012 * np.abs(np.sin(pleat * 3 * math.pi))
    if style.kind == "n95":
        return 0.06 * np.clip(1 - u ** 2 - (2 * v - 1) ** 2, 0, 1)
    return np.zeros_like(u)


def _albedo(style: MaskStyle, uv: np.ndarray) -> np.ndarray:
    """Colour of the main grid `(R, C, 3)` in [0, 1]."""
    u, v = uv[..., 0], uv[..., 1]
    colour, accent = np.array(style.colour), np.array(style.accent)
    weight = np.zeros_like(u)
    if style.pattern == "pleats":  # three folds and a binding along the edges
        pleat = np.clip((v - 0.25) / 0.5, 0, 1)
        weight = np.maximum(np.exp(-((np.sin(pleat * 3 * math.pi)) / 0.25) ** 2) * (pleat > 0)
                            * (pleat < 1), (np.abs(u) > 0.94) | (v < 0.04) | (v > 0.96))
    elif style.pattern == "seam":
        weight = np.exp(-(u / 0.03) ** 2)
    elif style.pattern == "valve":
        weight = (np.hypot((u - 0.45) / 0.8, (v - 0.6) / 1.2) < 0.11).astype(float)
    elif style.pattern == "stripes":
        weight = (np.sin(v * style.pattern_scale * math.pi) > 0).astype(float)
    elif style.pattern == "dots":
        k = style.pattern_scale
        weight = (np.hypot(np.sin(u * k * math.pi), np.sin(v * k * math.pi)) < 0.5).astype(float)
    elif style.pattern == "checks":
        k = style.pattern_scale
        weight = (np.sin(u * k * math.pi) * np.sin(v * k * math.pi) > 0).astype(float)
    return colour * (1 - weight[..., None]) + accent * weight[..., None]


def mask_vertices(model: MorphableModel, vertices: torch.Tensor,
                  styles: list[MaskStyle]) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks worn by decoded faces. vertices `(B, V, 3)` model space, one style per face.

    Returns mask vertices `(B, M, 3)` in model space (pose them like the face) and their
    albedo `(B, M, 3)` in [0, 1]; the triangles are `mask_faces()`.
    """
    check_wearable(model)
    if len(styles) != len(vertices):
        raise ValueError(f"need one mask style per face: {len(styles)} styles, "
                         f"{len(vertices)} faces")
    main = MASK_ROWS * MASK_COLUMNS
    if not styles:
        empty = vertices.new_zeros(0, main + 4 * 2 * LOOP_COLUMNS, 3)
        return empty, empty.clone()
    batch, grid = len(styles), (len(styles), MASK_ROWS, MASK_COLUMNS, 3)
    theta, y, uv = (np.stack(parts) for parts in zip(*map(_surface_coordinates, styles),
                                                         strict=True))
    points = _bilinear(vertices, model.surface, theta, y)
    lift = _bilinear(vertex_normals(vertices, model.faces), model.surface, theta, y)
    # Lift the fabric along smoothed normals, or it would trace every bump of the skin.
    lift = F.normalize(torch.cat([_smooth(lift[:, :main].reshape(grid)).reshape(batch, main, 3),
                                  lift[:, main:]], 1), dim=-1)
    points = torch.cat([_drape(points[:, :main].reshape(grid)).reshape(batch, main, 3),
                        points[:, main:]], 1)
    relief = np.stack([_profile(style, coords) for style, coords in zip(styles, uv, strict=True)])
    stand_off = np.full(theta.shape, THICKNESS)
    stand_off[:, :main] += relief.reshape(batch, main)
    albedo = np.stack([
        np.concatenate([_albedo(style, coords).reshape(-1, 3),
                        np.tile(style.accent, (theta.shape[1] - main, 1))])
        for style, coords in zip(styles, uv, strict=True)])
    stand_off_t = torch.from_numpy(stand_off).to(vertices)
    return points + lift * stand_off_t[..., None], torch.from_numpy(albedo).to(vertices)


def check_wearable(model: MorphableModel) -> None:
    """Raise a clear ValueError unless masks can be placed on `model` (the embedded model)."""
    if model.surface is None or "pose" not in model.layout.names:
        raise ValueError(f"masks are placed on the embedded face model's surface grid; model "
                         f"{model.name!r} has none: use face3d.load_face_model()")


def render_masks(model: MorphableModel, coeffs: torch.Tensor, styles: list[MaskStyle],
                 image_size: int) -> RenderOutput:
    """The masks `styles` worn by the faces `coeffs` `(B, size)`, rendered alone.

    Same camera and light as `render_faces`, so `out.depth` can be compared with the face's.
    """
    coeffs = model.validate(coeffs)
    vertices, _ = model.decode(coeffs)
    points, albedo = mask_vertices(model, vertices, styles)
    world = posed_vertices(model, coeffs, points)
    return render_mesh(world, mask_faces(), albedo, scene_light(model, coeffs), image_size)
