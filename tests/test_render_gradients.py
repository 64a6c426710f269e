"""Gradients of the renderer against finite differences (float64), and the shading maths."""

import math

import numpy as np
import pytest
import torch

from unmasklib import face3d
from unmasklib.face3d.shading import DEFAULT_LIGHT


def min_edge_distance(vertices, faces, height, width):
    """Smallest distance from any pixel centre to any triangle edge (batch 1)."""
    v = vertices[0, :, :2].detach().numpy()
    py, px = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    p = np.stack([px, py], -1)
    best = np.inf
    for tri in faces.numpy():
        for k in range(3):
            a, b = v[tri[k]], v[tri[(k + 1) % 3]]
            d = b - a
            s = np.clip(((p - a) @ d) / (d @ d), 0, 1)
            best = min(best, np.linalg.norm(p - (a + s[..., None] * d), axis=-1).min())
    return best


def grid_mesh(seed, size=16):
    """A jittered 4x4 vertex grid (18 triangles, shared edges) plus a triangle in front of it."""
    g = torch.Generator().manual_seed(seed)
    ii, jj = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    xy = torch.stack([2 + jj * 4, 2 + ii * 4], -1).reshape(16, 2).double()
    xy = xy + (torch.rand(16, 2, generator=g, dtype=torch.float64) - 0.5) * 2
    z = 2 + torch.rand(16, 1, generator=g, dtype=torch.float64)
    front = torch.rand(3, 2, generator=g, dtype=torch.float64) * size
    vertices = torch.cat([torch.cat([xy, z], 1),
                          torch.cat([front, torch.ones(3, 1, dtype=torch.float64)], 1)])
    faces = []
    for r in range(3):
        for c in range(3):
            v = 4 * r + c
            faces += [[v, v + 1, v + 4], [v + 1, v + 5, v + 4]]
    faces.append([16, 17, 18])
    return vertices[None], torch.tensor(faces)


def test_interpolate_rasterize_gradcheck():
    size = 16
    for seed in range(40):  # the first mesh with no pixel centre near an edge
        vertices, faces = grid_mesh(seed, size)
        if min_edge_distance(vertices, faces, size, size) > 1e-3:
            break
    else:
        pytest.fail("no robust mesh among 40 seeds")
    g = torch.Generator().manual_seed(100)
    colours = torch.rand(1, vertices.shape[1], 2, generator=g, dtype=torch.float64)
    projection = torch.randn(6, size * size * 4, generator=g, dtype=torch.float64)

    def render(vertices, colours):
        tri_id, bary = face3d.rasterize(vertices, faces, size, size)
        values = torch.cat([colours, vertices[..., 2:], vertices[..., :1] ** 2], -1)
        return projection @ face3d.interpolate(values, faces, tri_id, bary).reshape(-1)

    tri_id, _ = face3d.rasterize(vertices, faces, size, size)
    assert (tri_id == 18).sum() > 3 and (tri_id.unique() >= 0).sum() > 10  # occlusion happens
    vertices.requires_grad_(True)
    colours.requires_grad_(True)
    assert torch.autograd.gradcheck(render, (vertices, colours), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_interpolated_position_has_zero_gradient():
    """x, y interpolated at a pixel centre is that centre, whatever the vertices: zero gradient;
    interpolated depth does depend on the vertices."""
    vertices, faces = grid_mesh(0)
    vertices.requires_grad_(True)
    tri_id, bary = face3d.rasterize(vertices, faces, 16, 16)
    xy = face3d.interpolate(vertices[..., :2], faces, tri_id, bary)
    (grad,) = torch.autograd.grad(xy.sum(), vertices, retain_graph=True)
    assert grad.abs().max() < 1e-9
    depth = face3d.interpolate(vertices[..., 2:], faces, tri_id, bary)
    (grad,) = torch.autograd.grad(depth.sum(), vertices)
    assert grad[..., 2].sum() > 100  # each covered pixel's weights sum to 1
    torch.testing.assert_close(grad[..., 2].sum(), (tri_id >= 0).sum().double())


def masked_fd_check(model, coeffs, entries, size=32, eps=1e-5, rtol=1e-5):
    """d/dc sum(w * image) by autograd vs central differences, entry by entry.

    Pixels whose triangle changes under the +-eps perturbation (silhouettes, which the renderer
    does not differentiate through) are left out of both sides.
    """
    g = torch.Generator().manual_seed(5)
    weights = torch.randn(1, 3, size, size, generator=g, dtype=torch.float64)
    coeffs = coeffs.clone().requires_grad_(True)
    out = face3d.render_faces(model, coeffs, size)
    assert out.face_mask.mean() > 0.3
    for k in entries:
        step = torch.zeros_like(coeffs)
        step[0, k] = eps
        with torch.no_grad():
            plus = face3d.render_faces(model, coeffs + step, size)
            minus = face3d.render_faces(model, coeffs - step, size)
        same = ((plus.tri_id == out.tri_id) & (minus.tri_id == out.tri_id))[:, None]
        assert same.float().mean() > 0.95
        w = weights * same
        numeric = ((w * plus.image).sum() - (w * minus.image).sum()) / (2 * eps)
        (grad,) = torch.autograd.grad((w * out.image).sum(), coeffs, retain_graph=True)
        analytic = grad[0, k]
        assert abs(analytic - numeric) <= rtol * abs(numeric) + 1e-7, (k, analytic, numeric)


@pytest.fixture(scope="module")
def sample64(model64):
    coeffs = model64.sample_coeffs(1, generator=torch.Generator().manual_seed(11))
    assert coeffs.dtype == torch.float64
    return coeffs * 0.7


def test_render_gradient_lighting(model64, sample64):
    light = model64.layout.slice("lighting")
    masked_fd_check(model64, sample64, [light.start + k for k in (0, 1, 2, 3, 6, 10, 14, 19, 26)])


def test_render_gradient_texture(model64, sample64):
    texture = model64.layout.slice("texture")
    masked_fd_check(model64, sample64, [texture.start + k for k in (0, 1, 2, 30)])


def test_render_gradient_identity_expression(model64, sample64):
    layout = model64.layout
    identity, expression = layout.slice("identity"), layout.slice("expression")
    masked_fd_check(model64, sample64, [identity.start + 0, identity.start + 2,
                                        identity.start + 40, expression.start + 0,
                                        expression.start + 1, expression.start + 20])


def test_render_gradient_pose(model64, sample64):
    pose = model64.layout.slice("pose")
    masked_fd_check(model64, sample64, list(range(pose.start, pose.stop)), eps=1e-6)


def test_image_gradient_is_not_trivially_zero(model64, sample64):
    """Guard for the checks above: each block moves the image."""
    coeffs = sample64.clone().requires_grad_(True)
    out = face3d.render_faces(model64, coeffs, 32)
    weights = torch.randn(out.image.shape, generator=torch.Generator().manual_seed(5),
                          dtype=torch.float64)
    (grad,) = torch.autograd.grad((weights * out.image).sum(), coeffs)
    for name in ("identity", "expression", "texture", "pose", "lighting"):
        assert grad[0, model64.layout.slice(name)].abs().max() > 1e-3, name


def test_landmark_gradcheck(model64, sample64):
    layout = model64.layout
    entries = ([layout.slice("identity").start + k for k in (0, 1, 4, 50)]
               + [layout.slice("expression").start + k for k in (0, 3, 30)]
               + list(range(layout.slice("pose").start, layout.slice("pose").stop)))
    index = torch.tensor(entries)

    def landmarks(chosen):
        coeffs = sample64.index_put((torch.zeros_like(index), index), chosen)
        return face3d.render_faces(model64, coeffs, 32).landmarks

    chosen = sample64[0, index].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(landmarks, (chosen,), eps=1e-6, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- shading

# Real SH with their usual normalisation (Ramamoorthi & Hanrahan 2001, eq. 3) and the
# cosine-lobe factors A_l = pi, 2 pi / 3, pi / 4.
A = (math.pi, 2 * math.pi / 3, math.pi / 4)
BAND = (0, 1, 1, 1, 2, 2, 2, 2, 2)


def reference_sh(n):
    x, y, z = n.unbind(-1)
    c0, c1 = 0.5 * math.sqrt(1 / math.pi), math.sqrt(3 / (4 * math.pi))
    c2, c20, c22 = 0.5 * math.sqrt(15 / math.pi), 0.25 * math.sqrt(5 / math.pi), 0.25 * math.sqrt(
        15 / math.pi)
    return torch.stack([
        A[0] * c0 * torch.ones_like(x),
        A[1] * c1 * y, A[1] * c1 * z, A[1] * c1 * x,
        A[2] * c2 * x * y, A[2] * c2 * y * z, A[2] * c20 * (3 * z * z - 1),
        A[2] * c2 * x * z, A[2] * c22 * (x * x - y * y),
    ], -1)


def random_normals(count, seed):
    n = torch.randn(count, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return n / n.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("band", [0, 1, 2])
def test_sh_basis_matches_formula(band):
    n = random_normals(50, 0)
    columns = [k for k in range(9) if BAND[k] == band]
    got, expected = face3d.sh_basis(n)[:, columns], reference_sh(n)[:, columns]
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_directional_light_irradiance_approximates_clamped_cosine():
    """A unit light from direction l has SH coefficients Y_k(l) = sh_basis(l)_k / A_band; the
    9-term irradiance then approximates max(0, n . l) to within 0.1 (Ramamoorthi & Hanrahan)."""
    light_dir = torch.tensor([0.3, 0.5, 0.81], dtype=torch.float64)
    light_dir = light_dir / light_dir.norm()
    factors = torch.tensor([A[b] for b in BAND], dtype=torch.float64)
    coeffs = (face3d.sh_basis(light_dir) / factors).expand(1, 3, 9)
    n = random_normals(500, 1)
    e = face3d.irradiance(n[None], coeffs)[0]
    cosine = (n @ light_dir).clamp(min=0)
    assert e.shape == (500, 3)
    assert (e[:, 0] - cosine).abs().max() < 0.1
    # straight at the light: 0.25 + 0.5 + 0.3125 = 1.0625
    at_light = face3d.irradiance(light_dir[None, None], coeffs)[0, 0, 0]
    assert abs(at_light - 1.0625) < 1e-4


def test_irradiance_is_basis_times_coefficients():
    n = random_normals(2 * 4 * 5, 2).view(2, 4, 5, 3)
    sh = torch.randn(2, 3, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.einsum("bhwk,bck->bhwc", face3d.sh_basis(n), sh)
    e = face3d.irradiance(n, sh[:, None, None])  # leading dimensions broadcast
    assert e.shape == (2, 4, 5, 3)
    torch.testing.assert_close(e, expected, rtol=1e-12, atol=1e-12)
    # one light per image, one normal per row: (B, N, 3) with (B, N, 3, 9)
    flat = face3d.irradiance(n.view(2, 20, 3), sh[:, None].expand(2, 20, 3, 9))
    torch.testing.assert_close(flat, expected.view(2, 20, 3), rtol=1e-12, atol=1e-12)


def test_default_light_on_frontal_normal():
    """Zero lighting coefficients give DEFAULT_LIGHT: ambient + front + a little from above."""
    sh = torch.tensor(DEFAULT_LIGHT, dtype=torch.float64).expand(1, 3, 9)
    normals = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]],
                           dtype=torch.float64)
    e = face3d.irradiance(normals, sh)[0, :, 0]
    b0, b1 = A[0] * 0.5 * math.sqrt(1 / math.pi), A[1] * math.sqrt(3 / (4 * math.pi))
    torch.testing.assert_close(e, torch.tensor([0.9 * b0 + 0.25 * b1, 0.9 * b0 + 0.15 * b1,
                                                0.9 * b0 - 0.15 * b1], dtype=torch.float64),
                               rtol=1e-12, atol=1e-12)


def flat_grid(rows=5, cols=6):
    ii, jj = torch.meshgrid(torch.arange(float(rows)), torch.arange(float(cols)), indexing="ij")
    g = torch.Generator().manual_seed(4)
    xy = torch.stack([jj, ii], -1).reshape(-1, 2).double()
    xy = xy + (torch.rand(xy.shape, generator=g, dtype=torch.float64) - 0.5) * 0.4
    vertices = torch.cat([xy, torch.zeros(len(xy), 1, dtype=torch.float64)], 1)
    faces = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            v = r * cols + c
            faces += [[v, v + 1, v + cols], [v + 1, v + cols + 1, v + cols]]  # counter-clockwise
    return vertices[None], torch.tensor(faces)


def test_vertex_normals_of_flat_grid():
    vertices, faces = flat_grid()
    normals = face3d.vertex_normals(vertices, faces)
    expected = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(normals)
    torch.testing.assert_close(normals, expected, rtol=0, atol=1e-12)
    # clockwise faces point the other way
    flipped = face3d.vertex_normals(vertices, faces[:, [0, 2, 1]])
    torch.testing.assert_close(flipped, -expected, rtol=0, atol=1e-12)


def test_vertex_normals_follow_rotation_and_batch():
    vertices, faces = flat_grid()
    rotation = face3d.euler_rotation(torch.tensor([[0.4, -0.3, 0.2]], dtype=torch.float64))
    turned = torch.cat([vertices, vertices @ rotation.transpose(1, 2)])
    normals = face3d.vertex_normals(turned, faces)
    torch.testing.assert_close(normals[1], rotation[0, :, 2].expand(30, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(normals[0, 0], torch.tensor([0.0, 0, 1], dtype=torch.float64))


def test_vertex_normals_are_area_weighted():
    """Two triangles at right angles sharing vertices 0 and 1: a big one in z = 0 (normal +z)
    and a small one in y = 0 (normal -y). The shared vertices get the area-weighted mean."""
    vertices = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 3, 0], [0, 0, 1]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 1, 3]])  # normals +z (area 1.5), -y (area 0.5)
    normals = face3d.vertex_normals(vertices, faces)[0]
    shared = torch.tensor([0.0, -0.5, 1.5], dtype=torch.float64)
    shared = shared / shared.norm()
    torch.testing.assert_close(normals[0], shared)
    torch.testing.assert_close(normals[1], shared)
    torch.testing.assert_close(normals[2], torch.tensor([0.0, 0, 1], dtype=torch.float64))
    torch.testing.assert_close(normals[3], torch.tensor([0.0, -1, 0], dtype=torch.float64))


def test_vertex_normals_match_a_loop_over_faces_for_each_image():
    """Three different random meshes in one batch against a plain loop: each vertex sums the
    cross products of its faces, then is normalised (catches a mix-up of batch and vertex)."""
    generator = torch.Generator().manual_seed(0)
    vertices = torch.randn(3, 12, 3, generator=generator, dtype=torch.float64)
    faces = torch.randint(0, 12, (20, 3), generator=generator)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 0] != faces[:, 2])]
    expected = torch.zeros_like(vertices)
    for b in range(3):
        for a, c, d in faces.tolist():
            normal = torch.linalg.cross(vertices[b, c] - vertices[b, a],
                                        vertices[b, d] - vertices[b, a])
            for v in (a, c, d):
                expected[b, v] += normal
    expected = torch.nn.functional.normalize(expected, dim=-1, eps=1e-12)
    torch.testing.assert_close(face3d.vertex_normals(vertices, faces), expected, rtol=0,
                               atol=1e-12)


def test_cross_matches_torch_and_its_gradient_finite_differences():
    """The written-out cross product against `torch.linalg.cross` on random float64 vectors
    with a batch shape, the right-hand rule on the axes, and its gradient against finite
    differences."""
    from unmasklib.face3d.shading import cross

    generator = torch.Generator().manual_seed(3)
    a, b = (torch.randn(5, 4, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(cross(a, b), torch.linalg.cross(a, b), rtol=0, atol=1e-15)
    x, y = torch.eye(3, dtype=torch.float64)[:2]
    torch.testing.assert_close(cross(x, y), torch.tensor([0.0, 0, 1], dtype=torch.float64))
    assert torch.autograd.gradcheck(cross, (a[:2].requires_grad_(), b[:2].requires_grad_()))
