"""Which pixels the fit should compare on faces with whole heads (data v4), measured on
training-split faces that training never saw: landmark NME of N3D alone and of the fit over
the render's photo_region (the library's), over its whole face_mask (v2's region), with the
true hidden_face left out as well (an oracle: a photo has no such map), and with the
per-pixel colour error truncated at 0.15 / 0.25 / 0.35 (a robust fit that ignores hair).

    python benchmarks/fit_regions.py --run runs/cpu [--faces 96]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from unmasklib import face3d, fitting, losses
from unmasklib.config import get_profile
from unmasklib.evaluation.n3d import unseen_training_faces
from unmasklib.fitting import FaceFit
from unmasklib.guidance import guidance_of, n3d_outputs
from unmasklib.host_speed import resnet50_step_seconds
from unmasklib.metrics import landmark_errors
from unmasklib.trained import load_n3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run with a trained N3D")
    parser.add_argument("--faces", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(2)
    profile = get_profile(args.run.name)
    unseen = unseen_training_faces(profile, args.faces)
    masked, landmarks, hidden = unseen["masked"], unseen["landmarks"], unseen["hidden_face"]
    model = face3d.load_face_model()
    guidance = guidance_of(n3d_outputs(load_n3d(profile, args.run), masked),
                           profile.occlusion_dilation)
    render, errors = fitting.render_faces, fitting.photometric_errors

    def nme(coeffs: torch.Tensor) -> str:
        with torch.no_grad():
            found = face3d.render_faces(model, coeffs, profile.image_size).landmarks
        error = landmark_errors(found, landmarks).mean(1)
        return f"{error.mean():.4f} ± {error.std():.4f}"

    def whole_face(*a, **k):
        out = render(*a, **k)
        out.photo_region = out.face_mask
        return out

    def without_hidden(image, images, region, visible):
        return errors(image, images, region, visible * (1 - hidden))

    def truncated(tau: float):
        def error(image, images, region, visible):
            weight = region * visible
            distance = losses.colour_distance(image, images).clamp(max=tau)
            return (distance * weight).sum((1, 2, 3)) / weight.sum((1, 2, 3)).clamp(min=1)
        return error

    variants = {"photo_region (the library's)": (render, errors),
                "face_mask (v2's region)": (whole_face, errors),
                "true hidden_face left out too (oracle)": (render, without_hidden)}
    variants.update({f"error truncated at {tau}": (render, truncated(tau))
                     for tau in (0.15, 0.25, 0.35)})
    print(f"ResNet-50 forward+backward on this host: {resnet50_step_seconds():.2f} s")
    print(f"{args.faces} training-split faces never trained on; N3D alone: "
          f"{nme(guidance.coeffs)}\n\n| fit over | NME | time |\n|---|---|---|")
    for name, (fitting.render_faces, fitting.photometric_errors) in variants.items():
        fit = FaceFit.of_profile(profile, model)
        start = time.perf_counter()
        # One batch, so that the oracle's hidden maps line up with the faces.
        coeffs = fit(masked, guidance.occlusion, guidance.coeffs, batch_size=len(masked))
        print(f"| {name} | {nme(coeffs)} | {time.perf_counter() - start:.0f} s |", flush=True)
    fitting.render_faces, fitting.photometric_errors = render, errors


if __name__ == "__main__":
    main()
