"""A face model's part: fewer vertices, the same face where it is drawn."""

from __future__ import annotations

import torch

from unmasklib.face3d import rasterize_faces, render_faces, triangles_around
from unmasklib.fitting import visible_part
from unmasklib.losses import photometric_errors

SIZE = 64


def test_triangles_around_adds_those_sharing_a_corner():
    # A strip of four triangles: 0-1-2, 1-3-2, 2-3-4, 3-5-4; vertex 6 alone in 6-7-8.
    faces = torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4], [6, 7, 8]])
    chosen = torch.tensor([True, False, False, False, False])
    assert triangles_around(faces, chosen, 9).tolist() == [True, True, True, False, False]
    chosen = torch.tensor([False, False, False, True, False])
    assert triangles_around(faces, chosen, 9).tolist() == [False, True, True, True, False]


def test_a_part_draws_its_triangles_as_the_whole_model(model64):
    """Normals, and so colours, included: the part keeps the triangles around its own."""
    coeffs = model64.sample_coeffs(1, torch.Generator().manual_seed(4))
    tri_id = rasterize_faces(model64, coeffs, SIZE)[1]
    drawn = torch.zeros(len(model64.faces), dtype=torch.bool)
    drawn[tri_id[:, : SIZE // 2][tri_id[:, : SIZE // 2] >= 0]] = True
    part, new_triangle = model64.part(drawn)
    inside = (tri_id >= 0) & drawn[tri_id.clamp(min=0)]
    cut = render_faces(part, coeffs, SIZE, tri_id=torch.where(inside, new_triangle[tri_id], -1))
    whole = render_faces(model64, coeffs, SIZE)
    assert inside[:, : SIZE // 2].sum() > 500 and not inside[:, SIZE // 2:].any()
    assert torch.allclose(cut.normals * inside[:, None], whole.normals * inside[:, None],
                          atol=1e-12)
    assert torch.allclose(cut.image * inside[:, None], whole.image * inside[:, None], atol=1e-12)


def test_rasterizing_alone_gives_what_the_render_shows(model):
    coeffs = model.sample_coeffs(3, torch.Generator().manual_seed(1))
    screen, tri_id = rasterize_faces(model, coeffs, SIZE)
    render = render_faces(model, coeffs, SIZE)
    assert torch.equal(tri_id, render.tri_id)
    assert torch.equal(screen, render.screen_vertices)


def test_the_visible_part_renders_the_seen_pixels_and_landmarks_as_the_whole_model(model64):
    """Colours at the seen pixels, landmarks and the fit's gradient, against the whole model,
    with the coefficients moved after the rasterisation as a fit step moves them."""
    model = model64
    coeffs = model.sample_coeffs(2, torch.Generator().manual_seed(5))
    seen = torch.ones(2, SIZE, SIZE, dtype=torch.bool)
    seen[:, SIZE // 2:] = False  # a mask over the lower half
    part, tri_id = visible_part(model, coeffs, SIZE, seen)
    assert part.model.num_vertices < 0.75 * model.num_vertices
    moved = (coeffs + 0.01 * torch.randn(coeffs.shape, generator=torch.Generator().manual_seed(2),
                                         dtype=coeffs.dtype)).requires_grad_()
    whole = render_faces(model, moved, SIZE, tri_id=rasterize_faces(model, coeffs, SIZE)[1])
    cut = render_faces(part.model, moved, SIZE, tri_id=tri_id)
    shown = seen[:, None] & (whole.face_mask > 0)
    assert torch.equal(cut.face_mask > 0, shown)
    assert torch.allclose(cut.image * shown, whole.image * shown, atol=1e-12)
    assert torch.allclose(cut.landmarks, whole.landmarks, atol=1e-12)
    target = render_faces(model, coeffs, SIZE).image
    gradients = [torch.autograd.grad(photometric_errors(r.image, target, r.face_mask,
                                                        seen[:, None].double()).sum(), moved)[0]
                 for r in (whole, cut)]
    assert torch.allclose(gradients[0], gradients[1], rtol=1e-9, atol=1e-12)


def test_the_part_is_kept_while_it_draws_what_is_seen_and_cut_anew_when_not(model):
    coeffs = model.zero_coeffs(1)
    seen = torch.ones(1, SIZE, SIZE, dtype=torch.bool)
    seen[:, SIZE // 2:] = False
    part, _ = visible_part(model, coeffs, SIZE, seen)
    nudged = coeffs.clone()
    nudged[:, model.layout.slice("pose").start + 3] += 0.002  # a fraction of a pixel
    assert visible_part(model, nudged, SIZE, seen, part)[0] is part
    whole = torch.ones_like(seen)
    grown, tri_id = visible_part(model, coeffs, SIZE, whole, part)
    assert grown is not part
    assert torch.equal(tri_id >= 0, rasterize_faces(model, coeffs, SIZE)[1] >= 0)
