"""The fit's outlier scale on real photos (`fitting.PHOTO_OUTLIER_SCALE`) and the ring of
visible skin that says how the photo differs from the render (`painting.TYPICAL_RING`), chosen
on Grace Hopper's portrait from matplotlib's sample data; the astronaut is the test photo,
shown for reading only.

A photo has what the face model cannot draw: hair over the forehead, glasses, a collar beside
the jaw. Compared pixel by pixel with the render, they pull the fitted light and skin colour
towards theirs, and the render G follows under the mask takes that colour. Each photo wears
each mask kind (`data.folder.mask_photo`, mask styles `--seeds`) and is unmasked with
`find_face=True` by a run's networks, the fit's colour distance bounded at each scale
(`losses.bounded_distance`; "none": the plain distance). Per scale, over the masks: the colour
error (CIEDE2000 of the mean colour of the painted part of the mask against her unmasked
photo there), PSNR inside the drawn mask, and SFace's cosine of the result to her photo.
`--rings`: the photo-matched guide's typical difference taken over the visible face within
each share of the image's side of the occlusion (1: the whole visible face), one row per
scale and ring.

    python benchmarks/choose_photo_fit.py --run runs/cpu [--photos hopper astronaut] \\
        [--scales none 0.05 0.1 0.2] [--rings 0.125] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import torch
from real_photos import PHOTOS, real_photo

from unmasklib import painting
from unmasklib.alignment import find_face_points
from unmasklib.config import get_profile
from unmasklib.data.folder import mask_photo
from unmasklib.data.masks import MASK_TYPES
from unmasklib.fitting import PHOTO_FIT_STOPS, PHOTO_POINT_WEIGHT, FaceFit
from unmasklib.images import from_uint8
from unmasklib.metrics import colour_error, psnr, real_identity_similarity
from unmasklib.pipeline import Unmasker


def parse_scale(text: str) -> float | None:
    return None if text == "none" else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/cpu"))
    parser.add_argument("--photos", nargs="+", choices=PHOTOS, default=list(PHOTOS))
    parser.add_argument("--scales", nargs="+", type=parse_scale,
                        default=[None, 0.05, 0.1, 0.2])
    parser.add_argument("--rings", type=float, nargs="+", default=[painting.TYPICAL_RING])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    profile = get_profile(args.run.name)
    unmasker = Unmasker.from_run(args.run)
    for name in args.photos:
        photo = real_photo(name)
        truth = from_uint8(photo)[None]
        points = find_face_points(photo)
        worn_masks = [(kind, *mask_photo(photo, points, kind, seed=seed))
                      for kind in MASK_TYPES for seed in args.seeds]
        role = "chosen on" if name == "hopper" else "test photo, not chosen on"
        print(f"\n{name} ({role}), {len(worn_masks)} masks ({', '.join(MASK_TYPES)} x seeds "
              f"{args.seeds})\n")
        print("| outlier scale | ring | colour error ΔE, mean | ... per kind "
              "| PSNR in the mask (dB) | SFace to her photo |\n|---|---|---|---|---|---|")
        for scale, ring in itertools.product(args.scales, args.rings):
            unmasker.fit = FaceFit.of_profile(profile, unmasker.face_model, PHOTO_POINT_WEIGHT,
                                              scale, PHOTO_FIT_STOPS)
            painting.TYPICAL_RING = ring
            rows = []
            for kind, masked, worn in worn_masks:
                result = unmasker.unmask(masked, find_face=True, seed=0)
                image = from_uint8(result.image)[None]
                painted = torch.from_numpy(worn & result.occlusion)[None, None].float()
                rows.append((kind, float(colour_error(image, truth, painted)[0]),
                             float(psnr(image, truth, torch.from_numpy(worn)[None, None]
                                        .float())[0]),
                             float(real_identity_similarity(image, truth)[0])))
            per_kind = " / ".join(f"{statistics.mean(r[1] for r in rows if r[0] == kind):.2f}"
                                  for kind in MASK_TYPES)
            print(f"| {scale or 'none'} | {ring:g} | {statistics.mean(r[1] for r in rows):.2f} "
                  f"| {per_kind} | {statistics.mean(r[2] for r in rows):.2f} "
                  f"| {statistics.mean(r[3] for r in rows):.3f} |", flush=True)


if __name__ == "__main__":
    main()
