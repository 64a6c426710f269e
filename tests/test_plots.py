"""Image tables draw crops pixel for pixel: what the reader sees is the image, not a resample."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from unmasklib.images import to_uint8  # noqa: E402
from unmasklib.plots import cell_pixels, image_table  # noqa: E402


def drawn_pixels(figure, ax) -> np.ndarray:
    """The RGB pixels Agg drew inside `ax`."""
    figure.canvas.draw()
    canvas = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    box = ax.get_window_extent()
    top = canvas.shape[0] - round(box.y1)
    return canvas[top:top + round(box.height), round(box.x0):round(box.x0) + round(box.width)]


@pytest.mark.parametrize("size", [64, 128])
def test_crops_are_drawn_one_image_pixel_per_screen_pixel_or_a_whole_multiple(size):
    images = torch.rand(2, 3, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    figure = image_table(list(images), ["a", "b"], ["x", "y", "z"])
    factor = cell_pixels(size) // size
    assert cell_pixels(size) % size == 0 and cell_pixels(size) >= 100
    for r in range(2):
        for c in range(3):
            ax = figure.axes[r * 3 + c]
            expected = to_uint8(images[r, c]).repeat(factor, 0).repeat(factor, 1)
            assert np.array_equal(drawn_pixels(figure, ax), expected)
    matplotlib.pyplot.close(figure)
