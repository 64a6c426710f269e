"""How much of each mask type N3D's map covers on a real face: scikit-image's astronaut wearing
a surgical, N95 and cloth mask (placed from her five points, `data.folder.mask_photo`),
unmasked by a run's networks with `find_face=True`.

Per mask type: the share of the drawn mask's pixels inside the occlusion that was painted
(issue 24's mark: >= 98 %), the share left in the picture, and SFace's cosine of the result to
her unmasked photo (same person at >= 0.363).

    python benchmarks/astronaut_masks.py --run runs/cpu [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import skimage.data

from unmasklib.alignment import find_face_points
from unmasklib.data.folder import mask_photo
from unmasklib.data.masks import MASK_TYPES
from unmasklib.images import from_uint8
from unmasklib.metrics import real_identity_similarity
from unmasklib.pipeline import Unmasker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/cpu", help="run folder with trained networks")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="mask styles drawn per type (mask_photo's seed)")
    args = parser.parse_args()
    unmasker = Unmasker.from_run(args.run)
    photo = skimage.data.astronaut()
    points = find_face_points(photo)
    truth = from_uint8(photo)[None]
    print(f"{'mask':>9} {'seed':>4} {'covered':>8} {'left':>6} {'SFace':>6}")
    for kind in MASK_TYPES:
        covered = []
        for seed in args.seeds:
            masked, worn = mask_photo(photo, points, kind, seed=seed)
            result = unmasker.unmask(masked, find_face=True, seed=0)
            share = (worn & result.occlusion).sum() / worn.sum()
            similarity = float(real_identity_similarity(from_uint8(result.image)[None], truth)[0])
            covered.append(share)
            print(f"{kind:>9} {seed:>4} {100 * share:7.2f}% {100 * (1 - share):5.2f}% "
                  f"{similarity:6.3f}")
        print(f"{kind:>9} mean {100 * np.mean(covered):7.2f}% (target >= 98 %)")


if __name__ == "__main__":
    main()
