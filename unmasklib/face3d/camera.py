"""Head pose and the perspective camera.

Model space: x to the image right at zero pose (the subject's left), y up, z towards the
camera; the embedded face spans about 2.5 units from the chin to the top of the forehead.
The camera sits on the +z axis at `CAMERA_DISTANCE`, looks down -z, and its focal length
scales with the image so that a face fills about four fifths of the frame at any resolution.

Pose angles (radians), applied as R = R_roll @ R_yaw @ R_pitch:
- yaw > 0 turns the head about the vertical axis so that the nose tip moves to the image right;
- pitch > 0 nods the head down (the nose tip moves down in the image);
- roll > 0 tilts the head so that its top moves to the image left (counter-clockwise on screen).
"""

from __future__ import annotations

import torch

CAMERA_DISTANCE = 10.0
FOCAL_PER_PIXEL = 3.2  # focal length in pixels, per pixel of image height


def euler_rotation(angles: torch.Tensor) -> torch.Tensor:
    """`(B, 3)` yaw, pitch, roll in radians -> rotation matrices `(B, 3, 3)`."""
    yaw, pitch, roll = angles.unbind(-1)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    r_yaw = matrix([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    r_pitch = matrix([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    r_roll = matrix([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return r_roll @ r_yaw @ r_pitch


def pose_vertices(vertices: torch.Tensor, angles: torch.Tensor,
                  translation: torch.Tensor) -> torch.Tensor:
    """Model-space `(B, V, 3)` -> camera-aligned world space `(B, V, 3)`: rotate, then shift."""
    rotation = euler_rotation(angles)
    return vertices @ rotation.transpose(1, 2) + translation[:, None, :]


def focal_length(image_size: int) -> float:
    return FOCAL_PER_PIXEL * image_size


def project(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """World `(B, V, 3)` -> screen `(B, V, 3)`: x, y in pixels (y down), z = depth (> 0).

    Pixel (row i, col j) has its centre at (j + 0.5, i + 0.5); the optical axis hits the
    image centre (width / 2, height / 2).
    """
    depth = CAMERA_DISTANCE - points[..., 2]
    focal = focal_length(height)
    x = width / 2 + focal * points[..., 0] / depth
    y = height / 2 - focal * points[..., 1] / depth
    return torch.stack([x, y, depth], dim=-1)
