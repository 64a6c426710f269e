"""Every painting method on the same held-out faces, scored inside the true occlusion: G with
N3D's guidance (ours, and the no-3D-prior ablation), biharmonic inpainting given N3D's map and
the true one, and the oracle-render paste.

    scores = evaluate_inpainting({"ours": G, "no 3D prior": G0}, n3d, "cpu")
    scores.table()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..baselines import biharmonic_inpaint, oracle_paste
from ..config import Profile, resolve_run
from ..data import as_one_batch, held_out_faces, wears_mask
from ..devices import device_of
from ..face3d import MorphableModel, load_face_model
from ..guidance import Guidance
from ..metrics import psnr, ssim
from ..models import N3D, InpaintingGenerator
from ..painting import paint
from .n3d import held_out_guidance, held_out_guidance_file


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


# The methods given the true occlusion; every other paints inside N3D's map.
TRUE_OCCLUSION_METHODS = ("biharmonic (true occlusion)", "oracle render paste")


def painted_regions(methods: list[str], guidance: Guidance,
                    batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Method name -> the map `(B, 1, H, W)` in {0, 1} it painted inside for a batch of
    `inpaint_by_every_method`'s results: the true occlusion for `TRUE_OCCLUSION_METHODS`,
    N3D's map (`guidance.occlusion`) for the others. Its border is where a seam would show."""
    return {name: batch["occlusion"] if name in TRUE_OCCLUSION_METHODS else guidance.occlusion
            for name in methods}


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


def evaluate_inpainting(generators: Mapping[str, InpaintingGenerator], n3d: N3D,
                        profile: Profile | str | None = None,
                        run_folder: str | Path | None = None, seed: int = 0,
                        progress: bool = True) -> InpaintingScores:
    """Every method of `inpaint_by_every_method` on the profile's held-out test faces, with
    the guidance of the run's frozen `n3d` fitted to each face, scored inside the true
    occlusion."""
    profile, folder = resolve_run(profile, run_folder)
    device = device_of(next(iter(generators.values())))
    batch = as_one_batch(held_out_faces(profile, folder, progress))
    face_model = load_face_model().to(device)
    guidance = held_out_guidance(n3d, batch["masked"], profile, face_model,
                                 held_out_guidance_file(folder), progress)[1]
    results = inpaint_by_every_method(generators, guidance, face_model, batch, seed)
    region = batch["occlusion"]
    return InpaintingScores(
        psnr={name: psnr(out, batch["clean"], region) for name, out in results.items()},
        ssim={name: ssim(out, batch["clean"], region) for name, out in results.items()},
        mask_type=list(batch["mask_type"]))
