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
