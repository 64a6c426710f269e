"""face3d.rasterize against a brute-force per-pixel reference."""

import numpy as np
import pytest
import torch

from unmasklib import face3d

EDGE_MARGIN = 1e-4  # pixel centres closer than this to any edge are not compared


def random_mesh(seed, batch=2, num_triangles=12, height=20, width=24):
    """Screen-space triangles (float64) in and slightly outside an image, both windings.

    Most triangles have their own three vertices (so they overlap and cross in depth);
    the extra faces are: two triangles sharing an edge, an exact duplicate of face 0 (a depth
    tie that face 0 must win), and two zero-area triangles that must be ignored.
    """
    g = torch.Generator().manual_seed(seed)
    n = num_triangles
    centre = torch.rand(batch, n, 1, 2, generator=g, dtype=torch.float64)
    centre = centre * torch.tensor([width + 6.0, height + 6.0], dtype=torch.float64) - 3
    offset = (torch.rand(batch, n, 3, 2, generator=g, dtype=torch.float64) - 0.5) * 16
    xy = (centre + offset).reshape(batch, 3 * n, 2)
    # a quad split along a diagonal: vertices 3n .. 3n+3
    quad = torch.rand(batch, 1, 2, generator=g, dtype=torch.float64) * 10 + 4
    quad = quad + torch.tensor([[0, 0], [7, 1], [8, 6], [-1, 7]], dtype=torch.float64)
    # three collinear vertices: 3n+4 .. 3n+6
    line = torch.rand(batch, 1, 2, generator=g, dtype=torch.float64) * 8 + 6
    line = line + torch.tensor([[0, 0], [2, 1], [6, 3]], dtype=torch.float64)
    xy = torch.cat([xy, quad, line], 1)
    depth = 1 + 4 * torch.rand(batch, xy.shape[1], 1, generator=g, dtype=torch.float64)
    vertices = torch.cat([xy, depth], -1)
    base = 3 * n
    faces = torch.cat([
        torch.arange(3 * n).view(n, 3),
        torch.tensor([[base, base + 1, base + 2], [base, base + 2, base + 3],  # shared edge
                      [0, 1, 2],                                                # duplicate
                      [base + 4, base + 5, base + 6],                           # collinear
                      [1, 1, 4]]),                                              # repeated
    ])
    return vertices, faces


def edge_fn(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def reference(vertices, faces, height, width):
    """Brute force over every (pixel, triangle): tri_id (B, H, W), barycentrics (B, H, W, 3)."""
    v = vertices.detach().numpy()
    f = faces.numpy()
    py, px = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    tri_id = np.full((v.shape[0], height, width), -1)
    bary = np.zeros((v.shape[0], height, width, 3))
    for b in range(v.shape[0]):
        best = np.full((height, width), np.inf)
        for t, (i0, i1, i2) in enumerate(f):
            (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = v[b, i0], v[b, i1], v[b, i2]
            area = edge_fn(x0, y0, x1, y1, x2, y2)
            if area == 0:
                continue
            w = np.stack([edge_fn(x1, y1, x2, y2, px, py), edge_fn(x2, y2, x0, y0, px, py),
                          edge_fn(x0, y0, x1, y1, px, py)], -1) / area
            depth = w[..., 0] * z0 + w[..., 1] * z1 + w[..., 2] * z2
            better = (w >= 0).all(-1) & (depth < best)  # strict: ties keep the lower index
            best[better] = depth[better]
            tri_id[b][better] = t
            bary[b][better] = w[better]
    return tri_id, bary


def near_edge(vertices, faces, height, width, margin=EDGE_MARGIN):
    """(B, H, W) bool: the pixel centre is within `margin` of an edge of any triangle."""
    v = vertices.detach().numpy()[..., :2]
    f = faces.numpy()
    py, px = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    p = np.stack([px, py], -1)
    out = np.zeros((v.shape[0], height, width), dtype=bool)
    for b in range(v.shape[0]):
        for tri in f:
            for k in range(3):
                a, c = v[b, tri[k]], v[b, tri[(k + 1) % 3]]
                d = c - a
                length2 = d @ d
                s = 0.0 if length2 == 0 else np.clip(((p - a) @ d) / length2, 0, 1)
                dist = np.linalg.norm(p - (a + s[..., None] * d if length2 else a), axis=-1)
                out[b] |= dist < margin
    return out


def pixel_centres(height, width):
    py, px = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    return px, py


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [(20, 24), (24, 20)])
def test_rasterize_matches_brute_force(seed, size):
    height, width = size
    vertices, faces = random_mesh(seed, height=height, width=width)
    tri_id, bary = face3d.rasterize(vertices, faces, height, width)
    assert tri_id.shape == (2, height, width) and tri_id.dtype == torch.long
    assert bary.shape == (2, height, width, 3) and bary.dtype == torch.float64

    ref_id, ref_bary = reference(vertices, faces, height, width)
    compare = ~near_edge(vertices, faces, height, width)
    # The comparison is meaningful: almost every pixel is compared, many are covered, and
    # some are covered by several triangles (so the depth test decides).
    assert compare.mean() > 0.97
    assert (ref_id >= 0).mean() > 0.2
    mismatch = (tri_id.numpy() != ref_id) & compare
    assert not mismatch.any(), (
        f"{mismatch.sum()} pixels differ, e.g. at {np.argwhere(mismatch)[:5].tolist()}: "
        f"got {tri_id.numpy()[mismatch][:5]}, expected {ref_id[mismatch][:5]}")

    # The duplicate of face 0 and the zero-area faces never win.
    num_faces = faces.shape[0]
    duplicate, degenerate = num_faces - 3, [num_faces - 2, num_faces - 1]
    assert not (tri_id == duplicate).any()
    assert not torch.isin(tri_id, torch.tensor(degenerate)).any()

    covered = tri_id >= 0
    torch.testing.assert_close(bary[covered].sum(-1), torch.ones(int(covered.sum()),
                                                                 dtype=torch.float64))
    assert (bary[~covered] == 0).all()
    assert torch.isfinite(bary).all()
    ok = covered & torch.from_numpy(compare)
    assert (bary[ok] >= -1e-12).all()
    # Barycentrics of the winning triangle equal the reference ones.
    torch.testing.assert_close(bary[ok], torch.from_numpy(ref_bary)[ok], rtol=0, atol=1e-9)

    # Re-interpolating the vertex positions gives back the pixel centre.
    xy = face3d.interpolate(vertices, faces, tri_id, bary)
    px, py = pixel_centres(height, width)
    px, py = px.expand(2, -1, -1), py.expand(2, -1, -1)
    torch.testing.assert_close(xy[..., 0][covered], px[covered], rtol=0, atol=1e-9)
    torch.testing.assert_close(xy[..., 1][covered], py[covered], rtol=0, atol=1e-9)
    assert (xy[~covered] == 0).all()


def test_random_meshes_exercise_both_windings_and_overlap():
    """Guard for the fixture itself: the meshes have both windings and overlapping triangles."""
    signs, overlapping = set(), 0
    for seed in range(5):
        vertices, faces = random_mesh(seed)
        tri = vertices[:, faces]
        area = edge_fn(tri[..., 0, 0], tri[..., 0, 1], tri[..., 1, 0], tri[..., 1, 1],
                       tri[..., 2, 0], tri[..., 2, 1])
        signs |= set(torch.sign(area[:, :12]).flatten().tolist())
        for t in range(12):  # count triangles that, drawn alone, hide part of another
            alone, _ = face3d.rasterize(vertices, faces[t:t + 1], 20, 24)
            overlapping += int(alone.ge(0).sum())
        all_id, _ = face3d.rasterize(vertices, faces[:12], 20, 24)
        overlapping -= int(all_id.ge(0).sum())
    assert signs == {-1.0, 1.0}
    assert overlapping > 100


def test_batch_elements_are_independent():
    vertices, faces = random_mesh(7, batch=3)
    tri_id, bary = face3d.rasterize(vertices, faces, 20, 24)
    for b in range(3):
        one_id, one_bary = face3d.rasterize(vertices[b:b + 1], faces, 20, 24)
        assert torch.equal(one_id[0], tri_id[b])
        torch.testing.assert_close(one_bary[0], bary[b], rtol=0, atol=1e-12)


def test_non_square_image_covers_the_expected_pixels():
    """A rectangle of two triangles covering columns 3..9 and rows 2..13 of a 16x40 image."""
    vertices = torch.tensor([[[3.0, 2.0, 1.0], [10.0, 2.0, 1.0], [10.0, 14.0, 1.0],
                              [3.0, 14.0, 1.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    tri_id, bary = face3d.rasterize(vertices, faces, 16, 40)
    assert tri_id.shape == (1, 16, 40)
    expected = torch.zeros(16, 40, dtype=torch.bool)
    expected[2:14, 3:10] = True
    assert torch.equal(tri_id[0] >= 0, expected)
    # Pixel (row 12, col 4): centre (4.5, 12.5) lies below the diagonal -> face 1.
    assert tri_id[0, 12, 4] == 1 and tri_id[0, 3, 9] == 0
    # A wide image: a triangle far to the right of a square-image's width is still drawn.
    right = torch.tensor([[[30.0, 1.0, 1.0], [38.0, 1.0, 1.0], [30.0, 9.0, 1.0]]],
                         dtype=torch.float64)
    tri_id, _ = face3d.rasterize(right, faces[:1], 16, 40)
    # pixel centres x = j + .5 in [30, 38], y = i + .5 in [1, 9], x + y <= 39
    i, j = torch.meshgrid(torch.arange(16), torch.arange(40), indexing="ij")
    expected = (j >= 30) & (i >= 1) & (i + 0.5 + j + 0.5 <= 39)
    assert torch.equal(tri_id[0] == 0, expected)
    assert int(expected.sum()) == 36


def test_centre_on_edge_counts_and_ties_pick_lowest_index():
    """Exactly representable coordinates: centres on the shared diagonal are inside both
    triangles at equal depth, so the lower index wins them."""
    vertices = torch.tensor([[[0.0, 0.0, 2.0], [4.0, 0.0, 2.0], [4.0, 4.0, 2.0],
                              [0.0, 4.0, 2.0]]], dtype=torch.float64)
    for faces, diagonal_owner in [([[0, 1, 3], [1, 2, 3]], 0), ([[1, 2, 3], [0, 1, 3]], 0)]:
        tri_id, _ = face3d.rasterize(vertices, torch.tensor(faces), 4, 4)
        # the diagonal x + y = 4 passes through the centres (0.5,3.5), (1.5,2.5), ...
        for k in range(4):
            assert tri_id[0, 3 - k, k] == diagonal_owner
        assert tri_id[0, 0, 0] == (0 if faces[0] == [0, 1, 3] else 1)
        assert (tri_id >= 0).all()


def test_triangle_outside_image_covers_nothing():
    outside = torch.tensor([[[-10.0, -10.0, 1.0], [-2.0, -10.0, 1.0], [-10.0, -2.0, 1.0],
                             [30.0, 5.0, 1.0], [40.0, 5.0, 1.0], [30.0, 15.0, 1.0],
                             [5.0, 25.0, 1.0], [15.0, 25.0, 1.0], [5.0, 35.0, 1.0],
                             [5.0, -9.0, 1.0], [15.0, -9.0, 1.0], [5.0, -0.6, 1.0]]],
                           dtype=torch.float64)
    faces = torch.arange(12).view(4, 3)
    tri_id, bary = face3d.rasterize(outside, faces, 20, 24)
    assert (tri_id == -1).all()
    assert (bary == 0).all()
    # ... and adding them to a visible mesh changes nothing there.
    vertices, visible = random_mesh(3, batch=1)
    ref_id, ref_bary = face3d.rasterize(vertices, visible, 20, 24)
    both = torch.cat([vertices, outside], 1)
    tri_id, bary = face3d.rasterize(both, torch.cat([visible, faces + vertices.shape[1]]), 20, 24)
    assert torch.equal(tri_id, ref_id)
    torch.testing.assert_close(bary, ref_bary, rtol=0, atol=0)


def test_partially_outside_triangle_is_clipped_correctly():
    """A big triangle reaching far past every border covers the whole image."""
    vertices = torch.tensor([[[-50.0, -50.0, 1.0], [200.0, -50.0, 1.0], [-50.0, 200.0, 1.0]]],
                            dtype=torch.float64)
    tri_id, bary = face3d.rasterize(vertices, torch.tensor([[0, 1, 2]]), 12, 9)
    assert (tri_id == 0).all()
    px, py = pixel_centres(12, 9)
    torch.testing.assert_close(bary[0, ..., 1], (px + 50) / 250, rtol=0, atol=1e-12)
    torch.testing.assert_close(bary[0, ..., 2], (py + 50) / 250, rtol=0, atol=1e-12)


def test_degenerate_triangles_are_ignored():
    """Zero-area triangles in front of a big one, passing exactly through pixel centres."""
    vertices = torch.tensor([[[0.0, 0.0, 5.0], [16.0, 0.0, 5.0], [0.0, 16.0, 5.0],
                              [0.5, 0.5, 0.1], [4.5, 0.5, 0.1], [8.5, 0.5, 0.1],  # on row 0
                              [2.5, 2.5, 0.1], [6.5, 6.5, 0.1],                   # diagonal
                              [3.5, 1.5, 0.1]]], dtype=torch.float64)
    faces = torch.tensor([[3, 4, 5], [6, 7, 6], [8, 8, 8], [0, 1, 2], [5, 4, 3]])
    tri_id, bary = face3d.rasterize(vertices, faces, 8, 8)
    i, j = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    expected = torch.where(i + j + 1 <= 16, 3, -1)
    assert torch.equal(tri_id[0], expected)
    assert torch.isfinite(bary).all()
    # Only degenerate triangles: nothing at all.
    tri_id, bary = face3d.rasterize(vertices, faces[[0, 1, 2, 4]], 8, 8)
    assert (tri_id == -1).all() and (bary == 0).all()


def test_non_finite_vertices_are_ignored():
    vertices = torch.tensor([[[0.0, 0.0, 5.0], [16.0, 0.0, 5.0], [0.0, 16.0, 5.0],
                              [float("nan"), 1.0, 0.1], [8.0, 1.0, 0.1], [1.0, 8.0, 0.1]]],
                            dtype=torch.float64)
    tri_id, bary = face3d.rasterize(vertices, torch.tensor([[3, 4, 5], [0, 1, 2]]), 8, 8)
    assert (tri_id[0] == 1).all()
    assert torch.isfinite(bary).all()


def test_depth_order_decides():
    """Two overlapping triangles: the nearer (smaller z) wins wherever both cover."""
    near = [[1.0, 1.0, 1.0], [7.0, 1.0, 1.0], [1.0, 7.0, 1.0]]
    far = [[1.0, 1.0, 3.0], [7.0, 1.0, 3.0], [7.0, 7.0, 3.0]]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    for order in ([near, far], [far, near]):
        vertices = torch.tensor([order[0] + order[1]], dtype=torch.float64)
        tri_id, _ = face3d.rasterize(vertices, faces, 8, 8)
        near_index = 0 if order[0] is near else 1
        assert tri_id[0, 1, 1] == near_index  # centre (1.5, 1.5), covered by both
        assert tri_id[0, 5, 5] == 1 - near_index  # (5.5, 5.5): far only


def test_int32_faces_and_float32_vertices():
    vertices, faces = random_mesh(4, batch=1)
    id64, _ = face3d.rasterize(vertices, faces, 20, 24)
    id32, bary32 = face3d.rasterize(vertices.float(), faces.int(), 20, 24)
    assert bary32.dtype == torch.float32
    near = torch.from_numpy(near_edge(vertices, faces, 20, 24, margin=1e-3))
    assert torch.equal(id32[~near], id64[~near])


@pytest.mark.parametrize("vertices, faces", [
    (torch.zeros(4, 3), torch.zeros(2, 3, dtype=torch.long)),         # no batch dimension
    (torch.zeros(1, 4, 2), torch.zeros(2, 3, dtype=torch.long)),      # x, y only
    (torch.zeros(1, 4, 3), torch.zeros(2, 4, dtype=torch.long)),      # quads
    (torch.zeros(1, 4, 3), torch.zeros(6, dtype=torch.long)),         # flat faces
])
def test_wrong_shapes_raise(vertices, faces):
    with pytest.raises(ValueError):
        face3d.rasterize(vertices, faces, 8, 8)


def test_shared_edges_leave_no_gaps_in_float32():
    """A pixel centre that lies on an edge shared by two triangles is covered by one of them,
    even in float32 far from the origin where rounding makes both edge tests borderline."""
    g = torch.Generator().manual_seed(11)
    n, size = 400, 1024
    centre = (torch.randint(600, 1000, (n, 2), generator=g) + 0.5).float()
    along = torch.nn.functional.normalize(torch.randn(n, 2, generator=g), dim=1)
    along = along * (0.3 + 0.5 * torch.rand(n, 1, generator=g))
    across = torch.stack([-along[:, 1], along[:, 0]], 1) * 1.7
    corners = torch.stack([centre - along, centre + along, centre + across, centre - across], 1)
    vertices = torch.cat([corners, torch.full((n, 4, 1), 3.0)], 2).reshape(1, -1, 3)
    base = torch.arange(n)[:, None] * 4
    faces = torch.cat([base + torch.tensor([0, 1, 2]), base + torch.tensor([1, 0, 3])])
    tri_id, _ = face3d.rasterize(vertices, faces, size, size)
    rows, cols = (centre[:, 1] - 0.5).long(), (centre[:, 0] - 0.5).long()
    assert (tri_id[0, rows, cols] >= 0).all()


def test_rendered_faces_have_no_holes(model):
    """Background never shows through a face: the mouth interior closes the open lips and
    the surface has no cracks (checked by filling enclosed background regions)."""
    from scipy import ndimage

    coeffs = model.sample_coeffs(32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        covered = face3d.render_faces(model, coeffs, 256).face_mask[:, 0] > 0
    for mask in covered.numpy():
        assert (ndimage.binary_fill_holes(mask) == mask).all()


def test_reused_triangle_ids_give_barycentrics_of_the_moved_mesh(model):
    """A render's tri_id reused for a slightly moved face: same coverage, and barycentrics
    that still place each pixel's centre exactly (they are affine, inside the triangle or a
    little outside it); reused on the unmoved face, the fragments are the same as fresh."""
    coeffs = model.sample_coeffs(2, generator=torch.Generator().manual_seed(5))
    first = face3d.render_faces(model, coeffs, 64)
    again = face3d.render_faces(model, coeffs, 64, tri_id=first.tri_id)
    assert torch.equal(again.image, first.image)
    moved = coeffs.clone()
    moved[:, model.layout.slice("pose").start + 3] += 0.01  # a shift of a fraction of a pixel
    fresh = face3d.render_faces(model, moved, 64)
    reused = face3d.render_faces(model, moved, 64, tri_id=first.tri_id)
    assert torch.equal(reused.face_mask, first.face_mask)
    assert not torch.equal(fresh.tri_id, first.tri_id)  # some pixels did change triangle
    fragments = reused.fragments
    xy = fragments.interpolate(reused.screen_vertices[..., :2], model.faces.long())
    in_image = fragments.pixels % (64 * 64)
    centres = torch.stack([in_image % 64, in_image // 64], 1).to(xy) + 0.5
    torch.testing.assert_close(xy, centres, atol=1e-3, rtol=0)
    changed = (fresh.tri_id != first.tri_id) & (fresh.tri_id >= 0) & (first.tri_id >= 0)
    # Where a pixel's triangle changed, the old one's surface extended stands in for the new:
    # close on skin, off across a sharp colour edge (an eyelid's, a lip's), a few pixels.
    difference = (reused.image - fresh.image).abs().amax(1)
    assert difference[changed].median() < 0.01
    assert (difference[changed] > 0.1).float().mean() < 0.05
    with pytest.raises(ValueError, match="tri_id"):
        face3d.render_faces(model, moved, 32, tri_id=first.tri_id)
