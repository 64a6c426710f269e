"""The render G follows, made to agree with the photo: push-pull fill and the matched render."""

from __future__ import annotations

import torch

from unmasklib.face3d import load_face_model, render_faces
from unmasklib.images import dilate, erode, push_pull_fill, region_median
from unmasklib.painting import (
    AGREEMENT,
    SILHOUETTE_MARGIN,
    TYPICAL_RING,
    photo_matched_render,
    typical_difference,
)


def test_push_pull_keeps_the_known_pixels_and_fills_a_constant_with_itself():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(2, 3, 37, 50, generator=g)
    known = (torch.rand(2, 1, 37, 50, generator=g) > 0.9).float()
    filled = push_pull_fill(values, known)
    assert torch.equal(filled[known.expand_as(values) > 0], values[known.expand_as(values) > 0])
    constant = torch.full_like(values, 0.3)
    assert (push_pull_fill(constant, known) - 0.3).abs().max() < 1e-6
    assert torch.equal(push_pull_fill(values, torch.zeros_like(known)), torch.zeros_like(values))


def test_push_pull_between_two_known_corners_by_hand():
    # 4 x 4, known 0 at the top left and 15 at the bottom right. Pull: the 2 x 2 level keeps 0
    # and 15 in its diagonal cells, the 1 x 1 top their mean 7.5. Push: level 1's empty cells
    # take 7.5; level 0's pixels the bilinear upsampling of [[0, 7.5], [7.5, 15]] (at
    # positions -1/4, 1/4, 3/4, 5/4 of a cell, clamped at the image's edge).
    values = torch.arange(16.0).reshape(1, 1, 4, 4)
    known = torch.zeros(1, 1, 4, 4)
    known[..., 0, 0] = known[..., 3, 3] = 1
    weights = torch.tensor([0.0, 0.25, 0.75, 1.0])  # how far each row/column is toward cell 1
    coarse = torch.tensor([[0.0, 7.5], [7.5, 15.0]])
    expected = ((1 - weights)[:, None] * (1 - weights)[None] * coarse[0, 0]
                + (1 - weights)[:, None] * weights[None] * coarse[0, 1]
                + weights[:, None] * (1 - weights)[None] * coarse[1, 0]
                + weights[:, None] * weights[None] * coarse[1, 1])
    expected[0, 0], expected[3, 3] = 0.0, 15.0
    assert torch.allclose(push_pull_fill(values, known)[0, 0], expected, atol=1e-6)


def test_an_unknown_pixel_takes_the_nearer_known_value():
    values = torch.zeros(1, 1, 32, 32)
    values[..., :, :4] = -1
    values[..., :, 28:] = 1
    known = torch.zeros(1, 1, 32, 32)
    known[..., :, :4] = known[..., :, 28:] = 1
    row = push_pull_fill(values, known)[0, 0, 16]
    assert (row[4:28].diff() >= -1e-6).all()       # rises from the left side to the right
    assert row[6] < -0.5 and row[25] > 0.5 and abs(float(row[15] + row[16])) < 1e-5


def scene(size: int = 64):
    model = load_face_model()
    coeffs = model.sample_coeffs(2, torch.Generator().manual_seed(2))
    render = render_faces(model, coeffs, size)
    occlusion = torch.zeros(2, 1, size, size)
    occlusion[..., size // 2: 3 * size // 4, size // 4: 3 * size // 4] = 1
    return render, occlusion


def test_a_photo_that_is_the_render_gives_the_render_back():
    render, occlusion = scene()
    photo = render.image
    assert torch.allclose(photo_matched_render(render, photo, occlusion), photo, atol=1e-6)


def test_a_colour_cast_of_the_visible_face_is_carried_under_the_occlusion():
    render, occlusion = scene()
    cast = torch.tensor([0.1, -0.05, 0.02]).view(1, 3, 1, 1)
    background = torch.tensor([0.2, 0.4, -0.3]).view(1, 3, 1, 1)
    face = render.face_mask
    photo = torch.where(face > 0.5, render.image + cast, background.expand_as(render.image))
    masked = torch.where(occlusion > 0.5, torch.ones_like(photo), photo)  # a white mask
    guide = photo_matched_render(render, masked, occlusion)
    assert torch.equal(guide[occlusion.expand_as(guide) < 0.5],
                       masked[occlusion.expand_as(masked) < 0.5])
    inside_face = ((occlusion > 0.5) & (face > 0.5)).expand_as(guide)
    expected = (render.image + cast).clamp(-1, 1)
    assert (guide - expected)[inside_face].abs().max() < 1e-5
    off_face = ((occlusion > 0.5) & (face < 0.5)).expand_as(guide)
    assert off_face.any()
    assert (guide - background)[off_face].abs().max() < 1e-5


def test_mask_remnants_and_the_silhouette_do_not_tint_the_guide():
    render, occlusion = scene()
    face = render.face_mask
    photo = render.image.clone()
    # A black strap beside the occlusion, and a one-pixel ring of background just inside the
    # render's outline (the photo's outline a pixel off): both far from the render.
    strap = torch.zeros_like(occlusion)
    strap[..., 3 * 64 // 4: 3 * 64 // 4 + 2, 16:48] = 1
    outline = face - erode(face, 1)
    photo = torch.where((strap * face) > 0.5, -torch.ones_like(photo), photo)
    photo = torch.where(outline > 0.5, torch.full_like(photo, 0.9), photo)
    assert SILHOUETTE_MARGIN >= 1
    guide = photo_matched_render(render, photo, occlusion)
    inside_face = ((occlusion > 0.5) & (face > 0.5)).expand_as(guide)
    assert (guide - render.image)[inside_face].abs().max() < 1e-5


def test_a_cast_beyond_the_agreement_is_carried_and_hair_over_the_face_is_not():
    """The photo darker than the render all over by more than `AGREEMENT` (a fitted face
    paler than the photo's, as on the astronaut), and grey hair over the top of the face:
    the cast is the face's typical difference and is carried under the occlusion; the hair,
    far from it, is left out. (Grey hair: dark hair over the render's painted cap, itself
    dark, would differ from it by about the cast.)"""
    render, occlusion = scene()
    face = render.face_mask
    cast = torch.tensor([-0.45, -0.4, -0.35]).view(1, 3, 1, 1)
    assert cast.abs().max() > AGREEMENT
    rows = torch.arange(64).view(1, 1, 64, 1)
    hair = ((rows < 20) & (face > 0.5)).expand_as(render.image)
    photo = torch.where(hair, torch.full_like(render.image, 0.9), render.image + cast)
    guide = photo_matched_render(render, photo, occlusion)
    inside_face = ((occlusion > 0.5) & (face > 0.5)).expand_as(guide)
    expected = (render.image + cast).clamp(-1, 1)
    assert (guide - expected)[inside_face].abs().max() < 1e-5


def test_hair_over_most_of_the_face_does_not_decide_the_typical_difference():
    """Hair over more than half of the visible face, none of it near the occlusion, and the
    skin beside the occlusion darker than the render by more than `AGREEMENT` (the
    astronaut's bangs and her cheeks): the skin's cast is carried under the occlusion. Over
    the whole visible face the median would be the hair's, and the cheeks left out."""
    render, _ = scene()
    face = render.face_mask
    occlusion = torch.zeros_like(face)
    occlusion[..., 40:54, 16:48] = 1
    ring = round(TYPICAL_RING * 64)
    rows = torch.arange(64).view(1, 1, 64, 1)
    hair = ((rows < 40 - ring) & (face > 0.5)).float()
    cast = torch.tensor([-0.45, -0.4, -0.35]).view(1, 3, 1, 1)
    photo = torch.where(hair > 0.5, torch.full_like(render.image, 0.9), render.image + cast)
    compared = (1 - occlusion) * erode(face, SILHOUETTE_MARGIN)
    share = (hair * compared).flatten(1).sum(1) / compared.flatten(1).sum(1)
    assert (share > 0.5).all() and not (hair * dilate(occlusion, ring)).any()
    assert torch.allclose(typical_difference(photo - render.image, compared, occlusion),
                          cast.view(1, 3).expand(2, 3), atol=1e-6)
    guide = photo_matched_render(render, photo, occlusion)
    inside_face = ((occlusion > 0.5) & (face > 0.5)).expand_as(guide)
    expected = (render.image + cast).clamp(-1, 1)
    assert (guide - expected)[inside_face].abs().max() < 1e-5


def test_the_typical_difference_is_the_whole_faces_where_no_face_lies_near_the_occlusion():
    render, _ = scene()
    face = render.face_mask
    occlusion = torch.zeros_like(face)
    occlusion[..., :3, :3] = 1      # a corner of background, far from the face
    compared = (1 - occlusion) * erode(face, SILHOUETTE_MARGIN)
    difference = torch.randn(render.image.shape, generator=torch.Generator().manual_seed(0))
    assert not (compared * dilate(occlusion, round(TYPICAL_RING * 64))).any()
    assert torch.equal(typical_difference(difference, compared, occlusion),
                       region_median(difference, compared))


def test_region_median_is_each_channels_median_over_the_region():
    values = torch.arange(2 * 2 * 9, dtype=torch.float32).reshape(2, 2, 3, 3)
    region = torch.zeros(2, 1, 3, 3)
    region[0, 0, 0, :] = 1           # values 0, 1, 2 and 9, 10, 11: medians 1 and 10
    region[1, 0, :, 0] = 1
    region[1, 0, 2, 2] = 1           # 18, 21, 24, 26 and 27, 30, 33, 35: lower middles 21, 30
    assert torch.equal(region_median(values, region), torch.tensor([[1.0, 10.0], [21.0, 30.0]]))
    assert torch.equal(region_median(values, torch.zeros(2, 1, 3, 3)), torch.zeros(2, 2))
