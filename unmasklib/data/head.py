"""The rest of the head: what a photo shows around the face and the 3DMM does not describe.

The embedded 3DMM is a face shell, and the networks reconstruct that shell; a photo shows a
whole person. The data generator therefore renders, with the face's own pose and light, a
second mesh around it and composites the two by depth:

- the skull behind and above the face; the 3DMM's painted hair cap becomes skin
  (`bare_scalp`), so that the head's own hair, or none, covers it;
- hair as geometry over the scalp: short, long, bangs, tied back, curly, receding or none
  (bald), its strands combed back from a side parting, from black to blond and grey;
- two ears, cupped with a rim, where the mask's ear loops go;
- a neck that turns with the head near the skull and stays with the body lower down, and
  shoulders in clothes (plain, striped or checked; a crew or V neckline).

Each head follows its face: it is scaled to the decoded face's width and height, and the
skin-coloured parts take the face's own mean skin albedo. Only the photo has these parts;
N3D and the generator are taught and judged on the face the 3DMM describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..face3d import MorphableModel
from ..face3d.camera import euler_rotation
from ..face3d.embedded import TOP_Y, grid_triangles, head_ellipse
from ..face3d.render import RenderOutput, render_mesh, scene_light

HAIR_STYLES = ("short", "long", "bangs", "tied", "curly", "receding", "bald")
# Hair albedo, from black through browns and auburn to blond and grey.
HAIR_COLOURS = ((0.025, 0.02, 0.018), (0.06, 0.04, 0.03), (0.13, 0.08, 0.05),
                (0.24, 0.14, 0.08), (0.34, 0.15, 0.07), (0.55, 0.42, 0.24),
                (0.70, 0.58, 0.38), (0.45, 0.44, 0.43), (0.72, 0.71, 0.70))
CLOTHING_PATTERNS = ("plain", "stripes", "checks")
DOME_HEIGHT = 0.5  # how far the skull's dome rises above the face shell's top edge
EAR_THETA, EAR_Y = 1.57, 0.12  # where an ear is attached: angle around the head, height
AROUND, UP = 97, 36  # grid size of the scalp and the hair: columns around, rows up
# The scalp and the hair stop short of the back of the head, which a camera in front of a
# face turned at most 30 degrees never sees.
BEHIND = 2.5
EAR, NECK, TORSO = (9, 24), (16, 33), (24, 61)  # grid sizes: rows, columns
# The neck turns with the head above NECK_TURNS_FROM and not at all below NECK_STAYS_BELOW
# (the collar), in between by a linear blend.
NECK_TURNS_FROM, NECK_STAYS_BELOW = -1.0, -1.9


@dataclass(frozen=True)
class HeadStyle:
    """One identity's head, drawn by `draw_head_style`: hair style, albedo `(3,)` in [0, 1]
    and thickness (model units), hairline height at the forehead, ear and neck size factors,
    clothing colours (two albedos), pattern and neckline, and the seed of its hair strands."""

    hair: str
    hair_colour: tuple[float, float, float]
    hair_thickness: float
    hairline: float
    ear_size: float
    neck_width: float
    clothing: tuple[tuple[float, float, float], tuple[float, float, float]]
    pattern: str
    v_neck: bool
    strand_seed: int


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=generator))


def _pick(generator: torch.Generator, options: tuple) -> object:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def draw_head_style(generator: torch.Generator) -> HeadStyle:
    """A head drawn from `generator` in a fixed order: the same identity, the same head."""
    hair = _pick(generator, HAIR_STYLES)
    shade = np.array(_pick(generator, HAIR_COLOURS)) * _uniform(generator, 0.8, 1.2)
    clothing = tuple(tuple(float(c) for c in torch.rand(3, generator=generator) ** 1.5)
                     for _ in range(2))
    return HeadStyle(
        hair=hair, hair_colour=tuple(float(c) for c in shade.clip(0, 1)),
        hair_thickness=_uniform(generator, 0.07, 0.12), hairline=_uniform(generator, 0.88, 1.02),
        ear_size=_uniform(generator, 0.85, 1.15), neck_width=_uniform(generator, 0.85, 1.15),
        clothing=clothing, pattern=_pick(generator, CLOTHING_PATTERNS),
        v_neck=_uniform(generator, 0, 1) < 0.4,
        strand_seed=int(torch.randint(2 ** 31, (1,), generator=generator)))


def head_surface(theta: np.ndarray, height: np.ndarray, offset: np.ndarray | float) -> np.ndarray:
    """Points `(..., 3)` `offset` model units outside the mean head, at `theta` radians around
    the vertical axis (0: the nose) and `height`: the face shell's base ellipses up to
    `TOP_Y`, a dome above it (up to TOP_Y + DOME_HEIGHT), the jaw's ellipse below -0.6."""
    half_width, depth, centre = head_ellipse(np.clip(height, -0.6, TOP_Y))
    psi = np.clip((height - TOP_Y) / DOME_HEIGHT, 0, 1) * np.pi / 2
    x = (half_width + offset) * np.cos(psi) * np.sin(theta)
    z = centre + (depth + offset) * np.cos(psi) * np.cos(theta)
    y = np.where(height > TOP_Y, TOP_Y + (DOME_HEIGHT + offset) * np.sin(psi), height)
    return np.stack([x, y, z], -1)


def _grid(lo: np.ndarray, hi: np.ndarray, rows: int) -> np.ndarray:
    """Heights `(rows, C)` from `lo` to `hi` `(C,)` per column, rows going up."""
    return lo + np.linspace(0, 1, rows)[:, None] * (hi - lo)


AROUND_THETA = np.linspace(-BEHIND, BEHIND, AROUND)


def _scalp_edge() -> np.ndarray:
    """The scalp's lowest height `(AROUND,)`: the top of the forehead in front (hidden inside
    the face there), far down behind the face."""
    side = np.abs(AROUND_THETA)
    cap = 0.93 - 0.35 * np.sin(np.minimum(side, 1.2)) ** 2
    return np.where(side < 1.2, cap, np.interp(side, [1.2, 1.8, 2.0],
                                               [cap.min(), cap.min(), -0.9]))


@lru_cache(maxsize=1)
def _scalp() -> np.ndarray:
    """Scalp and skull vertices `(UP, AROUND, 3)`: just inside the face's edges, all around
    the back, closed by the dome above the face."""
    heights = _grid(_scalp_edge(), np.full(AROUND, TOP_Y + DOME_HEIGHT), UP)
    return head_surface(AROUND_THETA, heights, -0.02)


def hairline_heights(style: HeadStyle) -> np.ndarray:
    """The lowest height the hair reaches `(AROUND,)` around the head (0: the forehead)."""
    side = np.abs(AROUND_THETA)
    front = style.hairline
    back = {"long": -2.0, "curly": -0.7, "tied": -0.5}.get(style.hair, -0.35)
    knots = [0, 0.9, 1.2, 1.42, 1.9, 2.3, np.pi]
    heights = [front, front - 0.06, 0.42, 0.6, 0.6, back, back]
    if style.hair == "bangs":
        knots, heights = [0, 0.7, 1.0, *knots[2:]], [0.5, 0.55, 0.85, *heights[2:]]
    elif style.hair == "receding":
        knots = [0, 0.45, 0.9, *knots[2:]]
        heights = [front + 0.1, front + 0.28, front + 0.25, 0.55, *heights[3:]]
    return np.interp(side, knots, heights)


def _hair(style: HeadStyle) -> tuple[np.ndarray, np.ndarray]:
    """Hair vertices `(UP, AROUND, 3)` and albedo `(UP, AROUND, 3)`: a shell over the scalp
    from the hairline up, thinning towards the hairline, each strand its own shade. Bald
    heads get their hair folded away inside the skull."""
    rng = np.random.default_rng(style.strand_seed)
    heights = _grid(hairline_heights(style), np.full(AROUND, TOP_Y + DOME_HEIGHT), UP)
    up = np.linspace(0, 1, UP)[:, None]
    # Thin at the hairline, fuller towards the crown; always outside the scalp.
    thickness = style.hair_thickness * (0.4 if style.hair == "tied" else 1.0)
    offset = 0.02 + thickness * np.clip(up / 0.12, 0.25, 1) * (0.8 + 0.4 * up)
    offset = offset * np.ones_like(heights)
    if style.hair == "curly":
        offset = offset * (1.6 + 0.6 * rng.standard_normal(heights.shape).clip(-1.5, 1.5))
    if style.hair == "bald":
        offset = np.full_like(heights, -0.2)
    # Strands are combed back from a side parting: each vertex takes the shade of the strand
    # that passes it, a fine 1-D noise along the swept angle.
    parting = rng.uniform(-0.4, 0.4)
    swept = AROUND_THETA + 0.3 * np.sign(AROUND_THETA - parting) * (1 - up)
    lattice = np.linspace(-2 * np.pi, 2 * np.pi, 1200)
    strands = np.exp(0.25 * np.interp(swept, lattice, rng.standard_normal(len(lattice))))
    along = np.exp(0.04 * rng.standard_normal(heights.shape))
    albedo = np.clip(np.array(style.hair_colour) * (strands * along)[..., None], 0, 1)
    return head_surface(AROUND_THETA, heights, offset), albedo


def _ear(size: float) -> tuple[np.ndarray, np.ndarray]:
    """The subject's left ear (at +x): vertices `(EAR rows * columns, 3)` and its concha
    shade `(rows * columns,)` in (0, 1]: an oval leaning out from the side of the head, cupped,
    with a rim."""
    p0 = head_surface(np.array(EAR_THETA), np.array(EAR_Y), -0.04)
    behind = head_surface(np.array(EAR_THETA + 0.01), np.array(EAR_Y), -0.04)
    back = (behind - p0) / np.linalg.norm(behind - p0)
    out = np.cross(back, [0.0, 1.0, 0.0])
    out = out if out[0] > 0 else -out
    tilt = math.radians(30)
    along, normal = math.cos(tilt) * back + math.sin(tilt) * out, -math.sin(tilt) * back \
        + math.cos(tilt) * out
    height, width = 0.55 * size, 0.24 * size
    r, phi = np.meshgrid(np.linspace(0, 1, EAR[0]), np.linspace(0, 2 * np.pi, EAR[1]),
                         indexing="ij")
    bulge = 0.035 * np.exp(-(((r - 0.82) / 0.12) ** 2)) - 0.04 * np.exp(-((r / 0.45) ** 2))
    points = (p0 + along * (width / 2 * (1 + r * np.cos(phi)))[..., None]
              + np.array([0.0, 1.0, 0.0]) * (height / 2 * r * np.sin(phi))[..., None]
              + normal * (0.03 + bulge)[..., None])
    shade = 1 - 0.15 * np.exp(-((r / 0.5) ** 2))
    return points.reshape(-1, 3), shade.reshape(-1)


def _neck(width: float) -> np.ndarray:
    """Neck vertices `(NECK rows, columns, 3)`: an elliptic cylinder from inside the skull
    down past the collar."""
    rows, columns = NECK
    theta = np.linspace(-np.pi, np.pi, columns)
    y = np.linspace(-3.3, 0.2, rows)[:, None] * np.ones(columns)
    x = 0.52 * width * np.sin(theta) * np.ones((rows, 1))
    z = -0.3 + 0.5 * width * np.cos(theta) * np.ones((rows, 1))
    return np.stack([x, y, z], -1)


def _torso(style: HeadStyle) -> tuple[np.ndarray, np.ndarray]:
    """Shoulders and chest `(TORSO rows, columns, 3)` and their clothing albedo: a sheet
    curving back at the sides, its top edge the shoulder line with a crew or V neckline."""
    rows, columns = TORSO
    x = np.linspace(-2.6, 2.6, columns)
    inner = np.clip(1 - np.abs(x) / 0.55, 0, 1)
    neckline = 0.5 * inner if style.v_neck else 0.12 * (1 - (1 - inner) ** 2)
    top = -1.75 - 0.28 * np.clip(np.abs(x) - 0.5, 0, None) - neckline
    y = top - np.linspace(1.6, 0, rows)[:, None]
    z = (-0.2 + 0.6 * np.sqrt(np.clip(1 - (x / 2.7) ** 2, 0, None))) * np.ones((rows, 1))
    xx = x * np.ones((rows, 1))
    first, second = np.array(style.clothing[0]), np.array(style.clothing[1])
    if style.pattern == "stripes":
        other = np.sin(2 * np.pi * y / 0.25) > 0
    elif style.pattern == "checks":
        other = (np.sin(2 * np.pi * xx / 0.3) > 0) ^ (np.sin(2 * np.pi * y / 0.3) > 0)
    else:
        other = np.zeros_like(y, dtype=bool)
    albedo = np.where(other[..., None], second, first)
    return np.stack([xx, y, z], -1), albedo


@lru_cache(maxsize=1)
def head_topology() -> tuple[torch.Tensor, dict[str, slice]]:
    """Triangles `(F, 3)` of every head (the same for all styles) and each part's vertex
    slice: scalp, hair, the subject's left ear (+x) and right ear, neck, torso."""
    shapes = {"scalp": (UP, AROUND), "hair": (UP, AROUND), "ear_left": EAR,
              "ear_right": EAR, "neck": NECK, "torso": TORSO}
    parts, faces, start = {}, [], 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        index = start + np.arange(size).reshape(shape)
        triangles = grid_triangles(index)
        if name == "ear_left":  # its (r, phi) grid winds inwards; the mirror image outwards
            triangles = triangles[:, ::-1]
        faces.append(triangles)
        parts[name] = slice(start, start + size)
        start += size
    return torch.from_numpy(np.concatenate(faces).copy()), parts


def head_mesh(style: HeadStyle, skin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One head in model space: vertices `(V, 3)`, albedo `(V, 3)` in [0, 1] and how much of
    the head's turn each neck vertex follows `(NECK rows * columns,)` in [0, 1] (the skull,
    hair and ears follow all of it, the shoulders none), for a face whose mean skin albedo is
    `skin` `(3,)`."""
    hair, hair_albedo = _hair(style)
    ear, concha = _ear(style.ear_size)
    mirrored = ear * np.array([-1.0, 1.0, 1.0])  # the subject's right ear
    neck = _neck(style.neck_width)
    torso, clothes = _torso(style)
    vertices = np.concatenate([_scalp().reshape(-1, 3), hair.reshape(-1, 3), ear, mirrored,
                               neck.reshape(-1, 3), torso.reshape(-1, 3)])
    ear_albedo = skin * np.array([1.0, 0.93, 0.92]) * concha[:, None]
    albedo = np.concatenate([np.tile(skin, (UP * AROUND, 1)), hair_albedo.reshape(-1, 3),
                             ear_albedo, ear_albedo, np.tile(skin * 0.95, (neck.size // 3, 1)),
                             clothes.reshape(-1, 3)])
    neck_turn = np.clip((neck[..., 1].reshape(-1) - NECK_STAYS_BELOW)
                        / (NECK_TURNS_FROM - NECK_STAYS_BELOW), 0, 1)
    return vertices, albedo.clip(0, 1), neck_turn


def skin_colour(model: MorphableModel, albedo: torch.Tensor) -> torch.Tensor:
    """`(B, 3)` the mean skin albedo of faces whose vertex albedo is `albedo` `(B, V, 3)`."""
    weight = model.vertex_regions["skin"].to(albedo)
    return (albedo * weight[:, None]).sum(1) / weight.sum()


def bare_scalp(model: MorphableModel, albedo: torch.Tensor) -> torch.Tensor:
    """Vertex albedo `(B, V, 3)` with the 3DMM's painted hair cap in each face's skin colour:
    a photo's hair is the head's, which covers the scalp or leaves it bare."""
    cap = model.vertex_regions["hair"].to(albedo)[:, None]
    return albedo * (1 - cap) + skin_colour(model, albedo)[:, None] * cap


def face_scale(model: MorphableModel, vertices: torch.Tensor) -> torch.Tensor:
    """`(B, 3)` how much wider, taller and deeper than the mean face each decoded face
    `(B, V, 3)` is at its upper half (the jaw moves with expression), clamped to [0.8, 1.25]."""
    mean = model.mean_shape.to(vertices)
    upper = mean[:, 1] > 0

    def extent(points: torch.Tensor) -> torch.Tensor:
        return points.amax(-2) - points.amin(-2)

    ratio = extent(vertices[:, upper]) / extent(mean[upper])
    return ratio.clamp(0.8, 1.25)


@torch.no_grad()
def render_heads(model: MorphableModel, coeffs: torch.Tensor, styles: list[HeadStyle],
                 image_size: int) -> RenderOutput:
    """Render the heads of faces `coeffs` `(B, size)`, one style each, with the faces' pose
    and light (the face itself is not drawn): `image` `(B, 3, H, W)` in [-1, 1] (black
    around) and `depth` to composite with the face's render."""
    if len(styles) != len(coeffs):
        raise ValueError(f"need one head style per face: {len(styles)} styles, "
                         f"{len(coeffs)} faces")
    coeffs = model.validate(coeffs)
    vertices, albedo = model.decode(coeffs)
    skin = skin_colour(model, albedo).cpu().double().numpy()
    meshes = [head_mesh(style, tone) for style, tone in zip(styles, skin, strict=True)]
    points = torch.from_numpy(np.stack([m[0] for m in meshes])).to(coeffs)
    colours = torch.from_numpy(np.stack([m[1] for m in meshes])).to(coeffs)
    neck_turn = torch.from_numpy(np.stack([m[2] for m in meshes])).to(coeffs)
    faces, parts = head_topology()
    head, neck, torso = slice(0, parts["neck"].start), parts["neck"], parts["torso"]
    scale = face_scale(model, vertices)[:, None, :]
    angles, translation = model.layout.pose(coeffs)
    # The skull, hair and ears turn with the face; the neck less and less towards the collar.
    neck_rotation = euler_rotation(angles[:, None, :] * neck_turn[..., None])
    world = torch.cat([
        (scale * points[:, head]) @ euler_rotation(angles).transpose(1, 2),
        (neck_rotation @ (scale * points[:, neck])[..., None])[..., 0],
        points[:, torso]], 1) + translation[:, None, :]
    return render_mesh(world, faces, colours, scene_light(model, coeffs), image_size)
