"""Can the fit read the face model's traits from the visible face, whatever N3D learnt?

Masked faces of the training split that training never saw, fitted (`FaceFit`, the profile's
settings) from their true pose and light with shape, colour and expression at the model's
mean, inside their true occlusion. Prints the landmark NME per region before and after. A
face model whose new traits the fit cannot read from the visible face makes every later
figure worse however well N3D trains, so run this on a changed face model before a demo.

    python benchmarks/fit_from_mean.py [--profile cpu] [--faces 48] [--steps 60]
"""

from __future__ import annotations

import argparse
import time

import torch

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.data import wears_mask
from unmasklib.evaluation.n3d import unseen_training_faces
from unmasklib.fitting import FaceFit
from unmasklib.host_speed import resnet50_step_seconds
from unmasklib.metrics import LANDMARK_REGIONS, landmark_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--faces", type=int, default=48, help="unseen faces (masked ones kept)")
    parser.add_argument("--steps", type=int, help="fit steps (default: the profile's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    model = face3d.load_face_model()
    unseen = unseen_training_faces(profile, args.faces)
    worn = wears_mask(unseen["mask_type"])
    truth, masked, occlusion = (unseen[key][worn] for key in ("coeffs", "masked", "occlusion"))
    start = truth.clone()
    for block in ("identity", "texture", "expression"):
        start[:, model.layout.slice(block)] = 0
    steps = profile.fit_steps if args.steps is None else args.steps
    fit = FaceFit(model, profile.image_size, steps, profile.fit_lr, profile.fit_prior_weight)
    began = time.perf_counter()
    fitted = fit(masked, occlusion, start)
    seconds = time.perf_counter() - began

    def landmarks(coeffs: torch.Tensor) -> torch.Tensor:
        return face3d.render_faces(model, coeffs, profile.image_size).landmarks

    true_points = landmarks(truth)
    print(f"ResNet-50 forward+backward on this host: {resnet50_step_seconds():.2f} s")
    print(f"{len(truth)} masked unseen faces, profile {profile.name}, {steps} fit steps "
          f"({seconds:.0f} s); landmark NME per region")
    print(f"{'':>8} " + " ".join(f"{name:>7}" for name in LANDMARK_REGIONS) + f" {'all':>7}")
    for name, coeffs in (("mean", start), ("fitted", fitted)):
        errors = landmark_errors(landmarks(coeffs), true_points)
        regions = " ".join(f"{errors[:, list(points)].mean():7.4f}"
                           for points in LANDMARK_REGIONS.values())
        print(f"{name:>8} {regions} {errors.mean():7.4f}")


if __name__ == "__main__":
    main()
