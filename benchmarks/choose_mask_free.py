"""Where a worn mask never is (`alignment.MASK_FREE_HALF_WIDTH`), chosen on the faces of the
training split that training never saw, never on the test faces: for each half width, the share
of each masked face's true occlusion (mask, loops and straps) that lies above the line through
its eyes within that many eye distances of their midpoint (`alignment.above_the_eyes`, the true
five points). The widest region that takes none of any mask is the one to keep N3D's map off.

With `--found`, the eyes are those YuNet finds in each masked face (`find_face_points`, as a
photo's are), which a mask moves: the region must hold for them too.

    python benchmarks/choose_mask_free.py [--profile cpu] [--faces 200] [--found]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from unmasklib.alignment import (
    FaceNotFoundError,
    above_the_eyes,
    find_face_points,
    five_points,
)
from unmasklib.config import get_profile
from unmasklib.data import wears_mask
from unmasklib.evaluation.n3d import unseen_training_faces
from unmasklib.images import to_uint8


def found_eyes(image: torch.Tensor) -> np.ndarray | None:
    """The eyes `(2, 2)` YuNet finds in a face `(3, H, W)` in [-1, 1]; None: no face."""
    try:
        return find_face_points(to_uint8(image))[:2]
    except FaceNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--half-widths", type=float, nargs="+",
                        default=[0.5, 0.75, 1.0, 1.25, 10.0])
    parser.add_argument("--found", action="store_true",
                        help="the eyes YuNet finds in the masked faces, not the true ones")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    unseen = unseen_training_faces(profile, args.faces)
    worn = wears_mask(unseen["mask_type"]).numpy()
    occlusion = unseen["occlusion"][worn, 0].numpy() > 0.5
    eyes = five_points(unseen["landmarks"][worn])[:, :2].numpy()
    if args.found:  # faces YuNet does not find are left out
        found = [found_eyes(image) for image in unseen["masked"][worn]]
        kept = [k for k, e in enumerate(found) if e is not None]
        eyes, occlusion = np.stack([found[k] for k in kept]), occlusion[kept]
    size = occlusion.shape[-1]
    print(f"Profile {profile.name}: {len(occlusion)} masked faces among the {args.faces} "
          f"training-split faces never trained on; {'found' if args.found else 'true'} eyes")
    print(f"{'half width':>10} {'region (% of crop)':>18} {'mask taken, mean':>16} "
          f"{'max':>7} {'faces touched':>13}")
    for half_width in args.half_widths:
        regions = np.stack([above_the_eyes(e, size, half_width) for e in eyes])
        taken = (occlusion & regions).sum((1, 2)) / occlusion.sum((1, 2))
        print(f"{half_width:10.2f} {100 * regions.mean():17.1f}% {100 * taken.mean():15.3f}% "
              f"{100 * taken.max():6.2f}% {(taken > 0).sum():13d}")


if __name__ == "__main__":
    main()
