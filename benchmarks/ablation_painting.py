"""What each means of making the painting belong to the face adds: G variants trained on one
finished run's N3D and identity encoder, scored on the profile's masked held-out test faces
with the guidance the evaluation uses (N3D's map, the fitted coefficients).

    scratch        G paints colours from scratch, following the render as it is (the paper's)
    residual       G paints a correction of the render as it is
    matched        G paints a correction of the photo-matched render
                   (`painting.photo_matched_render`)
    matched paste  no G: the photo-matched render itself, pasted into N3D's map

Each G variant trains with the profile's settings into `<out>/<variant>/` (reused when it is
there), beside links to the run's data, N3D and identity encoder; the variant the profile
itself uses is the run's own G.

    python benchmarks/ablation_painting.py --run runs/cpu [--out runs/cpu/ablation]
        [--variants scratch residual matched "matched paste"] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from unmasklib.config import get_profile
from unmasklib.data import as_one_batch, held_out_faces, wears_mask
from unmasklib.evaluation import image_scores
from unmasklib.evaluation.n3d import held_out_guidance, held_out_guidance_file
from unmasklib.face3d import load_face_model, render_faces
from unmasklib.painting import paint, photo_matched_render
from unmasklib.trained import load_identity_encoder, load_n3d
from unmasklib.training.inpainting import train_inpainting

VARIANTS = {"scratch": {"residual_g": False, "matched_guide": False},
            "residual": {"residual_g": True, "matched_guide": False},
            "matched": {"residual_g": True, "matched_guide": True},
            "matched paste": None}
SHOWN = ("psnr_occluded", "ssim_occluded", "seam_step", "colour_error", "mask_left")


def linked_run(run: Path, folder: Path, same_g: bool) -> Path:
    """`folder` with links to `run`'s data sets, guidance cache, N3D and identity encoder, and
    to its G when the variant is the one the run trained (`same_g`)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name in ("n3d.pt", "identity.pt") + (("inpainting.pt",) if same_g else ()):
        if not (folder / name).exists():
            (folder / name).symlink_to((run / name).resolve())
    for item in (run / "data").iterdir():
        if not (folder / "data" / item.name).exists():
            (folder / "data" / item.name).symlink_to(item.resolve())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--run", type=Path, required=True, help="a finished run's folder")
    parser.add_argument("--out", type=Path, help="where the variants train (default "
                        "<run>/ablation)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or args.run / "ablation"
    base = get_profile(args.profile)
    model = load_face_model()
    n3d = load_n3d(base, args.run)
    test = as_one_batch(held_out_faces(base, args.run, progress=False))
    worn = wears_mask(test["mask_type"])
    _, guidance = held_out_guidance(n3d, test["masked"], base, model,
                                    held_out_guidance_file(args.run), progress=True)
    rows = {}
    for variant in args.variants:
        changes = VARIANTS[variant]
        start = time.perf_counter()
        if changes is None:
            render = render_faces(model, guidance.coeffs, base.image_size)
            results = photo_matched_render(render, test["masked"], guidance.occlusion)
        else:
            profile = dataclasses.replace(base, **changes)
            same_g = all(getattr(base, key) == value for key, value in changes.items())
            folder = linked_run(args.run, out / variant, same_g)
            generator, _ = train_inpainting(n3d, load_identity_encoder(profile, folder),
                                            profile, folder)
            results = paint(generator, model, test["masked"], guidance)
        scores = image_scores(results, test["clean"], test["masked"], test["occlusion"],
                              guidance.occlusion)
        rows[variant] = {name: float(scores[name][worn].nanmean()) for name in SHOWN}
        rows[variant].update({f"{name}_median": float(scores[name][worn].nanmedian())
                              for name in ("seam_step", "colour_error")})
        print(f"{variant}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\nProfile {base.name}, {int(worn.sum())} masked held-out test faces, means "
          "(medians for seam and colour):\n")
    print("| variant | PSNR occl. (dB) | SSIM occl. | seam step (median) | ΔE (median) "
          "| mask left (%) |")
    print("|---|---|---|---|---|---|")
    for variant, row in rows.items():
        print(f"| {variant} | {row['psnr_occluded']:.2f} | {row['ssim_occluded']:.3f} "
              f"| {row['seam_step_median']:.2f} | {row['colour_error_median']:.2f} "
              f"| {100 * row['mask_left']:.2f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
