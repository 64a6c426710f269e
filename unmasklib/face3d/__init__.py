"""The 3D face prior: a morphable face model and a differentiable renderer.

    from unmasklib import face3d
    model = face3d.load_face_model()
    coeffs = model.sample_coeffs(4, generator=torch.Generator().manual_seed(0))
    out = face3d.render_faces(model, coeffs, image_size=256)
"""

from __future__ import annotations

from pathlib import Path

from .bfm import BFM_LAYOUT, load_bfm
from .camera import euler_rotation, pose_vertices, project
from .embedded import EMBEDDED_LAYOUT, build_embedded_model
from .layout import CoeffLayout
from .model import MorphableModel, SurfaceGrid, triangles_around
from .raster import interpolate, rasterize
from .render import (
    RenderOutput,
    posed_vertices,
    rasterize_faces,
    render_faces,
    render_mesh,
    scene_light,
)
from .shading import irradiance, light_direction, sh_basis, vertex_normals, with_light_direction


def load_face_model(path: str | Path | None = None) -> MorphableModel:
    """The embedded procedural model, or a Basel Face Model read from `path` (`.mat`)."""
    return build_embedded_model() if path is None else load_bfm(path)


__all__ = [
    "BFM_LAYOUT", "EMBEDDED_LAYOUT", "CoeffLayout", "MorphableModel", "RenderOutput", "SurfaceGrid",
    "euler_rotation", "interpolate", "irradiance", "load_face_model", "pose_vertices",
    "posed_vertices", "project", "rasterize", "render_faces", "render_mesh", "scene_light",
    "sh_basis", "rasterize_faces", "triangles_around", "vertex_normals", "light_direction",
    "with_light_direction",
]
