"""Snapping N3D's occlusion map to the colour edges of the mask it covers
(`guidance.snap_to_colour_edges`, `guidance.occlusion_map`, `pipeline.snapped_on_photo`)."""

import cv2
import numpy as np
import pytest
import torch

from unmasklib.guidance import occlusion_map, snap_to_colour_edges
from unmasklib.images import dilate, erode, from_uint8
from unmasklib.pipeline import snapped_on_photo

SKIN, MASK = (205, 160, 140), (110, 190, 175)


def masked_picture(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy skin-coloured picture with a mask-coloured rectangle; the rectangle `(H, W)`."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((size, size, 3), np.float64)
    pixels[:] = SKIN
    mask = np.zeros((size, size), bool)
    mask[size // 2:size - 10, 20:size - 20] = True
    pixels[mask] = MASK
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), mask


def test_a_map_short_of_the_mask_and_over_the_skin_snaps_onto_the_mask() -> None:
    pixels, mask = masked_picture()
    guess = np.roll(mask, (3, -4), axis=(0, 1))  # misses a strip on two sides, spills on two
    guess[mask.nonzero()[0].min() + 6:, 30:40] = False  # and has a hole deep inside
    iou = (guess & mask).sum() / (guess | mask).sum()
    snapped = snap_to_colour_edges(pixels, guess, band=6)
    assert iou < 0.85
    assert (snapped == mask).all()


def test_one_cut_moves_the_border_by_at_most_the_band() -> None:
    pixels, mask = masked_picture()
    far = np.roll(mask, 12, axis=1)  # 12 px to the right of the mask
    snapped = snap_to_colour_edges(pixels, far, band=3, rounds=1)
    as_tensor = torch.from_numpy(far).float()[None, None]
    assert (snapped <= (dilate(as_tensor, 3)[0, 0].numpy() > 0)).all()
    assert (snapped >= (erode(as_tensor, 3)[0, 0].numpy() > 0)).all()
    assert not (snapped == far).all()  # it did move, towards the mask
    assert (snapped & mask).sum() > (far & mask).sum()


def test_nothing_to_snap_returns_the_map_and_the_cut_is_deterministic() -> None:
    pixels, mask = masked_picture()
    for occlusion in (np.zeros_like(mask), np.ones_like(mask)):
        assert (snap_to_colour_edges(pixels, occlusion, 5) == occlusion).all()
    guess = np.roll(mask, 2, axis=0)
    assert (snap_to_colour_edges(pixels, guess, 0) == guess).all()
    assert (snap_to_colour_edges(pixels, guess, 4) == snap_to_colour_edges(pixels, guess, 4)).all()
    with pytest.raises(ValueError, match="band >= 0"):
        snap_to_colour_edges(pixels, guess, -1)
    with pytest.raises(ValueError, match="uint8"):
        snap_to_colour_edges(pixels[:-1], guess, 4)


def test_occlusion_map_snaps_each_image_then_grows() -> None:
    pictures = [masked_picture(seed=k) for k in range(2)]
    images = torch.stack([from_uint8(p) for p, _ in pictures])
    logits = torch.stack([torch.from_numpy(np.roll(m, 3, axis=1)).float() * 8 - 4
                          for _, m in pictures])[:, None]
    found = occlusion_map(logits, 1, images, band=6)
    truth = torch.stack([torch.from_numpy(m).float() for _, m in pictures])[:, None]
    assert torch.equal(found, dilate(truth, 1))
    assert torch.equal(occlusion_map(logits, 1), dilate((logits > 0).float(), 1))


def test_a_photo_is_snapped_at_its_own_resolution() -> None:
    """A photo twice the crop's size: the band and the dilation, given in crop pixels, are
    twice as many photo pixels, and the map follows the mask's edge pixel for pixel."""
    pixels, mask = masked_picture(size=192)
    matrix = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # photo -> a 96 px crop
    guess = np.roll(mask, (6, -8), axis=(0, 1))
    assert (snapped_on_photo(pixels, guess, matrix, dilation=0, band=6) == mask).all()
    grown = snapped_on_photo(pixels, guess, matrix, dilation=1, band=6)
    expected = dilate(torch.from_numpy(mask).float()[None, None], 2)[0, 0].numpy() > 0
    assert (grown == expected).all()


def test_a_small_mask_in_a_large_photo_is_cut_in_its_own_box() -> None:
    """Only the box around the map takes part: a 3000 px photo snaps as a small one would,
    and the pixels far outside the box stay out."""
    pixels, mask = masked_picture()
    photo = np.full((3000, 3000, 3), SKIN, np.uint8)
    photo[1000:1096, 2000:2096] = pixels
    truth = np.zeros((3000, 3000), bool)
    truth[1000:1096, 2000:2096] = mask
    guess = np.roll(truth, (3, -4), axis=(0, 1))
    assert (snap_to_colour_edges(photo, guess, band=6) == truth).all()


def test_a_map_thinner_than_the_band_grows_onto_the_mask_and_is_never_emptied() -> None:
    """N3D may catch only a strip of a mask it has not seen: no pixel of that strip is deeper
    than the band, so its middle is kept as sure mask and the cut grows it to the edges."""
    pixels, mask = masked_picture()
    strip = np.zeros_like(mask)
    rows = mask.nonzero()[0]
    strip[(rows.min() + rows.max()) // 2 - 2:(rows.min() + rows.max()) // 2 + 3, 30:66] = True
    snapped = snap_to_colour_edges(pixels, strip, band=20)
    assert (snapped == mask).all()


def test_a_cut_that_drops_most_of_the_map_gives_n3d_s_map_back(monkeypatch) -> None:
    """Where the cut finds no colour edge to follow and keeps less than half of the map (the
    astronaut's N95 with too narrow a box), N3D's map is the better guess."""
    pixels, mask = masked_picture()
    guess = np.roll(mask, 3, axis=1)

    def keep_the_sure_part_only(image, labels, *args):
        labels[labels != cv2.GC_FGD] = cv2.GC_BGD

    monkeypatch.setattr(cv2, "grabCut", keep_the_sure_part_only)
    assert (snap_to_colour_edges(pixels, guess, band=12) == guess).all()
    assert not (snap_to_colour_edges(pixels, guess, band=4) == guess).all()


def test_cuts_in_a_row_carry_a_map_far_from_the_mask_onto_it() -> None:
    """One cut moves the border by at most the band; further cuts start from the last map, so
    a map that caught only part of the mask reaches all of it, and a map already on the mask
    stops after the first."""
    pixels, mask = masked_picture()
    far = np.roll(mask, 12, axis=1)
    once = snap_to_colour_edges(pixels, far, band=3, rounds=1)
    again = snap_to_colour_edges(pixels, once, band=3, rounds=1)
    assert (snap_to_colour_edges(pixels, far, band=3, rounds=2) == again).all()
    assert not (once == mask).all()
    assert (snap_to_colour_edges(pixels, far, band=3, rounds=12) == mask).all()
    assert (snap_to_colour_edges(pixels, mask, band=3, rounds=5) == mask).all()
    with pytest.raises(ValueError, match="rounds"):
        snap_to_colour_edges(pixels, far, band=3, rounds=0)


def test_the_map_never_enters_where_a_mask_cannot_be() -> None:
    """What is `mask_free` (above the eyes, on a photo) leaves the map and is sure surroundings
    for the cut: a map spilling into it snaps onto the mask below it, and where the region
    overlaps the mask the map stops at the region's edge."""
    pixels, mask = masked_picture()
    top = mask.nonzero()[0].min()
    above = np.zeros_like(mask)
    above[:top] = True
    guess = np.roll(mask, (-5, 4), axis=(0, 1))  # spills 5 rows into `above`
    assert (guess & above).sum() > 100
    assert (snap_to_colour_edges(pixels, guess, band=6, mask_free=above) == mask).all()
    assert (snap_to_colour_edges(pixels, guess, band=0, mask_free=above) == guess & ~above).all()
    overlapping = np.roll(above, 8, axis=0)
    snapped = snap_to_colour_edges(pixels, guess, band=6, mask_free=overlapping)
    rest = mask & ~overlapping
    assert not (snapped & overlapping).any()
    assert (snapped & rest).sum() / (snapped | rest).sum() > 0.97
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    grown = snapped_on_photo(pixels, guess, matrix, dilation=2, band=6, mask_free=above)
    expected = dilate(torch.from_numpy(mask).float()[None, None], 2)[0, 0].numpy() > 0
    assert (grown == expected & ~above).all()
