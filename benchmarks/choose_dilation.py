"""How far to grow N3D's occlusion map before painting (`Profile.occlusion_dilation`), chosen
on faces of the training split that training never saw (train indices after the profile's
`train_samples`), never on the test faces.

For each dilation: the share of the true occlusion left outside the grown map (what would keep
the mask's colour in the result) and the share of extra pixels painted over needlessly, both
per masked face and relative to its occlusion. The smallest dilation whose mean remnant meets
the target is the one to use.

    python benchmarks/choose_dilation.py --run runs/cpu [--faces 200] [--target 0.005]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from unmasklib.config import get_profile
from unmasklib.data import as_one_batch, wears_mask
from unmasklib.data.synthetic import SyntheticMaskedFaces
from unmasklib.guidance import n3d_outputs, occlusion_map
from unmasklib.metrics import uncovered_share
from unmasklib.trained import load_n3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a run with a trained N3D")
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--target", type=float, default=0.005,
                        help="the largest mean share of the occlusion left (default 0.5 %%)")
    parser.add_argument("--dilations", type=int, nargs="+", default=list(range(7)))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    n3d = load_n3d(profile, args.run)
    first = profile.train_samples
    unseen = SyntheticMaskedFaces("train", size=first + args.faces, image_size=profile.image_size,
                                  seed=profile.seed, progress=False)
    batch = as_one_batch([unseen[i] for i in range(first, first + args.faces)])
    worn = wears_mask(batch["mask_type"])
    true = batch["occlusion"][worn]
    logits = n3d_outputs(n3d, batch["masked"]).occlusion_logits[worn]
    print(f"Profile {profile.name}, {int(worn.sum())} masked training-split faces never trained "
          f"on (train {first}-{first + args.faces - 1}); shares of each face's occlusion:\n")
    print("| dilation (px) | left: mean | median | max | painted needlessly: mean |")
    print("|---|---|---|---|---|")
    chosen = None
    for dilation in args.dilations:
        found = occlusion_map(logits, dilation)
        left = uncovered_share(found, true)
        extra = (found * (1 - true)).flatten(1).sum(1) / true.flatten(1).sum(1)
        print(f"| {dilation} | {100 * left.mean():.2f} % | {100 * left.median():.2f} % "
              f"| {100 * left.max():.1f} % | {100 * extra.mean():.1f} % |")
        if chosen is None and left.mean() <= args.target:
            chosen = dilation
    print(f"\nsmallest dilation with a mean remnant <= {100 * args.target:.2f} %: "
          f"{chosen if chosen is not None else 'none of those tried'} "
          f"(the profile has {profile.occlusion_dilation})")


if __name__ == "__main__":
    main()
