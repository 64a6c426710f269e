"""How much of each mask type N3D's map covers on a real face: scikit-image's astronaut wearing
a surgical, N95 and cloth mask (placed from her five points, `data.folder.mask_photo`),
unmasked by a run's networks with `find_face=True`.

Per mask type: the share of the drawn mask's pixels inside the occlusion that was painted
(issue 24's mark: >= 98 %), the share left in the picture, the painted map's IoU with the
drawn mask, and SFace's cosine of the result to her unmasked photo (same person at >= 0.363);
then her bare photo: how much of it is painted though no mask is worn.
`--photo hopper`: Grace Hopper's portrait from matplotlib's sample data instead, the real
photo settings may be chosen on (the astronaut is kept for testing); `--bands`: snap N3D's map
within these many crop pixels instead of the profile's `occlusion_snap` (0: not snapped, the
map grown by `occlusion_dilation` as before snapping); `--rounds`: at most these many cuts in a
row instead of `guidance.SNAP_ROUNDS`.

    python benchmarks/astronaut_masks.py --run runs/cpu [--seeds 0 1 2] [--photo hopper] \
        [--bands 0 8 12 16] [--rounds 1 3]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from real_photos import PHOTOS, real_photo

from unmasklib import guidance
from unmasklib.alignment import find_face_points
from unmasklib.config import get_profile
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
    parser.add_argument("--photo", choices=PHOTOS, default="astronaut")
    parser.add_argument("--bands", type=int, nargs="+",
                        help="snap within these many crop pixels (default: the profile's)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[guidance.SNAP_ROUNDS],
                        help="at most these many cuts in a row")
    args = parser.parse_args()
    unmasker = Unmasker.from_run(args.run)
    profile = get_profile(Path(args.run).name)
    photo = real_photo(args.photo)
    points = find_face_points(photo)
    truth = from_uint8(photo)[None]
    for band, rounds in itertools.product(args.bands or [profile.occlusion_snap], args.rounds):
        unmasker.band, guidance.SNAP_ROUNDS = band, rounds
        unmasker.dilation = profile.snapped_dilation if band else profile.occlusion_dilation
        print(f"\n{args.photo}, map snapped within {band} px (at most {rounds} cuts), grown by "
              f"{unmasker.dilation} px")
        print(f"{'mask':>9} {'seed':>4} {'covered':>8} {'left':>6} {'IoU':>6} {'SFace':>6}")
        for kind in MASK_TYPES:
            covered = []
            for seed in args.seeds:
                masked, worn = mask_photo(photo, points, kind, seed=seed)
                result = unmasker.unmask(masked, find_face=True, seed=0)
                share = (worn & result.occlusion).sum() / worn.sum()
                iou = (worn & result.occlusion).sum() / (worn | result.occlusion).sum()
                similarity = float(real_identity_similarity(from_uint8(result.image)[None],
                                                            truth)[0])
                covered.append(share)
                print(f"{kind:>9} {seed:>4} {100 * share:7.2f}% {100 * (1 - share):5.2f}% "
                      f"{iou:6.3f} {similarity:6.3f}")
            print(f"{kind:>9} mean {100 * np.mean(covered):7.2f}% (target >= 98 %)")
        bare = unmasker.unmask(photo, find_face=True, seed=0)
        similarity = float(real_identity_similarity(from_uint8(bare.image)[None], truth)[0])
        print(f"{'no mask':>9} painted {100 * bare.occlusion.mean():.2f}% of the photo "
              f"(should be none), SFace {similarity:.3f}")


if __name__ == "__main__":
    main()
