"""Coefficients -> image: decode, pose, project, rasterise, interpolate, shade."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .camera import pose_vertices, project
from .model import MorphableModel
from .raster import Fragments, nearest_triangle, rasterize_fragments
from .shading import irradiance_by_image, lighting_from_coeffs, vertex_normals


@dataclass
class RenderOutput:
    """What `render_mesh` / `render_faces` return; every image is `(B, C, H, W)`.

    image: `(B, 3, H, W)` in [-1, 1], the mesh over `background`.
    face_mask: `(B, 1, H, W)` in {0, 1}, pixels covered by the mesh.
    depth: `(B, 1, H, W)` distance from the camera plane, inf on background.
    landmarks: `(B, 68, 2)` pixel coordinates (x, y) of the landmark vertices (faces only).
    tri_id: `(B, H, W)` long, -1 on background; screen_vertices `(B, V, 3)` (x, y px, depth).
    The shading stages, for teaching and debugging, are made into images only when asked
    for: `albedo` `(B, 3, H, W)` in [0, 1], `normals` `(B, 3, H, W)` unit camera-space
    normals, `shading` `(B, 3, H, W)` irradiance >= 0.
    """

    image: torch.Tensor
    face_mask: torch.Tensor
    depth: torch.Tensor
    screen_vertices: torch.Tensor
    fragments: Fragments
    # Albedo, unit normal and irradiance of each covered pixel, (N, 3) each.
    pixel_stages: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    landmarks: torch.Tensor | None = None

    @property
    def tri_id(self) -> torch.Tensor:
        return self.fragments.tri_id

    def _stage(self, k: int) -> torch.Tensor:
        return self.fragments.to_image(self.pixel_stages[k]).permute(0, 3, 1, 2)

    @property
    def albedo(self) -> torch.Tensor:
        return self._stage(0)

    @property
    def normals(self) -> torch.Tensor:
        return self._stage(1)

    @property
    def shading(self) -> torch.Tensor:
        return self._stage(2)


def render_mesh(world: torch.Tensor, faces: torch.Tensor, albedo: torch.Tensor,
                sh: torch.Tensor, image_size: int, background: torch.Tensor | None = None,
                tri_id: torch.Tensor | None = None) -> RenderOutput:
    """Shade any mesh: world vertices `(B, V, 3)`, faces `(F, 3)`, albedo `(B, V, 3)` in [0, 1],
    SH light `(B, 3, 9)`, seen by the default camera.

    background: `(B or 1, 3, H, W)` in [-1, 1]; None means black (-1).
    tri_id: `(B, H, W)`, a render's `tri_id` of nearly the same mesh to reuse instead of
    rasterising again (`raster.rasterize_fragments`); the coverage is then that render's.
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    screen = project(world, image_size, image_size)
    batch = len(world)
    if background is not None and (background.shape[-3:] != (3, image_size, image_size)
                                   or background.dim() != 4
                                   or background.shape[0] not in (1, batch)):
        raise ValueError(f"background must be (1 or {batch}, 3, {image_size}, {image_size}), "
                         f"got {tuple(background.shape)}")
    faces = faces.to(device=world.device, dtype=torch.long)
    sh = sh.to(world)
    fragments = rasterize_fragments(screen, faces, image_size, image_size, tri_id)
    # Albedo, normals and depth share one interpolation: one gather instead of three.
    per_vertex = torch.cat([albedo, vertex_normals(world, faces), screen[..., 2:]], dim=-1)
    per_pixel = fragments.interpolate(per_vertex, faces)
    pixel_albedo, depth = per_pixel[:, :3], per_pixel[:, 6:]
    normals = torch.nn.functional.normalize(per_pixel[:, 3:6], dim=1, eps=1e-12)
    counts = torch.bincount(fragments.batch, minlength=len(screen)).tolist()
    light = irradiance_by_image(normals, sh, counts).clamp(min=0)
    shaded = (pixel_albedo * light).clamp(0, 1) * 2 - 1
    images = fragments.to_image(torch.cat([shaded, depth], 1)).permute(0, 3, 1, 2)
    covered = (fragments.tri_id >= 0)[:, None]
    if background is None:
        background = -torch.ones_like(images[:, :3])
    return RenderOutput(
        image=torch.where(covered, images[:, :3], background.to(images)),
        face_mask=covered.to(world.dtype),
        depth=torch.where(covered, images[:, 3:], torch.inf),
        screen_vertices=screen, fragments=fragments,
        pixel_stages=(pixel_albedo, normals, light),
    )


def posed_vertices(model: MorphableModel, coeffs: torch.Tensor,
                   vertices: torch.Tensor) -> torch.Tensor:
    """Model-space vertices `(B, V, 3)` -> world, with the pose block of `coeffs` `(B, size)`."""
    angles, translation = model.layout.pose(model.validate(coeffs))
    return pose_vertices(vertices, angles, translation)


def scene_light(model: MorphableModel, coeffs: torch.Tensor) -> torch.Tensor:
    """The SH light `(B, 3, 9)` of the lighting block of `coeffs` `(B, size)`."""
    return lighting_from_coeffs(model.layout.split(model.validate(coeffs))["lighting"])


def render_faces(model: MorphableModel, coeffs: torch.Tensor, image_size: int = 256,
                 background: torch.Tensor | None = None,
                 tri_id: torch.Tensor | None = None) -> RenderOutput:
    """Render `(B, layout.size)` coefficients to square images of side `image_size`.

    background: `(B or 1, 3, H, W)` in [-1, 1]; None means black (-1). tri_id: as in
    `render_mesh`, a render's triangle ids to reuse.
    Differentiable with respect to every coefficient block (not through silhouettes).
    """
    vertices, albedo = model.decode(coeffs)
    out = render_mesh(posed_vertices(model, coeffs, vertices), model.faces, albedo,
                      scene_light(model, coeffs), image_size, background, tri_id)
    out.landmarks = out.screen_vertices[:, model.landmark_index, :2]
    return out


@torch.no_grad()
def rasterize_faces(model: MorphableModel, coeffs: torch.Tensor,
                    image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rasterisation of `render_faces(model, coeffs, image_size)` alone, without albedo or
    shading: screen vertices `(B, V, 3)` (x, y in pixels, depth) and the triangle each pixel
    shows `(B, S, S)` long, -1 on background."""
    world = posed_vertices(model, coeffs, model.shape(coeffs))
    screen = project(world, image_size, image_size)
    return screen, nearest_triangle(screen, model.faces.long(), image_size, image_size)
