"""Z-buffer rasterisation in pure PyTorch.

Which triangle covers a pixel is a discrete choice, so it is made without gradients; the
barycentric coordinates of the pixel centre inside that triangle are then recomputed from the
vertex positions with autograd on. Rendered pixels are therefore differentiable with respect
to everything that moves or colours the surface, but not through silhouette changes.

Instead of testing every pixel against every triangle, each triangle is cut into the pixel
rows it spans and each row into the columns between its edges (scanline order), so the work is
proportional to the covered area. The final inside test is watertight: an edge shared by two
triangles is evaluated from the same endpoint, in the same order, by both, so a pixel centre
near it lands in exactly one of them, even in float32. Attributes are interpolated with
screen-space barycentrics: with the camera ten units from a face about two units deep, the
perspective error stays far below a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _edge(ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor,
          px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Twice the signed area of (a, b, p): > 0 on one side of the line a -> b, < 0 on the other."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _barycentric(tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Triangles `(..., 3, 3)` (vertex, xyz) and points `(...)` -> weights `(..., 3)`."""
    x, y = tri[..., 0], tri[..., 1]
    area = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2])
    w0 = _edge(x[..., 1], y[..., 1], x[..., 2], y[..., 2], px, py)
    w1 = _edge(x[..., 2], y[..., 2], x[..., 0], y[..., 0], px, py)
    w2 = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], px, py)
    return torch.stack([w0, w1, w2], dim=-1) / area[..., None]




def _edge_ends(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-corner values `(T, 3)` -> their values at the start and the end of the edge
    opposite each corner: the edge opposite corner k runs from corner k+1 to corner k+2."""
    return values.roll(-1, dims=1), values.roll(-2, dims=1)


def _planes(tri: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Triangles `(T, 3, 3)` and their doubled signed areas `(T,)` -> planes `(T, 4, 3)`.

    Row k < 3 gives barycentric weight k, row 3 the depth, each as (d/dx, d/dy, constant), so
    evaluating them at a pixel costs two multiply-adds per quantity.
    """
    x, y, z = tri.unbind(-1)
    (xa, xb), (ya, yb) = _edge_ends(x), _edge_ends(y)
    dx, dy = xb - xa, yb - ya
    weights = torch.stack([-dy, dx, dy * xa - dx * ya], -1) / area[:, None, None]
    depth = (weights * z[:, :, None]).sum(1, keepdim=True)
    return torch.cat([weights, depth], 1)


def _edge_tables(tri: torch.Tensor, area: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Watertight inside tests for triangles `(T, 3, 3)`, T = B * F, with faces `(F, 3)`.

    Returns `(T, 3, 4)`: per edge (opposite vertex 0, 1, 2) a start point (x, y) and a
    direction (dx, dy) such that a point p is on the inside when
    `dx * (p_y - y) - dy * (p_x - x) >= 0` for all three edges. The start is the endpoint with
    the lower vertex index, so two triangles sharing an edge compute bit-identical values of
    opposite sign (negation is exact in floating point): no pixel falls between them.
    """
    x, y = tri[..., 0], tri[..., 1]
    first, last = _edge_ends(faces)
    forward = (first < last).repeat(tri.shape[0] // len(faces), 1)
    (xa, xb), (ya, yb) = _edge_ends(x), _edge_ends(y)
    start_x, start_y = torch.where(forward, xa, xb), torch.where(forward, ya, yb)
    end_x, end_y = torch.where(forward, xb, xa), torch.where(forward, yb, ya)
    orientation = torch.where(forward, 1.0, -1.0) * torch.sign(area)[:, None]
    return torch.stack([start_x, start_y, (end_x - start_x) * orientation,
                        (end_y - start_y) * orientation], -1)


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For `counts` `(T,)`: owner `(sum,)` of each new entry and its rank within its owner."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(len(owner), device=counts.device) - first.index_select(0, owner)


# Row spans are widened by this much (pixels) before the exact inside test, so that rounding
# in the span bounds can never drop a pixel the test would accept.
_SPAN_SLACK = 1e-3


@torch.no_grad()
def nearest_triangle(vertices: torch.Tensor, faces: torch.Tensor, height: int,
                     width: int) -> torch.Tensor:
    """Index of the nearest triangle covering each pixel centre, -1 where none does.

    vertices `(B, V, 3)` screen space (x, y pixels, z depth, smaller is nearer); faces `(F, 3)`.
    Returns `(B, H, W)` long. Both windings count (no back-face culling); a centre exactly on
    an edge counts as inside; among equally near triangles the lowest index wins.

    Scanline order: each triangle is cut into the pixel rows it spans, each row into the
    columns between its edges, and only those pixel centres are tested exactly.
    """
    batch, num_faces = vertices.shape[0], faces.shape[0]
    tri = vertices.index_select(1, faces.reshape(-1)).reshape(batch * num_faces, 3, 3)
    x, y = tri[..., 0], tri[..., 1]
    area = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    planes = _planes(tri, area)
    first_row = torch.ceil(y.amin(1) - 0.5).clamp(min=0)
    last_row = torch.floor(y.amax(1) - 0.5).clamp(max=height - 1)
    usable = torch.isfinite(area) & (area != 0)
    rows = torch.where(usable, last_row - first_row + 1, 0).clamp(min=0).long()

    # One entry per (triangle, pixel row): the span of x where all three weights are >= 0.
    owner, rank = _expand(rows)
    row = first_row.long().index_select(0, owner) + rank
    plane = planes[:, :3].index_select(0, owner)  # (R, 3 weights, d/dx d/dy const)
    slope = plane[..., 0]
    offset = plane[..., 1] * (row.to(tri.dtype) + 0.5)[:, None] + plane[..., 2]
    crossing = -offset / slope
    start = torch.where(slope > 0, crossing, -torch.inf).amax(1)
    stop = torch.where(slope < 0, crossing, torch.inf).amin(1)
    flat_outside = ((slope == 0) & (offset < 0)).any(1)
    first_col = torch.ceil(start - 0.5 - _SPAN_SLACK).clamp(min=0)
    last_col = torch.floor(stop - 0.5 + _SPAN_SLACK).clamp(max=width - 1)
    cols = torch.where(flat_outside, 0, last_col - first_col + 1).clamp(min=0).long()

    # One candidate per pixel of each span, tested exactly; the nearest wins per pixel.
    span, rank = _expand(cols)
    col = first_col.long().index_select(0, span) + rank
    row, triangle = row.index_select(0, span), owner.index_select(0, span)
    px, py = (col.to(tri.dtype) + 0.5)[:, None], (row.to(tri.dtype) + 0.5)[:, None]
    edge = _edge_tables(tri, area, faces).index_select(0, triangle)
    inside_all = (edge[..., 2] * (py - edge[..., 1]) - edge[..., 3] * (px - edge[..., 0])) >= 0
    inside = torch.nonzero(inside_all.all(1)).squeeze(1)
    triangle, row, col = (t.index_select(0, inside) for t in (triangle, row, col))
    depth_plane = planes[:, 3].index_select(0, triangle)
    depth = (depth_plane[:, 0] * (col.to(tri.dtype) + 0.5)
             + depth_plane[:, 1] * (row.to(tri.dtype) + 0.5) + depth_plane[:, 2])
    pixel = (triangle // num_faces) * (height * width) + row * width + col

    zbuffer = torch.full((batch * height * width,), torch.inf, dtype=tri.dtype, device=tri.device)
    zbuffer.scatter_reduce_(0, pixel, depth, "amin")
    nearest = torch.nonzero(depth == zbuffer.index_select(0, pixel)).squeeze(1)
    tri_id = torch.full((batch * height * width,), num_faces, dtype=torch.long, device=tri.device)
    tri_id.scatter_reduce_(0, pixel.index_select(0, nearest),
                           triangle.index_select(0, nearest) % num_faces, "amin")
    return torch.where(tri_id == num_faces, -1, tri_id).view(batch, height, width)


@dataclass
class Fragments:
    """The covered pixels of a rasterised batch, as flat lists of N entries.

    tri_id `(B, H, W)` long, -1 on background; pixels `(N,)` flat index into B*H*W;
    batch `(N,)`, triangle `(N,)` long; bary `(N, 3)` barycentric weights, differentiable.
    Shading only the covered pixels and scattering once at the end keeps the work
    proportional to the face area, not the image area.
    """

    tri_id: torch.Tensor
    pixels: torch.Tensor
    batch: torch.Tensor
    triangle: torch.Tensor
    bary: torch.Tensor

    @staticmethod
    def covering(tri_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pixels, batch, triangle of the covered pixels of `tri_id`."""
        flat = tri_id.reshape(-1)
        pixels = torch.nonzero(flat >= 0).squeeze(1)
        return pixels, pixels // (tri_id.shape[1] * tri_id.shape[2]), flat.index_select(0, pixels)

    def interpolate(self, values: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Per-vertex values `(B, V, C)` -> `(N, C)` at the covered pixels."""
        corners = _corner_values(values, faces, self.batch, self.triangle)
        # A broadcast product and a sum, not einsum: einsum makes this N tiny matrix
        # products, whose backward copies the corners into another layout first.
        return (corners * self.bary[..., None]).sum(1)

    def to_image(self, values: torch.Tensor) -> torch.Tensor:
        """`(N, C)` -> `(B, H, W, C)`, zero on background."""
        full = values.new_zeros(self.tri_id.numel(), values.shape[1])
        return full.index_copy(0, self.pixels, values).view(*self.tri_id.shape, values.shape[1])


def _corner_values(values: torch.Tensor, faces: torch.Tensor, batch: torch.Tensor,
                   tri: torch.Tensor) -> torch.Tensor:
    """Per-vertex values `(B, V, C)` -> values at the corners of N pixels' triangles `(N, 3, C)`."""
    num_vertices, channels = values.shape[1:]
    corners = faces.index_select(0, tri) + (batch * num_vertices)[:, None]
    # index_select, not fancy indexing: its backward is an index_add, several times faster
    # on the CPU than the accumulate-index_put that fancy indexing needs.
    flat = values.reshape(-1, channels).index_select(0, corners.reshape(-1))
    return flat.view(-1, 3, channels)


def _check_mesh(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (B, V, 3), got {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    return faces.to(device=vertices.device, dtype=torch.long)


def rasterize_fragments(vertices: torch.Tensor, faces: torch.Tensor, height: int,
                        width: int, tri_id: torch.Tensor | None = None) -> Fragments:
    """Like `rasterize`, but returns the covered pixels as `Fragments`.

    tri_id: `(B, H, W)` long, which triangle covers each pixel as an earlier rasterisation of
    nearly the same mesh found it; given, it is kept and only the barycentrics are computed
    anew from `vertices` (a pixel whose triangle has since moved off it gets weights a little
    outside [0, 1]: the surface extended, not a jump). Skips the z-buffer, most of the cost.
    """
    faces = _check_mesh(vertices, faces)
    if tri_id is None:
        tri_id = nearest_triangle(vertices, faces, height, width)
    elif tri_id.shape != (vertices.shape[0], height, width):
        raise ValueError(f"tri_id must be ({vertices.shape[0]}, {height}, {width}), got "
                         f"{tuple(tri_id.shape)}")
    pixels, batch, triangle = Fragments.covering(tri_id)
    in_image = pixels % (height * width)
    px = (in_image % width).to(vertices.dtype) + 0.5
    py = (in_image // width).to(vertices.dtype) + 0.5
    bary = _barycentric(_corner_values(vertices, faces, batch, triangle), px, py)
    return Fragments(tri_id, pixels, batch, triangle, bary)


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, height: int,
              width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space mesh -> per-pixel triangle id `(B, H, W)` (-1: background) and barycentrics.

    vertices `(B, V, 3)`: x, y in pixels (pixel (row i, col j) has its centre at x = j + 0.5,
    y = i + 0.5), z = depth, smaller is nearer; faces `(F, 3)` long.
    Barycentrics `(B, H, W, 3)` are differentiable with respect to `vertices`, zero on background.
    """
    fragments = rasterize_fragments(vertices, faces, height, width)
    return fragments.tri_id, fragments.to_image(fragments.bary)


def interpolate(values: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor,
                bary: torch.Tensor) -> torch.Tensor:
    """Per-vertex values `(B, V, C)` -> per-pixel values `(B, H, W, C)`, zero on background."""
    faces = faces.to(device=values.device, dtype=torch.long)
    pixels, batch, triangle = Fragments.covering(tri_id)
    weights = bary.reshape(-1, 3).index_select(0, pixels)
    fragments = Fragments(tri_id, pixels, batch, triangle, weights)
    return fragments.to_image(fragments.interpolate(values, faces))
