"""Phase-1 loss terms against their formulas (numpy, by hand), and their mixing in L_3D."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from unmasklib import face3d
from unmasklib import losses as L
from unmasklib.data.synthetic import draw_coefficients
from unmasklib.face3d import CoeffLayout

TOY = CoeffLayout((("a", 2), ("b", 3)))
TOY_SCALES = {"a": 2.0, "b": (1.0, 0.5, 0.25)}
NOSE_AND_INNER_LIPS = [30, 31, 32, 33, 34, 35, 60, 61, 62, 63, 64, 65, 66, 67]


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# Independent references: plain numpy, written from the formulas in the docstrings.
def np_bce(logits: np.ndarray, target: np.ndarray) -> float:
    p = 1 / (1 + np.exp(-logits))
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def np_coef(pred: np.ndarray, true: np.ndarray) -> float:
    """TOY layout and TOY_SCALES, valid samples only."""
    a = np.abs(pred[:, :2] - true[:, :2]) / 2.0
    b = np.abs(pred[:, 2:] - true[:, 2:]) / np.array([1.0, 0.5, 0.25])
    return float(np.mean((a.mean(1) + b.mean(1)) / 2))


def np_photo(render: np.ndarray, target: np.ndarray, region: np.ndarray) -> float:
    total, count = 0.0, 0.0
    for b in range(render.shape[0]):
        for y in range(render.shape[2]):
            for x in range(render.shape[3]):
                if region[b, 0, y, x]:
                    diff = (render[b, :, y, x] - target[b, :, y, x]) / 2
                    total += np.sqrt(1e-6 + np.sum(diff ** 2))
                    count += 1
    return total / max(count, 1)


def np_landmarks(pred: np.ndarray, true: np.ndarray, image_size: int) -> float:
    """Valid samples only."""
    weights = np.ones(68)
    weights[NOSE_AND_INNER_LIPS] = 20
    scale = 224 / image_size
    per_sample = [sum(weights[k] * np.sum(((p[k] - q[k]) * scale) ** 2) for k in range(68)) / 68
                  for p, q in zip(pred, true, strict=True)]
    return float(np.mean(per_sample))


def test_occlusion_bce_is_the_formula():
    logits, target = randn(2, 1, 4, 5) * 3, (randn(2, 1, 4, 5, seed=1) > 0).double()
    assert L.occlusion_bce(logits, target).item() == pytest.approx(
        np_bce(logits.numpy(), target.numpy()), rel=1e-12)


def test_coefficient_l1_scales_each_entry_and_averages_blocks():
    pred, true = randn(4, 5), randn(4, 5, seed=1)
    assert L.coefficient_l1(pred, true, TOY, TOY_SCALES).item() == pytest.approx(
        np_coef(pred.numpy(), true.numpy()), rel=1e-12)
    # Block averaging: a 1-unit error on the 2-entry block weighs what it does on the 3-entry one.
    assert L.coefficient_l1(torch.tensor([[2.0, 2, 0, 0, 0]]), torch.zeros(1, 5), TOY,
                            TOY_SCALES).item() == pytest.approx(0.5)


def test_coefficient_l1_skips_samples_without_ground_truth():
    pred = randn(3, 5).requires_grad_(True)
    true = randn(3, 5, seed=1)
    true[1] = torch.nan
    valid = torch.tensor([True, False, True])
    loss = L.coefficient_l1(pred, true, TOY, TOY_SCALES, valid)
    loss.backward()
    expected = np_coef(pred.detach().numpy()[[0, 2]], true.numpy()[[0, 2]])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.isfinite(pred.grad).all()
    assert torch.equal(pred.grad[1], torch.zeros(5))
    none_valid = L.coefficient_l1(pred, torch.full((3, 5), torch.nan), TOY, TOY_SCALES,
                                  torch.zeros(3, dtype=torch.bool))
    assert none_valid.item() == 0


def test_coefficient_scales_expand_per_block():
    assert L.coefficient_scales(TOY, TOY_SCALES).tolist() == [2, 2, 1, 0.5, 0.25]
    with pytest.raises(KeyError, match="'b'"):
        L.coefficient_scales(TOY, {"a": 1.0})
    with pytest.raises(ValueError, match="3 entries but 2 scales"):
        L.coefficient_scales(TOY, {"a": 1.0, "b": (1.0, 2.0)})
    assert len(L.coefficient_scales(face3d.BFM_LAYOUT)) == 257


def test_coefficient_scales_match_the_synthetic_data(model):
    # 2000 samples: 250 identities (identity and texture are drawn once per identity).
    coeffs = torch.stack([draw_coefficients(model, 0, "train", i) for i in range(2000)])
    scaled = coeffs / L.coefficient_scales(model.layout)
    for name, block in model.layout.split(scaled).items():
        rms = block.square().mean(0).sqrt()  # per entry
        assert 0.75 < rms.min() and rms.max() < 1.35, (name, rms)


def test_photometric_loss_is_the_mean_colour_distance_over_the_region():
    render, target = randn(2, 3, 4, 4).clamp(-1, 1), randn(2, 3, 4, 4, seed=1).clamp(-1, 1)
    face = (randn(2, 1, 4, 4, seed=2) > -0.5).double()
    visible = (randn(2, 1, 4, 4, seed=3) > 0).double()
    got = L.photometric_loss(render, target, face)
    assert got.item() == pytest.approx(np_photo(render.numpy(), target.numpy(), face.numpy()))
    got = L.photometric_loss(render, target, face, visible)
    assert got.item() == pytest.approx(np_photo(render.numpy(), target.numpy(),
                                                (face * visible).numpy()))
    assert L.photometric_loss(render, target, torch.zeros_like(face)).item() == 0


def test_photometric_loss_gradient_matches_finite_differences():
    render = randn(2, 3, 4, 4).requires_grad_(True)
    target, face = randn(2, 3, 4, 4, seed=1), (randn(2, 1, 4, 4, seed=2) > 0).double()
    assert torch.autograd.gradcheck(lambda r: L.photometric_loss(r, target, face), (render,))


def test_identity_loss_is_one_minus_cosine():
    similarity = torch.tensor([1.0, 0.5, -0.25])
    assert L.identity_loss(similarity).item() == pytest.approx((0 + 0.5 + 1.25) / 3)


def test_landmark_weights_are_twenty_on_nose_and_inner_lips():
    weights = L.landmark_weights()
    heavy = torch.zeros(68, dtype=torch.bool)
    heavy[NOSE_AND_INNER_LIPS] = True
    assert torch.equal(weights[heavy], torch.full((14,), 20.0))
    assert torch.equal(weights[~heavy], torch.ones(54))


def test_landmark_loss_is_the_weighted_mean_square_in_224_pixels():
    pred, true = randn(3, 68, 2) * 5 + 50, randn(3, 68, 2, seed=1) * 5 + 50
    got = L.landmark_loss(pred, true, image_size=112)
    assert got.item() == pytest.approx(np_landmarks(pred.numpy(), true.numpy(), 112), rel=1e-12)
    # The same face at twice the resolution has the same loss.
    assert L.landmark_loss(pred * 2, true * 2, image_size=224).item() == pytest.approx(got.item())
    valid = torch.tensor([True, True, False])
    true[2] = torch.nan
    got = L.landmark_loss(pred, true, 112, valid)
    assert got.item() == pytest.approx(np_landmarks(pred[:2].numpy(), true[:2].numpy(), 112))


def n(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def fake_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A differentiable stand-in for the identity encoder: cosine of the raw pixels."""
    return torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def test_phase1_loss_mixes_photos_and_synthetic_samples(model):
    size, layout = 32, model.layout
    true_coeffs = model.sample_coeffs(3, generator=torch.Generator().manual_seed(0))
    truth = face3d.render_faces(model, true_coeffs, size)
    clean = truth.image
    occlusion = torch.zeros(3, 1, size, size)
    occlusion[:, :, 18:28, 8:24] = 1
    masked = torch.where(occlusion > 0, torch.tensor(0.3), clean)
    has_truth = torch.tensor([True, False, True])
    batch = {
        "clean": clean, "masked": masked, "occlusion": occlusion,
        "coeffs": torch.where(has_truth[:, None], true_coeffs, torch.nan),
        "landmarks": torch.where(has_truth[:, None, None], truth.landmarks, torch.nan),
        "has_ground_truth": has_truth,
    }
    coeffs = (true_coeffs + 0.1 * torch.randn(3, layout.size,
                                              generator=torch.Generator().manual_seed(1)))
    coeffs.requires_grad_(True)
    logits = torch.randn(3, 1, size, size, generator=torch.Generator().manual_seed(2))
    logits.requires_grad_(True)
    render = face3d.render_faces(model, coeffs, size)

    terms = L.phase1_loss(logits, coeffs, render, batch, layout, fake_similarity,
                          lambda_id=0.1, lambda_lm=0.001)
    terms["total"].backward()
    assert torch.isfinite(coeffs.grad).all() and torch.isfinite(logits.grad).all()
    assert coeffs.grad[1].abs().sum() > 0  # the photo still learns from its image

    image, mask = n(render.image), n(render.face_mask)
    composite = np.where(mask > 0, image, n(clean))
    cosine = [np.dot(c.ravel(), t.ravel()) / np.linalg.norm(c) / np.linalg.norm(t)
              for c, t in zip(composite, n(clean), strict=True)]
    scales = L.coefficient_scales(layout).double().numpy()
    coef_rows = []
    for i in (0, 2):
        error = np.abs(n(coeffs)[i] - n(true_coeffs)[i]) / scales
        coef_rows.append(np.mean([error[layout.slice(name)].mean() for name in layout.names]))
    expected = {
        "bce": np_bce(n(logits), n(occlusion)),
        "coef": float(np.mean(coef_rows)),
        "photo": np_photo(image, n(clean), mask),
        "id": float(np.mean(1 - np.array(cosine))),
        "lm": np_landmarks(n(render.landmarks)[[0, 2]], n(truth.landmarks)[[0, 2]], size),
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5), name
    hand_total = (expected["bce"] + expected["coef"] + expected["photo"]
                  + 0.1 * expected["id"] + 0.001 * expected["lm"])
    assert terms["total"].item() == pytest.approx(hand_total, rel=1e-5)


def test_phase1_loss_without_a_clean_image_compares_outside_the_occlusion(model):
    size = 32
    coeffs = model.sample_coeffs(2, generator=torch.Generator().manual_seed(3))
    render = face3d.render_faces(model, coeffs, size)
    clean = randn(2, 3, size, size, dtype=torch.float32).clamp(-1, 1)
    occlusion = torch.zeros(2, 1, size, size)
    occlusion[:, :, 16:, :] = 1
    masked = torch.where(occlusion > 0, torch.tensor(0.0), clean)
    batch = {"clean": clean, "masked": masked, "occlusion": occlusion,
             "coeffs": coeffs, "landmarks": render.landmarks,
             "has_ground_truth": torch.tensor([True, True]),
             "has_clean": torch.tensor([True, False])}
    terms = L.phase1_loss(torch.zeros(2, 1, size, size), coeffs, render, batch, model.layout,
                          fake_similarity)
    target = torch.stack([clean[0], masked[1]])
    visible = torch.stack([torch.ones(1, size, size), 1 - occlusion[1]])
    expected = np_photo(render.image.double().numpy(), target.double().numpy(),
                        (render.face_mask * visible).numpy())
    assert terms["photo"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["coef"].item() == 0 and terms["lm"].item() == 0


def test_visibility_weights_follow_how_far_a_unit_of_each_component_moves_the_face(model):
    weights = L.visibility_weights(model)
    zero = model.zero_coeffs(1)
    base, _ = model.decode(zero)
    for name in ("identity", "expression"):
        block = model.layout.slice(name)
        effects = []
        for k in range(block.start, block.stop):  # brute force: decode one unit of each
            coeffs = zero.clone()
            coeffs[0, k] = 1
            vertices, _ = model.decode(coeffs)
            effects.append(float((vertices - base)[0].norm(dim=-1).square().mean().sqrt()))
        effects = torch.tensor(effects)
        expected = (effects / effects.mean()).clamp(min=L.MIN_VISIBILITY_WEIGHT)
        assert torch.allclose(weights[block], expected, rtol=1e-4)
    jaw = model.layout.slice("expression").start + model.expression_names.index("jaw_open")
    assert weights[jaw] > 5  # the chin moves far more than a typical component
    for name in ("pose", "lighting"):
        assert (weights[model.layout.slice(name)] == 1).all()


def test_a_component_that_changes_nothing_costs_almost_nothing(model):
    texture = model.layout.slice("texture")
    basis = model.texture_basis.clone()
    basis[3] = 0
    flat = dataclasses.replace(model, texture_basis=basis)
    assert L.visibility_weights(flat)[texture.start + 3] == L.MIN_VISIBILITY_WEIGHT
    scales = L.visibility_scales(flat)
    error = torch.zeros(1, model.layout.size)
    error[0, texture.start + 3] = 1.0
    blocks = len(model.layout.blocks)
    components = texture.stop - texture.start
    assert L.coefficient_l1(error, torch.zeros_like(error), model.layout, scales).item() == \
        pytest.approx(L.MIN_VISIBILITY_WEIGHT / (components * blocks), rel=1e-5)
    # Scaled back by the weights, the scales are the plain per-entry ones.
    plain = L.coefficient_scales(model.layout)
    weighted = L.coefficient_scales(model.layout, scales)
    assert torch.allclose(weighted * L.visibility_weights(flat), plain, rtol=1e-5)


def test_bounded_distance_is_the_distance_near_zero_and_bounded_far_away():
    distance = torch.tensor([0.0, 0.01, 0.1, 0.3, 10.0], dtype=torch.float64, requires_grad=True)
    bounded = L.bounded_distance(distance, 0.1)
    expected = 0.1 * torch.tensor([math.atan(d / 0.1) for d in distance.tolist()],
                                  dtype=torch.float64)
    assert torch.allclose(bounded, expected, atol=1e-12)
    values = bounded.detach()
    assert float(values[1]) == pytest.approx(0.01, rel=5e-3)  # ~ the distance well under 0.1
    assert float(values[-1]) < 0.1 * math.pi / 2
    bounded.sum().backward()                                  # slope 1 / (1 + (d / s)^2)
    assert torch.allclose(distance.grad, 1 / (1 + (distance.detach() / 0.1) ** 2), atol=1e-12)
    assert float(distance.grad[3]) == pytest.approx(0.1)      # three scales out: a tenth
    with pytest.raises(ValueError, match="outlier scale"):
        L.bounded_distance(distance, 0.0)


def test_photometric_errors_with_an_outlier_scale_average_the_bounded_distances():
    generator = torch.Generator().manual_seed(0)
    render = torch.rand(2, 3, 5, 5, generator=generator) * 2 - 1
    target = torch.rand(2, 3, 5, 5, generator=generator) * 2 - 1
    region = (torch.rand(2, 1, 5, 5, generator=generator) > 0.4).float()
    errors = L.photometric_errors(render, target, region, outlier_scale=0.2)
    for b in range(2):
        pixels = [(render[b, :, y, x] - target[b, :, y, x]) / 2
                  for y in range(5) for x in range(5) if region[b, 0, y, x] > 0]
        by_hand = [0.2 * math.atan(math.sqrt(float(p.square().sum()) + L.PHOTO_EPS) / 0.2)
                   for p in pixels]
        assert float(errors[b]) == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-5)
