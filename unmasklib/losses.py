"""Loss terms, one small function per formula of the seed; weights come from the caller.

Phase 1 (N3D):

    L_3D = L_bce + L_coef + L_photo + lambda_id * L_id + lambda_lm * L_lm

with the seed's lambda_id = 0.1 and lambda_lm = 0.001. The photo, identity and landmark terms
follow Deep3DFaceRecon (Deng et al. 2019), where the seed's weights come from: colour
differences in [0, 1] units, landmarks in pixels of a 224-pixel crop, landmark weights of 20
on the lower nose ridge and the inner lips.

Phase 2 (inpainting generator G, PatchGAN critic D):

    L_G = lambda_pix * L_pix + lambda_id * L_id + lambda_tv * L_tv + lambda_adv * L_adv
    L_D = E[D(fake)] - E[D(real)] + lambda_gp * GP

with the seed's lambda_pix = 10, lambda_id = 0.1, lambda_tv = 0.1, lambda_adv = 0.01. The
adversarial pair is WGAN-GP's (Gulrajani et al. 2017): the seed names a gradient penalty,
which is that loss's own regulariser, with its usual lambda_gp = 10.

Terms that need ground truth take `valid` `(B,)` bool: samples where it is False (photos with
NaN coefficients and landmarks) are left out of the mean, and their NaNs never reach a sum or
a gradient. A batch with no valid sample gives 0 for that term.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from .face3d import CoeffLayout, MorphableModel, RenderOutput

# Typical standard deviation of each coefficient block in the synthetic data: the coefficient
# loss divides by it so that a block of tiny numbers (angles, light) is not drowned by one of
# large ones (shape). Identity, expression and texture are drawn ~ N(0, 1). Pose: yaw, pitch,
# roll are uniform in +-30, +-15, +-10 degrees (std = range / sqrt(3): 0.30, 0.15, 0.10 rad),
# translation ~ N(0, (0.05, 0.05, 0.2)) model units. Lighting: offsets per SH band with the
# standard deviations of `face3d.model.LIGHT_STD`, the same for the 3 colour channels. The
# Basel layout keeps rotation and translation apart; they get the same numbers.
COEFF_SCALES: dict[str, float | tuple[float, ...]] = {
    "identity": 1.0,
    "expression": 1.0,
    "texture": 1.0,
    "pose": (0.30, 0.15, 0.10, 0.05, 0.05, 0.2),
    "rotation": (0.30, 0.15, 0.10),
    "translation": (0.05, 0.05, 0.2),
    "lighting": (0.12, 0.25, 0.15, 0.25, 0.06, 0.06, 0.06, 0.06, 0.06) * 3,
}
MIN_VISIBILITY_WEIGHT = 1e-3  # keeps the scale of a component that changes nothing finite
LANDMARK_FRAME = 224  # Deep3DFaceRecon's crop side: landmark errors are measured in its pixels
HEAVY_LANDMARKS = (*range(30, 36), *range(60, 68))  # nose tip and base; inner lips
HEAVY_LANDMARK_WEIGHT = 20.0
PHOTO_EPS = 1e-6  # keeps the gradient of the per-pixel colour distance finite at zero


def _valid_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-sample `values` `(B,)` over the samples where `valid` is True."""
    if valid is None:
        return values.mean()
    weight = valid.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp(min=1)


def _ground_truth(pred: torch.Tensor, true: torch.Tensor,
                  valid: torch.Tensor | None) -> torch.Tensor:
    """`true` with invalid samples replaced by the (detached) prediction: their error is 0
    with a zero gradient, so NaN placeholders cannot leak into the loss or its gradient."""
    if valid is None:
        return true
    shape = (-1,) + (1,) * (pred.dim() - 1)
    return torch.where(valid.view(shape), true.to(pred.dtype), pred.detach())


def occlusion_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_bce: binary cross-entropy of occlusion logits `(B, 1, H, W)` (any real) against the
    occlusion map `(B, 1, H, W)` in {0, 1}, averaged over every pixel of the batch."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def coefficient_scales(layout: CoeffLayout,
                       scales: Mapping[str, float | Sequence[float]] = COEFF_SCALES,
                       ) -> torch.Tensor:
    """Per-entry scales `(layout.size,)` from per-block scales (one number, or one per entry)."""
    parts = []
    for name, size in layout.blocks:
        if name not in scales:
            raise KeyError(f"no scale for coefficient block {name!r}; give one in `scales`")
        block = torch.as_tensor(scales[name], dtype=torch.float32).reshape(-1)
        if block.numel() not in (1, size):
            raise ValueError(f"block {name!r} has {size} entries but {block.numel()} scales")
        parts.append(block.expand(size))
    return torch.cat(parts)


def component_effects(face_model: MorphableModel) -> dict[str, torch.Tensor]:
    """How much one unit of each component changes the face: block name -> `(K,)`, the RMS
    over vertices of the displacement (identity, expression; model units) or of the albedo
    change (texture; [0, 1] units) that the basis column makes."""
    def rms(basis: torch.Tensor) -> torch.Tensor:  # (K, V, 3) -> (K,)
        return basis.float().square().sum(-1).mean(-1).sqrt().cpu()
    return {"identity": rms(face_model.identity_basis),
            "expression": rms(face_model.expression_basis),
            "texture": rms(face_model.texture_basis)}


def visibility_weights(face_model: MorphableModel) -> torch.Tensor:
    """`(layout.size,)`: each component's `component_effects` over its block's mean (at least
    `MIN_VISIBILITY_WEIGHT`) for identity, expression and texture; 1 for the other blocks."""
    effects = component_effects(face_model)
    parts = [(effects[name] / effects[name].mean()).clamp(min=MIN_VISIBILITY_WEIGHT)
             if name in effects else torch.ones(size) for name, size in face_model.layout.blocks]
    return torch.cat(parts)


def visibility_scales(face_model: MorphableModel,
                      scales: Mapping[str, float | Sequence[float]] = COEFF_SCALES,
                      ) -> dict[str, tuple[float, ...]]:
    """`scales` per entry, divided by `visibility_weights`: L_coef weighted by how much each
    component shows.

    All components are drawn ~ N(0, 1), but at 128 px most of them move the face by a
    fraction of a pixel: with equal weights their unlearnable errors make most of L_coef and
    feed the backbone random-sign gradients, while `jaw_open` (a 3-pixel chin) counts as one
    of 44. Weighted, a component that changes nothing costs nothing."""
    layout = face_model.layout
    weighted = coefficient_scales(layout, scales) / visibility_weights(face_model)
    return {name: tuple(block.tolist()) for name, block in layout.split(weighted).items()}


def coefficient_l1(pred: torch.Tensor, true: torch.Tensor, layout: CoeffLayout,
                   scales: Mapping[str, float | Sequence[float]] = COEFF_SCALES,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """L_coef = ||c_hat - c||_1 in units of each entry's typical spread (`COEFF_SCALES`).

    pred, true `(B, layout.size)`. Per sample: the mean of |c_hat - c| / scale within each
    block, averaged over the blocks, so every block counts the same whatever its length (six
    pose numbers place the whole face; eighty texture numbers tint it). Then the mean over
    valid samples. A zero prediction for data drawn as the scales say gives about 0.8.
    """
    true = _ground_truth(pred, true, valid)
    error = (pred - true).abs() / coefficient_scales(layout, scales).to(pred)
    per_block = [block.mean(dim=1) for block in layout.split(error).values()]
    return _valid_mean(torch.stack(per_block, dim=1).mean(dim=1), valid)


def photometric_loss(render: torch.Tensor, target: torch.Tensor, face_mask: torch.Tensor,
                     visible: torch.Tensor | None = None) -> torch.Tensor:
    """L_photo = ||I_3D * M - I * M||_2 as Deep3DFaceRecon computes it: the Euclidean norm of
    each pixel's colour difference, averaged over the pixels of the region M in the batch.

    render, target `(B, 3, H, W)` in [-1, 1]; differences are halved to [0, 1] units, so a
    value reads as in Deep3DFaceRecon. face_mask `(B, 1, H, W)` in {0, 1}: pixels the render
    covers. visible `(B, 1, H, W)` in {0, 1}, optional: further restricts M (e.g. to pixels
    outside the occlusion when `target` still wears its mask). An empty region gives 0.
    """
    region = face_mask if visible is None else face_mask * visible
    return (colour_distance(render, target) * region).sum() / region.sum().clamp(min=1)


def photometric_errors(render: torch.Tensor, target: torch.Tensor, face_mask: torch.Tensor,
                       visible: torch.Tensor | None = None,
                       outlier_scale: float | None = None) -> torch.Tensor:
    """`(B,)`: `photometric_loss` of each sample on its own (the mean over its own region,
    0 where that is empty), so that one sample's value does not depend on the others'.
    With `outlier_scale`, each pixel's distance is `bounded_distance`d first."""
    region = face_mask if visible is None else face_mask * visible
    distance = colour_distance(render, target)
    if outlier_scale is not None:
        distance = bounded_distance(distance, outlier_scale)
    return (distance * region).sum((1, 2, 3)) / region.sum((1, 2, 3)).clamp(min=1)


def bounded_distance(distance: torch.Tensor, scale: float) -> torch.Tensor:
    """`scale * atan(distance / scale)`, elementwise, for distances >= 0: the distance itself
    where it is well under `scale`, never more than `scale * pi / 2`. Its slope, 1 / (1 +
    (distance / scale)^2), fades with the square of the distance, so a pixel the face model
    cannot explain (hair over the forehead, a collar beside the jaw, a mask remnant) pulls a
    fit hardly at all, while a pixel close to the render pulls as with the plain distance."""
    if scale <= 0:
        raise ValueError(f"outlier scale must be > 0, got {scale}")
    return scale * torch.atan(distance / scale)


def colour_distance(render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`(B, 1, H, W)`: each pixel's Euclidean colour distance in [0, 1] units (differences of
    `(B, 3, H, W)` images in [-1, 1], halved), kept off 0 by `PHOTO_EPS`."""
    return (PHOTO_EPS + ((render - target) / 2).square().sum(dim=1, keepdim=True)).sqrt()


def identity_loss(similarity: torch.Tensor) -> torch.Tensor:
    """L_id = mean(1 - cos): `similarity` `(B,)` in [-1, 1] is the cosine of two images'
    identity embeddings (`models.identity.identity_similarity(encoder, a, b)`)."""
    return (1 - similarity).mean()


def landmark_weights(dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """`(68,)`: 1, and `HEAVY_LANDMARK_WEIGHT` (20) on `HEAVY_LANDMARKS` (iBUG-68 indices 30-35,
    the nose tip and base, and 60-67, the inner lips), as the seed does: most of them sit
    under the mask, where the image gives the least evidence."""
    weights = torch.ones(68, dtype=dtype, device=device)
    weights[list(HEAVY_LANDMARKS)] = HEAVY_LANDMARK_WEIGHT
    return weights


def landmark_loss(pred: torch.Tensor, true: torch.Tensor, image_size: int,
                  valid: torch.Tensor | None = None) -> torch.Tensor:
    """L_lm: weighted mean squared distance of 68 landmarks, in pixels of a `LANDMARK_FRAME`
    (224) pixel image.

    pred, true `(B, 68, 2)` pixel coordinates in an `image_size` image. Rescaling to 224 px
    keeps lambda_lm = 0.001 meaning what it means in Deep3DFaceRecon at every image size.
    Per sample: `sum_k w_k |p_k - q_k|^2 / 68` with `landmark_weights` (the weights are not
    renormalised, as there); then the mean over valid samples.
    """
    true = _ground_truth(pred, true, valid)
    squared = ((pred - true) * (LANDMARK_FRAME / image_size)).square().sum(dim=-1)
    weights = landmark_weights(pred.dtype, pred.device)
    return _valid_mean((squared * weights).mean(dim=1), valid)


def phase1_loss(occlusion_logits: torch.Tensor, coeffs: torch.Tensor, render: RenderOutput,
                batch: Mapping[str, torch.Tensor], layout: CoeffLayout,
                similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                lambda_id: float = 0.1, lambda_lm: float = 0.001,
                coeff_scales: Mapping[str, float | Sequence[float]] = COEFF_SCALES,
                ) -> dict[str, torch.Tensor]:
    """L_3D and its terms: {"bce", "coef", "photo", "id", "lm", "total"}, scalar tensors.

    occlusion_logits `(B, 1, H, W)`, coeffs `(B, layout.size)`: N3D's prediction; render:
    `face3d.render_faces` of `coeffs` at the batch's image size.
    batch: "masked", "clean" `(B, 3, H, W)` in [-1, 1], "occlusion" `(B, 1, H, W)` in {0, 1},
    "coeffs" `(B, size)`, "landmarks" `(B, 68, 2)` px, "has_ground_truth" `(B,)` bool (False:
    coeffs and landmarks are NaN, their terms skip the sample), and optionally "has_clean"
    `(B,)` bool (default all True): False marks a photo with no clean version, compared with
    its masked image outside the occlusion only.
    similarity(a, b) -> `(B,)` cosine of identity embeddings, e.g.
    `functools.partial(identity_similarity, encoder)`; it sees the render composited over the
    target image, so that both pictures have a background, and the target.
    """
    has_truth = batch["has_ground_truth"].to(torch.bool)
    has_clean = batch.get("has_clean")
    if has_clean is None:
        target, visible = batch["clean"], None
    else:
        has_clean = has_clean.to(torch.bool).view(-1, 1, 1, 1)
        target = torch.where(has_clean, batch["clean"], batch["masked"])
        visible = torch.where(has_clean, 1.0, 1 - batch["occlusion"])
    composite = torch.where(render.face_mask > 0, render.image, target)
    terms = {
        "bce": occlusion_bce(occlusion_logits, batch["occlusion"]),
        "coef": coefficient_l1(coeffs, batch["coeffs"], layout, coeff_scales, has_truth),
        "photo": photometric_loss(render.image, target, render.face_mask, visible),
        "id": identity_loss(similarity(composite, target)),
        "lm": landmark_loss(render.landmarks, batch["landmarks"], render.image.shape[-1],
                            has_truth),
    }
    terms["total"] = (terms["bce"] + terms["coef"] + terms["photo"]
                      + lambda_id * terms["id"] + lambda_lm * terms["lm"])
    return terms


def pixel_l1(result: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """L_pix = ||I_hat - I||_1, the mean absolute difference over every pixel and channel of
    `(B, 3, H, W)` images in [-1, 1]. On G's composite only the occluded pixels differ, so
    this is the hidden region's L1 times its share of the image."""
    return (result - clean).abs().mean()


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """L_tv = ||grad_x I||_2 + ||grad_y I||_2 of `(B, C, H, W)` images, each norm divided by
    the square root of its number of differences (a root mean square), so the value and
    lambda_tv mean the same at every image size."""
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return dx.square().mean().sqrt() + dy.square().mean().sqrt()


def generator_adversarial(fake_scores: torch.Tensor) -> torch.Tensor:
    """L_adv = -E[D(fake)]: G gains by raising the critic's scores of its images."""
    return -fake_scores.mean()


def critic_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] - E[D(real)]: the critic lowers it by scoring real above fake; minus its
    value estimates the Wasserstein distance between the two image distributions."""
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, generator: torch.Generator | None = None,
                     ) -> torch.Tensor:
    """GP = E[(||grad_x D(x)||_2 - 1)^2] at x = a * real + (1 - a) * fake, a ~ U(0, 1) per
    sample: keeps the critic 1-Lipschitz along the lines between real and fake images.

    critic(x) -> scores `(B, ...)`; real, fake `(B, C, H, W)`. Differentiable with respect to
    the critic's weights (the graph of the gradient is kept), not to `real` or `fake`.
    """
    mix = torch.rand(real.shape[0], 1, 1, 1, generator=generator, dtype=real.dtype)
    mix = mix.to(real.device)
    points = (mix * real.detach() + (1 - mix) * fake.detach()).requires_grad_(True)
    scores = critic(points)
    (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def phase2_generator_loss(result: torch.Tensor, clean: torch.Tensor,
                          similarity: torch.Tensor, fake_scores: torch.Tensor,
                          lambda_pix: float = 10.0, lambda_id: float = 0.1,
                          lambda_tv: float = 0.1, lambda_adv: float = 0.01,
                          ) -> dict[str, torch.Tensor]:
    """L_G and its terms: {"pix", "id", "tv", "adv", "total"}, scalar tensors.

    result: G's composite, clean: the truth, both `(B, 3, H, W)` in [-1, 1];
    similarity `(B,)`: identity cosine of result and clean (`identity_similarity`);
    fake_scores: the critic's scores of `result`.
    """
    terms = {"pix": pixel_l1(result, clean), "id": identity_loss(similarity),
             "tv": total_variation(result), "adv": generator_adversarial(fake_scores)}
    terms["total"] = (lambda_pix * terms["pix"] + lambda_id * terms["id"]
                      + lambda_tv * terms["tv"] + lambda_adv * terms["adv"])
    return terms
