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
identity block at three times its spread. Last, whether our 3D face can be a real person at
all: the astronaut and Grace Hopper, each fitted by it as a photo folder's pseudo ground truth
is, their fits judged against their photos and against each other.

    python benchmarks/realism_levers.py [--faces 40] [--figure levers.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from real_photos import real_photo

from unmasklib.alignment import alignment_to, find_face_points, transform_points, warp_to_crop
from unmasklib.data.folder import pseudo_ground_truth
from unmasklib.data.synthetic import draw_coefficients, looks_of, render_masked_faces
from unmasklib.evaluation.realism import cosine_matrix, five_points_of
from unmasklib.face3d import MorphableModel, load_face_model, render_faces
from unmasklib.face3d.layout import CoeffLayout
from unmasklib.images import from_uint8, to_uint8
from unmasklib.real_faces import SAME_PERSON_COSINE

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

    crops, fits, scores = real_people_fitted(model)
    label = "two real people (the astronaut, Grace Hopper), their photos"
    print(f"{label:58s} {scores[0, 1]:6.3f}")
    print(f"{'  ... our 3D face fitted to each photo':58s} {scores[2, 3]:6.3f}")
    print(f"{'  ... each fit against its own photo (same person >= 0.363)':58s} "
          f"{scores[0, 2]:6.3f} / {scores[1, 3]:.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")

    if args.figure:
        real = np.full_like(frontal[:8], 128)
        real[:4] = [crops[0], fits[0], crops[1], fits[1]]
        rows = [np.concatenate(list(images), 1) for images in (frontal[:8], wide[3.0][0][:8], real)]
        figure = Image.fromarray(np.concatenate(rows, 0))
        figure.resize((figure.width // 2, figure.height // 2), Image.LANCZOS).save(args.figure)
        print(f"frontal faces, identity x1 and x3; the real people and their fits: {args.figure}")


def real_people_fitted(model: MorphableModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Can our face model be a real person? The astronaut and Grace Hopper, each aligned to a
    crop by the five points YuNet finds and fitted by the 3D face as a photo folder's pseudo
    ground truth is (`data.folder.pseudo_ground_truth`). Returns the crops and the fits'
    renders over them, uint8 `(2, S, S, 3)` each, and SFace's cosines `(4, 4)` between the
    two crops and the two renders, in that order."""
    photos = [real_photo("astronaut"), real_photo("hopper")]
    crops, points = [], []
    for photo in photos:
        found = find_face_points(photo)
        matrix = alignment_to(model, IMAGE_SIZE, found)
        crops.append(warp_to_crop(photo, matrix, IMAGE_SIZE))
        points.append(transform_points(found, matrix))
    images = torch.stack([from_uint8(crop) for crop in crops])
    truth = pseudo_ground_truth(model, images, torch.from_numpy(np.stack(points)).float())
    fits = to_uint8(render_faces(model, truth.coeffs, IMAGE_SIZE, background=images).image)
    scores = cosine_matrix(np.concatenate([np.stack(crops), fits]),
                           np.concatenate([np.stack(points), five_points_of(truth.landmarks)]))
    return np.stack(crops), fits, scores

if __name__ == "__main__":
    main()
