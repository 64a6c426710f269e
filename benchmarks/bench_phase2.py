"""Seconds per phase-2 training step, and the FLOPs of G and D.

    python benchmarks/bench_phase2.py [--configs paper cpu] [--repeats 3] [--threads 2]

One step is what the issue counts: N3D's forward pass on the masked faces (frozen, no
gradients), `face3d.render_faces` of its coefficients, one critic update (WGAN loss and
gradient penalty, which differentiates through D twice), G's forward and backward with every
term of L_G (the identity term through the profile's identity encoder, frozen), and G's Adam
update: `training.inpainting.inpainting_step` and the update, as `train_inpainting` runs
them.
Networks have random weights (only their cost matters here) and channels-last memory; batch 8
of synthetic samples generated in memory first.
Configurations: `paper` (ResNet-50 N3D, 256 px; target <= 2.8 s on 2 CPU cores) and `cpu`
(ResNet-18 N3D, 128 px). N3D and the identity encoder run in the profile's precision, as in
training (`paper`: bfloat16 where the CPU has it in hardware, else float32). The median of
`--repeats` timed steps follows one warm-up step; the paper step is also given against the
seed's inpainting step, scaled to this host by its ResNet-50 step (printed first).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from bench_phase1 import BATCH, CONFIGS, identity_encoder, synthetic_batch
from timing import bench_parser, median_seconds, seconds_line, seed_ratio, start_bench
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.models.n3d import N3D
from unmasklib.trained import build_inpainting
from unmasklib.training import adam, descend
from unmasklib.training.inpainting import inpainting_settings, inpainting_step

TARGET_SECONDS = {"paper": 2.8}


def forward_gflops(network: nn.Module, *inputs: torch.Tensor) -> float:
    """Forward GFLOPs of one sample (convolutions and matrix products)."""
    with FlopCounterMode(display=False) as counter:
        network(*inputs)
    return counter.get_total_flops() / 1e9


def phase2_step(config: str) -> Callable[[], None]:
    """One full phase-2 training step of `config`, ready to call repeatedly."""
    profile = get_profile(config)
    size = CONFIGS[config]["image_size"]
    face_model = face3d.load_face_model()
    batch = synthetic_batch(face_model, size)
    torch.manual_seed(0)
    n3d = N3D(**CONFIGS[config], layout=face_model.layout).requires_grad_(False).eval()
    encoder = identity_encoder(config)
    settings = inpainting_settings(profile, use_render=True)
    generator, critic = build_inpainting(settings, seed=0)
    n3d, encoder, generator, critic = (m.to(memory_format=torch.channels_last)
                                       for m in (n3d, encoder, generator, critic))
    g_optimizer, d_optimizer = adam(generator.parameters()), adam(critic.parameters())
    step_fn = inpainting_step(d_optimizer, n3d, face_model, encoder, settings, seed=0)

    def step() -> None:
        descend([g_optimizer], step_fn({"G": generator, "D": critic}, batch, 0)["total"])

    return step


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0], CONFIGS).parse_args()
    resnet = start_bench(args, BATCH)

    for config in args.configs:
        size = CONFIGS[config]["image_size"]
        settings = inpainting_settings(get_profile(config), use_render=True)
        generator, critic = build_inpainting(settings, seed=0)
        image, mask = torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size)
        print(f"\n[{config}] {size}x{size}, G width {settings['width']}, "
              f"D width {settings['critic_width']}: forward GFLOPs per image")
        print(f"  G {forward_gflops(generator, image, mask, image):7.3f}   "
              f"D {forward_gflops(critic, image, mask):7.3f}")
        seconds = median_seconds(phase2_step(config), args.repeats)
        print(seconds_line("phase-2 step", seconds, TARGET_SECONDS.get(config)), flush=True)
        if config == "paper":
            print(seed_ratio("phase-2", seconds, resnet))


if __name__ == "__main__":
    main()
