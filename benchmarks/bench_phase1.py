"""Seconds per phase-1 training step, and the occlusion head's FLOPs against the backbone's.

    python benchmarks/bench_phase1.py [--configs paper cpu] [--precisions fp32 bf16]
                                      [--repeats 3] [--threads 2]

One step is what `train_n3d` does (`training.n3d.n3d_step`): N3D forward, `face3d.render_faces`
of the predicted coefficients, every loss term of L_3D (the identity term through the
project's identity encoder, built as its profile builds it, with random weights: only its
cost matters here), backward, Adam update. Batch 8 of synthetic samples (generated in memory
first). Configurations: the `paper` profile (ResNet-50, 256 px; target <= 1.7 s on 2 CPU
cores) and `cpu` (ResNet-18, 128 px). Networks hold channels-last weights, as in training;
precision `bf16` runs them under autocast (bfloat16) where the CPU has bfloat16 in hardware
(AVX-512 or AMX; elsewhere in float32, as training does), the renderer and the losses stay in
float32 either way. Each profile trains in its `n3d_precision` (paper: bf16, cpu: fp32),
marked "(the profile's)" in the output; the other precision is printed beside it.
The median of `--repeats` timed steps follows one warm-up step; the paper step is also
given against the seed's N3D step, scaled to this host by its ResNet-50 step (printed first).
Other work on the machine slows every figure: check `uptime` first, or run it twice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timing import bench_parser, median_seconds, seconds_line, seed_ratio, start_bench
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.data import SyntheticMaskedFaces, collate
from unmasklib.models.identity import IdentityEncoder
from unmasklib.models.n3d import N3D
from unmasklib.trained import build_n3d
from unmasklib.training import adam, descend
from unmasklib.training.n3d import (
    autocast_dtype_of,
    n3d_settings,
    n3d_step,
    runnable_dtype,
)

TARGET_SECONDS = {"paper": 1.7}
CONFIGS = {"paper": {"backbone": "resnet50", "image_size": 256},
           "cpu": {"backbone": "resnet18", "image_size": 128}}
BATCH = 8
SEED_HEAD_IN, SEED_HEAD_OUT = 1792, 512  # the seed's 3x3 occlusion conv, run at 1/4 resolution


def conv_flops(n3d: N3D) -> dict[str, float]:
    """Forward FLOPs of one image (convolutions and matrix products) per part of N3D."""
    size = n3d.image_size
    with FlopCounterMode(display=False) as counter:
        n3d(torch.zeros(1, 3, size, size))
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    heads = {"occlusion head": counts["N3D.occlusion_head"],
             "gate + coefficient head": counts["N3D.gate"] + counts["N3D.coeff_head"]}
    # The stages sit in a ModuleList, which is never called itself: the backbone is the rest.
    return {"backbone": counts["N3D"] - sum(heads.values()), **heads}


def identity_encoder(config: str) -> nn.Module:
    profile = get_profile(config)
    encoder = IdentityEncoder(profile.identity_backbone, profile.identity_width,
                              profile.identity_image_size)
    return encoder.requires_grad_(False).eval()


def synthetic_batch(face_model: face3d.MorphableModel, size: int, count: int = BATCH) -> dict:
    """`count` synthetic training samples at `size` px, generated in memory (seed 0)."""
    data = SyntheticMaskedFaces("train", size=count, image_size=size, seed=0,
                                model=face_model, progress=False)
    return collate([data[i] for i in range(count)])


def phase1_step(config: str, precision: str) -> Callable[[], None]:
    """One full phase-1 training step of profile `config` at `precision`, as `train_n3d` takes
    it (`training.n3d.n3d_step`, channels-last networks), ready to call repeatedly."""
    profile = get_profile(config)
    face_model = face3d.load_face_model()
    batch = synthetic_batch(face_model, profile.image_size)
    settings = {**n3d_settings(profile), "precision": precision}
    n3d, encoder = (m.to(memory_format=torch.channels_last) for m in (
        build_n3d(settings, profile.seed, face_model), identity_encoder(config)))
    optimizer = adam(n3d.parameters())
    step_fn = n3d_step(face_model, encoder, settings, profile.seed)

    def step() -> None:
        descend([optimizer], step_fn({"n3d": n3d}, batch, 0)["total"])

    return step


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], CONFIGS)
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"],
                        default=["fp32", "bf16"])
    args = parser.parse_args()
    resnet = start_bench(args, BATCH)

    for config in args.configs:
        settings = CONFIGS[config]
        size = settings["image_size"]
        flops = conv_flops(N3D(**settings))
        seed_head = 2 * (size // 4) ** 2 * SEED_HEAD_IN * SEED_HEAD_OUT * 9
        backbone = flops.pop("backbone")
        print(f"\n[{config}] {settings['backbone']}, {size}x{size}: forward GFLOPs per image")
        print(f"  {'backbone':36s} {backbone / 1e9:7.3f}")
        for part, value in flops.items():
            print(f"  {part:36s} {value / 1e9:7.3f}  ({value / backbone:.1%} of the backbone)")
        print(f"  {'the seed head (3x3 conv, 1792->512)':36s} {seed_head / 1e9:7.3f}  "
              f"({seed_head / backbone:.1f}x the backbone; from its shape)")
        for precision in args.precisions:
            seconds = median_seconds(phase1_step(config, precision), args.repeats)
            trained = " (the profile's)" if precision == get_profile(config).n3d_precision else ""
            asked = autocast_dtype_of(precision)
            runs = ("" if runnable_dtype("cpu", asked) == asked
                    else ", run as float32: this CPU has no bfloat16 in hardware")
            print(seconds_line(f"phase-1 step, {precision}{trained}{runs}", seconds,
                               TARGET_SECONDS.get(config)), flush=True)
            if config == "paper":
                print(seed_ratio("phase-1", seconds, resnet))


if __name__ == "__main__":
    main()
