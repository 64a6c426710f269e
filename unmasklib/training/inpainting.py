"""Phase 2: train the inpainting generator G (and its PatchGAN critic D) with N3D frozen.

    G, run = train_inpainting(n3d, encoder, "cpu")         # ours: G follows the 3D render
    G0, run0 = train_inpainting(n3d, encoder, "cpu", use_render=False)  # "no 3D prior"
    G = load_or_train_inpainting("cpu")     # at an entry point: train what is missing first

Each step runs the frozen N3D on the masked faces (in eval mode, without gradients: the
seed's step also back-propagates through it and keeps its identity network in training
mode), renders its coefficients, lets G paint the hidden region, updates D (WGAN-GP), and
returns G's terms of `losses.phase2_generator_loss` for the loop to descend.

Following the render: with probability `truth_render_probability` a sample's render is made
from its true coefficients (whose expression is what the mask really hides) instead of
N3D's estimate. N3D cannot see under the mask, so its guess of a smile is usually wrong; a G
trained only on those renders learns that the render's lower half is unreliable and ignores
it, and the sliders would then change nothing. With true renders in the mix, following the
render pays: that is what makes editing and "sample another" work (`edit_fidelity` measures it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_weights_only
from ..config import Profile, resolve_run
from ..data import held_out_faces, train_faces
from ..data.synthetic import DATA_VERSION
from ..devices import pick_device
from ..face3d import MorphableModel, RenderOutput, load_face_model, render_faces
from ..guidance import guidance_of, n3d_guidance
from ..losses import critic_wasserstein, gradient_penalty, phase2_generator_loss
from ..models import N3D, InpaintingGenerator
from ..models.identity import identity_similarity
from ..painting import paint, render_guide
from ..trained import build_inpainting, inpainting_name, load_inpainting
from .batches import Batches, step_generator
from .distributed import unwrapped, world
from .identity import load_or_train_identity_encoder
from .loop import Run, StepFn, adam, descend, fit, load_or_train
from .n3d import (
    autocast_dtype_of,
    autocast_in,
    load_or_train_n3d,
    photo_settings,
    similarity_in,
)


def inpainting_settings(profile: Profile, use_render: bool,
                        truth_probability: float | None = None) -> dict:
    """What a phase-2 run of `profile` is made with (stored in its checkpoint);
    `truth_probability` overrides the profile's `truth_render_probability`."""
    if truth_probability is None:
        truth_probability = profile.truth_render_probability
    return {"data_version": DATA_VERSION, "train_samples": profile.train_samples,
            "image_size": profile.image_size, "batch": profile.inpaint_batch,
            "width": profile.inpaint_width, "critic_width": profile.critic_width,
            "use_render": use_render, "lambda_pix": profile.lambda_pix,
            "lambda_id": profile.inpaint_lambda_id, "lambda_tv": profile.lambda_tv,
            "lambda_adv": profile.lambda_adv, "lambda_gp": profile.lambda_gp,
            "truth_render_probability": truth_probability if use_render else 0.0,
            "occlusion_dilation": profile.occlusion_dilation, "residual": profile.residual_g,
            "matched_guide": profile.matched_guide, "precision": profile.n3d_precision}


def guide_renders(face_model: MorphableModel, batch: Mapping[str, torch.Tensor],
                  n3d_coeffs: torch.Tensor, truth_probability: float,
                  generator: torch.Generator) -> RenderOutput:
    """The renders G follows in a training batch: of N3D's coefficients `n3d_coeffs`
    `(B, size)`, or with probability `truth_probability` per sample of the true ones
    `batch["coeffs"]` (samples without ground truth always use N3D's)."""
    coin = torch.rand(len(n3d_coeffs), generator=generator) < truth_probability
    use_truth = coin.to(n3d_coeffs.device) & batch["has_ground_truth"].bool()
    coeffs = torch.where(use_truth[:, None], batch["coeffs"].nan_to_num(), n3d_coeffs)
    with torch.no_grad():
        return render_faces(face_model, coeffs, batch["masked"].shape[-1])


def inpainting_step(critic_optimizer: torch.optim.Optimizer, n3d: N3D,
                    face_model: MorphableModel, encoder: nn.Module, settings: dict,
                    seed: int) -> StepFn:
    """The step function of phase 2 (networks "G" and "D"): frozen N3D's guidance, one
    critic update (WGAN-GP), then G's loss terms (`phase2_generator_loss`) for the loop to
    descend; the critic's terms ride along in the returned dict for the history ("critic",
    "gp"). `n3d` and `encoder` frozen; they run in the settings' "precision" as in phase 1
    (G and D always in float32)."""
    autocast_dtype = autocast_dtype_of(settings["precision"])
    similarity = functools.partial(identity_similarity, encoder)

    def step_fn(networks: Mapping[str, nn.Module], batch: dict,
                step: int) -> dict[str, torch.Tensor]:
        generator, critic = networks["G"], networks["D"]
        draws = step_generator(seed, step, "inpainting")
        device_type = batch["masked"].device.type
        with torch.no_grad(), autocast_in(device_type, autocast_dtype):
            guidance = guidance_of(n3d(batch["masked"]), settings["occlusion_dilation"])
        occlusion = guidance.occlusion
        render = guide_renders(face_model, batch, guidance.coeffs,
                               settings["truth_render_probability"], draws)
        guide = render_guide(unwrapped(generator), render, batch["masked"], occlusion)
        result = generator(batch["masked"], occlusion, guide, draws)

        critic.requires_grad_(True)
        distance = critic_wasserstein(critic(batch["clean"], occlusion),
                                      critic(result.detach(), occlusion))
        penalty = gradient_penalty(lambda x: critic(x, occlusion), batch["clean"], result,
                                   draws)
        descend([critic_optimizer], distance + settings["lambda_gp"] * penalty, "critic", step)

        # G's adversarial term needs no weight gradients of D, so D runs unwrapped: a
        # distributed replica would wait for gradients that never come.
        scorer = unwrapped(critic).requires_grad_(False)
        terms = phase2_generator_loss(
            result, batch["clean"],
            similarity_in(similarity, device_type, autocast_dtype)(result, batch["clean"]),
            scorer(result, occlusion), settings["lambda_pix"], settings["lambda_id"],
            settings["lambda_tv"], settings["lambda_adv"])
        return {**terms, "critic": distance.detach(), "gp": penalty.detach()}
    return step_fn


def train_inpainting(n3d: N3D, encoder: nn.Module, profile: Profile | str | None = None,
                     run_folder: str | Path | None = None, use_render: bool = True,
                     truth_probability: float | None = None, retrain: bool = False,
                     device: str | torch.device | None = None, progress: bool = True,
                     stop_at: int | None = None, photos: str | Path | None = None,
                     after_step: Callable[[int], None] | None = None,
                     ) -> tuple[InpaintingGenerator, Run]:
    """Train G (with its critic) for `profile` with the run's frozen `n3d` and identity
    `encoder` (`trained.load_n3d`, `trained.load_identity_encoder`), or reuse the finished
    checkpoint `<run_folder>/inpainting.pt` (`inpainting_no_prior.pt` with
    `use_render=False`, the ablation whose render channels are zeros;
    `inpainting_truth<p>.pt` with another `truth_probability` than the profile's); resumes an
    interrupted run. `after_step(done, G)`: called after each training step (see
    `training.fit`), with G in train mode.

    Adam at `inpaint_lr` for G and D, a tenth of it from the mid-point, `inpaint_steps`
    steps of `inpaint_batch` faces. Returns G in eval mode on `device` and the `training.Run`
    with the history of G's terms and the critic's ("critic", "gp"). `photos`: a folder of
    aligned face photos trained on beside the synthetic faces (`data.train_faces`).
    """
    profile, folder = resolve_run(profile, run_folder)
    device = pick_device(device)
    face_model = load_face_model().to(device)
    settings = {**inpainting_settings(profile, use_render, truth_probability),
                **photo_settings(photos)}
    generator, critic = build_inpainting(settings, profile.seed)
    # Channels-last suits oneDNN's convolutions (as `benchmarks/bench_phase2.py` measures).
    generator, critic = (m.to(device, memory_format=torch.channels_last)
                         for m in (generator, critic))
    optimizers = {"G": adam(generator.parameters()), "D": adam(critic.parameters())}
    name = inpainting_name(use_render, truth_probability, profile)
    run = fit(name, profile, folder, {"G": generator, "D": critic}, optimizers,
              inpainting_step(optimizers["D"], n3d, face_model, encoder, settings,
                              profile.seed),
              lambda: Batches(train_faces(profile, folder, progress, photos),
                              profile.inpaint_batch, profile.seed),
              profile.inpaint_steps, seed=profile.seed, lr=profile.inpaint_lr, settings=settings,
              stepped=["G"], checkpoint_every=profile.checkpoint_every, stop_at=stop_at,
              retrain=retrain, progress=progress,
              after_step=None if after_step is None else lambda done: after_step(done, generator))
    return generator.eval(), run


def train_inpainting_with_snapshots(n3d: N3D, encoder: nn.Module,
                                    profile: Profile | str | None = None,
                                    run_folder: str | Path | None = None, points: int = 4,
                                    faces: int = 4, device: str | torch.device | None = None,
                                    progress: bool = True,
                                    ) -> tuple[InpaintingGenerator, Run, dict[int, torch.Tensor]]:
    """`train_inpainting`, painting the first `faces` held-out faces before training and at
    `points` equal steps through it: step -> `(faces, 3, H, W)` in [-1, 1]. The paintings are
    kept in `<run_folder>/inpainting_snapshots.pt` with the settings they were made with
    (others discard them); a run finished elsewhere has only its final painting."""
    profile, folder = resolve_run(profile, run_folder)
    path = folder / "inpainting_snapshots.pt"
    made_with = {**inpainting_settings(profile, True), "steps": profile.inpaint_steps,
                 "lr": profile.inpaint_lr, "seed": profile.seed, "faces": faces}
    stored = load_weights_only(path, "snapshot file") if path.exists() else {}
    snapshots = stored.get("paintings", {}) if stored.get("settings") == made_with else {}
    device = pick_device(device)
    face_model = load_face_model().to(device)
    test = held_out_faces(profile, folder, progress)
    masked = torch.stack([test[i]["masked"] for i in range(faces)])
    guidance = n3d_guidance(n3d, masked, profile.occlusion_dilation)
    if 0 not in snapshots:
        untrained, _ = build_inpainting(inpainting_settings(profile, True), profile.seed)
        snapshots[0] = paint(untrained.eval().to(device), face_model, masked, guidance)
    stops = {round(profile.inpaint_steps * k / points) for k in range(1, points + 1)}

    def keep(done: int, generator: InpaintingGenerator) -> None:
        snapshots[done] = paint(generator, face_model, masked, guidance)
        if world().main:
            torch.save({"settings": made_with, "paintings": snapshots}, path)

    def snapshot(done: int, generator: InpaintingGenerator) -> None:
        if done in stops and done not in snapshots:
            # In eval mode, as a finished G paints: BatchNorm reads its running statistics
            # and leaves them, so the training goes on exactly as without the snapshot.
            keep(done, generator.eval())
            generator.train()

    generator, run = train_inpainting(n3d, encoder, profile, folder, device=device,
                                      progress=progress, after_step=snapshot)
    if run.step not in snapshots:
        keep(run.step, generator)
    return generator, run, dict(sorted(snapshots.items()))


def load_or_train_inpainting(profile: Profile | str | None = None,
                             folder: str | Path | None = None, use_render: bool = True,
                             device: str | torch.device | None = None,
                             progress: bool = True) -> InpaintingGenerator:
    """The run's trained G (the no-prior ablation with `use_render=False`), frozen; trained
    first (with a note, and N3D and the identity encoder before it when missing too) when the
    run folder lacks it. For entry points: library functions take the G they use."""
    profile, folder = resolve_run(profile, folder)

    def train() -> None:
        encoder = load_or_train_identity_encoder(profile, folder, device, progress)
        n3d = load_or_train_n3d(profile, folder, device, progress, encoder)
        train_inpainting(n3d, encoder, profile, folder, use_render=use_render, device=device,
                         progress=progress)
    return load_or_train(lambda: load_inpainting(profile, folder, use_render, device=device),
                         train)
