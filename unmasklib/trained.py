"""A run's trained networks, ready to use: each built from the settings its checkpoint stores
and loaded frozen, in eval mode.

    n3d = load_n3d("cpu")                        # runs/cpu/n3d.pt
    G = load_inpainting("cpu")                   # runs/cpu/inpainting.pt
    encoder = load_identity_encoder("cpu")       # runs/cpu/identity.pt

A missing or unfinished checkpoint raises FileNotFoundError / ValueError naming what trains
it; nothing here trains. Training (`training.*`) builds its networks with the same `build_*`
functions, so a checkpoint always loads into the network it was trained as.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_finished_checkpoint
from .config import Profile, resolve_run
from .devices import pick_device
from .face3d import MorphableModel, load_face_model
from .models import N3D, ArcFaceHead, IdentityEncoder, InpaintingGenerator, PatchDiscriminator
from .seeding import seeded_torch

IDENTITY_NAME = "identity"   # checkpoint names: <run folder>/<name>.pt
N3D_NAME = "n3d"


def inpainting_name(use_render: bool = True, truth_probability: float | None = None,
                    profile: Profile | None = None) -> str:
    """G's checkpoint name: "inpainting"; "inpainting_no_prior" for the ablation;
    "inpainting_truth<p>" for G trained with another `truth_probability` than `profile`'s."""
    if not use_render:
        return "inpainting_no_prior"
    if truth_probability is None or (profile is not None
                                     and truth_probability == profile.truth_render_probability):
        return "inpainting"
    return f"inpainting_truth{truth_probability:g}"


def build_identity_models(settings: dict, seed: int,
                          imagenet_weights: str | Path | None = None) -> dict[str, nn.Module]:
    """The encoder and ArcFace head of `settings` (`training.identity.identity_settings`), on
    the CPU, their random initial weights fixed by `seed`."""
    with seeded_torch(seed, IDENTITY_NAME, "init"):
        encoder = IdentityEncoder(settings["backbone"], settings["width"],
                                  settings["working_size"], imagenet_weights)
        head = ArcFaceHead(settings["num_classes"], scale=settings["scale"],
                           margin=settings["margin"])
    return {"encoder": encoder, "head": head}


def build_n3d(settings: dict, seed: int, face_model: MorphableModel) -> N3D:
    """An N3D of `settings` (`training.n3d.n3d_settings`) for `face_model`'s coefficients, on
    the CPU, its random initial weights fixed by `seed`."""
    with seeded_torch(seed, N3D_NAME, "init"):
        return N3D(settings["backbone"], settings["image_size"], face_model.layout,
                   width=settings["width"], detail_width=settings.get("detail_width", 0))


def build_inpainting(settings: dict, seed: int) -> tuple[InpaintingGenerator, PatchDiscriminator]:
    """G and D of `settings` (`training.inpainting.inpainting_settings`) on the CPU, their
    random initial weights fixed by `seed`."""
    with seeded_torch(seed, inpainting_name(settings["use_render"]), "init"):
        generator = InpaintingGenerator(settings["image_size"], settings["width"],
                                        settings["use_render"],
                                        settings.get("residual", False),
                                        settings.get("matched_guide", False))
        critic = PatchDiscriminator(settings["critic_width"])
    return generator, critic


def frozen(network: nn.Module, device: str | torch.device | None) -> nn.Module:
    """`network` without weight gradients, in eval mode, on `device` (default: `pick_device`)."""
    return network.requires_grad_(False).eval().to(pick_device(device))


def load_identity_encoder(profile: Profile | str | None = None,
                          run_folder: str | Path | None = None,
                          device: str | torch.device | None = None) -> IdentityEncoder:
    """The run's trained identity encoder (as the identity loss and metrics use it)."""
    profile, folder = resolve_run(profile, run_folder)
    state = load_finished_checkpoint(folder, IDENTITY_NAME, profile.name,
                                     f"train_identity_encoder({profile.name!r}) or notebook 02")
    encoder = build_identity_models(state["settings"], profile.seed)["encoder"]
    encoder.load_state_dict(state["models"]["encoder"])
    return frozen(encoder, device)


def load_n3d(profile: Profile | str | None = None, run_folder: str | Path | None = None,
             device: str | torch.device | None = None) -> N3D:
    """The run's trained N3D."""
    profile, folder = resolve_run(profile, run_folder)
    state = load_finished_checkpoint(folder, N3D_NAME, profile.name,
                                     f"train_n3d({profile.name!r}) or notebook 03")
    n3d = build_n3d(state["settings"], profile.seed, load_face_model())
    n3d.load_state_dict(state["models"]["n3d"])
    return frozen(n3d, device)


def load_inpainting(profile: Profile | str | None = None, run_folder: str | Path | None = None,
                    use_render: bool = True, truth_probability: float | None = None,
                    device: str | torch.device | None = None) -> InpaintingGenerator:
    """The run's trained G (the ablation with `use_render=False`, or the one trained with
    `truth_probability`)."""
    profile, folder = resolve_run(profile, run_folder)
    name = inpainting_name(use_render, truth_probability, profile)
    flag = "" if use_render else ", use_render=False"
    if name.startswith("inpainting_truth"):
        flag += f", truth_probability={truth_probability:g}"
    state = load_finished_checkpoint(folder, name, profile.name,
                                     f"train_inpainting({profile.name!r}{flag}) or notebook 04")
    generator, _ = build_inpainting(state["settings"], profile.seed)
    generator.load_state_dict(state["models"]["G"])
    return frozen(generator, device)
