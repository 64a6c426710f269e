"""Every painting method on the same held-out faces, scored inside the true occlusion: G with
N3D's guidance (ours, and the no-3D-prior ablation), biharmonic inpainting given N3D's map and
the true one, and the oracle-render paste.

    scores = evaluate_inpainting({"ours": G, "no 3D prior": G0}, n3d, "cpu")
    scores.table()
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..baselines import biharmonic_inpaint, oracle_paste
from ..config import Profile, resolve_run
from ..data import as_one_batch, held_out_faces, wears_mask
from ..devices import device_of
from ..face3d import MorphableModel, load_face_model
from ..files import write_atomically
from ..fitting import FaceFit
from ..guidance import Guidance, fitted, guidance_of, n3d_outputs
from ..metrics import psnr, ssim
from ..models import N3D, InpaintingGenerator
from ..painting import paint


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


def _fingerprint(n3d: N3D, images: torch.Tensor, settings: tuple) -> str:
    """sha256 of N3D's weights, the images and `settings`: what a guidance depends on."""
    digest = hashlib.sha256(repr(settings).encode())
    for tensor in [*n3d.state_dict().values(), images]:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def held_out_guidance(n3d: N3D, masked: torch.Tensor, profile: Profile, face_model: MorphableModel,
                      cache: str | Path | None = None,
                      progress: bool = False) -> tuple[torch.Tensor, Guidance]:
    """N3D's map as predicted `(N, 1, H, W)` in {0, 1} (what its IoU scores) and the guidance
    G gets for the masked test faces `(N, 3, H, W)`: the map grown by the profile's dilation,
    the coefficients fitted to the visible face (`FaceFit.of_profile`). The fit of 200 faces
    takes minutes, and notebooks 04 and 05 both need it: with a `cache` file it is kept there,
    keyed by N3D's weights, the images and the settings, and reused while they stay."""
    settings = (profile.occlusion_dilation, profile.fit_steps, profile.fit_lr,
                profile.fit_prior_weight)
    key = _fingerprint(n3d, masked, settings) if cache is not None else ""
    if cache is not None and Path(cache).is_file():
        kept = torch.load(cache, weights_only=True)
        if kept["key"] == key:
            return kept["found"].float(), Guidance(kept["occlusion"].float(), kept["coeffs"])
    output = n3d_outputs(n3d, masked)
    found = guidance_of(output, 0).occlusion
    guidance = fitted(guidance_of(output, profile.occlusion_dilation), masked,
                      FaceFit.of_profile(profile, face_model), progress=progress)
    if cache is not None:
        state = {"key": key, "found": found.bool(), "occlusion": guidance.occlusion.bool(),
                 "coeffs": guidance.coeffs}
        write_atomically(cache, lambda file: torch.save(state, file))
    return found, guidance


def held_out_guidance_file(folder: str | Path) -> Path:
    """Where a run keeps `held_out_guidance`'s cache."""
    return Path(folder) / "data" / "held-out-guidance.pt"


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
