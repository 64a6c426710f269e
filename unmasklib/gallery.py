"""Render a gallery of random faces from the embedded 3D face model.

    python -m unmasklib.gallery [--profile cpu] [--count 16] [--seed 0]

Writes `runs/<profile>/gallery.png`: different people, expressions, poses and lighting, as
the synthetic data shows them: the skin detail, stubble and sheen it adds over the plain 3DMM
render, and the hair, ears, neck and clothes around the face.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import face3d
from .config import get_profile, run_dir
from .data.synthetic import appearance_of, head_of, render_masked_faces
from .images import from_uint8, image_grid, save_image

GALLERY_SIZE = 256  # the gallery is for people to look at: full resolution in every profile


def render_gallery(count: int = 16, seed: int = 0,
                   image_size: int = GALLERY_SIZE) -> torch.Tensor:
    """`count` random people `(count, 3, image_size, image_size)` in [-1, 1], grey background,
    each with the skin and head of the synthetic data's identity k."""
    model = face3d.load_face_model()
    coeffs = model.sample_coeffs(count, generator=torch.Generator().manual_seed(seed))
    background = torch.full((count, 3, image_size, image_size), -0.6)
    rendered = render_masked_faces(
        model, coeffs, [None] * count, background, image_size,
        appearances=[appearance_of(seed, k, image_size) for k in range(count)],
        heads=[head_of(seed, k) for k in range(count)])
    return torch.stack([from_uint8(image) for image in rendered["clean"].numpy()])


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
