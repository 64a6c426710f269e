"""A linear 3D morphable model (3DMM): mean shape and albedo plus linear bases.

    vertices = mean_shape + identity @ identity_basis + expression @ expression_basis
    albedo   = mean_albedo + texture @ texture_basis            (clamped to [0, 1])

Pose and lighting do not change the mesh; `render.render_faces` applies them. The same class
serves the embedded procedural model and a user's Basel Face Model file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .layout import CoeffLayout
from .shading import DEFAULT_LIGHT

# How `sample_coeffs` draws pose and light: standard deviations around zero.
POSE_STD = (0.22, 0.1, 0.07, 0.08, 0.08, 0.3)  # yaw, pitch, roll (rad); x, y, z translation
LIGHT_STD = (0.12, 0.25, 0.15, 0.25, 0.06, 0.06, 0.06, 0.06, 0.06)  # per SH band
LIGHT_TINT_STD = 0.05  # relative per-channel gain: light that is not quite white


@dataclass(frozen=True)
class SurfaceGrid:
    """The face surface as a regular grid over (theta, y), for placing things on the face.

    index `(R, C)` long: vertex at row r, column c (upper-lip copies on the mouth row);
    theta `(C,)`: angle of each column around the vertical axis (radians, 0 = facing the
    camera, > 0 towards +x); height `(R,)`: y of each row on the mean face.
    """

    index: torch.Tensor
    theta: torch.Tensor
    height: torch.Tensor


@dataclass(frozen=True)
class MorphableModel:
    """Tensors of one 3DMM. V vertices, F triangles.

    mean_shape `(V, 3)`; identity_basis `(K_id, V, 3)`; expression_basis `(K_exp, V, 3)`;
    mean_albedo `(V, 3)` in [0, 1]; texture_basis `(K_tex, V, 3)`; faces `(F, 3)` long,
    counter-clockwise seen from outside; landmark_index `(68,)` long, iBUG-68 order.
    `regions` maps a name (e.g. "mouth_interior") to the indices of its triangles;
    `vertex_regions` a name (e.g. "skin") to a soft per-vertex mask `(V,)` in [0, 1].
    `surface` is the (theta, y) grid of the embedded model (None for a Basel model).
    """

    name: str
    layout: CoeffLayout
    mean_shape: torch.Tensor
    identity_basis: torch.Tensor
    expression_basis: torch.Tensor
    mean_albedo: torch.Tensor
    texture_basis: torch.Tensor
    faces: torch.Tensor
    landmark_index: torch.Tensor
    expression_names: list[str]
    texture_names: list[str]
    identity_names: list[str]
    regions: dict[str, torch.Tensor] = field(default_factory=dict)
    vertex_regions: dict[str, torch.Tensor] = field(default_factory=dict)
    # Expression components that only make sense one way (a jaw opens, it does not "un-open").
    one_sided_expressions: tuple[str, ...] = ()
    surface: SurfaceGrid | None = None

    @property
    def num_vertices(self) -> int:
        return self.mean_shape.shape[0]

    @property
    def device(self) -> torch.device:
        return self.mean_shape.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean_shape.dtype

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> MorphableModel:
        """A copy on `device`, floating tensors cast to `dtype`."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return replace(
            self,
            mean_shape=move(self.mean_shape), identity_basis=move(self.identity_basis),
            expression_basis=move(self.expression_basis), mean_albedo=move(self.mean_albedo),
            texture_basis=move(self.texture_basis), faces=move(self.faces),
            landmark_index=move(self.landmark_index),
            regions={k: move(v) for k, v in self.regions.items()},
            vertex_regions={k: move(v) for k, v in self.vertex_regions.items()},
            surface=None if self.surface is None else SurfaceGrid(
                move(self.surface.index), move(self.surface.theta), move(self.surface.height)),
        )

    def part(self, triangles: torch.Tensor) -> tuple[MorphableModel, torch.Tensor]:
        """The model cut down to the `triangles` `(F,)` bool and what rendering them exactly
        needs, for work that looks at only some of the face (a fit sees only the pixels a mask
        leaves visible): the triangles around them too (`triangles_around`), so that their
        corners' normals are the whole model's, and the landmark vertices. The same
        coefficients decode to the same kept vertices and albedo. Returns the part (without
        `regions`, `vertex_regions` and `surface`) and `(F,)` long: each triangle's index in
        the part, -1 where it was left out."""
        faces = self.faces.long()
        kept_faces = triangles_around(faces, triangles, self.num_vertices)
        kept = torch.zeros(self.num_vertices, dtype=torch.bool, device=self.device)
        kept[faces[kept_faces].reshape(-1)] = True
        kept[self.landmark_index] = True
        vertices = kept.nonzero().squeeze(1)
        new_vertex = torch.full((self.num_vertices,), -1, device=self.device)
        new_vertex[vertices] = torch.arange(len(vertices), device=self.device)
        new_triangle = torch.full((len(faces),), -1, device=self.device)
        new_triangle[kept_faces] = torch.arange(int(kept_faces.sum()), device=self.device)
        part = replace(
            self, mean_shape=self.mean_shape[vertices],
            identity_basis=self.identity_basis.index_select(1, vertices),
            expression_basis=self.expression_basis.index_select(1, vertices),
            mean_albedo=self.mean_albedo[vertices],
            texture_basis=self.texture_basis.index_select(1, vertices),
            faces=new_vertex[faces[kept_faces]], landmark_index=new_vertex[self.landmark_index],
            regions={}, vertex_regions={}, surface=None)
        return part, new_triangle

    def validate(self, coeffs: torch.Tensor) -> torch.Tensor:
        """`coeffs` checked (finite, `(B, layout.size)`) and moved to the model's device/dtype."""
        check_coeffs(coeffs, self.layout)
        return coeffs.to(device=self.device, dtype=self.dtype)

    def zero_coeffs(self, batch_size: int) -> torch.Tensor:
        """`(batch_size, layout.size)` zeros on the model's device: the mean face, default pose
        and light."""
        return self.layout.zeros(batch_size, dtype=self.dtype, device=self.device)

    def decode(self, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, layout.size)` -> model-space vertices `(B, V, 3)`, albedo `(B, V, 3)` in [0, 1]."""
        parts = self.layout.split(self.validate(coeffs))
        albedo = self.mean_albedo + torch.einsum("bk,kvc->bvc", parts["texture"],
                                                 self.texture_basis)
        return self._vertices(parts), albedo.clamp(0, 1)

    def shape(self, coeffs: torch.Tensor) -> torch.Tensor:
        """`(B, layout.size)` -> model-space vertices `(B, V, 3)` (`decode` without albedo)."""
        return self._vertices(self.layout.split(self.validate(coeffs)))

    def _vertices(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return (self.mean_shape
                + torch.einsum("bk,kvc->bvc", parts["identity"], self.identity_basis)
                + torch.einsum("bk,kvc->bvc", parts["expression"], self.expression_basis))

    def with_expression(self, coeffs: torch.Tensor, values: dict[str, float]) -> torch.Tensor:
        """A copy of `coeffs` `(B, layout.size)` with the named expression components set to
        `values` (e.g. {"jaw_open": 1.5}) in every row; an unknown name raises KeyError
        listing the names."""
        unknown = [name for name in values if name not in self.expression_names]
        if unknown:
            raise KeyError(f"no expression component {unknown[0]!r}; named ones are "
                           f"{[n for n in self.expression_names if not n.startswith('expr')]}")
        edited = coeffs.clone()
        start = self.layout.slice("expression").start
        for name, value in values.items():
            edited[:, start + self.expression_names.index(name)] = value
        return edited

    def sample_coeffs(self, batch_size: int, generator: torch.Generator | None = None,
                      ) -> torch.Tensor:
        """Random plausible faces `(batch_size, layout.size)` on the model's device.

        Shape, expression and texture ~ N(0, 1) (one-sided expressions such as jaw_open take
        |N(0, 1)|); pose and light ~ N(0, POSE_STD / LIGHT_STD). Drawn on the CPU from
        `generator`, so a seed gives the same faces on every device.
        """
        parts = {name: torch.randn(batch_size, size, generator=generator)
                 for name, size in self.layout.blocks}
        for name in self.one_sided_expressions:
            k = self.expression_names.index(name)
            parts["expression"][:, k] = parts["expression"][:, k].abs()
        pose = parts.get("pose")
        if pose is not None:
            pose.mul_(torch.tensor(POSE_STD))
        else:  # separate rotation / translation blocks (Basel layout)
            parts["rotation"].mul_(torch.tensor(POSE_STD[:3]))
            parts["translation"].mul_(torch.tensor(POSE_STD[3:]))
        light = parts["lighting"].view(batch_size, 3, 9)
        light.mul_(torch.tensor(LIGHT_STD))
        # One light for all channels, scaled by a per-channel gain: mostly white, slightly tinted.
        gain = 1 + LIGHT_TINT_STD * torch.randn(batch_size, 3, 1, generator=generator)
        default = torch.tensor(DEFAULT_LIGHT)
        light.copy_((light[:, :1] + default) * gain - default)
        return self.layout.join(parts).to(device=self.device, dtype=self.dtype)


def triangles_around(faces: torch.Tensor, triangles: torch.Tensor,
                     num_vertices: int) -> torch.Tensor:
    """`(F,)` bool: the `triangles` `(F,)` bool of a mesh `faces` `(F, 3)` and every triangle
    that shares a corner with one of them."""
    corners = torch.zeros(num_vertices, dtype=torch.bool, device=faces.device)
    corners[faces[triangles].reshape(-1)] = True
    return corners[faces].any(1)


def check_coeffs(coeffs: torch.Tensor, layout: CoeffLayout) -> None:
    """Raise a clear ValueError unless `coeffs` is a finite `(B, layout.size)` tensor."""
    if not isinstance(coeffs, torch.Tensor):
        raise ValueError(f"coeffs must be a torch.Tensor, got {type(coeffs).__name__}")
    if coeffs.dim() != 2 or coeffs.shape[1] != layout.size:
        raise ValueError(f"coeffs must be (B, {layout.size}) for this model "
                         f"({layout.describe()}), got {tuple(coeffs.shape)}")
    if not torch.isfinite(coeffs).all():
        raise ValueError("coeffs contain NaN or infinite values")
