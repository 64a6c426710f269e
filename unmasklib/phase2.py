"""Phase 2: train the inpainting generator G (and its PatchGAN critic D) with N3D frozen.

    G, run = train_inpainting("cpu")                       # ours: G follows the 3D render
    G0, run0 = train_inpainting("cpu", use_render=False)   # the "no 3D prior" ablation
    scores = evaluate_inpainting({"ours": G, "no prior": G0}, "cpu")

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .baselines import biharmonic_inpaint, oracle_paste
from .config import Profile, resolve_run
from .data.seeding import seeded_torch
from .data.synthetic import (
    DATA_VERSION,
    draw_coefficients,
    looks_of,
    render_masked_faces,
    wears_mask,
)
from .face3d import MorphableModel, load_face_model, render_faces
from .fitting import FaceFit
from .images import batch_of, dilate
from .losses import critic_wasserstein, gradient_penalty, phase2_generator_loss
from .metrics import pearson_r, psnr, ssim
from .models.identity import identity_similarity
from .models.inpainting import InpaintingGenerator, PatchDiscriminator
from .models.n3d import N3D, N3DOutput
from .phase1 import (
    frozen_identity_encoder,
    load_n3d,
    phase_sets,
    photo_settings,
    train_n3d,
)
from .progress import progress_bar
from .training import (
    Batches,
    Run,
    adam,
    dataset_batches,
    descend,
    fit,
    load_finished_checkpoint,
    load_or_train,
    load_weights_only,
    pick_device,
    step_generator,
)


def model_name(use_render: bool = True, truth_probability: float | None = None,
               profile: Profile | None = None) -> str:
    """The checkpoint name: "inpainting"; "inpainting_no_prior" for the ablation;
    "inpainting_truth<p>" for G trained with another `truth_probability` than `profile`'s."""
    if not use_render:
        return "inpainting_no_prior"
    if truth_probability is None or (profile is not None
                                     and truth_probability == profile.truth_render_probability):
        return "inpainting"
    return f"inpainting_truth{truth_probability:g}"


@dataclass
class Guidance:
    """What frozen N3D says about N faces: occlusion `(N, 1, H, W)` in {0, 1} (thresholded at
    0.5, then dilated) and coefficients `(N, size)`."""

    occlusion: torch.Tensor
    coeffs: torch.Tensor


def guidance_of(output: N3DOutput, dilation: int) -> Guidance:
    """N3D's output as G's guidance: the occlusion logits thresholded at 0 (probability 0.5)
    and dilated by `dilation` pixels; the coefficients as they are."""
    return Guidance(dilate((output.occlusion_logits > 0).float(), dilation), output.coeffs)


@torch.no_grad()
def n3d_guidance(n3d: N3D, images: torch.Tensor, dilation: int, batch_size: int = 32,
                 fit: FaceFit | None = None, progress: bool = False) -> Guidance:
    """N3D's guidance for `(N, 3, H, W)` images in [-1, 1], on N3D's device in batches,
    returned on the CPU; with `fit`, the coefficients fitted to the face outside the
    (dilated) occlusion map (`fitting.FaceFit`, with a bar over its batches when
    `progress`)."""
    device = next(n3d.parameters()).device
    parts = [guidance_of(n3d(images[start:start + batch_size].to(device)), dilation)
             for start in range(0, len(images), batch_size)]
    guidance = Guidance(torch.cat([g.occlusion for g in parts]).cpu(),
                        torch.cat([g.coeffs for g in parts]).cpu())
    if fit is not None:
        guidance.coeffs = fit(images, guidance.occlusion, guidance.coeffs, batch_size,
                              progress).cpu()
    return guidance


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
            "occlusion_dilation": profile.occlusion_dilation}


def build_inpainting(settings: dict, seed: int) -> tuple[InpaintingGenerator, PatchDiscriminator]:
    """G and D of `settings` on the CPU, their random initial weights fixed by `seed`."""
    with seeded_torch(seed, model_name(settings["use_render"]), "init"):
        generator = InpaintingGenerator(settings["image_size"], settings["width"],
                                        settings["use_render"])
        critic = PatchDiscriminator(settings["critic_width"])
    return generator, critic


def guide_renders(face_model: MorphableModel, batch: Mapping[str, torch.Tensor],
                  n3d_coeffs: torch.Tensor, truth_probability: float,
                  generator: torch.Generator) -> torch.Tensor:
    """The renders `(B, 3, H, W)` G sees in a training batch: of N3D's coefficients
    `n3d_coeffs` `(B, size)`, or with probability `truth_probability` per sample of the true
    ones `batch["coeffs"]` (samples without ground truth always use N3D's)."""
    coin = torch.rand(len(n3d_coeffs), generator=generator) < truth_probability
    use_truth = coin.to(n3d_coeffs.device) & batch["has_ground_truth"].bool()
    coeffs = torch.where(use_truth[:, None], batch["coeffs"].nan_to_num(), n3d_coeffs)
    with torch.no_grad():
        return render_faces(face_model, coeffs, batch["masked"].shape[-1]).image


def inpainting_step(generator: InpaintingGenerator, critic: PatchDiscriminator,
                    critic_optimizer: torch.optim.Optimizer, n3d: N3D,
                    face_model: MorphableModel, encoder: torch.nn.Module, settings: dict,
                    seed: int):
    """The step function of phase 2: frozen N3D's guidance, one critic update (WGAN-GP),
    then G's loss terms (`phase2_generator_loss`) for the loop to descend; the critic's terms
    ride along in the returned dict for the history ("critic", "gp")."""
    similarity = functools.partial(identity_similarity, encoder)

    def step_fn(batch: dict, step: int) -> dict[str, torch.Tensor]:
        draws = step_generator(seed, step, "inpainting")
        with torch.no_grad():
            guidance = guidance_of(n3d(batch["masked"]), settings["occlusion_dilation"])
        occlusion = guidance.occlusion
        render = guide_renders(face_model, batch, guidance.coeffs,
                               settings["truth_render_probability"], draws)
        result = generator(batch["masked"], occlusion, render, draws)

        critic.requires_grad_(True)
        distance = critic_wasserstein(critic(batch["clean"], occlusion),
                                      critic(result.detach(), occlusion))
        penalty = gradient_penalty(lambda x: critic(x, occlusion), batch["clean"], result,
                                   draws)
        descend([critic_optimizer], distance + settings["lambda_gp"] * penalty, "critic", step)

        critic.requires_grad_(False)  # G's adversarial term needs no weight gradients of D
        terms = phase2_generator_loss(
            result, batch["clean"], similarity(result, batch["clean"]),
            critic(result, occlusion), settings["lambda_pix"], settings["lambda_id"],
            settings["lambda_tv"], settings["lambda_adv"])
        return {**terms, "critic": distance.detach(), "gp": penalty.detach()}
    return step_fn


def frozen_n3d(profile: Profile, folder: Path, device: torch.device) -> torch.nn.Module:
    """The run's trained N3D, frozen; trained first (with a note) when missing."""
    return load_or_train(lambda: load_n3d(profile, folder, device),
                         lambda: train_n3d(profile, folder, device=device))


def train_inpainting(profile: Profile | str | None = None, run_folder: str | Path | None = None,
                     use_render: bool = True, truth_probability: float | None = None,
                     retrain: bool = False, device: str | torch.device | None = None,
                     progress: bool = True, stop_at: int | None = None,
                     photos: str | Path | None = None) -> tuple[InpaintingGenerator, Run]:
    """Train G (with its critic) for `profile`, or reuse the finished checkpoint
    `<run_folder>/inpainting.pt` (`inpainting_no_prior.pt` with `use_render=False`, the
    ablation whose render channels are zeros; `inpainting_truth<p>.pt` with another
    `truth_probability` than the profile's); resumes an interrupted run. N3D and the
    identity encoder are loaded frozen (trained first, with a note, when missing).

    Adam at `inpaint_lr` for G and D, a tenth of it from the mid-point, `inpaint_steps`
    steps of `inpaint_batch` faces. Returns G in eval mode on `device` and the `training.Run`
    with the history of G's terms and the critic's ("critic", "gp"). `photos`: a folder of
    aligned face photos trained on beside the synthetic faces (`phase1.phase_sets`).
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
    encoder = frozen_identity_encoder(profile, folder, device)
    n3d = frozen_n3d(profile, folder, device)
    optimizers = {"G": adam(generator.parameters()), "D": adam(critic.parameters())}
    name = model_name(use_render, truth_probability, profile)
    run = fit(name, profile, folder, {"G": generator, "D": critic}, optimizers,
              inpainting_step(generator, critic, optimizers["D"], n3d, face_model, encoder,
                              settings, profile.seed),
              lambda: Batches(phase_sets(profile, folder, progress, photos)[0],
                              profile.inpaint_batch, profile.seed),
              profile.inpaint_steps, seed=profile.seed, lr=profile.inpaint_lr, settings=settings,
              stepped=["G"], checkpoint_every=profile.checkpoint_every, stop_at=stop_at,
              retrain=retrain, progress=progress)
    return generator.eval(), run


def train_inpainting_with_snapshots(profile: Profile | str | None = None,
                                    run_folder: str | Path | None = None, points: int = 4,
                                    faces: int = 4, device: str | torch.device | None = None,
                                    progress: bool = True,
                                    ) -> tuple[InpaintingGenerator, Run, dict[int, torch.Tensor]]:
    """`train_inpainting` in `points` equal segments, painting the first `faces` held-out
    faces before training and after each segment: step -> `(faces, 3, H, W)` in [-1, 1].
    Resuming is exact, so the weights are those of one uninterrupted run. The paintings are
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
    masked = torch.stack([phase_sets(profile, folder, progress)[1][i]["masked"]
                          for i in range(faces)])
    guidance = n3d_guidance(frozen_n3d(profile, folder, device), masked,
                            profile.occlusion_dilation)
    if 0 not in snapshots:
        untrained, _ = build_inpainting(inpainting_settings(profile, True), profile.seed)
        snapshots[0] = paint(untrained.eval().to(device), face_model, masked, guidance)
    for k in range(1, points + 1):
        stop = round(profile.inpaint_steps * k / points)
        generator, run = train_inpainting(profile, folder, stop_at=stop, device=device,
                                          progress=progress)
        if run.step == stop and stop not in snapshots:
            snapshots[stop] = paint(generator, face_model, masked, guidance)
            torch.save({"settings": made_with, "paintings": snapshots}, path)
    return generator, run, dict(sorted(snapshots.items()))


def load_inpainting(profile: Profile | str | None = None, run_folder: str | Path | None = None,
                    use_render: bool = True, truth_probability: float | None = None,
                    device: str | torch.device | None = None) -> InpaintingGenerator:
    """The trained G of `profile` (the ablation with `use_render=False`, or the one trained
    with `truth_probability`) from its finished checkpoint, frozen, in eval mode.
    FileNotFoundError (naming what trains it) when missing."""
    profile, folder = resolve_run(profile, run_folder)
    name = model_name(use_render, truth_probability, profile)
    flag = "" if use_render else ", use_render=False"
    if name.startswith("inpainting_truth"):
        flag += f", truth_probability={truth_probability:g}"
    state = load_finished_checkpoint(folder, name, profile.name,
                                     f"train_inpainting({profile.name!r}{flag}) or notebook 04")
    generator, _ = build_inpainting(state["settings"], profile.seed)
    generator.load_state_dict(state["models"]["G"])
    return generator.requires_grad_(False).eval().to(pick_device(device))


@torch.no_grad()
def paint(generator: InpaintingGenerator, face_model: MorphableModel, masked: torch.Tensor,
          guidance: Guidance, seed: int = 0, batch_size: int = 32) -> torch.Tensor:
    """G's composites `(N, 3, H, W)` in [-1, 1] of masked faces `(N, 3, H, W)` with N3D's
    `guidance` (render of its coefficients, its occlusion); noise fixed by `seed`."""
    device = next(generator.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(masked), batch_size):
        part = slice(start, start + batch_size)
        render = render_faces(face_model, guidance.coeffs[part].to(device),
                              generator.image_size).image
        out.append(generator(masked[part].to(device), guidance.occlusion[part].to(device),
                             render, noise).cpu())
    return torch.cat(out)


def paint_edited(generator: InpaintingGenerator, face_model: MorphableModel,
                 masked: torch.Tensor, guidance: Guidance, expression: dict[str, float],
                 seed: int = 0) -> torch.Tensor:
    """`paint` with N3D's coefficients edited: the named expression components set to
    `expression` (e.g. {"jaw_open": 1.5}) for every face. `(N, 3, H, W)` in [-1, 1]."""
    edited = face_model.with_expression(guidance.coeffs.to(face_model.device), expression)
    return paint(generator, face_model, masked, Guidance(guidance.occlusion, edited), seed)


def with_prior_expressions(face_model: MorphableModel, coeffs: torch.Tensor, k: int,
                           generator: torch.Generator) -> torch.Tensor:
    """K copies `(k, size)` of one face's coefficients `(size,)` whose expression block is
    drawn from the 3DMM prior (`sample_coeffs`, on the CPU from `generator`)."""
    expression = face_model.layout.slice("expression")
    out = coeffs.reshape(1, -1).repeat(k, 1)
    out[:, expression] = face_model.sample_coeffs(k, generator)[:, expression].to(out)
    return out


def paint_prior_samples(generator: InpaintingGenerator, face_model: MorphableModel,
                        masked: torch.Tensor, guidance: Guidance, k: int,
                        seed: int = 0) -> torch.Tensor:
    """K completions `(K, 3, H, W)` in [-1, 1] of one masked face `(1, 3, H, W)` with its
    N3D `guidance`: the expression block of N3D's coefficients replaced by K draws from the
    3DMM prior (`sample_coeffs`), each painted with its own noise. What the mask hides is
    unknowable; these are K plausible answers. `seed` fixes the draws and the noise."""
    coeffs = with_prior_expressions(face_model, guidance.coeffs[0], k,
                                    torch.Generator().manual_seed(seed))
    occlusion = guidance.occlusion[:1].expand(k, -1, -1, -1)
    return paint(generator, face_model, masked[:1].expand(k, -1, -1, -1),
                 Guidance(occlusion, coeffs), seed)


@dataclass
class InpaintingScores:
    """Per test face and method: PSNR (dB) and SSIM inside the true occlusion, and the mask
    type of each face. psnr, ssim: method -> `(N,)`."""

    psnr: dict[str, torch.Tensor]
    ssim: dict[str, torch.Tensor]
    mask_type: list[str]

    def table(self) -> list[dict]:
        """One row per method: mean and std of both scores over the masked faces, and N."""
        worn = wears_mask(self.mask_type)
        rows = []
        for method in self.psnr:
            p, s = self.psnr[method][worn], self.ssim[method][worn]
            rows.append({"method": method, "psnr": float(p.mean()), "psnr_std": float(p.std()),
                         "ssim": float(s.mean()), "ssim_std": float(s.std()),
                         "n": int(worn.sum())})
        return rows


def inpaint_by_every_method(generators: Mapping[str, InpaintingGenerator], guidance: Guidance,
                            face_model: MorphableModel, batch: Mapping[str, torch.Tensor],
                            seed: int = 0) -> dict[str, torch.Tensor]:
    """Method name -> results `(B, 3, H, W)` in [-1, 1] for a batch of test faces: each of
    `generators` (name -> G) with N3D's `guidance` of the batch (`n3d_guidance`),
    scikit-image's biharmonic inpainting given N3D's occlusion and the true one, and the
    oracle-render paste (true coefficients, true occlusion). `face_model` on the generators'
    device."""
    results = {name: paint(g, face_model, batch["masked"], guidance, seed)
               for name, g in generators.items()}
    results["biharmonic (N3D occlusion)"] = biharmonic_inpaint(batch["masked"],
                                                               guidance.occlusion)
    results["biharmonic (true occlusion)"] = biharmonic_inpaint(batch["masked"],
                                                                batch["occlusion"])
    results["oracle render paste"] = oracle_paste(face_model.to("cpu"), batch)
    return results


def evaluate_inpainting(generators: Mapping[str, InpaintingGenerator],
                        profile: Profile | str | None = None,
                        run_folder: str | Path | None = None, seed: int = 0,
                        progress: bool = True) -> InpaintingScores:
    """Every method of `inpaint_by_every_method` on the profile's held-out test faces,
    scored inside the true occlusion."""
    profile, folder = resolve_run(profile, run_folder)
    device = next(next(iter(generators.values())).parameters()).device
    test = phase_sets(profile, folder, progress)[1]
    batch = next(iter(dataset_batches(test, len(test), "loading test faces", False)))
    face_model = load_face_model().to(device)
    guidance = n3d_guidance(frozen_n3d(profile, folder, device), batch["masked"],
                            profile.occlusion_dilation, fit=FaceFit.of_profile(profile, face_model),
                            progress=progress)
    results = inpaint_by_every_method(generators, guidance, face_model, batch, seed)
    region = batch["occlusion"]
    return InpaintingScores(
        psnr={name: psnr(out, batch["clean"], region) for name, out in results.items()},
        ssim={name: ssim(out, batch["clean"], region) for name, out in results.items()},
        mask_type=list(batch["mask_type"]))


@dataclass
class EditFidelity:
    """A named expression set to `values` on each of N faces and read back by N3D from the
    result: set `(N, V)`, recovered `(N, V)`.

    r: the mean over faces of `per_face_r`, each face's Pearson correlation between its V set
    and recovered values: does moving the slider move that face's expression as asked?
    pooled_r: one correlation over all N * V results. It also counts how differently N3D
    reads different faces at the same setting (each from its own starting point), which no
    painter controls: a perfect painter scores well under 1 on it.
    """

    name: str
    set: torch.Tensor
    recovered: torch.Tensor

    @property
    def per_face_r(self) -> torch.Tensor:
        """`(N,)` in [-1, 1]; 0 for a face whose reading never moves (the edit did nothing)."""
        return torch.stack([pearson_r(s, r) for s, r in zip(self.set, self.recovered,
                                                             strict=True)]).nan_to_num(0.0)

    @property
    def r(self) -> float:
        return float(self.per_face_r.mean())

    @property
    def pooled_r(self) -> float:
        return float(pearson_r(self.set.flatten(), self.recovered.flatten()))


EDIT_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0)  # jaw_open 0 (closed) to 2 (the prior's 2 sigma)


def read_back(n3d: torch.nn.Module, face_model: MorphableModel, name: str,
              values: Sequence[float], results: Sequence[torch.Tensor],
              fit: FaceFit | None = None, progress: bool = False) -> EditFidelity:
    """N3D's estimate of expression `name` on `results` (one `(N, 3, H, W)` batch per value
    of `values`, the same N faces in each), fitted to them with `fit` when given, against the
    values they were made with. At least 3 distinct values: through 2 points every line
    correlates perfectly. `progress`: a bar over the values."""
    if len(set(values)) < 3 or len(values) != len(results):
        raise ValueError(f"edit fidelity needs one result batch for each of at least 3 distinct "
                         f"values, got values {tuple(values)} and {len(results)} batches")
    index = face_model.layout.slice("expression").start + face_model.expression_names.index(name)
    recovered = torch.stack([n3d_guidance(n3d, result, 0, fit=fit).coeffs[:, index]
                             for result in progress_bar(results, desc=f"reading {name} back",
                                                        unit="value", disable=not progress)],
                            1)
    return EditFidelity(name, torch.tensor(values, dtype=recovered.dtype).expand_as(recovered),
                        recovered)


@torch.no_grad()
def edit_fidelity(generator: InpaintingGenerator, n3d: torch.nn.Module,
                  face_model: MorphableModel, masked: torch.Tensor, name: str = "jaw_open",
                  values: Sequence[float] = EDIT_VALUES, dilation: int = 1,
                  seed: int = 0, fit: FaceFit | None = None,
                  progress: bool = False) -> EditFidelity:
    """Do the sliders steer the result? For each masked face `(N, 3, H, W)`: N3D's
    coefficients (fitted with `fit` when given) with expression `name` set to each of
    `values`, rendered and painted by G; then N3D (and `fit`) re-estimates `name` from the
    result (which no longer wears a mask). r near 1: the painted face shows the expression it
    was asked for. `progress`: bars over the reading."""
    guidance = n3d_guidance(n3d, masked, dilation, fit=fit, progress=progress)
    return read_back(n3d, face_model, name, values,
                     [paint_edited(generator, face_model, masked, guidance, {name: value}, seed)
                      for value in values], fit, progress)


@torch.no_grad()
def bare_faces(face_model: MorphableModel, seed: int, split: str, indices: Sequence[int],
               image_size: int, expressions: Sequence[Mapping[str, float]] = ({},),
               ) -> list[torch.Tensor]:
    """Samples `indices` of the synthetic `split` (data `seed`) without their masks, rendered
    by the data pipeline itself (their coefficients, skin and background), once per entry of
    `expressions` with those named components set (e.g. {"jaw_open": 1.5}; {}: as drawn).
    One batch `(N, 3, H, W)` in [-1, 1] each; unedited, they are the data set's "clean"
    images bit for bit. Coefficients and looks are drawn once for all entries."""
    truth = torch.stack([draw_coefficients(face_model, seed, split, i) for i in indices])
    truth = truth.to(face_model.device, face_model.dtype)
    looks = {**looks_of(seed, split, indices, image_size), "styles": [None] * len(indices)}
    return [batch_of(render_masked_faces(face_model,
                                         face_model.with_expression(truth, dict(expression)),
                                         image_size=image_size, **looks)["clean"].numpy())
            for expression in expressions]


@torch.no_grad()
def edit_fidelity_ceiling(n3d: torch.nn.Module, face_model: MorphableModel, seed: int,
                          split: str, indices: Sequence[int], image_size: int,
                          name: str = "jaw_open", values: Sequence[float] = EDIT_VALUES,
                          fit: FaceFit | None = None, progress: bool = False) -> EditFidelity:
    """Edit fidelity of a perfect painter: the true faces `indices` of `split` with `name`
    set to each of `values` (`bare_faces`), read back by N3D (and `fit`). No generator can
    score above it: what it lacks of 1 is the instrument's, not G's."""
    return read_back(n3d, face_model, name, values,
                     bare_faces(face_model, seed, split, indices, image_size,
                                [{name: value} for value in values]), fit, progress)
