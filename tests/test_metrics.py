"""Image metrics against scikit-image on the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from unmasklib import metrics


def pair(seed: int = 0, size: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=generator) * 2 - 1
    b = (a + 0.3 * torch.randn(2, 3, size, size, generator=generator)).clamp(-1, 1)
    return a, b


def hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).double().numpy()


def test_psnr_and_l1_whole_and_in_a_region():
    a, b = pair()
    region = torch.zeros(2, 1, 40, 40)
    region[0, :, 5:20, 8:30] = 1
    region[1, :, 20:, :] = 1
    for k in range(2):
        assert metrics.psnr(a, b)[k] == pytest.approx(
            peak_signal_noise_ratio(hwc(a[k]), hwc(b[k]), data_range=2.0), abs=1e-9)
        inside = region[k, 0].bool().numpy()
        assert metrics.psnr(a, b, region)[k] == pytest.approx(
            peak_signal_noise_ratio(hwc(a[k])[inside], hwc(b[k])[inside], data_range=2.0),
            abs=1e-9)
        assert metrics.l1(a, b, region)[k] == pytest.approx(
            np.abs(hwc(a[k])[inside] - hwc(b[k])[inside]).mean(), abs=1e-12)
    assert torch.isinf(metrics.psnr(a, a)).all()
    assert torch.isnan(metrics.psnr(a, b, torch.zeros_like(region))).all()


def test_ssim_matches_scikit_image():
    a, b = pair(1)
    ours = metrics.ssim(a, b)
    region = torch.zeros(2, 1, 40, 40)
    region[:, :, 10:28, 6:33] = 1  # away from the border, where padding conventions differ
    ours_region = metrics.ssim(a, b, region)
    for k in range(2):
        reference, full = structural_similarity(
            hwc(a[k]), hwc(b[k]), data_range=2.0, channel_axis=2, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False, full=True)
        assert ours[k] == pytest.approx(reference, abs=1e-9)
        inside = region[k, 0].bool().numpy()
        assert ours_region[k] == pytest.approx(full[inside].mean(), abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)


def test_shape_errors_are_clear():
    a, b = pair()
    with pytest.raises(ValueError, match="one shape"):
        metrics.psnr(a, b[:, :, :20])
    with pytest.raises(ValueError, match="region"):
        metrics.ssim(a, b, torch.ones(2, 3, 40, 40))


def test_mean_std_skips_nan():
    mean, std, count = metrics.mean_std(torch.tensor([1.0, float("nan"), 3.0]))
    assert (mean, count) == (2.0, 2) and std == pytest.approx(np.std([1, 3], ddof=1))


def test_occlusion_iou_by_counting():
    predicted = torch.zeros(3, 1, 6, 6)
    target = torch.zeros(3, 1, 6, 6)
    predicted[0, 0, :3, :4] = 1  # 12 pixels
    target[0, 0, 1:4, 2:6] = 1  # 12 pixels, 4 shared (rows 1-2, columns 2-3)
    predicted[1, 0, 2, 2] = 1  # a pixel found where there is nothing
    assert metrics.occlusion_iou(predicted, target).tolist() == [4 / 20, 0.0, 1.0]


def test_uncovered_share_by_counting():
    target = torch.zeros(3, 1, 4, 5)
    target[:, :, 1:3, 1:4] = 1                       # 6 pixels
    found = torch.zeros(3, 1, 4, 5)
    found[0, :, 1:2, :] = 1                          # covers the top row's 3 of them
    found[1, :, :, :] = 1                            # covers all
    target[2] = 0                                    # nothing to cover
    share = metrics.uncovered_share(found, target)
    assert share[:2].tolist() == [3 / 6, 0.0]
    assert torch.isnan(share[2])


def test_landmark_errors_and_nme_by_hand():
    target = torch.zeros(1, 68, 2)
    target[0, :, 0] = torch.arange(68.0)
    target[0, 36], target[0, 45] = torch.tensor([10.0, 20.0]), torch.tensor([50.0, 20.0])
    predicted = target.clone()
    predicted[0, 5] += torch.tensor([3.0, 4.0])  # one point 5 px off, eyes 40 px apart
    errors = metrics.landmark_errors(predicted, target)
    assert errors[0, 5].item() == pytest.approx(5 / 40)
    assert errors.sum().item() == pytest.approx(5 / 40)
    assert errors.mean(1).item() == pytest.approx(5 / 68 / 40)  # the NME


def test_landmark_regions_cover_the_68_points_once():
    points = [k for region in metrics.LANDMARK_REGIONS.values() for k in region]
    assert sorted(points) == list(range(68))


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    # Diagonal covariances commute: FD = |dm|^2 + sum_i (s_a,i - s_b,i)^2 with s the std.
    mean_a, mean_b = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    std_a, std_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 0.5, 0.5])
    distance = metrics.frechet_distance_of_moments(mean_a, torch.diag(std_a ** 2),
                                           mean_b, torch.diag(std_b ** 2))
    expected = float((mean_a - mean_b).square().sum() + (std_a - std_b).square().sum())
    assert distance == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_rotated_gaussians_matches_scipy_sqrtm():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g,
                                                                           dtype=torch.float64)
    cov_a, cov_b = x @ x.T + 0.1 * torch.eye(4), y @ y.T + 0.1 * torch.eye(4)
    mean_a, mean_b = torch.randn(4, generator=g), torch.randn(4, generator=g)
    root = scipy.linalg.sqrtm(cov_a.numpy() @ cov_b.numpy()).real
    expected = (float((mean_a - mean_b).double().square().sum())
                + np.trace(cov_a.numpy() + cov_b.numpy() - 2 * root))
    distance = metrics.frechet_distance_of_moments(mean_a, cov_a, mean_b, cov_b)
    assert distance == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_samples_uses_their_moments():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    b = torch.randn(4000, 2, generator=g, dtype=torch.float64) * 2 + 3
    # Exact for the sample moments; close to the population value (|dm|^2 = 18, stds 1 vs 2).
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance_of_moments(
        a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T)), rel=1e-12)
    assert metrics.frechet_distance(a, b) == pytest.approx(18 + 2 * 1.0, rel=0.05)
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(a[:1], b)


def test_diversity_and_best_of_k_against_a_hand_count():
    clean = torch.zeros(1, 3, 4, 4)
    samples = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.5, -1.0)])
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2, :] = 1
    samples[:, :, 2:, :] = 0.25  # outside the region every completion is the same
    # pairs: |0 - 0.5|, |0 + 1|, |0.5 + 1| -> mean 1.0 inside; 0 outside.
    assert float(metrics.pairwise_l1(samples, region)) == pytest.approx(1.0)
    assert float(metrics.pairwise_l1(samples, 1 - region)) == 0
    # the best of three inside the region is the exact one (0 error): inf dB
    assert float(metrics.best_of_k_psnr(samples, clean, region)) == float("inf")
    assert float(metrics.best_of_k_psnr(samples[1:], clean, region)) == pytest.approx(
        10 * np.log10(4 / 0.25))
    assert np.isnan(float(metrics.pairwise_l1(samples[:1], region)))


def two_colour_image(inside: tuple[float, float, float], outside: tuple[float, float, float],
                     region: torch.Tensor) -> torch.Tensor:
    return torch.where(region > 0.5, torch.tensor(inside).view(1, 3, 1, 1),
                       torch.tensor(outside).view(1, 3, 1, 1))


def test_seam_step_of_two_flat_colours_by_hand():
    region = torch.zeros(1, 1, 24, 24)
    region[..., :12] = 1  # the left half, the whole height
    result = two_colour_image((0.2, 0.0, 0.0), (-0.2, 0.1, 0.0), region)
    clean = two_colour_image((0.0, 0.0, 0.0), (0.1, 0.0, 0.0), region)
    # Every inner-ring pixel sees only the inside colour in its inner ring and only the
    # outside colour in its outer ring: the steps are |a - b| = sqrt(0.4^2 + 0.1^2) and 0.1.
    assert metrics.boundary_step(result, region)[0] == pytest.approx(0.17 ** 0.5, abs=1e-6)
    assert metrics.seam_step(result, clean, region)[0] == pytest.approx(
        0.17 ** 0.5 / 0.1, rel=1e-5)
    assert metrics.seam_step(clean, clean, region)[0] == pytest.approx(1.0)
    assert torch.isnan(metrics.seam_step(result, clean, torch.zeros_like(region))).all()


def test_seam_step_sees_an_offset_but_not_a_continued_gradient():
    ramp = torch.linspace(-0.8, 0.8, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    region = torch.zeros(1, 1, 32, 32)
    region[..., 10:22, 10:22] = 1
    # the truth continued: the same jump as the clean image; an offset inside: a larger one
    assert metrics.seam_step(ramp, ramp, region)[0] == pytest.approx(1.0)
    shifted = torch.where(region > 0.5, ramp + 0.3, ramp)
    assert metrics.seam_step(shifted, ramp, region)[0] > 3


def test_colour_error_of_black_and_white_is_100():
    # CIEDE2000 between L* 100 and L* 0 (a* = b* = 0): mean L* 50 makes S_L = 1, so
    # Delta E = Delta L* = 100.
    region = torch.ones(1, 1, 8, 8)
    white, black = torch.ones(1, 3, 8, 8), -torch.ones(1, 3, 8, 8)
    assert metrics.colour_error(white, black, region)[0] == pytest.approx(100, abs=0.01)
    assert metrics.colour_error(white, white, region)[0] == pytest.approx(0, abs=1e-9)


def test_colour_error_compares_the_regions_mean_lab_colours():
    from skimage.color import deltaE_ciede2000, rgb2lab

    region = torch.zeros(1, 1, 10, 10)
    region[..., 2:8, 2:6] = 1
    colours = np.array([[0.9, 0.6, 0.5], [0.7, 0.4, 0.3], [0.2, 0.3, 0.9]])  # in [0, 1]
    top = torch.zeros(1, 1, 10, 10)
    top[..., :5, :] = 1
    result = two_colour_image(tuple(colours[0] * 2 - 1), tuple(colours[1] * 2 - 1), top)
    result = torch.where(region > 0.5, result, -torch.ones(1, 3, 1, 1))
    clean = torch.full((1, 3, 10, 10), 0.0) + torch.tensor(colours[2] * 2 - 1).view(1, 3, 1, 1)
    lab = rgb2lab(colours[None], channel_axis=-1)[0]
    # half of the region (rows 2-4) has the first colour, half (rows 5-7) the second
    painted = (lab[0] + lab[1]) / 2
    expected = deltaE_ciede2000(painted, lab[2])
    assert metrics.colour_error(result.float(), clean.float(), region)[0] == pytest.approx(
        expected, abs=1e-3)


def test_border_colour_error_compares_the_face_just_inside_and_just_outside():
    from skimage.color import deltaE_ciede2000, rgb2lab

    # Painted rows 10-19 (pink), visible rows 0-9 (yellow); the face is columns 0-11, the
    # rest a blue background that must not count; within 3 pixels of the border only,
    # so a different colour further inside (rows 13-19) does not count either.
    colours = np.array([[0.9, 0.6, 0.6], [0.8, 0.75, 0.4], [0.1, 0.2, 0.9], [0.0, 0.0, 0.0]])
    image = torch.zeros(1, 3, 20, 16)
    for rows, colour in ((slice(10, 13), 0), (slice(0, 10), 1), (slice(13, 20), 3)):
        image[..., rows, :] = torch.tensor(colours[colour] * 2 - 1).view(1, 3, 1, 1)
    image[..., 12:] = torch.tensor(colours[2] * 2 - 1).view(1, 3, 1, 1)
    region = torch.zeros(1, 1, 20, 16)
    region[..., 10:, :] = 1
    face = torch.zeros(1, 1, 20, 16)
    face[..., :12] = 1
    lab = rgb2lab(colours[None], channel_axis=-1)[0]
    expected = deltaE_ciede2000(lab[0], lab[1])
    got = metrics.border_colour_error(image, region, face, width=3)[0]
    assert got == pytest.approx(expected, abs=1e-3) and expected > 10
    assert torch.isnan(metrics.border_colour_error(image, region, torch.zeros_like(face)))[0]


def test_mask_left_counts_the_unpainted_mask_pixels():
    generator = torch.Generator().manual_seed(0)
    masked = torch.rand(2, 3, 10, 10, generator=generator) * 2 - 1
    mask = torch.zeros(2, 1, 10, 10)
    mask[0, :, 2:6, 2:7] = 1  # 20 pixels
    painted_region = torch.zeros_like(mask)
    painted_region[0, :, 2:6, 2:6] = 1  # 16 of them painted, the column 6 left
    result = torch.where(painted_region > 0.5, masked + 0.5, masked)
    result[0, 0, 0, 0] += 0.5  # a change outside the mask does not count
    result[0, 1, 3, 6] += 0.5 * metrics.UNCHANGED_TOLERANCE  # still the mask's colour
    left = metrics.mask_left(result, masked, mask)
    assert left[0] == pytest.approx(4 / 20)
    assert torch.isnan(left[1])
