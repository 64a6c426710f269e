"""Evaluation: every method on the same held-out test faces, in one report.

    result = evaluate({"ours": G, "no 3D prior": G0}, n3d, encoder, "cpu")
    result.table()                        # one row per method: mean and std of each metric
    write_report(result, "runs/cpu/report")

Methods (`evaluation.inpainting.inpaint_by_every_method`): ours (G with N3D's map and its
coefficients fitted to the visible face, `fitting.FaceFit`), the no-3D-prior ablation,
scikit-image's biharmonic inpainting given N3D's occlusion map and the true one, and the
oracle-render paste.
Per image: L1, PSNR and SSIM over the whole image and inside the true occlusion (where the
methods differ: outside it every method returns the input, so whole-image numbers flatter all
of them), and the identity similarity of the result to the clean face, by our encoder and by
SFace, a recogniser that learned from real faces (`real_faces`; NaN where YuNet finds no face,
so its count is given apart: "real_identity_n"). How the painting sits in the face: the
seam step (the colour jump across the border of the region the method painted, over the clean
image's there, 1 = seamless), the colour error inside the true occlusion (CIEDE2000 between
the mean colours of result and clean face) and the mask left (the share of the mask's pixels
left as they were). Per method: the
Frechet distance between the identity embeddings of the results and of the clean faces.
For ours alone: N3D's occlusion IoU, the non-determinism (K completions with the hidden
expression drawn from the 3DMM prior: diversity inside and outside the map, best-of-K PSNR)
and edit fidelity. Standard FID needs Inception-v3 weights, which are never downloaded:
`inception_weights()` finds them in the torch hub cache or `$UNMASK_INCEPTION`, else the
report says why FID is missing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import torchvision

from .. import plots
from ..checkpoint import load_weights_only
from ..config import Profile, resolve_run
from ..data import as_one_batch, held_out_faces, wears_mask
from ..devices import device_of, in_batches
from ..face3d import MorphableModel, load_face_model
from ..fitting import FaceFit
from ..guidance import Guidance
from ..images import to_uint8
from ..metrics import (
    best_of_k_psnr,
    colour_error,
    frechet_distance,
    l1,
    mask_left,
    mean_std,
    occlusion_iou,
    pairwise_l1,
    psnr,
    seam_step,
    ssim_map,
    ssim_of_map,
)
from ..models import N3D, InpaintingGenerator
from ..models.backbones import IMAGENET_MEAN, IMAGENET_STD
from ..painting import paint_prior_samples
from ..real_faces import cosine, features_of_images
from .editing import EditFidelity, edit_fidelity, edit_fidelity_ceiling
from .inpainting import (
    held_out_guidance,
    held_out_guidance_file,
    inpaint_by_every_method,
    painted_regions,
)

# "identity" last: its count is the row's N ("real_identity", SFace's, may count fewer).
METRICS = ("psnr_occluded", "ssim_occluded", "l1_occluded", "psnr", "ssim", "l1",
           "seam_step", "colour_error", "mask_left", "real_identity", "identity")
INCEPTION_FILE = "inception_v3_google"  # torchvision's weights file name in the hub cache
INCEPTION_SIZE = 299


def inception_weights() -> Path | None:
    """A local torchvision Inception-v3 weights file for standard FID: `$UNMASK_INCEPTION`,
    else `inception_v3_google-*.pth` in the torch hub cache's `checkpoints/`; None if none."""
    if os.environ.get("UNMASK_INCEPTION"):
        path = Path(os.environ["UNMASK_INCEPTION"])
        return path if path.is_file() else None
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(cache.glob(f"{INCEPTION_FILE}*.pth"))
    return found[0] if found else None


@torch.no_grad()
def inception_features(images: torch.Tensor, weights: str | Path,
                       batch_size: int = 32) -> torch.Tensor:
    """Inception-v3's 2048-d pooled features `(N, 2048)` of images `(N, 3, H, W)` in [-1, 1]
    (resized to 299 px), the network read from the local `weights` file: FID's feature space."""
    network = torchvision.models.inception_v3(weights=None, aux_logits=True,
                                              init_weights=False, transform_input=False)
    network.load_state_dict(load_weights_only(weights, "weights file"))
    network.fc = torch.nn.Identity()
    network.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def features(part: torch.Tensor) -> torch.Tensor:
        part = F.interpolate(part.float(), size=INCEPTION_SIZE, mode="bilinear",
                             align_corners=False)
        return network(((part + 1) / 2 - mean) / std).double()
    return in_batches(features, images, batch_size=batch_size)


def image_scores(results: torch.Tensor, clean: torch.Tensor, masked: torch.Tensor,
                 occlusion: torch.Tensor, painted: torch.Tensor) -> dict[str, torch.Tensor]:
    """The pixel metrics of results `(N, 3, H, W)` against the clean faces, over the whole
    image and ("_occluded") inside the true `occlusion` `(N, 1, H, W)`, and how the painting
    sits there: the seam across the border of the region it `painted` `(N, 1, H, W)`
    (`metrics.seam_step`), the `colour_error` inside the true occlusion and the `mask_left`
    against the `masked` inputs; NaN where the occlusion is empty."""
    similarity = ssim_map(results, clean)  # one map serves both regions
    return {"psnr_occluded": psnr(results, clean, occlusion),
            "ssim_occluded": ssim_of_map(similarity, occlusion),
            "l1_occluded": l1(results, clean, occlusion),
            "psnr": psnr(results, clean), "ssim": ssim_of_map(similarity),
            "l1": l1(results, clean),
            "seam_step": seam_step(results, clean, painted),
            "colour_error": colour_error(results, clean, occlusion),
            "mask_left": mask_left(results, masked, occlusion)}


@dataclass
class Evaluation:
    """One evaluation run on N held-out test faces.

    scores: method -> metric (`METRICS`) -> `(N,)`; mask_type: one per face; iou `(N,)`: N3D's
    occlusion IoU (its map as predicted, before the dilation G's map gets); frechet: method ->
    Frechet distance of result and clean identity embeddings (masked faces); diversity: ours'
    non-determinism over `faces` inputs and K completions each ("inside", "outside": mean
    pairwise L1 inside and outside the painted map; "best_of_k_psnr" and "first_psnr": PSNR in
    the true occlusion of the best of K and of the first sample); edit: edit fidelity of ours;
    edit_ceiling: that of a perfect painter on the same faces (`edit_fidelity_ceiling`);
    examples: method -> the first few masked faces' results `(n, 3, H, W)`, with "masked" and
    "clean"; failures: the same for ours' worst 5 faces by PSNR inside the occlusion (their
    test-set indices in failure_faces); fid: method -> standard FID (Inception-v3 features),
    empty without local weights; fid_note: says which and why.
    """

    profile: str
    device: str
    scores: dict[str, dict[str, torch.Tensor]]
    mask_type: list[str]
    iou: torch.Tensor
    frechet: dict[str, float]
    diversity: dict[str, float]
    edit: EditFidelity
    edit_ceiling: EditFidelity
    examples: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    failures: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    failure_faces: list[int] = field(default_factory=list)
    fid: dict[str, float] = field(default_factory=dict)
    fid_note: str = ""

    @property
    def masked(self) -> torch.Tensor:
        """`(N,)` bool: the faces that wear a mask (the others have nothing to paint)."""
        return wears_mask(self.mask_type)

    def table(self, mask_type: str | None = None) -> list[dict]:
        """One row per method over the masked faces (or those of one `mask_type`): for each
        metric its mean, std, median and count, and the method's Frechet distance."""
        chosen = self.masked if mask_type is None else torch.tensor(
            [kind == mask_type for kind in self.mask_type])
        rows = []
        for method, metrics in self.scores.items():
            row: dict = {"method": method}
            for name in METRICS:
                values = metrics[name][chosen]
                row[name], row[f"{name}_std"], row["n"] = mean_std(values)
                row[f"{name}_n"] = row["n"]
                finite = values[torch.isfinite(values)]
                row[f"{name}_median"] = float(finite.median()) if len(finite) else math.nan
            whole = mask_type is None
            row["frechet_identity"] = self.frechet[method] if whole else math.nan
            row["fid"] = self.fid.get(method, math.nan) if whole else math.nan
            rows.append(row)
        return rows

    def summary(self) -> dict:
        """Everything as plain numbers (what `metrics.json` holds)."""
        worn = self.masked
        return {"profile": self.profile, "device": self.device, "faces": len(self.mask_type),
                "masked_faces": int(worn.sum()), "table": self.table(),
                "by_mask_type": {kind: self.table(kind) for kind in sorted(set(self.mask_type))
                                 if kind != "none"},
                "occlusion_iou": dict(zip(("mean", "std", "n"), mean_std(self.iou[worn]),
                                          strict=True)),
                "diversity": self.diversity,
                "edit_fidelity": {"name": self.edit.name, "r": self.edit.r,
                                  "r_std": float(self.edit.per_face_r.std()),
                                  "pooled_r": self.edit.pooled_r,
                                  "perfect_painter_r": self.edit_ceiling.r,
                                  "perfect_painter_pooled_r": self.edit_ceiling.pooled_r,
                                  "values": self.edit.set[0].tolist(),
                                  "faces": len(self.edit.set)},
                "fid": self.fid, "fid_note": self.fid_note}


def evaluate(generators: Mapping[str, InpaintingGenerator], n3d: N3D, encoder: torch.nn.Module,
             profile: Profile | str | None = None, run_folder: str | Path | None = None,
             k: int = 8, diversity_faces: int = 20, edit_faces: int = 32, examples: int = 6,
             seed: int = 0, progress: bool = True) -> Evaluation:
    """Every method and metric on the profile's held-out test faces. `generators`: method
    name -> trained G, with "ours" among them (the non-determinism and edit fidelity are
    ours'); `n3d` and the identity `encoder`: the run's, frozen (`trained.load_*`)."""
    profile, folder = resolve_run(profile, run_folder)
    device = device_of(generators["ours"])
    face_model = load_face_model().to(device)
    batch = as_one_batch(held_out_faces(profile, folder, progress))
    fit = FaceFit.of_profile(profile, face_model)
    # The IoU scores N3D's map as it is; G, the biharmonic baseline and the fit get it grown.
    found, guidance = held_out_guidance(n3d, batch["masked"], profile, face_model,
                                        held_out_guidance_file(folder), progress)
    results = inpaint_by_every_method(generators, guidance, face_model, batch, seed)
    painted = painted_regions(list(results), guidance, batch)
    clean, occlusion = batch["clean"], batch["occlusion"]
    worn = wears_mask(batch["mask_type"])
    # Identity similarity and the Frechet distance share one embedding of every image.
    clean_features = _embeddings(encoder, clean)
    clean_real = features_of_images(to_uint8(clean))  # metrics.real_identity_similarity's parts
    scores, frechet = {}, {}
    for method, out in results.items():
        features = _embeddings(encoder, out)
        real = cosine(features_of_images(to_uint8(out)), clean_real)
        scores[method] = {**image_scores(out, clean, batch["masked"], occlusion,
                                         painted[method]),
                          "real_identity": torch.from_numpy(real.astype("float64")),
                          "identity": (features * clean_features).sum(1).double()}
        frechet[method] = frechet_distance(features[worn], clean_features[worn])
    picked = worn.nonzero().flatten()
    psnr_ours = scores["ours"]["psnr_occluded"].masked_fill(~worn, math.inf)
    worst = psnr_ours.argsort()[:min(5, int(worn.sum()))]
    fid_file = inception_weights()
    fid = {}
    if fid_file:
        clean_inception = inception_features(clean[worn], fid_file)
        fid = {method: frechet_distance(inception_features(out[worn], fid_file),
                                        clean_inception) for method, out in results.items()}
    dilation, band = profile.painting_map()
    return Evaluation(
        profile=profile.name, device=str(device), scores=scores,
        mask_type=list(batch["mask_type"]),
        iou=occlusion_iou(found, occlusion).float(), frechet=frechet,
        diversity=_diversity(generators["ours"], face_model, batch, guidance,
                             picked[:diversity_faces].tolist(), k, seed),
        edit=edit_fidelity(generators["ours"], n3d, face_model,
                           batch["masked"][picked[:edit_faces]],
                           dilation=dilation, band=band, seed=seed, fit=fit,
                           progress=progress),
        edit_ceiling=edit_fidelity_ceiling(n3d, face_model, profile.seed, "test",
                                           picked[:edit_faces].tolist(), profile.image_size,
                                           fit=fit, progress=progress),
        examples=_rows(batch, results, picked[:examples]),
        failures=_rows(batch, results, worst), failure_faces=worst.tolist(),
        fid=fid,
        fid_note=(f"standard FID computed with the Inception-v3 weights at {fid_file}"
                  if fid_file else
                  "standard FID not computed: it needs Inception-v3 weights, which this project "
                  "never downloads; put torchvision's inception_v3_google-*.pth in the torch hub "
                  "cache or point $UNMASK_INCEPTION at it. The Frechet distance in the table "
                  "uses the identity encoder's features instead."))


def _rows(batch: dict, results: dict[str, torch.Tensor],
          indices: torch.Tensor) -> dict[str, torch.Tensor]:
    """Input, every method's result and the clean face of the faces `indices`."""
    return {"masked": batch["masked"][indices],
            **{method: out[indices] for method, out in results.items()},
            "clean": batch["clean"][indices]}


@torch.no_grad()
def _embeddings(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Identity embeddings `(N, 512)` (unit length) of images `(N, 3, H, W)`, on the CPU."""
    return in_batches(encoder, images, batch_size=64, device=device_of(encoder))


def _diversity(generator: InpaintingGenerator, face_model: MorphableModel, batch: dict,
               guidance: Guidance, faces: list[int], k: int, seed: int) -> dict[str, float]:
    """Ours' non-determinism over `faces` (indices into the batch), K prior samples each."""
    inside, outside, best, first = [], [], [], []
    for index in faces:
        one = Guidance(guidance.occlusion[index:index + 1], guidance.coeffs[index:index + 1])
        samples = paint_prior_samples(generator, face_model, batch["masked"][index:index + 1],
                                      one, k, seed + index)
        inside.append(pairwise_l1(samples, one.occlusion))
        outside.append(pairwise_l1(samples, 1 - one.occlusion))
        truth = batch["occlusion"][index:index + 1]
        clean = batch["clean"][index:index + 1]
        best.append(best_of_k_psnr(samples, clean, truth))
        first.append(psnr(samples[:1], clean, truth)[0])
    return {"faces": len(faces), "k": k,
            "inside": float(torch.stack(inside).mean()),
            "outside": float(torch.stack(outside).nan_to_num(0).max()),
            "best_of_k_psnr": float(torch.stack(best).mean()),
            "first_psnr": float(torch.stack(first).mean())}


def markdown_table(rows: list[dict], title: str = "") -> str:
    """Rows of `Evaluation.table()` as a Markdown table: mean ± std of the occluded-region
    metrics, the whole-image PSNR, identity similarity (our encoder's and SFace's) and
    Frechet distance, with N."""
    lines = [title, ""] if title else []
    lines += ["| method | PSNR occl. (dB) | SSIM occl. | L1 occl. | PSNR whole (dB) | identity "
              "| SFace (real faces) | Frechet (identity) | FID | N |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row[m]:.3f} ± {row[m + '_std']:.3f}" if "ssim" in m or "l1" in m
                 or "identity" in m else f"{row[m]:.2f} ± {row[m + '_std']:.2f}"
                 for m in ("psnr_occluded", "ssim_occluded", "l1_occluded", "psnr", "identity",
                           "real_identity")]
        cells += ["—" if math.isnan(row[m]) else f"{row[m]:.3f}" for m in ("frechet_identity",
                                                                          "fid")]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + f" | {row['n']} |")
    return "\n".join(lines) + "\n"


def painting_table(rows: list[dict], title: str = "") -> str:
    """Rows of `Evaluation.table()` as a Markdown table of how each method's painting sits in
    the face: seam step and colour error (median, then mean ± std) and the mask left (mean %)."""
    lines = [title, ""] if title else []
    lines += ["| method | seam step, median | seam step, mean | colour error ΔE, median "
              "| colour error ΔE, mean | mask left (% of its pixels) | N |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row['seam_step_median']:.2f}",
                 f"{row['seam_step']:.2f} ± {row['seam_step_std']:.2f}",
                 f"{row['colour_error_median']:.2f}",
                 f"{row['colour_error']:.2f} ± {row['colour_error_std']:.2f}",
                 f"{100 * row['mask_left']:.2f} ± {100 * row['mask_left_std']:.2f}"]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + f" | {row['n']} |")
    return "\n".join(lines) + "\n"


def write_report(evaluation: Evaluation, folder: str | Path) -> list[Path]:
    """`metrics.json`, `table.md` (the table and the painting's, then one per mask type) and
    the figures (`comparison.png`, `failures.png`, `by_mask_type.png`, `edit_fidelity.png`) in
    `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = evaluation.summary()
    metrics_path = folder / "metrics.json"
    metrics_path.write_text(json.dumps(summary, indent=1, default=float))
    header = (f"Profile `{evaluation.profile}`, device `{evaluation.device}`, "
              f"{summary['masked_faces']} masked held-out test faces; mean ± std.")
    parts = [markdown_table(evaluation.table(), f"## All mask types\n\n{header}"),
             painting_table(evaluation.table(), "How the painting sits in the face (inside the "
                            "true occlusion):")]
    parts += [markdown_table(rows, f"## {kind}") for kind, rows in summary["by_mask_type"].items()]
    table_path = folder / "table.md"
    table_path.write_text("\n".join(parts) + f"\n{evaluation.fid_note}\n")
    figures = {"comparison": plots.method_rows(evaluation.examples),
               "failures": plots.method_rows(evaluation.failures),
               "by_mask_type": plots.scores_by_mask_type(summary["by_mask_type"]),
               "edit_fidelity": plots.edit_fidelity_figure(
                   {"ours": evaluation.edit, "perfect painter": evaluation.edit_ceiling})}
    paths = [metrics_path, table_path]
    for name, figure in figures.items():
        paths.append(folder / f"{name}.png")
        figure.savefig(paths[-1], dpi="figure", bbox_inches="tight")
        plt.close(figure)
    return paths
