"""Phase-2 networks and losses: the composite, the noise, the ablation, the critic's shape,
each loss against its formula, the gradient penalty against a critic with a known gradient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from unmasklib.losses import (
    critic_wasserstein,
    generator_adversarial,
    gradient_penalty,
    phase2_generator_loss,
    pixel_l1,
    total_variation,
)
from unmasklib.models.inpainting import (
    InpaintingGenerator,
    PatchDiscriminator,
    downsampling_steps,
    inject_noise,
)


def inputs(size: int = 64, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    masked = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    occlusion = torch.zeros(batch, 1, size, size)
    occlusion[:, :, size // 2:, size // 4: 3 * size // 4] = 1
    render = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return masked, occlusion, render


def test_pixels_outside_the_occlusion_are_the_inputs_bit_for_bit():
    torch.manual_seed(0)
    generator = InpaintingGenerator(64, width=8)
    masked, occlusion, render = inputs()
    out = generator(masked, occlusion, render)
    outside = occlusion.expand_as(out) == 0
    assert torch.equal(out[outside], masked[outside])
    inside = ~outside
    assert (out[inside] - masked[inside]).abs().mean() > 0.1  # painted, not copied
    assert out.abs().max() <= 1


def test_noise_replaces_the_hidden_pixels_and_a_seed_fixes_it():
    masked, occlusion, _ = inputs()
    a = inject_noise(masked, occlusion, torch.Generator().manual_seed(3))
    b = inject_noise(masked, occlusion, torch.Generator().manual_seed(3))
    c = inject_noise(masked, occlusion, torch.Generator().manual_seed(4))
    hidden = occlusion.expand_as(masked) > 0
    assert torch.equal(a, b) and not torch.equal(a[hidden], c[hidden])
    assert torch.equal(a[~hidden], masked[~hidden])
    assert abs(float(a[hidden].std()) - 1.0) < 0.05  # N(0, 1) noise, not the mask's colours


def as_if_trained(generator: InpaintingGenerator) -> InpaintingGenerator:
    """`generator` with a random last layer: a new G's is zero (it paints the render as it is,
    whatever its noise), a trained one's is not."""
    torch.nn.init.normal_(generator.to_rgb.weight, std=0.05)
    return generator


def test_an_untrained_g_paints_the_render_it_follows_and_learns_a_correction():
    torch.manual_seed(0)
    masked, occlusion, render = inputs()
    render = render * 1.5  # partly past [-1, 1]: the painting is clamped
    residual = InpaintingGenerator(64, width=8).eval()
    hidden = occlusion.expand_as(masked) > 0
    out = residual(masked, occlusion, render)
    assert torch.equal(out[hidden], render.clamp(-1, 1)[hidden])
    scratch = InpaintingGenerator(64, width=8, residual=False).eval()
    assert (scratch(masked, occlusion, render) - render.clamp(-1, 1))[hidden].abs().mean() > 0.3
    # the correction's gradient reaches G's last layer where the painting is not clamped
    residual.train()
    residual(masked, occlusion, render).square().sum().backward()
    assert residual.to_rgb.weight.grad.abs().sum() > 0


def test_the_seed_changes_the_painting_and_fixes_it():
    torch.manual_seed(0)
    generator = as_if_trained(InpaintingGenerator(64, width=8)).eval()
    masked, occlusion, render = inputs()
    one = generator(masked, occlusion, render, torch.Generator().manual_seed(1))
    again = generator(masked, occlusion, render, torch.Generator().manual_seed(1))
    other = generator(masked, occlusion, render, torch.Generator().manual_seed(2))
    assert torch.equal(one, again) and not torch.equal(one, other)


def test_the_ablation_ignores_the_render_and_ours_does_not():
    torch.manual_seed(0)
    ours = InpaintingGenerator(64, width=8, use_render=True).eval()
    torch.manual_seed(0)
    ablation = InpaintingGenerator(64, width=8, use_render=False).eval()
    masked, occlusion, render = inputs()
    other_render = -render
    noise = 5

    def run(g, r):
        return g(masked, occlusion, r, torch.Generator().manual_seed(noise))

    assert torch.equal(run(ablation, render), run(ablation, other_render))
    assert not torch.equal(run(ours, render), run(ours, other_render))


def test_the_unet_reaches_a_16_pixel_bottleneck_at_every_size():
    assert [downsampling_steps(s) for s in (32, 64, 128, 256)] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="multiple of 16"):
        downsampling_steps(100)
    generator = InpaintingGenerator(128, width=4)
    x = torch.zeros(1, 7, 128, 128)
    features = generator.stem(x)
    for down in generator.down:
        features = down(features)
    assert features.shape[-2:] == (16, 16)
    assert len(generator.bottleneck) == 6


def test_wrong_input_shapes_are_named():
    generator = InpaintingGenerator(64, width=4)
    masked, occlusion, render = inputs()
    with pytest.raises(ValueError, match="occlusion must be"):
        generator(masked, occlusion[:, :, :32], render)
    with pytest.raises(ValueError, match="render must be"):
        generator(masked, occlusion, render[:, :1])


def test_the_critic_scores_patches():
    critic = PatchDiscriminator(width=4)
    convolutions = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 6
    masked, occlusion, _ = inputs(size=128)
    assert critic(masked, occlusion).shape == (2, 1, 8, 8)


def test_pixel_and_tv_losses_match_their_formulas():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 5, 7, generator=g), torch.randn(2, 3, 5, 7, generator=g)
    x = a.numpy().astype(np.float64)
    assert float(pixel_l1(a, b)) == pytest.approx(np.abs(x - b.numpy()).mean(), rel=1e-6)
    dx = [x[n, c, i, j + 1] - x[n, c, i, j] for n in range(2) for c in range(3)
          for i in range(5) for j in range(6)]
    dy = [x[n, c, i + 1, j] - x[n, c, i, j] for n in range(2) for c in range(3)
          for i in range(4) for j in range(7)]
    expected = np.sqrt(np.mean(np.square(dx))) + np.sqrt(np.mean(np.square(dy)))
    assert float(total_variation(a)) == pytest.approx(expected, rel=1e-6)
    assert float(total_variation(torch.ones(1, 3, 8, 8))) == 0


def test_wasserstein_terms_and_the_weighted_sum():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5])
    assert float(critic_wasserstein(real, fake)) == pytest.approx(0.0 - 2.0)
    assert float(generator_adversarial(fake)) == pytest.approx(0.0)
    result, clean = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    terms = phase2_generator_loss(result, clean, torch.tensor([0.8, 0.6]), fake + 1,
                                  lambda_pix=10, lambda_id=0.1, lambda_tv=0.1, lambda_adv=0.01)
    assert float(terms["pix"]) == pytest.approx(0.5)
    assert float(terms["id"]) == pytest.approx(0.3)
    assert float(terms["adv"]) == pytest.approx(-1.0)
    assert float(terms["total"]) == pytest.approx(10 * 0.5 + 0.1 * 0.3 + 0 - 0.01)


def test_gradient_penalty_of_a_linear_critic_is_known_exactly():
    # D(x) = <w, x> has the gradient w everywhere: GP = (|w| - 1)^2 wherever it is evaluated.
    w = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    expected = (w.detach().norm() - 1) ** 2
    assert float(penalty.detach()) == pytest.approx(float(expected), rel=1e-5)
    # ... and it trains the critic: d GP / d w = 2 (|w| - 1) w / |w|
    (grad,) = torch.autograd.grad(penalty, w)
    norm = w.detach().norm()
    assert torch.allclose(grad, 2 * (norm - 1) * w.detach() / norm, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_of_a_network_matches_finite_differences():
    torch.manual_seed(0)
    critic = PatchDiscriminator(width=2).double()
    occlusion = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    real = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    fake = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    mix = float(torch.rand(1, generator=g, dtype=torch.float64))
    points = mix * real + (1 - mix) * fake
    # The gradient norm by central differences along a few random directions is bounded by it;
    # along the gradient itself it equals it.
    points.requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points, occlusion).sum(), points)
    direction = grad / grad.norm()
    eps = 1e-5
    with torch.no_grad():
        slope = (critic(points + eps * direction, occlusion).sum()
                 - critic(points - eps * direction, occlusion).sum()) / (2 * eps)
    penalty = gradient_penalty(lambda x: critic(x, occlusion), real, fake,
                               torch.Generator().manual_seed(0))
    assert float(penalty.detach()) == pytest.approx((float(slope) - 1) ** 2, rel=1e-4)


def test_the_phase2_step_runs_n3d_and_the_identity_encoder_in_the_settings_precision(
        monkeypatch):
    """bfloat16 for the frozen N3D and identity encoder (the paper profile's), G and D in
    float32 either way: every term close to the float32 step's; on a device without bfloat16
    in hardware the float32 step exactly; an unknown precision named."""
    import dataclasses

    from unmasklib.config import get_profile
    from unmasklib.data import SyntheticMaskedFaces, collate
    from unmasklib.face3d import load_face_model
    from unmasklib.models.identity import IdentityEncoder
    from unmasklib.models.n3d import N3D
    from unmasklib.trained import build_inpainting
    from unmasklib.training import adam
    from unmasklib.training import n3d as phase1
    from unmasklib.training.inpainting import inpainting_settings, inpainting_step

    face_model = load_face_model()
    data = SyntheticMaskedFaces("train", size=4, image_size=64, seed=0, model=face_model,
                                progress=False)
    batch = collate([data[i] for i in range(4)])
    torch.manual_seed(0)
    n3d = N3D("small", image_size=64, layout=face_model.layout, width=8).eval()
    encoder = IdentityEncoder("small", width=4, image_size=32).requires_grad_(False).eval()
    terms = {}
    for precision, native in (("fp32", True), ("bf16", True), ("bf16", False)):
        monkeypatch.setattr(phase1, "computes_bfloat16_natively",
                            lambda device_type, native=native: native)
        profile = dataclasses.replace(get_profile("smoke"), n3d_precision=precision)
        settings = inpainting_settings(profile, use_render=True)
        assert settings["precision"] == precision
        networks = dict(zip(("G", "D"), build_inpainting(settings, seed=0), strict=True))
        critic_optimizer = adam(networks["D"].parameters())
        step = inpainting_step(critic_optimizer, n3d, face_model, encoder, settings, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            terms[precision, native] = step(networks, batch, 0)
    full, half, emulated = terms["fp32", True], terms["bf16", True], terms["bf16", False]
    for name, value in full.items():
        assert half[name].dtype == torch.float32, name
        assert half[name].item() == pytest.approx(value.item(), rel=0.05, abs=5e-3), name
        assert torch.equal(emulated[name], value), name
    assert half["id"] != full["id"]  # the encoder did run in bfloat16
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        inpainting_step(critic_optimizer, n3d, face_model, encoder,
                        {**settings, "precision": "fp16"}, seed=0)
