"""What in our synthetic faces makes a real-face recogniser see one person in all of them.

The data issue asks that SFace tell our people apart as it tells real people apart (mean cosine
over pairs of different identities <= 0.30; different real people about 0.08; our test faces
0.57). Before building a new generator, this asks which variation moves that cosine and by how
much: the same `--faces` test identities, one sample each, rendered at 256 px over a plain grey
background and judged by SFace aligned by their true five points, with one thing changed at a
time: pose, light and expression as the data draws them or frontal and neutral; the appearance
layer (skin detail, stubble, sheen) or the plain 3DMM; the identity (shape) or texture block
alone, or either scaled beyond the model's spread; every face given one identity's
appearance tells whether that layer moves SFace as realism or as one more way people differ.
Prints each condition's mean cosine over pairs of different identities and the share of them
SFace calls the same person; `--figure` draws the frontal faces as they are and with the
identity block at three times its spread.

    python benchmarks/realism_levers.py [--faces 40] [--figure levers.png]
"""

from __future__ import annotations

import argparse
import time

import imageio.v3 as iio
import matplotlib.cbook
import numpy as np
import skimage.data
import torch

from unmasklib.data.synthetic import draw_coefficients, looks_of, render_masked_faces
from unmasklib.evaluation.realism import cosine_matrix, five_points_of
from unmasklib.face3d import load_face_model
from unmasklib.face3d.layout import CoeffLayout
from unmasklib.images import load_rgb
from unmasklib.real_faces import SAME_PERSON_COSINE, cosine, features_of_images

IMAGE_SIZE = 256
GREY = -0.2  # the background, in [-1, 1]


def changed(coeffs: torch.Tensor, layout: CoeffLayout, frontal: bool,
            scales: dict[str, float]) -> torch.Tensor:
    """`coeffs` `(N, size)` with pose, light and expression at zero when `frontal` (a frontal,
    neutral face under the default light) and the named blocks multiplied by `scales`."""
    rows = []
    for row in coeffs:
        parts = layout.split(row.clone())
        if frontal:
            for name in ("pose", "lighting", "expression"):
                parts[name] = torch.zeros_like(parts[name])
        for name, scale in scales.items():
            parts[name] = parts[name] * scale
        rows.append(layout.join(parts))
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=40, help="test identities, one sample each")
    parser.add_argument("--seed", type=int, default=0, help="the data seed (profiles use 0)")
    parser.add_argument("--figure", help="where to draw frontal faces at 1x and 3x identity")
    args = parser.parse_args()
    model = load_face_model()
    indices = [8 * i for i in range(args.faces)]  # sample 0 of each of the first identities
    coeffs = torch.stack([draw_coefficients(model, args.seed, "test", i) for i in indices])
    looks = looks_of(args.seed, "test", indices, IMAGE_SIZE)
    grey = torch.full((args.faces, 3, IMAGE_SIZE, IMAGE_SIZE), GREY)
    upper = np.triu(np.ones((args.faces, args.faces), dtype=bool), k=1)

    def judge(name: str, faces: torch.Tensor, appearances: list | None = looks["appearances"],
              ) -> np.ndarray:
        out = render_masked_faces(model, faces.to(model.dtype), [None] * args.faces, grey,
                                  IMAGE_SIZE, appearances)
        photos = out["clean"].numpy()
        scores = cosine_matrix(photos, five_points_of(out["landmarks"]))
        different = scores[upper]  # one face per identity: every pair is of two people
        matches = 100 * (different >= SAME_PERSON_COSINE).mean()
        print(f"{name:58s} {different.mean():6.3f} {matches:7.1f} %", flush=True)
        return photos, scores

    start = time.perf_counter()
    print(f"{args.faces} test identities, {args.faces * (args.faces - 1) // 2} pairs; SFace's "
          f"same-person threshold {SAME_PERSON_COSINE}")
    print(f"{'condition':58s} {'cosine':>6s} {'same person':>9s}")
    layout = model.layout
    judge("as the data draws them (pose, light, expression)", coeffs)
    frontal, scores = judge("frontal, neutral, default light", changed(coeffs, layout, True, {}))
    # Pairs by an optional trait of the appearance layer: both have it, one has it, neither.
    for trait in ("stubble", "freckles", "moles", "wrinkles"):
        has = np.array([trait in look.traits for look in looks["appearances"]])
        split = [upper & has[:, None] & has[None], upper & (has[:, None] ^ has[None]),
                 upper & ~has[:, None] & ~has[None]]
        means = " / ".join(f"{scores[pairs].mean():.3f}" if pairs.any() else "-"
                           for pairs in split)
        label = f"    {trait} ({has.sum()} faces): both / one / neither have it"
        print(f"{label:58s} {means}")
    judge("  ... without the appearance layer (the plain 3DMM)",
          changed(coeffs, layout, True, {}), None)
    judge("  ... every face with the first identity's appearance",
          changed(coeffs, layout, True, {}), looks["appearances"][:1] * args.faces)
    judge("  ... identity block alone (texture at the mean)",
          changed(coeffs, layout, True, {"texture": 0.0}))
    judge("  ... texture block alone (shape at the mean)",
          changed(coeffs, layout, True, {"identity": 0.0}))
    wide = {scale: judge(f"  ... identity block x{scale:g}",
                         changed(coeffs, layout, True, {"identity": scale}))
            for scale in (2.0, 3.0)}
    judge("  ... texture block x2", changed(coeffs, layout, True, {"texture": 2.0}))
    judge("  ... identity x3 and texture x2", changed(coeffs, layout, True,
                                                     {"identity": 3.0, "texture": 2.0}))
    judge("identity x3 and texture x2, pose, light, expression drawn",
          changed(coeffs, layout, False, {"identity": 3.0, "texture": 2.0}))

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        real = [skimage.data.astronaut(), load_rgb(file)]
    features = [features_of_images(photo[None])[0] for photo in real]
    print(f"{'for scale, two real people (the astronaut, Grace Hopper)':58s} "
          f"{float(cosine(features[0], features[1])):6.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")

    if args.figure:
        rows = [np.concatenate(list(images[:8]), 1) for images in (frontal, wide[3.0][0])]
        iio.imwrite(args.figure, np.concatenate(rows, 0))
        print(f"frontal faces, identity x1 (top) and x3 (bottom): {args.figure}")


if __name__ == "__main__":
    main()
