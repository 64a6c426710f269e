"""Run profiles: how big and how long, from a CI smoke run to the paper's settings.

    smoke  tiny and fast: what CI and `pytest --nbval-lax notebooks/` run
    cpu    the default: a laptop CPU finishes every notebook in minutes
    paper  the seed's settings (800 + 200 samples at 256x256); meant for a GPU

Notebooks and command-line entry points read the profile name from `UNMASK_PROFILE`.
Artefacts of a profile live under `runs/<profile>/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    name: str
    image_size: int      # side of every image, pixels
    train_samples: int   # synthetic training set size
    test_samples: int    # synthetic test set size
    seed: int = 0
    checkpoint_every: int = 250  # training steps between periodic checkpoints
    # Identity encoder (notebook 02). The synthetic set is cheap, so it sees many more
    # identities than the phase sets (8 samples per identity; it reads the same cache):
    # held-out AUC grows with their number (cpu: 500 identities 0.935, 1000 identities 0.963).
    identity_train_samples: int = 8000
    identity_test_samples: int = 800   # held-out verification: 100 identities
    identity_steps: int = 1200
    identity_batch: int = 64
    identity_lr: float = 1e-3          # Adam's rate until the mid-point, a tenth after it
    identity_backbone: str = "small"   # "small" (BasicBlock ResNet), "resnet18", "resnet50"
    identity_width: int = 32           # first stage's channels of the "small" backbone
    identity_image_size: int = 64      # working resolution the encoder resizes its input to
    # N3D (notebook 03). The seed's lr 1e-4 suits its 5,000 steps on a GPU; a laptop's
    # 2,000 steps need a larger one. lambda_id, lambda_lm: the seed's phase-1 weights.
    n3d_backbone: str = "resnet18"     # "small", "resnet18", "resnet50" (the paper's)
    n3d_width: int = 32                # first stage's channels of the "small" backbone
    n3d_detail_width: int = 8          # the occlusion head's full-resolution step (0: none)
    n3d_steps: int = 2000
    n3d_batch: int = 8
    n3d_lr: float = 5e-4
    # The share of the steps after which the rate drops to a tenth: the seed's mid-point, but
    # 2,000 steps are still learning there. Chosen on 200 unseen training-split faces
    # (identities 1000-1024, neither trained on nor tested): NME 0.078 at 0.5, 0.075 at 0.75
    # and 0.9, same training time.
    n3d_lr_drop_at: float = 0.5
    lambda_id: float = 0.1
    lambda_lm: float = 0.001
    n3d_unmasked_probability: float = 0.25  # share of training faces shown without their mask
    # "bf16": N3D and the identity encoder run under autocast in bfloat16, in phase 1 and,
    # frozen, in phase 2 (renderer, losses, G and D stay float32); fast on GPUs and on CPUs
    # with native bfloat16 (AMX, AVX512-BF16), slow on CPUs without it, so the laptop
    # profiles keep "fp32".
    n3d_precision: str = "fp32"
    # Inpainting (notebook 04): G and its critic D. lambda_*: the seed's phase-2 weights;
    # lambda_gp: WGAN-GP's own. truth_render_probability: the share of training samples whose
    # render G sees is made from the true coefficients (the hidden expression under the mask)
    # instead of N3D's, so that G learns to follow the 3D face rather than ignore it.
    inpaint_steps: int = 2000
    inpaint_batch: int = 8
    inpaint_lr: float = 1e-4
    inpaint_width: int = 32            # G's first level's channels (x2 per level, up to x4)
    critic_width: int = 32             # D's first layer's channels
    lambda_pix: float = 10.0
    inpaint_lambda_id: float = 0.1
    lambda_tv: float = 0.1
    lambda_adv: float = 0.01
    lambda_gp: float = 10.0
    truth_render_probability: float = 0.5
    # G paints a correction of the render (`InpaintingGenerator(residual=True)`) rather than
    # colours from scratch.
    residual_g: bool = True
    # ... of the render made to agree with the visible photo (`painting.photo_matched_render`).
    matched_guide: bool = True
    # Pixels N3D's occlusion map is grown by where it is not snapped to the image (G's
    # training, and `occlusion_snap` = 0): the smallest dilation that leaves at most 0.5 % of
    # the mask in the picture, on 200 training-split faces training never saw
    # (`evaluation.occlusion_remnants`, notebook 04; cpu N3D with the detail step, commit
    # e1a228e): mask left 3.10 % at 0, 1.28 at 1, 0.81 at 2, 0.60 at 3, 0.47 at 4, while the
    # skin painted needlessly grows 4, 11, 20, 29, 39 % of the mask's size; a mask remnant is
    # far worse than repainted skin.
    occlusion_dilation: int = 4
    # Where the image is at hand (evaluation, the Unmasker), the map is first snapped to the
    # colour edges of what it covers within `occlusion_snap` pixels of its border per cut, in
    # up to `guidance.SNAP_ROUNDS` cuts (`guidance.snap_to_colour_edges`), then grown by
    # `snapped_dilation`. Chosen on the 200 training-split faces after the training samples
    # (`benchmarks/choose_dilation.py --bands 0 8 12 16`, cpu N3D of 6467eed) and on Grace
    # Hopper's portrait wearing each mask kind (`benchmarks/astronaut_masks.py --photo
    # hopper`), never on the test faces or the astronaut. On those faces, mask left / skin
    # painted needlessly (share of the mask): raw map 2.99 / 3 %, grown by 4 px 0.51 / 37 %;
    # snapped within 12 px 0.50 / 2 %, grown by 1 px 0.36 / 13 % (within 8 px: 0.46 / 12 %;
    # 16 px: 0.32 / 13 %). On Grace Hopper the painted map's IoU with the drawn mask
    # (surgical, N95, cloth) rose from 0.51 / 0.65 / 0.51 to 0.91 / 0.90 / 0.90 at 12 px,
    # while 16 px reached onto her neck (0.66 / 0.90 / 0.72). Those figures are of one cut.
    # 0 turns snapping off.
    occlusion_snap: int = 12
    snapped_dilation: int = 1
    # Fitting N3D's coefficients to the visible face (`fitting.FaceFit`) before they are used.
    # Chosen on 64 unseen training-split faces (train indices 8000-8063, identities
    # 1000-1007) with the cpu N3D: NME 0.077 unfitted; 0.0505 at 60 steps, lr 0.04, prior
    # 3e-4; 0.0502 with prior 1e-4; 0.0492 at 100 steps, for 1.7 times the time.
    fit_steps: int = 60
    fit_lr: float = 0.04
    fit_prior_weight: float = 3e-4
    # A face's fit stops once its energy fell by less than this share over the last 10 steps
    # (`fitting.settled`), at most after `fit_steps`. On 96 unseen training-split faces
    # (train 8000-8095, cpu N3D of 8e2bc6a; `benchmarks/choose_fit.py`): NME 0.0521 with all
    # 60 steps, 0.0517 stopping at 0.001 (51.5 steps on average; 0.0512 / 0.0509 with at most
    # 70 / 80 steps, 57.1 / 61.8 on average); the same fits alternating in one process, one
    # face 909 -> 811 ms and 32 faces 13.8 -> 10.4 s.
    fit_tolerance: float | None = 0.001

    def painting_map(self) -> tuple[int, int]:
        """(dilation, band) of the occlusion map painted at use (`guidance.occlusion_map`):
        snapped within `occlusion_snap` pixels and grown by `snapped_dilation`, or, without
        snapping, grown by `occlusion_dilation`."""
        if self.occlusion_snap:
            return self.snapped_dilation, self.occlusion_snap
        return self.occlusion_dilation, 0


PROFILES = {
    "smoke": Profile("smoke", image_size=64, train_samples=48, test_samples=16,
                     checkpoint_every=10, identity_train_samples=48, identity_test_samples=32,
                     identity_steps=20, identity_batch=16, identity_width=8,
                     identity_image_size=32, n3d_backbone="small", n3d_width=16,
                     n3d_steps=20, inpaint_steps=20, inpaint_width=8, critic_width=8,
                     fit_steps=5, occlusion_snap=6),
    "cpu": Profile("cpu", image_size=128, train_samples=8000, test_samples=200,
                   n3d_lr_drop_at=0.75, inpaint_steps=500, inpaint_lr=5e-4),
    "paper": Profile("paper", image_size=256, train_samples=800, test_samples=200,
                     checkpoint_every=1000, identity_train_samples=8000,
                     identity_steps=20000, identity_batch=128, identity_lr=1e-4,
                     identity_backbone="resnet50", identity_image_size=112,
                     n3d_backbone="resnet50", n3d_steps=5000, n3d_lr=1e-4,
                     n3d_precision="bf16", occlusion_snap=24),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name`, else `$UNMASK_PROFILE`, else `cpu`."""
    name = name or os.environ.get("UNMASK_PROFILE") or "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def runs_root() -> Path:
    """`$UNMASK_RUNS`, else `runs/` in the source checkout, else `runs/` in the working dir."""
    if "UNMASK_RUNS" in os.environ:
        return Path(os.environ["UNMASK_RUNS"])
    checkout = Path(__file__).resolve().parents[1]
    return checkout / "runs" if (checkout / "pyproject.toml").exists() else Path.cwd() / "runs"


def resolve_run(profile: Profile | str | None,
                run_folder: str | Path | None) -> tuple[Profile, Path]:
    """The profile (a `Profile`, a name, or None for `get_profile()`) and its run folder
    (`run_folder`, else `run_dir(profile)`): what every train / load / evaluate call takes."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    return profile, run_dir(profile) if run_folder is None else Path(run_folder)


def run_dir(profile: Profile) -> Path:
    """`runs/<profile>/`, created on first use."""
    path = runs_root() / profile.name
    path.mkdir(parents=True, exist_ok=True)
    return path
