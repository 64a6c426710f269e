"""The fit's settings (`Profile.fit_steps`, `fit_lr`, `fit_tolerance`, `fitting.RASTER_EVERY`),
chosen on faces of the training split that training never saw, never on the test faces. Per
setting: the time to fit them in batches of 32 (N3D excluded), the median time to fit one face
alone (what opening an editing session pays), and the landmark NME of the fitted face against
their exact landmarks, and the steps a face took on average (fewer than `steps` where a
tolerance lets a settled face stop).

    python benchmarks/choose_fit.py --run runs/cpu [--faces 96] \\
        [--settings 60:0.04:4 80:0.04:4:0.001 ...]

A setting is `steps:lr:rasterise_every[:tolerance]`; without `--settings`, the profile's own
and the ones that vary how often the fit rasterises.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.evaluation.n3d import unseen_training_faces
from unmasklib.fitting import RASTER_EVERY, FaceFit
from unmasklib.guidance import Guidance, fitted, guidance_of, n3d_outputs
from unmasklib.host_speed import resnet50_step_seconds
from unmasklib.metrics import landmark_errors
from unmasklib.trained import load_n3d

ALONE = 8  # faces fitted one at a time for the single-face time


def parse_setting(text: str) -> tuple[int, float, int, float | None]:
    steps, lr, every, *tolerance = text.split(":")
    return int(steps), float(lr), int(every), float(tolerance[0]) if tolerance else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a run with a trained N3D")
    parser.add_argument("--faces", type=int, default=96)
    parser.add_argument("--settings", nargs="+", type=parse_setting)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    own = (profile.fit_steps, profile.fit_lr, RASTER_EVERY, profile.fit_tolerance)
    settings = args.settings or [own] + [(*own[:2], every, own[3]) for every in (1, 2, 3, 6, 10)
                                         if every != RASTER_EVERY]
    first = profile.train_samples
    unseen = unseen_training_faces(profile, args.faces)
    masked, landmarks = unseen["masked"], unseen["landmarks"]
    face_model = face3d.load_face_model()
    guidance = guidance_of(n3d_outputs(load_n3d(profile, args.run), masked),
                           profile.occlusion_dilation)
    print(f"ResNet-50 forward+backward on this host: {resnet50_step_seconds():.2f} s")
    print(f"Profile {profile.name}, {args.faces} training-split faces never trained on "
          f"(train {first}-{first + args.faces - 1}); the profile's setting "
          f"{':'.join(map(str, own))}:\n")
    print("| steps | lr | rasterise every | tolerance | steps taken, mean "
          "| fit time, batches of 32 (s) "
          f"| one face alone (ms, median of {ALONE}) | NME mean | NME std |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for steps, lr, every, tolerance in settings:
        fit = FaceFit(face_model, profile.image_size, steps, lr, profile.fit_prior_weight,
                      raster_every=every, tolerance=tolerance)
        start = time.perf_counter()
        coeffs, taken = fit(masked, guidance.occlusion, guidance.coeffs, return_steps=True)
        seconds = time.perf_counter() - start
        alone = []
        for i in range(ALONE):
            one = Guidance(guidance.occlusion[i:i + 1], guidance.coeffs[i:i + 1])
            start = time.perf_counter()
            fitted(one, masked[i:i + 1], fit)
            alone.append(1000 * (time.perf_counter() - start))
        with torch.no_grad():
            found = face3d.render_faces(face_model, coeffs, profile.image_size).landmarks
        nme = landmark_errors(found, landmarks).mean(1)
        print(f"| {steps} | {lr:g} | {every} | {tolerance or '—'} | "
              f"{taken.double().mean():.1f} | {seconds:.1f} | "
              f"{statistics.median(alone):.0f} | {nme.mean():.4f} | {nme.std():.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
