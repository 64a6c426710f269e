"""FaceFit: refining coefficients on the visible face moves them toward the image's face."""

from __future__ import annotations

import math

import pytest
import torch

from unmasklib.face3d import render_faces
from unmasklib.fitting import (
    STOP_WINDOW,
    FaceFit,
    adam_step,
    lower_face_expressions,
    settled,
)
from unmasklib.losses import photometric_errors, photometric_loss
from unmasklib.metrics import landmark_errors

SIZE = 64


@pytest.fixture(scope="module")
def faces(model):
    """Four random faces, their renders `(4, 3, 64, 64)` and start coefficients that are off:
    yaw +5 degrees, shifted right, a different skin."""
    truth = model.sample_coeffs(4, torch.Generator().manual_seed(3))
    images = render_faces(model, truth, SIZE).image
    layout = model.layout
    start = truth.clone()
    start[:, layout.slice("pose").start] += math.radians(5)
    start[:, layout.slice("pose").start + 3] += 0.02
    start[:, layout.slice("texture")] += 0.5
    return truth, images, start


def lower_half(count: int) -> torch.Tensor:
    occlusion = torch.zeros(count, 1, SIZE, SIZE)
    occlusion[..., SIZE // 2:, :] = 1
    return occlusion


@pytest.mark.parametrize("raster_every", [1, 4])
def test_fitting_the_visible_face_undoes_a_pose_error(model, faces, raster_every):
    """Rasterising every step or reusing each pixel's triangle for four steps, alike."""
    truth, images, start = faces
    fit = FaceFit(model, SIZE, steps=80, lr=0.04, prior_weight=0.0, raster_every=raster_every)
    fitted = fit(images, torch.zeros(4, 1, SIZE, SIZE), start)

    def landmark_nme(coeffs):
        return landmark_errors(render_faces(model, coeffs, SIZE).landmarks,
                               render_faces(model, truth, SIZE).landmarks).mean()

    def photo(coeffs):
        render = render_faces(model, coeffs, SIZE)
        return photometric_errors(render.image, images, render.face_mask)

    yaw = model.layout.slice("pose").start
    assert landmark_nme(start) > 0.05
    assert landmark_nme(fitted) < landmark_nme(start) / 4
    assert (fitted[:, yaw] - truth[:, yaw]).abs().max() < math.radians(1.5)
    assert torch.all(photo(fitted) < photo(start) / 2)


def test_a_masked_face_keeps_its_hidden_expressions_and_a_bare_one_does_not(model, faces):
    _, images, start = faces
    fit = FaceFit(model, SIZE, steps=10, lr=0.04, prior_weight=3e-4)
    expression = model.layout.slice("expression")
    hidden = lower_face_expressions(model, SIZE)
    masked = fit(images, lower_half(4), start)[:, expression]
    bare = fit(images, torch.zeros(4, 1, SIZE, SIZE), start)[:, expression]
    assert torch.equal(masked[:, hidden], start[:, expression][:, hidden])
    assert (masked[:, ~hidden] != start[:, expression][:, ~hidden]).any()
    assert (bare[:, hidden] != start[:, expression][:, hidden]).any()


def test_with_nothing_visible_the_prior_keeps_the_start(model, faces):
    _, images, start = faces
    fit = FaceFit(model, SIZE, steps=5, lr=0.04, prior_weight=3e-4)
    assert torch.equal(fit(images, torch.ones(4, 1, SIZE, SIZE), start), start)
    assert torch.equal(FaceFit(model, SIZE, 0, 0.04, 3e-4)(images, lower_half(4), start), start)


def test_each_face_is_fitted_on_its_own(model64, faces):
    _, images, start = (x.double() for x in faces)
    fit = FaceFit(model64, SIZE, steps=10, lr=0.04, prior_weight=3e-4)
    together = fit(images, lower_half(4).double(), start)
    alone = torch.cat([fit(images[i:i + 1], lower_half(1).double(), start[i:i + 1])
                       for i in range(4)])
    # Batched kernels round differently per batch (in float64, far below what Adam's
    # normalised steps can grow to a visible size in 10 steps); a face that felt the others'
    # pixels or region sizes would differ by Adam steps of ~0.04.
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)


def test_adam_step_is_torch_adam():
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    mine = torch.zeros_like(target)
    moments = (torch.zeros_like(target), torch.zeros_like(target))
    theirs = torch.zeros_like(target, requires_grad=True)
    optimiser = torch.optim.Adam([theirs], lr=0.05)
    for t in range(1, 8):
        mine, *moments = adam_step(mine, 2 * (mine - target) ** 3, *moments, t, 0.05)
        optimiser.zero_grad()
        ((theirs - target) ** 4 / 2).sum().backward()
        optimiser.step()
        torch.testing.assert_close(mine, theirs.detach(), atol=1e-14, rtol=0)
    assert (mine - theirs).abs().max() < 1e-14 and mine.abs().min() > 0


def test_a_fit_has_settled_when_its_energy_fell_by_less_than_the_tolerance():
    before = torch.tensor([1.0, 2.0, 1.0, 1.0])
    now = torch.tensor([0.5, 2.0 - 1e-4, 1.1, 0.995])    # halved, flat, risen, 0.5 % down
    assert settled(before, now, 0.01).tolist() == [False, True, True, True]
    assert settled(before, now, 0.001).tolist() == [False, True, True, False]
    assert settled(before, now, 0.6).all()


def test_a_settled_face_stops_where_its_own_fit_reached_and_the_others_go_on(model64, faces):
    _, images, start = (x.double() for x in faces)
    occlusion = lower_half(4).double()
    stopping = FaceFit(model64, SIZE, steps=40, lr=0.04, prior_weight=3e-4, tolerance=0.05)
    fitted, steps = stopping(images, occlusion, start, return_steps=True)
    assert steps.min() > STOP_WINDOW and steps.min() < steps.max()
    for i in range(4):
        alone = FaceFit(model64, SIZE, int(steps[i]), 0.04, 3e-4)(
            images[i:i + 1], occlusion[i:i + 1], start[i:i + 1])
        torch.testing.assert_close(fitted[i:i + 1], alone, atol=1e-6, rtol=0)


def test_per_sample_photometric_errors_are_the_loss_of_each_sample_alone(model, faces):
    truth, images, start = faces
    render = render_faces(model, start, SIZE)
    visible = 1 - lower_half(4)
    errors = photometric_errors(render.image, images, render.face_mask, visible)
    for i in range(4):
        alone = photometric_loss(render.image[i:i + 1], images[i:i + 1],
                                 render.face_mask[i:i + 1], visible[i:i + 1])
        torch.testing.assert_close(errors[i], alone)
    assert errors.shape == (4,) and torch.all(errors > 0)


def test_bad_settings_and_sizes_are_refused(model, faces):
    _, images, start = faces
    with pytest.raises(ValueError, match="steps"):
        FaceFit(model, SIZE, steps=-1, lr=0.04, prior_weight=0.0)
    with pytest.raises(ValueError, match="lr"):
        FaceFit(model, SIZE, steps=5, lr=0.0, prior_weight=0.0)
    with pytest.raises(ValueError, match="raster_every"):
        FaceFit(model, SIZE, steps=5, lr=0.04, prior_weight=0.0, raster_every=0)
    with pytest.raises(ValueError, match="64 px"):
        FaceFit(model, SIZE, 5, 0.04, 0.0)(images[..., :32, :32], lower_half(4), start)


def test_a_fit_of_some_blocks_leaves_the_others_as_they_were(model, faces):
    truth, images, start = faces
    layout = model.layout
    fit = FaceFit(model, SIZE, steps=40, lr=0.04, prior_weight=0.0,
                  blocks=("pose", "lighting"))
    fitted = fit(images, torch.zeros(4, 1, SIZE, SIZE), start)
    for name in layout.names:
        moved = (fitted[:, layout.slice(name)] - start[:, layout.slice(name)]).abs().max()
        if name in ("pose", "lighting"):
            assert moved > 1e-3
        else:
            assert moved == 0
    # The yaw error is undone by pose alone, with the skin still wrong.
    yaw = layout.slice("pose").start
    assert (fitted[:, yaw] - truth[:, yaw]).abs().mean() < 0.5 * math.radians(5)
    with pytest.raises(ValueError, match="unknown coefficient blocks.*'skin'"):
        FaceFit(model, SIZE, steps=1, lr=0.04, prior_weight=0.0, blocks=("pose", "skin"))


def test_five_points_alone_turn_the_face_to_them(model, faces):
    # Everything hidden: no pixel to compare, so only the five points (and the prior) act.
    truth, images, start = faces
    from unmasklib.alignment import five_points

    points = five_points(render_faces(model, truth, SIZE).landmarks)
    fit = FaceFit(model, SIZE, steps=80, lr=0.04, prior_weight=0.0, blocks=("pose",),
                  point_weight=10.0)
    hidden = torch.ones(4, 1, SIZE, SIZE)
    fitted = fit(images, hidden, start, points)
    missed = (five_points(render_faces(model, fitted, SIZE).landmarks) - points).norm(dim=-1)
    before = (five_points(render_faces(model, start, SIZE).landmarks) - points).norm(dim=-1)
    assert before.mean() > 1.0
    assert missed.mean() < before.mean() / 5
    # unknown points (NaN) leave the fit as it is without them: here, nothing moves
    unknown = fit(images, hidden, start, torch.full((4, 5, 2), torch.nan))
    assert torch.equal(unknown, start)


def test_an_outlier_scale_keeps_hair_over_the_forehead_from_colouring_the_fit(model):
    """Hair (a dark brown band over the top 40 % of each face) that the face model cannot
    draw: the plain colour distance bends the fitted skin and light towards it, the bounded
    one (`outlier_scale`) leaves it out and recovers the skin under it."""
    truth = model.sample_coeffs(4, torch.Generator().manual_seed(3))
    clean = render_faces(model, truth, SIZE)
    layout = model.layout
    start = truth.clone()
    start[:, layout.slice("texture")] += 0.5
    start[:, layout.slice("lighting")] += 0.1
    rows = torch.arange(SIZE).view(1, 1, SIZE, 1)
    hair = ((rows < 26) & (clean.face_mask > 0.5)).float()
    brown = torch.tensor([-0.5, -0.6, -0.75]).view(1, 3, 1, 1).expand_as(clean.image)
    photo = torch.where(hair > 0.5, brown, clean.image)
    skin = clean.face_mask * (1 - hair)

    def skin_error(outlier_scale):
        fit = FaceFit(model, SIZE, steps=80, lr=0.04, prior_weight=0.0,
                      blocks=("texture", "lighting"), outlier_scale=outlier_scale)
        fitted = render_faces(model, fit(photo, torch.zeros(4, 1, SIZE, SIZE), start), SIZE)
        return photometric_errors(fitted.image, clean.image, skin)

    plain, bounded = skin_error(None), skin_error(0.1)
    assert bounded.max() < 0.015
    assert torch.all(bounded < plain) and plain.mean() > 2 * bounded.mean()
    with pytest.raises(ValueError, match="outlier_scale"):
        FaceFit(model, SIZE, steps=1, lr=0.04, prior_weight=0.0, outlier_scale=0.0)
