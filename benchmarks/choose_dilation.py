"""How far to grow N3D's occlusion map before painting (`Profile.occlusion_dilation`), chosen
on faces of the training split that training never saw (`evaluation.occlusion_remnants`),
never on the test faces: per dilation, the share of each masked face's true occlusion left
outside the grown map (it would keep the mask's colour) and the skin painted needlessly. The
smallest dilation whose mean remnant meets the target is the one to use. With `--bands`, the
map is first snapped to the image's colour edges within each band (`Profile.occlusion_snap`,
`guidance.snap_to_colour_edges`), one table per band; `--rounds`: at most these many cuts in
a row instead of `guidance.SNAP_ROUNDS`, one table per band and number.

    python benchmarks/choose_dilation.py --run runs/cpu [--faces 200] [--target 0.005] \
        [--bands 0 8 12 16] [--rounds 1 3]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from unmasklib import guidance
from unmasklib.config import get_profile
from unmasklib.evaluation import occlusion_remnants
from unmasklib.trained import load_n3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a run with a trained N3D")
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--target", type=float, default=0.005,
                        help="the largest mean share of the occlusion left (default 0.5 %%)")
    parser.add_argument("--dilations", type=int, nargs="+", default=list(range(7)))
    parser.add_argument("--bands", type=int, nargs="+", default=[0],
                        help="snap the map within these many pixels first (0: as N3D gives it)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[guidance.SNAP_ROUNDS],
                        help="at most these many cuts in a row")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    n3d, first = load_n3d(profile, args.run), profile.train_samples
    print(f"Profile {profile.name}, masked faces among the {args.faces} training-split faces "
          f"never trained on (train {first}-{first + args.faces - 1}); the profile grows N3D's "
          f"map by {profile.occlusion_dilation} px, or snaps it within "
          f"{profile.occlusion_snap} px and grows that by {profile.snapped_dilation} px")
    for band, rounds in itertools.product(args.bands, args.rounds):
        guidance.SNAP_ROUNDS = rounds
        remnants = occlusion_remnants(n3d, profile, args.faces, args.dilations, band)
        print(f"\nat most {rounds} cuts\n{remnants.table()}")
        chosen = remnants.smallest_meeting(args.target)
        print(f"\nsnapped within {band} px: smallest dilation with a mean remnant <= "
              f"{100 * args.target:.2f} %: {chosen if chosen is not None else 'none tried'}")


if __name__ == "__main__":
    main()
