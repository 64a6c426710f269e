"""The embedded procedural face model: built in code, deterministically, in a fraction of a second.

The mesh is a grid wrapped around the front of an ellipsoidal head. Column c is an angle theta
around the vertical axis, row r a height y; the base surface is the horizontal ellipse
`(A(y) sin theta, y, z0(y) + D(y) cos theta)`, and the facial features (brows, eye sockets,
eyeballs, nose, cheeks, lips, chin) are smooth bumps added to its depth. Rows and columns are
packed more densely around the eyes, nose and mouth, where detail is.

The mouth is a cut: along the mouth row the vertices between the corners exist twice, once
for the upper lip and once for the lower one, so the lips are separate surfaces that part
when the jaw opens. Behind them sits a small mouth-interior mesh (dark, with teeth) that
moves with the jaw and stays hidden while the lips are closed.

The basis fields are functions of a vertex's mean position, mostly of its (x, y) alone, so
the face and the mouth interior behind it move together and the interior never pokes through
(the jaw rotation also uses depth, but for a rigid turn about the same hinge).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .layout import CoeffLayout
from .model import MorphableModel, SurfaceGrid

EMBEDDED_LAYOUT = CoeffLayout((("identity", 80), ("expression", 44), ("texture", 80),
                               ("pose", 6), ("lighting", 27)))

EXPRESSION_NAMES = ["jaw_open", "smile", "frown", "pucker", "mouth_left", "mouth_right",
                    "brow_raise", "brow_furrow", "cheek_puff", "lip_press"]
TEXTURE_NAMES = ["skin_tone", "redness", "lip_colour", "brow_darkness", "eye_colour",
                 "hair_colour"]
IDENTITY_NAMES = ["face_width", "face_length", "nose_size", "jaw_width", "chin_length",
                  "eye_spacing", "lip_fullness", "brow_ridge", "cheekbones", "face_depth"]

# Where the features sit on the mean face (model units; the face spans y in [-1.3, 1.25]).
MOUTH_Y = -0.55      # mouth line (snapped to the nearest grid row)
MOUTH_HALF_WIDTH = 0.2
EYE_X, EYE_Y = 0.31, 0.245
JAW_HINGE = (0.05, -0.75)  # (y, z) of the axis the jaw turns about, in front of the ears
JAW_RADIANS = 0.08         # jaw rotation per unit of jaw_open

GRID_ROWS, GRID_COLUMNS = 81, 91
# Mouth-interior rows: (height above the mouth line, follows the jaw, is teeth). The upper
# teeth hang just below the lip line and stay put; the lower teeth ride on the jaw.
INTERIOR_ROWS = [(0.07, False, True), (0.04, False, True), (0.01, False, True),
                 (-0.025, False, True), (-0.04, False, False), (-0.045, True, False),
                 (-0.06, True, True), (-0.085, True, True), (-0.11, True, False),
                 (-0.18, True, False), (-0.26, True, False), (-0.34, True, False)]
THETA_MAX = 1.75  # the grid wraps +-100 degrees around the head


def _gauss(x: np.ndarray, y: np.ndarray, x0: float, y0: float, sx: float,
           sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - x0) / sx) ** 2 + ((y - y0) / sy) ** 2))


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-t))


def _smoothstep(lo: float, hi: float, t: np.ndarray) -> np.ndarray:
    s = np.clip((t - lo) / (hi - lo), 0, 1)
    return s * s * (3 - 2 * s)


def _warped_axis(count: int, lo: float, hi: float,
                 dense: list[tuple[float, float, float]]) -> np.ndarray:
    """`count` samples of [lo, hi], 1 + extra times denser near each (centre, width, extra)."""
    fine = np.linspace(lo, hi, 4001)
    density = 1 + sum(extra * np.exp(-0.5 * ((fine - c) / w) ** 2) for c, w, extra in dense)
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return np.interp(np.linspace(0, cdf[-1], count), cdf, fine)


# Head outline: half-width A(y), depth semi-axis D(y), and the centre z0(y) of the ellipse.
_PROFILE_Y = np.array([-1.30, -1.10, -0.90, -0.60, -0.30, 0.00, 0.30, 0.70, 1.00, 1.25])
_HALF_WIDTH = np.array([0.30, 0.47, 0.62, 0.73, 0.79, 0.81, 0.82, 0.80, 0.75, 0.66])
_DEPTH = np.array([0.38, 0.55, 0.68, 0.78, 0.84, 0.87, 0.88, 0.86, 0.80, 0.70])
_FRONT = np.array([0.62, 0.76, 0.82, 0.86, 0.90, 0.92, 0.92, 0.89, 0.82, 0.68])


def _base_surface(theta: np.ndarray, y: np.ndarray) -> np.ndarray:
    half_width = np.interp(y, _PROFILE_Y, _HALF_WIDTH)
    depth = np.interp(y, _PROFILE_Y, _DEPTH)
    centre = np.interp(y, _PROFILE_Y, _FRONT) - depth
    return np.stack([half_width * np.sin(theta), y, centre + depth * np.cos(theta)], -1)


def _base_depth_at(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the base surface at a front-facing (x, y)."""
    half_width = np.interp(y, _PROFILE_Y, _HALF_WIDTH)
    return _base_surface(np.arcsin(np.clip(x / half_width, -1, 1)), y)[..., 2]


def _nose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the nose above the base surface: bridge, dorsum, tip and wings."""
    t = np.clip((0.36 - y) / 0.6, 0, 1)  # 0 at the bridge, 1 at the tip
    width = 0.05 + 0.045 * t
    ridge = (0.03 + 0.25 * t ** 1.6) * np.exp(-0.5 * (x / width) ** 2)
    below_tip = _sigmoid((y + 0.27) / 0.02)
    above_brows = _sigmoid((0.45 - y) / 0.04)
    tip = 0.05 * _gauss(x, y, 0, -0.19, 0.06, 0.05)
    wings = 0.09 * _gauss(np.abs(x), y, 0.075, -0.235, 0.04, 0.035)
    return (ridge + tip) * below_tip * above_brows + wings * _sigmoid((y + 0.29) / 0.02)


def _lips(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    upper = 0.045 * _gauss(x, y, 0, MOUTH_Y + 0.035, 0.16, 0.03)
    lower = 0.05 * _gauss(x, y, 0, MOUTH_Y - 0.045, 0.14, 0.035)
    return upper + lower


def _brow_ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.05 * _gauss(np.abs(x), y, 0.28, 0.43, 0.2, 0.07)


def _features(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth added to the base surface at (x, y)."""
    ax = np.abs(x)
    eye_r2 = (ax - EYE_X) ** 2 + (y - EYE_Y) ** 2
    return (0.03 * _gauss(x, y, 0, 0.75, 0.4, 0.3)            # forehead
            + _brow_ridge(x, y)
            - 0.03 * _gauss(ax, y, 0.62, 0.45, 0.1, 0.15)     # temples
            - 0.12 * _gauss(ax, y, EYE_X, EYE_Y, 0.13, 0.09)  # eye sockets
            + 0.08 * np.sqrt(np.clip(1 - eye_r2 / 0.105 ** 2, 0, None))  # eyeballs
            + _nose(x, y)
            + 0.06 * _gauss(ax, y, 0.36, -0.1, 0.15, 0.15)    # cheeks
            + 0.03 * _gauss(ax, y, 0.52, 0.1, 0.1, 0.08)      # cheekbones
            + 0.08 * _gauss(x, y, 0, MOUTH_Y + 0.02, 0.22, 0.2)  # muzzle
            + _lips(x, y)
            - 0.025 * _gauss(x, y, 0, MOUTH_Y - 0.2, 0.14, 0.04)  # fold under the lower lip
            + 0.1 * _gauss(x, y, 0, -1.0, 0.16, 0.12))        # chin


def grid_triangles(index: np.ndarray) -> np.ndarray:
    """Triangles `(2 (R-1) (C-1), 3)` of an `(R, C)` vertex-index grid whose rows go up (+y)
    and columns right (+x): counter-clockwise seen from +z, so normals point to +z.

    Diagonals mirror about the centre column so that the mesh is left-right symmetric.
    """
    rows, cols = index.shape
    faces = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            v00, v01, v10, v11 = index[r, c], index[r, c + 1], index[r + 1, c], index[r + 1, c + 1]
            if c < cols // 2:
                faces += [(v00, v01, v10), (v01, v11, v10)]
            else:
                faces += [(v00, v01, v11), (v00, v11, v10)]
    return np.array(faces, dtype=np.int64)


class _Mesh:
    """The mean mesh and the bookkeeping the bases and landmarks need."""

    def __init__(self) -> None:
        half = _warped_axis(GRID_COLUMNS // 2 + 1, 0, THETA_MAX, [(0, 0.3, 0.8), (0.42, 0.15, 1.0)])
        theta = np.concatenate([-half[:0:-1], half])
        ys = _warped_axis(GRID_ROWS, -1.3, 1.25,
                          [(EYE_Y, 0.08, 1.5), (MOUTH_Y, 0.1, 1.5), (-0.25, 0.06, 0.8)])
        self.mouth_row = int(np.argmin(np.abs(ys - MOUTH_Y)))
        ys[self.mouth_row] = MOUTH_Y  # the cut runs exactly along the designed mouth line

        tt, yy = np.meshgrid(theta, ys)
        base = _base_surface(tt, yy)
        base[..., 2] += _features(base[..., 0], yy)
        self.grid = np.arange(GRID_ROWS * GRID_COLUMNS).reshape(GRID_ROWS, GRID_COLUMNS)
        self.theta = theta
        positions = [base.reshape(-1, 3)]

        # Split the mouth row between the corners: the originals stay with the upper lip.
        row_x = base[self.mouth_row, :, 0]
        self.slit_columns = np.nonzero(np.abs(row_x) < MOUTH_HALF_WIDTH)[0]
        lower_index = self.grid.copy()
        next_index = GRID_ROWS * GRID_COLUMNS
        lower_index[self.mouth_row, self.slit_columns] = next_index + np.arange(
            len(self.slit_columns))
        positions.append(base[self.mouth_row, self.slit_columns])
        next_index += len(self.slit_columns)
        self.lower_copy = dict(zip(self.slit_columns.tolist(),
                                   lower_index[self.mouth_row, self.slit_columns].tolist(),
                                   strict=True))
        face_faces = np.concatenate([
            grid_triangles(lower_index[: self.mouth_row + 1]),
            grid_triangles(self.grid[self.mouth_row:]),
        ])

        # Mouth interior: a patch behind the lips, rows listed from the top.
        offsets = np.array([row[0] for row in INTERIOR_ROWS])
        # Far wider than the mouth, so that even an oblique view into a corner of a stretched,
        # open mouth meets the interior rather than the background.
        interior_cols = np.linspace(-MOUTH_HALF_WIDTH - 0.25, MOUTH_HALF_WIDTH + 0.25, 23)
        ix, iy = np.meshgrid(interior_cols, MOUTH_Y + offsets[::-1])  # bottom row first
        interior = np.stack([ix, iy, _base_depth_at(ix, iy) - 0.06], -1)
        interior_index = next_index + np.arange(ix.size).reshape(ix.shape)
        positions.append(interior.reshape(-1, 3))
        interior_faces = grid_triangles(interior_index)

        self.positions = np.concatenate(positions)
        self.faces = np.concatenate([face_faces, interior_faces])
        self.interior_faces = np.arange(len(face_faces), len(self.faces))
        self.interior_vertices = interior_index.reshape(-1)
        moves, teeth = (np.array([row[k] for row in INTERIOR_ROWS[::-1]]) for k in (1, 2))
        self.interior_moves = np.repeat(moves, len(interior_cols))
        self.interior_teeth = np.repeat(teeth, len(interior_cols)) & (np.abs(ix.reshape(-1)) < 0.16)
        self.side_of_head = np.zeros(len(self.positions))
        self.side_of_head[: GRID_ROWS * GRID_COLUMNS] = np.tile(
            _smoothstep(1.35, 1.5, np.abs(theta)), GRID_ROWS)
        self.is_lower_lip = np.zeros(len(self.positions), dtype=bool)
        self.is_lower_lip[list(self.lower_copy.values())] = True
        self.is_upper_lip = np.zeros(len(self.positions), dtype=bool)
        self.is_upper_lip[self.grid[self.mouth_row, self.slit_columns]] = True

    def mirror(self, vertex: int) -> int:
        """The vertex at the mirrored grid column (grid and lower-lip vertices only)."""
        lower = {v: c for c, v in self.lower_copy.items()}
        if vertex in lower:
            return self.lower_copy[GRID_COLUMNS - 1 - lower[vertex]]
        r, c = divmod(vertex, GRID_COLUMNS)
        return int(self.grid[r, GRID_COLUMNS - 1 - c])

    def nearest(self, x: float, y: float, candidates: np.ndarray) -> int:
        d = (self.positions[candidates, 0] - x) ** 2 + (self.positions[candidates, 1] - y) ** 2
        return int(candidates[np.argmin(d)])


def _jaw_weights(mesh: _Mesh) -> np.ndarray:
    """How much each vertex follows the jaw: 1 for the lower face, 0 for the upper lip.

    Along the mouth line the lower lip's weight falls to 0 at the corners (a rounded
    opening); beside the mouth the cheeks stretch smoothly between the two.
    """
    x, y = mesh.positions[:, 0], mesh.positions[:, 1]
    ax, above = np.abs(x), y - MOUTH_Y
    beside = _smoothstep(MOUTH_HALF_WIDTH, MOUTH_HALF_WIDTH + 0.25, ax)
    lens = np.clip(1 - (ax / MOUTH_HALF_WIDTH) ** 4, 0, 1)
    at_line = np.where(ax < MOUTH_HALF_WIDTH, lens, beside)
    lower_side = (above < 0) | mesh.is_lower_lip
    weights = np.where(lower_side, 1 - (1 - at_line) * np.exp(-(above / 0.12) ** 2),
                       beside * np.exp(-(above / 0.15) ** 2))
    interior = mesh.interior_vertices
    weights[interior] = mesh.interior_moves
    return weights


def _expression_basis(mesh: _Mesh, rng: np.random.Generator) -> np.ndarray:
    p = mesh.positions
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax, side = np.abs(x), np.sign(x)
    zero = np.zeros_like(x)
    corners = _gauss(ax, y, MOUTH_HALF_WIDTH, MOUTH_Y, 0.1, 0.1)
    mouth = _gauss(x, y, 0, MOUTH_Y, 0.2, 0.12)
    lips = _gauss(x, y, 0, MOUTH_Y, 0.18, 0.06)
    cheeks_up = _gauss(ax, y, 0.35, -0.2, 0.12, 0.12)
    brows = _gauss(ax, y, 0.3, 0.45, 0.25, 0.12)
    inner_brows = _gauss(ax, y, 0.15, 0.42, 0.1, 0.08)
    puffed = _gauss(ax, y, 0.4, -0.4, 0.15, 0.15)

    jaw = JAW_RADIANS * _jaw_weights(mesh)
    hinge_y, hinge_z = JAW_HINGE
    named = {
        # Rotation about the hinge, linearised: d = w * (axis x (p - hinge)) * angle.
        "jaw_open": np.stack([zero, -jaw * (z - hinge_z), jaw * (y - hinge_y)], -1),
        "smile": np.stack([0.03 * side * corners, 0.045 * corners + 0.02 * cheeks_up,
                           -0.01 * corners + 0.025 * cheeks_up], -1),
        "frown": np.stack([-0.01 * side * corners, -0.04 * corners, zero], -1),
        "pucker": np.stack([-0.3 * x * mouth, zero, 0.06 * mouth], -1),
        "mouth_left": np.stack([0.05 * mouth, zero, zero], -1),
        "mouth_right": np.stack([-0.05 * mouth, zero, zero], -1),
        "brow_raise": np.stack([zero, 0.04 * brows, zero], -1),
        "brow_furrow": np.stack([-0.02 * side * inner_brows, -0.03 * inner_brows,
                                 0.01 * inner_brows], -1),
        "cheek_puff": np.stack([0.04 * side * puffed, zero, 0.05 * puffed], -1),
        "lip_press": np.stack([zero, -0.3 * (y - MOUTH_Y) * lips, -0.03 * lips], -1),
    }
    basis = [named[name] for name in EXPRESSION_NAMES]
    remaining = EMBEDDED_LAYOUT.blocks[1][1] - len(basis)
    basis += _random_fields(x, y, remaining, rng, amplitude=0.015, centre_y=(-1.0, 0.6),
                            mirror=(-1, 1, 1))
    return np.stack(basis)


def _random_fields(x: np.ndarray, y: np.ndarray, count: int, rng: np.random.Generator,
                   amplitude: float, centre_y: tuple[float, float],
                   mirror: tuple[float, float, float]) -> list[np.ndarray]:
    """`count` smooth random fields `(V, 3)`, each three Gaussian bumps; amplitude decays with k.

    Three fields in four are left-right symmetric, as most variation of real faces is: each
    bump gets a twin at -x whose direction is multiplied by `mirror` ((-1, 1, 1) for
    displacements, (1, 1, 1) for colours).
    """
    fields = []
    for k in range(count):
        field = np.zeros((len(x), 3))
        symmetric = rng.random() < 0.75
        for _ in range(3):
            cx, cy = rng.uniform(-0.7, 0.7), rng.uniform(*centre_y)
            sigma = rng.uniform(0.12, 0.35)
            direction = rng.normal(size=3)
            field += _gauss(x, y, cx, cy, sigma, sigma)[:, None] * direction
            if symmetric:
                field += _gauss(x, y, -cx, cy, sigma, sigma)[:, None] * direction * mirror
        fields.append(amplitude / (1 + k / 10) * field / np.abs(field).max())
    return fields


def _identity_basis(mesh: _Mesh, rng: np.random.Generator) -> np.ndarray:
    p = mesh.positions
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    side, zero = np.sign(x), np.zeros_like(x)
    eyes = _gauss(np.abs(x), y, EYE_X, EYE_Y, 0.12, 0.1)
    named = {
        "face_width": np.stack([0.045 * x, zero, zero], -1),
        "face_length": np.stack([zero, 0.04 * y, zero], -1),
        "nose_size": np.stack([zero, zero, 0.25 * _nose(x, y)], -1),
        "jaw_width": np.stack([0.06 * x * _sigmoid((-0.3 - y) / 0.15), zero, zero], -1),
        "chin_length": np.stack([zero, -0.05 * _sigmoid((-0.75 - y) / 0.08), zero], -1),
        "eye_spacing": np.stack([0.02 * side * eyes, zero, zero], -1),
        "lip_fullness": np.stack([zero, zero, 0.3 * _lips(x, y)], -1),
        "brow_ridge": np.stack([zero, zero, 0.5 * _brow_ridge(x, y)], -1),
        "cheekbones": np.stack([0.02 * side * _gauss(np.abs(x), y, 0.52, 0.1, 0.12, 0.1), zero,
                                0.03 * _gauss(np.abs(x), y, 0.52, 0.1, 0.12, 0.1)], -1),
        "face_depth": np.stack([zero, zero, 0.05 * (z - z.mean())], -1),
    }
    basis = [named[name] for name in IDENTITY_NAMES]
    remaining = EMBEDDED_LAYOUT.blocks[0][1] - len(basis)
    basis += _random_fields(x, y, remaining, rng, amplitude=0.02, centre_y=(-1.1, 1.0),
                            mirror=(-1, 1, 1))
    return np.stack(basis)


def _soft_inside(distance: np.ndarray, softness: float) -> np.ndarray:
    """1 well inside (distance < 0), 0 well outside, a smooth ramp of width ~softness between."""
    return _sigmoid(-distance / softness)


def _regions(mesh: _Mesh) -> dict[str, np.ndarray]:
    """Soft per-vertex masks in [0, 1] of the parts the albedo paints."""
    x, y = mesh.positions[:, 0], mesh.positions[:, 1]
    ax = np.abs(x)
    eye_radius = np.sqrt(((ax - EYE_X) / 0.105) ** 2 + ((y - EYE_Y) / 0.045) ** 2)
    sclera = _soft_inside(eye_radius - 1, 0.08)
    iris_r = np.hypot(ax - EYE_X, y - EYE_Y)
    brow_line = 0.445 + 0.035 * (1 - ((ax - 0.3) / 0.2) ** 2)
    brow_extent = _sigmoid((ax - 0.11) / 0.015) * _sigmoid((0.5 - ax) / 0.02)
    brow_thickness = 0.028 - 0.012 * np.clip((ax - 0.11) / 0.39, 0, 1)
    upper_lip = 0.055 * (1 - (x / 0.21) ** 2) + 0.01 * _gauss(ax, y, 0.05, MOUTH_Y, 0.03, 1)
    lower_lip = 0.075 * (1 - (x / 0.19) ** 2)
    d = y - MOUTH_Y
    lips = np.where(d >= 0, _soft_inside(d - upper_lip, 0.008), _soft_inside(-d - lower_lip, 0.01))
    regions = {
        "sclera": sclera,
        "iris": sclera * _soft_inside(iris_r - 0.04, 0.005),
        "pupil": sclera * _soft_inside(iris_r - 0.016, 0.004),
        "lash_line": np.exp(-((eye_radius - 1) / 0.15) ** 2) * (y > EYE_Y - 0.01),
        "brows": brow_extent * np.exp(-0.5 * ((y - brow_line) / brow_thickness) ** 2),
        "lips": lips * _soft_inside(ax - 0.22, 0.01),
        "nostrils": _gauss(ax, y, 0.045, -0.285, 0.02, 0.012),
        "hair": _soft_inside(0.98 - 0.4 * (x / 0.8) ** 2 - y, 0.02)
        + (mesh.side_of_head * _soft_inside(0.2 - y, 0.03)),
        "cheeks": _gauss(ax, y, 0.36, -0.12, 0.14, 0.12) + 0.6 * _gauss(x, y, 0, -0.2, 0.06, 0.06),
    }
    interior = np.zeros(len(x))
    interior[mesh.interior_vertices] = 1
    regions["teeth"] = np.zeros(len(x))
    regions["teeth"][mesh.interior_vertices] = mesh.interior_teeth
    regions["mouth_interior"] = interior
    regions["hair"] = np.clip(regions["hair"], 0, 1) * (1 - interior)
    regions["skin"] = (1 - interior) * (1 - sclera) * (1 - regions["lips"]) * (1 - regions["hair"])
    return regions


def _mean_albedo(regions: dict[str, np.ndarray]) -> np.ndarray:
    def paint(base: np.ndarray, weight: np.ndarray, colour: tuple[float, float, float]):
        return base * (1 - weight[:, None]) + np.array(colour) * weight[:, None]

    colour = np.tile([0.80, 0.60, 0.50], (len(regions["skin"]), 1))
    colour = colour + np.array([0.05, -0.02, -0.02]) * regions["cheeks"][:, None]
    colour = paint(colour, regions["lips"], (0.70, 0.36, 0.36))
    colour = paint(colour, regions["nostrils"], (0.25, 0.12, 0.10))
    colour = paint(colour, regions["brows"], (0.22, 0.15, 0.11))
    colour = paint(colour, regions["hair"], (0.2, 0.13, 0.09))
    colour = paint(colour, regions["sclera"], (0.93, 0.91, 0.88))
    colour = paint(colour, regions["iris"], (0.38, 0.25, 0.15))
    colour = paint(colour, regions["pupil"], (0.04, 0.03, 0.03))
    colour = paint(colour, regions["lash_line"], (0.15, 0.10, 0.08))
    colour = paint(colour, regions["mouth_interior"], (0.25, 0.06, 0.06))
    colour = paint(colour, regions["teeth"], (0.92, 0.90, 0.84))
    return np.clip(colour, 0, 1)


def _texture_basis(mesh: _Mesh, regions: dict[str, np.ndarray],
                   rng: np.random.Generator) -> np.ndarray:
    skin, ones = regions["skin"][:, None], np.ones((len(regions["skin"]), 1))
    named = {
        "skin_tone": -np.array([0.16, 0.14, 0.12]) * skin,   # + darker, - paler
        "redness": np.array([0.05, -0.02, -0.02]) * (skin * 0.5 + regions["cheeks"][:, None]),
        "lip_colour": np.array([0.08, -0.04, -0.02]) * regions["lips"][:, None],
        "brow_darkness": -np.array([0.08, 0.07, 0.06]) * regions["brows"][:, None],
        "eye_colour": np.array([-0.08, 0.04, 0.12]) * regions["iris"][:, None]
        * (1 - regions["pupil"][:, None]),
        "hair_colour": np.array([0.12, 0.09, 0.05]) * regions["hair"][:, None],  # + lighter
    }
    basis = [named[name] * ones for name in TEXTURE_NAMES]
    remaining = EMBEDDED_LAYOUT.blocks[2][1] - len(basis)
    x, y = mesh.positions[:, 0], mesh.positions[:, 1]
    basis += [f * skin for f in _random_fields(x, y, remaining, rng, amplitude=0.01,
                                               centre_y=(-1.1, 1.0), mirror=(1, 1, 1))]
    return np.stack(basis)


def _landmarks(mesh: _Mesh) -> np.ndarray:
    """68 vertex indices in iBUG-68 order; the left half mirrors the right (subject's) half."""
    front = mesh.grid[:, np.abs(mesh.theta) <= np.pi / 2].reshape(-1)
    centre = mesh.grid[:, GRID_COLUMNS // 2]
    upper = mesh.grid[mesh.mouth_row, mesh.slit_columns]
    lower = np.array([mesh.lower_copy[c] for c in mesh.slit_columns])
    corner = int(mesh.grid[mesh.mouth_row, mesh.slit_columns[0] - 1])
    m = MOUTH_Y
    lm: dict[int, int] = {}
    for k in range(9):  # jaw, from the subject's right temple down to the chin
        phi = np.pi * k / 16
        lm[k] = mesh.nearest(-0.74 * np.cos(phi), 0.12 - 1.17 * np.sin(phi),
                             centre if k == 8 else front)
    for k, (x, y) in zip(range(17, 22), [(-0.5, 0.40), (-0.41, 0.45), (-0.31, 0.47),
                                         (-0.22, 0.465), (-0.13, 0.44)], strict=True):
        lm[k] = mesh.nearest(x, y, front)  # right brow, outer to inner
    for k, y in zip(range(27, 31), [0.24, 0.10, -0.04, -0.20], strict=True):
        lm[k] = mesh.nearest(0, y, centre)  # nose bridge to tip
    lm[31], lm[32] = mesh.nearest(-0.09, -0.28, front), mesh.nearest(-0.045, -0.30, front)
    lm[33] = mesh.nearest(0, -0.31, centre)
    eye = [(-0.42, 0.24), (-0.345, 0.275), (-0.275, 0.275), (-0.20, 0.24), (-0.275, 0.205),
           (-0.345, 0.205)]
    for k, (x, y) in zip(range(36, 42), eye, strict=True):
        lm[k] = mesh.nearest(x, y, front)
    lm[48] = mesh.nearest(-MOUTH_HALF_WIDTH - 0.02, m, front)
    for k, (x, y) in {49: (-0.14, m + 0.05), 50: (-0.06, m + 0.07), 59: (-0.14, m - 0.06),
                      58: (-0.07, m - 0.085)}.items():
        lm[k] = mesh.nearest(x, y, front)
    lm[51], lm[57] = mesh.nearest(0, m + 0.065, centre), mesh.nearest(0, m - 0.09, centre)
    lm[60] = corner
    lm[61], lm[62] = mesh.nearest(-0.1, m, upper), mesh.nearest(0, m, upper)
    lm[67], lm[66] = mesh.nearest(-0.1, m, lower), mesh.nearest(0, m, lower)

    mirrored = {16 - k: k for k in range(8)}
    mirrored.update({26 - i: 17 + i for i in range(5)})
    mirrored.update({35: 31, 34: 32, 45: 36, 44: 37, 43: 38, 42: 39, 47: 40, 46: 41})
    mirrored.update({54: 48, 53: 49, 52: 50, 56: 58, 55: 59, 64: 60, 63: 61, 65: 67})
    for k, source in mirrored.items():
        lm[k] = mesh.mirror(lm[source])
    return np.array([lm[k] for k in range(68)], dtype=np.int64)


@lru_cache(maxsize=1)
def build_embedded_model() -> MorphableModel:
    """The embedded model (float32, CPU). Deterministic: the same tensors on every call."""
    rng = np.random.default_rng(2022)
    mesh = _Mesh()
    regions = _regions(mesh)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).float()

    return MorphableModel(
        name="embedded",
        layout=EMBEDDED_LAYOUT,
        mean_shape=tensor(mesh.positions),
        identity_basis=tensor(_identity_basis(mesh, rng)),
        expression_basis=tensor(_expression_basis(mesh, rng)),
        mean_albedo=tensor(_mean_albedo(regions)),
        texture_basis=tensor(_texture_basis(mesh, regions, rng)),
        faces=torch.from_numpy(mesh.faces),
        landmark_index=torch.from_numpy(_landmarks(mesh)),
        expression_names=EXPRESSION_NAMES + [f"expression_{k:02d}" for k in range(10, 44)],
        texture_names=TEXTURE_NAMES + [f"texture_{k:02d}" for k in range(6, 80)],
        identity_names=IDENTITY_NAMES + [f"identity_{k:02d}" for k in range(10, 80)],
        regions={"mouth_interior": torch.from_numpy(mesh.interior_faces)},
        vertex_regions={name: tensor(regions[name]) for name in ("skin", "lips", "brows")},
        one_sided_expressions=("jaw_open",),
        surface=SurfaceGrid(index=torch.from_numpy(mesh.grid), theta=tensor(mesh.theta),
                            height=tensor(mesh.positions[mesh.grid[:, 0], 1])),
    )
