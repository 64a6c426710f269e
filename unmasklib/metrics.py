"""Image quality metrics, over whole images or inside a region (e.g. the occlusion).

Images are `(B, 3, H, W)` in [-1, 1], so the peak-to-peak range is 2; regions are
`(B, 1, H, W)` in {0, 1}. Every function returns one value per image `(B,)`; an image whose
region is empty gets NaN, so that averages can skip it explicitly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import deltaE_ciede2000, rgb2lab

from .images import dilate, gaussian_blur, to_uint8
from .real_faces import cosine, features_of_images

DATA_RANGE = 2.0  # [-1, 1]
# SSIM as Wang et al. (2004): an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_pair(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor | None) -> None:
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"expected two (B, C, H, W) images of one shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if region is not None and (region.dim() != 4 or region.shape[1] != 1
                               or region.shape[2:] != a.shape[2:]):
        raise ValueError(f"region must be (B, 1, {a.shape[2]}, {a.shape[3]}), "
                         f"got {tuple(region.shape)}")


def region_mean(values: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Mean of `(B, C, H, W)` values per image, over all pixels or over `region`
    `(B, 1, H, W)`; NaN for an empty region."""
    if region is None:
        return values.flatten(1).mean(1)
    return region_mean_per_channel(values, region).mean(1)


def l1(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference `(B,)`, in the images' units."""
    _check_pair(a, b, region)
    return region_mean((a.double() - b.double()).abs(), region)


def psnr(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB `(B,)`: 10 log10(range^2 / MSE); inf for equal images."""
    _check_pair(a, b, region)
    mse = region_mean((a.double() - b.double()) ** 2, region)
    return 10 * torch.log10(DATA_RANGE ** 2 / mse)


def _local_mean(x: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of `(B, C, H, W)`, same size (mirrored edges)."""
    return gaussian_blur(x, SSIM_SIGMA, SSIM_RADIUS, padding="reflect")


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel, per-channel SSIM `(B, C, H, W)` of two images in [-1, 1]."""
    a, b = a.double(), b.double()
    mu_a, mu_b = _local_mean(a), _local_mean(b)
    var_a = _local_mean(a * a) - mu_a ** 2
    var_b = _local_mean(b * b) - mu_b ** 2
    cov = _local_mean(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
            / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))


def ssim(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Structural similarity `(B,)` in [-1, 1], averaged over channels and pixels.

    Over the whole image, pixels within the window's radius of the border are left out (as
    scikit-image does, so the mirrored edges never count); over a region, every region pixel
    counts.
    """
    _check_pair(a, b, region)
    return ssim_of_map(ssim_map(a, b), region)


def ssim_of_map(values: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """`ssim` from an `ssim_map` `(B, C, H, W)`, so that one map serves several regions."""
    if region is None:
        r = SSIM_RADIUS
        return values[..., r:-r, r:-r].flatten(1).mean(1)
    return region_mean(values, region)


def mean_std(values: torch.Tensor) -> tuple[float, float, int]:
    """(mean, standard deviation, count) of the finite entries of `values`."""
    finite = values[torch.isfinite(values)].double()
    if len(finite) == 0:
        return math.nan, math.nan, 0
    std = float(finite.std()) if len(finite) > 1 else 0.0
    return float(finite.mean()), std, len(finite)


def _binary_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two maps `(B, 1, H, W)` of one shape as flattened bools `(B, H * W)` (> 0.5 is in)."""
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a > 0.5).flatten(1), (b > 0.5).flatten(1)


def occlusion_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union `(B,)` of binary maps `(B, 1, H, W)` (anything > 0.5 is in);
    1 when both are empty (nothing to find, and nothing found)."""
    a, b = _binary_pair(predicted, target)
    union = (a | b).sum(1)
    iou = (a & b).sum(1).double() / union.clamp(min=1)
    return torch.where(union > 0, iou, 1.0)


def uncovered_share(found: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share `(B,)` in [0, 1] of `target`'s pixels outside `found` (binary maps `(B, 1, H, W)`,
    anything > 0.5 is in): what painting inside `found` would leave of `target`. NaN for an
    empty target."""
    a, b = _binary_pair(found, target)
    return (b & ~a).sum(1).double() / b.sum(1).double()


# Outer eye corners in iBUG-68 order: the inter-ocular distance of 300-W's NME.
OUTER_EYE_CORNERS = (36, 45)


# The parts of the face in iBUG-68 order; a face mask hides the jaw line and the mouth.
LANDMARK_REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
                    "eyes": range(36, 48), "mouth": range(48, 68)}


def landmark_errors(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each landmark's distance over the inter-ocular distance (outer eye corners), `(B, 68)`,
    for landmarks `(B, 68, 2)` in pixels; its mean over the landmarks is the NME."""
    if predicted.shape != target.shape or predicted.shape[-2:] != (68, 2):
        raise ValueError(f"expected two (B, 68, 2) landmark sets, got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    left, right = OUTER_EYE_CORNERS
    interocular = (target[:, left] - target[:, right]).double().norm(dim=-1)
    return (predicted - target).double().norm(dim=-1) / interocular[:, None]


def pearson_r(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two equally long 1-D samples (NaN when either is constant)."""
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"expected two equally long 1-D tensors, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return (a * b).sum() / (a.norm() * b.norm())


def frechet_distance_of_moments(mean_a: torch.Tensor, cov_a: torch.Tensor,
                                mean_b: torch.Tensor, cov_b: torch.Tensor) -> float:
    """Frechet distance of two Gaussians N(mean_a, cov_a), N(mean_b, cov_b) (means `(D,)`,
    covariances `(D, D)`): |mean_a - mean_b|^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)).

    The trace of the matrix square root is the sum of the square roots of the eigenvalues of
    the symmetric `s cov_b s` with `s = cov_a^(1/2)`, which avoids a non-symmetric sqrtm."""
    mean_a, mean_b, cov_a, cov_b = (x.double() for x in (mean_a, mean_b, cov_a, cov_b))
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between two feature sets `(N, D)` and `(M, D)`, each summarised by
    its mean and (unbiased) covariance: FID's formula, in whatever feature space is given."""
    if features_a.dim() != 2 or features_b.dim() != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) features, got {tuple(features_a.shape)} "
                         f"and {tuple(features_b.shape)}")
    if min(len(features_a), len(features_b)) < 2:
        raise ValueError("each feature set needs at least 2 samples for a covariance")
    a, b = features_a.double(), features_b.double()
    return frechet_distance_of_moments(a.mean(0), torch.cov(a.T).reshape(a.shape[1], -1),
                                       b.mean(0), torch.cov(b.T).reshape(b.shape[1], -1))


def pairwise_l1(samples: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean L1 distance over all pairs of K completions `(K, C, H, W)` of one input, over all
    pixels or inside `region` `(1, 1, H, W)` (scalar; NaN for K < 2 or an empty region)."""
    k = len(samples)
    if k < 2:
        return torch.tensor(math.nan, dtype=torch.float64)
    first, second = torch.triu_indices(k, k, offset=1)
    where = None if region is None else region.expand(len(first), 1, *region.shape[-2:])
    return l1(samples[first], samples[second], where).mean()


def best_of_k_psnr(samples: torch.Tensor, clean: torch.Tensor,
                   region: torch.Tensor | None = None) -> torch.Tensor:
    """The highest PSNR (dB) of K completions `(K, C, H, W)` of one input against its clean
    image `(1, C, H, W)`, over all pixels or inside `region` `(1, 1, H, W)` (scalar)."""
    where = None if region is None else region.expand(len(samples), 1, *region.shape[-2:])
    return psnr(samples, clean.expand_as(samples), where).max()


def real_identity_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """How alike a real-face recogniser finds the faces of images `a` and `b` `(B, 3, H, W)`
    in [-1, 1], pair by pair: the cosine `(B,)` in [-1, 1] of SFace's features
    (`real_faces`), each face aligned by its own five points (YuNet); NaN where either image
    shows YuNet no face. The same person scores >= `real_faces.SAME_PERSON_COSINE` (0.363)."""
    _check_pair(a, b, None)
    features_a = features_of_images(to_uint8(a))
    features_b = features_of_images(to_uint8(b))
    return torch.from_numpy(cosine(features_a, features_b).astype(np.float64))


# The seam step's rings: pixels within SEAM_RING of the occlusion's border on either side,
# compared through local means over a (2 SEAM_WINDOW + 1)^2 window.
SEAM_RING, SEAM_WINDOW = 3, 3
# A result pixel within this of the masked input in every channel (1.5 levels of an 8-bit
# image, in [-1, 1] units) still shows the mask.
UNCHANGED_TOLERANCE = 3 / 255


def _box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of `(B, C, H, W)` over a (2 radius + 1)^2 window around each pixel (zeros past the
    border), same size."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius,
                        count_include_pad=True) * (2 * radius + 1) ** 2


def border_rings(region: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixels of `region` `(B, 1, H, W)` within `width` of its border, and those outside
    it within `width`: two `(B, 1, H, W)` maps in {0, 1}, of `region`'s dtype."""
    inside = (region > 0.5).to(region)
    return inside * dilate(1 - inside, width), (1 - inside) * dilate(inside, width)


def boundary_step(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """How far `image` `(B, 3, H, W)` jumps across the border of `region` `(B, 1, H, W)`:
    for each pixel of the inner ring (region pixels within `SEAM_RING` of the border), the
    colour distance between the mean of the inner ring's pixels and the mean of the outer
    ring's pixels (outside, within `SEAM_RING`) in its window; averaged over the inner-ring
    pixels that have both nearby. `(B,)`; NaN without a border."""
    image = image.double()
    inner, outer = border_rings(region.double(), SEAM_RING)
    inner_count, outer_count = _box_sum(inner, SEAM_WINDOW), _box_sum(outer, SEAM_WINDOW)
    inner_mean = _box_sum(image * inner, SEAM_WINDOW) / inner_count.clamp(min=1)
    outer_mean = _box_sum(image * outer, SEAM_WINDOW) / outer_count.clamp(min=1)
    where = inner * (outer_count > 0)
    return region_mean((inner_mean - outer_mean).norm(dim=1, keepdim=True), where)


def seam_step(result: torch.Tensor, clean: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The jump of `result` across the border of the painted `region`, over the clean image's
    jump at the same place (`boundary_step`): 1.0 is as seamless as the truth, larger is a
    visible edge. Images `(B, 3, H, W)` in [-1, 1], region `(B, 1, H, W)`; `(B,)`."""
    _check_pair(result, clean, region)
    return boundary_step(result, region) / boundary_step(clean, region)


def mean_lab(images: torch.Tensor, region: torch.Tensor) -> np.ndarray:
    """Mean CIE Lab colour `(B, 3)` of `images` `(B, 3, H, W)` in [-1, 1] inside `region`
    `(B, 1, H, W)` (sRGB, D65, scikit-image's `rgb2lab`); NaN for an empty region."""
    rgb = ((images.detach().double().clamp(-1, 1) + 1) / 2).movedim(1, -1).cpu().numpy()
    lab = torch.from_numpy(rgb2lab(rgb, channel_axis=-1)).movedim(-1, 1)
    return region_mean_per_channel(lab, region.cpu()).numpy()


def region_mean_per_channel(values: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of `(B, C, H, W)` values per image and channel inside `region` `(B, 1, H, W)`:
    `(B, C)`; NaN for an empty region."""
    weight = region.to(values)
    total = weight.flatten(1).sum(1)
    means = (values * weight).flatten(2).sum(2) / total[:, None]
    return torch.where(total[:, None] > 0, means, torch.nan)


def colour_error(result: torch.Tensor, clean: torch.Tensor,
                 region: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference (Delta E) `(B,)` between the mean Lab colour of `result`
    inside `region` and that of `clean` in the same region: a painting that is pinker or
    darker than the face it replaces scores high even when its detail is right. About 1 is
    just noticeable; NaN for an empty region."""
    _check_pair(result, clean, region)
    painted, truth = mean_lab(result, region), mean_lab(clean, region)
    return torch.from_numpy(np.asarray(deltaE_ciede2000(painted, truth, channel_axis=-1),
                                       dtype=np.float64))


def border_colour_error(result: torch.Tensor, region: torch.Tensor, within: torch.Tensor,
                        width: int = 8) -> torch.Tensor:
    """CIEDE2000 colour difference `(B,)` between the mean Lab colours of `result`
    `(B, 3, H, W)` in [-1, 1] just inside `region` `(B, 1, H, W)` (the painted pixels within
    `width` of its border) and just outside it (the visible ones within `width`), both only
    where `within` `(B, 1, H, W)` is 1 (e.g. the face, so that the background does not count).
    Needs no clean image: on a real photo it asks whether the painted cheeks have the colour
    of the visible cheeks above them. NaN where either side is empty."""
    inner, outer = border_rings(region.to(result), width)
    within = (within > 0.5).to(result)
    painted, visible = inner * within, outer * within
    return torch.from_numpy(np.asarray(
        deltaE_ciede2000(mean_lab(result, painted), mean_lab(result, visible), channel_axis=-1),
        dtype=np.float64))


def mask_left(result: torch.Tensor, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share `(B,)` in [0, 1] of the true `mask`'s pixels `(B, 1, H, W)` that still show it in
    `result`: left as the `masked` input was (within `UNCHANGED_TOLERANCE` in every channel),
    because the painted occlusion stopped short of them. NaN for a face without a mask."""
    _check_pair(result, masked, mask)
    unchanged = ((result.double() - masked.double()).abs()
                 <= UNCHANGED_TOLERANCE).all(1, keepdim=True)
    return region_mean(unchanged.double(), mask > 0.5)
