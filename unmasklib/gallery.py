"""Render a gallery of random faces from the embedded 3D face model.

    python -m unmasklib.gallery [--profile cpu] [--count 16] [--seed 0]

Writes `runs/<profile>/gallery.png`: different identities, expressions, poses and lighting,
with the skin detail, stubble and sheen the synthetic data adds over the plain 3DMM render.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import face3d
from .config import get_profile, run_dir
from .data.appearance import apply_appearance
from .data.synthetic import appearance_of
from .images import image_grid, save_image

GALLERY_SIZE = 256  # the gallery is for people to look at: full resolution in every profile


def render_gallery(count: int = 16, seed: int = 0,
                   image_size: int = GALLERY_SIZE) -> torch.Tensor:
    """`count` random faces `(count, 3, image_size, image_size)` in [-1, 1], grey background,
    each with the appearance layer of the synthetic data's identity k."""
    model = face3d.load_face_model()
    coeffs = model.sample_coeffs(count, generator=torch.Generator().manual_seed(seed))
    background = torch.full((1, 3, image_size, image_size), -0.6)
    with torch.no_grad():
        out = face3d.render_faces(model, coeffs, image_size, background=background)
        looks = [appearance_of(seed, k, image_size) for k in range(count)]
        return apply_appearance(out, model, coeffs, looks)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="smoke | cpu | paper ($UNMASK_PROFILE)")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    faces = render_gallery(args.count, args.seed)
    path = save_image(image_grid(faces, columns=4), run_dir(profile) / "gallery.png")
    print(f"wrote {args.count} faces to {path}")
    return path


if __name__ == "__main__":
    main()
