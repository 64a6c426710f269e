"""How strongly a photo's five points anchor the 3D fit of an `Unmasker` session
(`fitting.PHOTO_POINT_WEIGHT`), chosen on a real photo that is not the astronaut (the test
photo of notebook 06): Grace Hopper's portrait from matplotlib's sample data, wearing each
synthetic mask kind. For each weight: the fitted face's five points against those YuNet finds
on her unmasked photo, in eye distances.

    python benchmarks/choose_point_weight.py --run runs/cpu [--weights 0 0.1 0.3 1 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from real_photos import real_photo

from unmasklib import Unmasker
from unmasklib.alignment import find_face_points, five_points, transform_points
from unmasklib.config import get_profile
from unmasklib.data import MASK_KINDS
from unmasklib.data.folder import mask_photo
from unmasklib.face3d import render_faces
from unmasklib.fitting import PHOTO_FIT_STOPS, FaceFit
from unmasklib.guidance import n3d_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a run with N3D and G")
    parser.add_argument("--weights", type=float, nargs="+", default=[0, 0.1, 0.3, 1, 3])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    unmasker = Unmasker.from_run(args.run, profile)
    photo = real_photo("hopper")
    truth = find_face_points(photo)
    errors = {weight: [] for weight in args.weights}
    for kind in (kind for kind in MASK_KINDS if kind != "none"):
        masked, _ = mask_photo(photo, truth, kind, seed=0)
        session = unmasker.session(masked, find_face=True)
        target = torch.from_numpy(transform_points(truth, session.matrix)).float()
        eye_distance = (target[0] - target[1]).norm()
        start = n3d_outputs(unmasker.n3d, session.working).coeffs
        for weight in args.weights:
            fit = FaceFit.of_profile(profile, unmasker.face_model, weight, stops=PHOTO_FIT_STOPS)
            coeffs = fit(session.working, session.guidance.occlusion, start, session.anchors)
            points = five_points(render_faces(unmasker.face_model, coeffs.to(unmasker.device),
                                              profile.image_size).landmarks).cpu()[0]
            error = float(((points - target).norm(dim=-1) / eye_distance).mean())
            errors[weight].append(error)
            print(f"{kind}: weight {weight:g}: five-point error {error:.3f}", flush=True)
    print("\n| point weight | mean five-point error (eye distances), all mask kinds |")
    print("|---|---|")
    for weight, values in errors.items():
        print(f"| {weight:g} | {np.mean(values):.3f} |")
    best = min(errors, key=lambda weight: np.mean(errors[weight]))
    print(f"\nsmallest error at weight {best:g}")


if __name__ == "__main__":
    main()
