"""Where a training step's time goes: `torch.profiler` tables of the operators that take the
most time, for each step the demo repeats thousands of times: the identity encoder's step
(notebook 02), N3D's phase-1 step (03), the inpainting phase-2 step (04) and a step of the fit
of N3D's coefficients (03-06). Each at the profile's own batch size and resolution, networks
with random weights (only their cost matters) and channels-last memory as in training.

    python benchmarks/profile_steps.py [--profile cpu] [--repeats 3] [--rows 8] [--threads 2]

Prints, per step, its mean wall time and a markdown table of the top `--rows` operators by
self CPU time (time in the operator itself, children excluded) over `--repeats` profiled
steps after one warm-up, with each one's share of the step; the README's tables are its output.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from bench_phase1 import phase1_step, synthetic_batch
from bench_phase2 import phase2_step
from timing import load_note
from torch.profiler import ProfilerActivity

from unmasklib import face3d
from unmasklib.config import get_profile
from unmasklib.fitting import RASTER_EVERY, FaceFit
from unmasklib.host_speed import resnet50_step_seconds
from unmasklib.trained import build_identity_models
from unmasklib.training import adam, descend
from unmasklib.training.identity import identity_settings, identity_step


def identity_training_step(profile_name: str) -> Callable[[], None]:
    profile = get_profile(profile_name)
    settings = identity_settings(profile)
    models = {name: module.to(memory_format=torch.channels_last) for name, module
              in build_identity_models(settings, profile.seed).items()}
    optimizer = adam([p for module in models.values() for p in module.parameters()])
    batch = synthetic_batch(face3d.load_face_model(), profile.image_size,
                            profile.identity_batch)
    batch["identity"] = batch["identity"] % settings["num_classes"]
    step_fn = identity_step(profile.seed, settings["max_shift"])
    return lambda: descend([optimizer], step_fn(models, batch, 0)["total"])


def fit_steps(profile_name: str, faces: int = 32) -> Callable[[], None]:
    """`RASTER_EVERY` fit steps of `faces` faces (one rasterisation, the rest reuse it): the
    caller divides by `RASTER_EVERY`."""
    profile = get_profile(profile_name)
    face_model = face3d.load_face_model()
    batch = synthetic_batch(face_model, profile.image_size, faces)
    fit = FaceFit(face_model, profile.image_size, RASTER_EVERY, profile.fit_lr,
                  profile.fit_prior_weight)
    start = face_model.zero_coeffs(faces)
    return lambda: fit(batch["masked"], batch["occlusion"], start, batch_size=faces)


def profile_table(step: Callable[[], None], repeats: int, rows: int, per_call: int = 1) -> str:
    """The mean step time and the top `rows` operators by self CPU time, as markdown."""
    step()
    start = time.perf_counter()
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(repeats):
            step()
    steps = repeats * per_call
    seconds = (time.perf_counter() - start) / steps
    averages = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total,
                      reverse=True)
    total = sum(e.self_cpu_time_total for e in averages)
    lines = [f"step {1000 * seconds:.0f} ms (profiled)\n",
             "| operator | self CPU per step (ms) | share | calls per step |",
             "|---|---|---|---|"]
    for event in averages[:rows]:
        lines.append(f"| `{event.key}` | {event.self_cpu_time_total / 1000 / steps:.1f} | "
                     f"{100 * event.self_cpu_time_total / total:.0f} % | "
                     f"{event.count / steps:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu", choices=["cpu", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}; {load_note()}")
    print(f"ResNet-50 forward+backward (256 px, batch 8) on this host: "
          f"{resnet50_step_seconds():.2f} s")
    chosen = get_profile(args.profile)
    steps = {
        f"identity encoder, batch {chosen.identity_batch}":
            (identity_training_step(args.profile), 1),
        "N3D phase 1, batch 8": (phase1_step(args.profile, chosen.n3d_precision), 1),
        "inpainting phase 2, batch 8": (phase2_step(args.profile), 1),
        f"fit, 32 faces (triangles reused {RASTER_EVERY} steps)":
            (fit_steps(args.profile), RASTER_EVERY),
    }
    for name, (step, per_call) in steps.items():
        print(f"\n### {name} ({args.profile} profile, {chosen.image_size} px)\n", flush=True)
        print(profile_table(step, args.repeats, args.rows, per_call), flush=True)


if __name__ == "__main__":
    main()
