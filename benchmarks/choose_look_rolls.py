"""At which turns of a photo `find_face_points` takes its first look (`alignment.LOOK_ROLLS`),
chosen on Grace Hopper's portrait from matplotlib's sample data, never on the astronaut (the
test photo, `--photo astronaut` only measures): the photo bare and wearing each mask kind
(`data.folder.mask_photo`), rolled about her face by each angle, and the mean distance of the
five points found from the truth, in eye distances. The truth is where `find_face_points`
puts them on the bare upright photo with its upright look alone (for the astronaut: her
points marked by hand).

    python benchmarks/choose_look_rolls.py [--photo hopper] [--rolls 0 15 30 45 -30 -45 60]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from bench_real_faces import ASTRONAUT_POINTS
from real_photos import PHOTOS, real_photo

from unmasklib import alignment
from unmasklib.alignment import FaceNotFoundError, find_face_points, transform_points
from unmasklib.data import MASK_KINDS
from unmasklib.data.folder import mask_photo

LOOK_SETS = {"0": (0.0,), "0, +-30": (0.0, 30.0, -30.0), "0, +-45": (0.0, 45.0, -45.0),
             "0, +-25, +-50": (0.0, 25.0, -25.0, 50.0, -50.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", choices=PHOTOS, default="hopper")
    parser.add_argument("--rolls", type=float, nargs="+", default=[0, 15, 30, 45, -30, -45, 60])
    args = parser.parse_args()
    photo = real_photo(args.photo)
    if args.photo == "hopper":
        alignment.LOOK_ROLLS = (0.0,)  # the photo is upright: the truth owes nothing to turns
        points = find_face_points(photo)
    else:
        points = ASTRONAUT_POINTS
    centre = tuple(points[:2].mean(0))
    print(f"{args.photo}, rolled by {args.rolls} degrees about the eyes' midpoint; mean "
          f"five-point error in eye distances (largest; faces not found)")
    for name, looks in LOOK_SETS.items():
        alignment.LOOK_ROLLS = looks
        errors, start = [], time.perf_counter()
        for kind in MASK_KINDS:
            image = photo if kind == "none" else mask_photo(photo, points, kind, seed=0)[0]
            for degrees in args.rolls:
                turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
                rolled = cv2.warpAffine(image, turn, photo.shape[1::-1],
                                        borderMode=cv2.BORDER_REFLECT)
                truth = transform_points(points, turn)
                try:
                    found = find_face_points(rolled)
                except FaceNotFoundError:
                    errors.append(np.nan)
                    continue
                errors.append(np.linalg.norm(found - truth, axis=1).mean()
                              / np.linalg.norm(truth[1] - truth[0]))
        seconds = (time.perf_counter() - start) / len(errors)
        print(f"  first look at {name:>14} deg: {np.nanmean(errors):.3f} ({np.nanmax(errors):.2f}; "
              f"{int(np.isnan(errors).sum())}), {seconds:.2f} s a photo")


if __name__ == "__main__":
    main()
