"""The two real face photos that installed packages ship, so nothing is downloaded: Grace
Hopper's portrait (matplotlib's sample data), where settings for photos are chosen, and
scikit-image's astronaut, the test photo, which is only reported on."""

from __future__ import annotations

import matplotlib.cbook
import numpy as np
import skimage.data

from unmasklib.images import load_rgb

PHOTOS = ("hopper", "astronaut")


def real_photo(name: str) -> np.ndarray:
    """The photo `name` (one of `PHOTOS`) as uint8 RGB `(H, W, 3)`."""
    if name == "hopper":
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            return load_rgb(file)
    if name == "astronaut":
        return skimage.data.astronaut()
    raise ValueError(f"no photo {name!r}: the photos are {PHOTOS}")
