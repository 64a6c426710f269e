"""Speed of `render_faces` against ResNet-50, forward + backward, batch 8 at 256x256.

    python benchmarks/bench_render.py [--batch 8] [--size 256] [--repeats 5] [--reuse]

Prints both median times and their ratio; the target is ratio <= 0.15 (rendering must never be
what slows training down). ResNet-50 is built with random weights: only its cost matters here.
`--reuse` renders with the triangle under each pixel taken from a first render, as the fit's
steps between rasterisations do (`fitting.RASTER_EVERY`); e.g. `--batch 32 --size 128 --reuse`
is a step of the batched fit's renderer, `--batch 1 --size 128 --reuse` one of an editing
session's.
"""

from __future__ import annotations

import argparse

import torch

from unmasklib import face3d
from unmasklib.host_speed import median_seconds, resnet50_step_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a first render's triangle ids (a fit step)")
    args = parser.parse_args()
    torch.manual_seed(0)

    model = face3d.load_face_model()
    coeffs = model.sample_coeffs(args.batch, generator=torch.Generator().manual_seed(0))
    tri_id = face3d.render_faces(model, coeffs, args.size).tri_id if args.reuse else None

    def render_step() -> None:
        c = coeffs.clone().requires_grad_(True)
        face3d.render_faces(model, c, args.size, tri_id=tri_id).image.mean().backward()

    render = median_seconds(render_step, args.repeats)
    reference = resnet50_step_seconds(args.batch, args.size, args.repeats)
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, {args.size}x{args.size}"
          + (", triangle ids reused" if args.reuse else ""))
    print(f"render_faces forward+backward: {render * 1000:8.1f} ms")
    print(f"ResNet-50    forward+backward: {reference * 1000:8.1f} ms")
    print(f"ratio render / ResNet-50: {render / reference:.3f} (target <= 0.15)")


if __name__ == "__main__":
    main()
