"""How often the fit rasterises (`fitting.RASTER_EVERY`): it keeps the triangle under each pixel
for that many steps and computes only the barycentrics anew. Chosen on faces of the training
split that training never saw, never on the test faces: per choice, the time to fit them (N3D
excluded) and the landmark NME of the fitted face against their exact landmarks.

    python benchmarks/choose_raster_every.py --run runs/cpu [--faces 96] [--every 1 2 3 4 6 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.evaluation.n3d import unseen_training_faces
from unmasklib.fitting import RASTER_EVERY, FaceFit
from unmasklib.guidance import fitted, guidance_of, n3d_outputs
from unmasklib.host_speed import resnet50_step_seconds
from unmasklib.metrics import landmark_errors
from unmasklib.trained import load_n3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a run with a trained N3D")
    parser.add_argument("--faces", type=int, default=96)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2, 3, 4, 6, 10])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    first = profile.train_samples
    unseen = unseen_training_faces(profile, args.faces)
    masked, landmarks = unseen["masked"], unseen["landmarks"]
    face_model = face3d.load_face_model()
    guidance = guidance_of(n3d_outputs(load_n3d(profile, args.run), masked),
                           profile.occlusion_dilation)
    print(f"ResNet-50 forward+backward on this host: {resnet50_step_seconds():.2f} s")
    print(f"Profile {profile.name}, {args.faces} training-split faces never trained on "
          f"(train {first}-{first + args.faces - 1}), {profile.fit_steps} fit steps "
          f"(the library rasterises every {RASTER_EVERY}):\n")
    print("| rasterise every | fit time (s) | NME mean | NME std |\n|---|---|---|---|")
    for every in args.every:
        fit = FaceFit(face_model, profile.image_size, profile.fit_steps, profile.fit_lr,
                      profile.fit_prior_weight, raster_every=every)
        start = time.perf_counter()
        coeffs = fitted(guidance, masked, fit).coeffs
        seconds = time.perf_counter() - start
        with torch.no_grad():
            found = face3d.render_faces(face_model, coeffs, profile.image_size).landmarks
        nme = landmark_errors(found, landmarks).mean(1)
        print(f"| {every} | {seconds:.1f} | {nme.mean():.4f} | {nme.std():.4f} |", flush=True)


if __name__ == "__main__":
    main()
