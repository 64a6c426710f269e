"""Image metrics against scikit-image on the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_landmark_nme_by_hand():
    target = torch.zeros(1, 68, 2)
    target[0, :, 0] = torch.arange(68.0)
    target[0, 36], target[0, 45] = torch.tensor([10.0, 20.0]), torch.tensor([50.0, 20.0])
    predicted = target.clone()
    predicted[0, 5] += torch.tensor([3.0, 4.0])  # one point 5 px off
    assert metrics.landmark_nme(predicted, target).item() == pytest.approx(5 / 68 / 40)
