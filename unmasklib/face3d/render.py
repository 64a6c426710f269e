"""Coefficients -> image: decode, pose, project, rasterise, interpolate, shade."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .camera import pose_vertices, project
from .model import MorphableModel
from .raster import interpolate, rasterize
from .shading import irradiance, lighting_from_coeffs, vertex_normals


@dataclass
class RenderOutput:
    """What `render_faces` returns; every image is `(B, C, H, W)`.

    image: `(B, 3, H, W)` in [-1, 1], the face over `background`.
    face_mask: `(B, 1, H, W)` in {0, 1}, pixels covered by the mesh.
    landmarks: `(B, 68, 2)` pixel coordinates (x, y) of the 68 landmark vertices.
    The intermediate stages, for teaching and debugging:
    tri_id `(B, H, W)` long (-1: background); albedo `(B, 3, H, W)` in [0, 1];
    normals `(B, 3, H, W)` unit camera-space normals; shading `(B, 3, H, W)` irradiance >= 0;
    screen_vertices `(B, V, 3)` (x, y pixels, depth).
    """

    image: torch.Tensor
    face_mask: torch.Tensor
    landmarks: torch.Tensor
    tri_id: torch.Tensor
    albedo: torch.Tensor
    normals: torch.Tensor
    shading: torch.Tensor
    screen_vertices: torch.Tensor


def render_faces(model: MorphableModel, coeffs: torch.Tensor, image_size: int = 256,
                 background: torch.Tensor | None = None) -> RenderOutput:
    """Render `(B, layout.size)` coefficients to square images of side `image_size`.

    background: `(B or 1, 3, H, W)` in [-1, 1]; None means black (-1).
    Differentiable with respect to every coefficient block (not through silhouettes).
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    vertices, albedo = model.decode(coeffs)
    angles, translation = model.layout.pose(coeffs.to(model.dtype))
    world = pose_vertices(vertices, angles, translation)
    screen = project(world, image_size, image_size)
    tri_id, bary = rasterize(screen, model.faces, image_size, image_size)

    # Albedo and normals share one interpolation: one gather instead of two.
    per_vertex = torch.cat([albedo, vertex_normals(world, model.faces)], dim=-1)
    per_pixel = interpolate(per_vertex, model.faces, tri_id, bary).permute(0, 3, 1, 2)
    pixel_albedo = per_pixel[:, :3]
    normals = torch.nn.functional.normalize(per_pixel[:, 3:], dim=1, eps=1e-12)
    covered = (tri_id >= 0)[:, None].to(model.dtype)
    sh = lighting_from_coeffs(model.layout.split(coeffs.to(model.dtype))["lighting"])
    light = irradiance(normals.permute(0, 2, 3, 1), sh).permute(0, 3, 1, 2).clamp(min=0)
    face = (pixel_albedo * light).clamp(0, 1) * 2 - 1
    if background is None:
        background = -torch.ones_like(face)
    elif background.shape[-3:] != face.shape[-3:]:
        raise ValueError(f"background must be (B, 3, {image_size}, {image_size}), "
                         f"got {tuple(background.shape)}")
    image = covered * face + (1 - covered) * background.to(face)
    return RenderOutput(
        image=image, face_mask=covered, landmarks=screen[:, model.landmark_index, :2],
        tri_id=tri_id, albedo=pixel_albedo, normals=normals, shading=light * covered,
        screen_vertices=screen,
    )
