"""How real our synthetic faces look to judges that learned from real photos.

    report = realism_report(faces)       # clean held-out faces, their landmarks and identities
    report.rows()                        # the figures, ready for a table

Two questions, asked of YuNet and SFace (`real_faces`):
- Does a real-face detector see a face, and put the five points where our 3D face has them?
  Detection rate, and the distance of its points to our projected landmarks divided by the
  eye distance (the error a user's photo gets aligned with).
- Does a real-face recogniser tell our people apart, and know one again? SFace's cosine over
  every pair of different identities (mean, and the share above its same-person threshold:
  false matches) and over pairs of samples of one identity (under another expression, pose
  and light: the share above it is the match rate). Each face is aligned by its true five
  points here, so the recogniser's verdict does not depend on the detector's.
For reference, SFace on 37 photos of different real people: mean cosine 0.08, no pair above
the threshold (issue 22).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..alignment import five_points
from ..images import to_uint8
from ..real_faces import SAME_PERSON_COSINE, cosine, detect_faces, features_of_images


def five_points_of(landmarks: torch.Tensor) -> np.ndarray:
    """`alignment.five_points` of renderer landmarks `(N, 68, 2)`, as a float64 array
    `(N, 5, 2)` in photo pixels."""
    return five_points(landmarks.double()).numpy()


@dataclass
class RealismReport:
    """faces: how many were judged; detected: the share YuNet finds; point_error_median /
    point_error_mean: its five-point error over the found faces, in eye distances;
    different_pairs, different_mean_cosine, false_match_rate: SFace over pairs of different
    identities; same_pairs, same_mean_cosine, same_match_rate: over pairs of one identity."""

    faces: int
    detected: float
    point_error_median: float
    point_error_mean: float
    different_pairs: int
    different_mean_cosine: float
    false_match_rate: float
    same_pairs: int
    same_mean_cosine: float
    same_match_rate: float

    def rows(self) -> list[tuple[str, str]]:
        """(what, figure) pairs for a table."""
        return [
            ("faces judged", f"{self.faces}"),
            ("YuNet finds a face", f"{100 * self.detected:.1f} %"),
            ("five-point error / eye distance (median, mean)",
             f"{self.point_error_median:.3f}, {self.point_error_mean:.3f}"),
            (f"SFace, different identities ({self.different_pairs} pairs): mean cosine",
             f"{self.different_mean_cosine:.3f}"),
            (f"SFace false matches (cosine >= {SAME_PERSON_COSINE})",
             f"{100 * self.false_match_rate:.1f} %"),
            (f"SFace, same identity ({self.same_pairs} pairs): mean cosine",
             f"{self.same_mean_cosine:.3f}"),
            ("SFace match rate, same identity", f"{100 * self.same_match_rate:.1f} %"),
        ]

    def as_dict(self) -> dict:
        return asdict(self)


def detection_errors(photos: np.ndarray, points: np.ndarray) -> np.ndarray:
    """YuNet's five-point error `(N,)` on uint8 photos `(N, H, W, 3)` against the true points
    `(N, 5, 2)`: mean point distance over the eye distance; NaN where it finds no face."""
    errors = np.full(len(photos), np.nan)
    for i, (photo, truth) in enumerate(zip(photos, points, strict=True)):
        if found := detect_faces(photo):
            distance = np.linalg.norm(found[0].points - truth, axis=1).mean()
            errors[i] = distance / np.linalg.norm(truth[1] - truth[0])
    return errors


def cosine_matrix(photos: np.ndarray, points: np.ndarray) -> np.ndarray:
    """SFace's cosine `(N, N)` between every two of N uint8 photos `(N, H, W, 3)`, each face
    aligned by its five points `(N, 5, 2)`."""
    features = features_of_images(photos, points)
    return cosine(features[:, None], features[None])


def pair_cosines(photos: np.ndarray, points: np.ndarray,
                 identities: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(different, same)`: SFace's cosines (`cosine_matrix`) of the pairs of photos of
    different identities (ids `(N,)`) and of the pairs of one identity, each `(pairs,)`."""
    scores = cosine_matrix(photos, points)
    ids = np.asarray(identities)
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    same = ids[:, None] == ids[None]
    return scores[upper & ~same], scores[upper & same]


def realism_report(clean: torch.Tensor, landmarks: torch.Tensor,
                   identities: torch.Tensor | np.ndarray) -> RealismReport:
    """Judge clean faces `(N, 3, H, W)` in [-1, 1] whose landmarks `(N, 68, 2)` (renderer
    pixels) and identity ids `(N,)` are known."""
    photos, points = to_uint8(clean), five_points_of(landmarks)
    errors = detection_errors(photos, points)
    found = errors[~np.isnan(errors)]
    different, same = pair_cosines(photos, points, identities)
    return RealismReport(
        faces=len(photos), detected=float(len(found) / len(photos)),
        point_error_median=float(np.median(found)) if len(found) else float("nan"),
        point_error_mean=float(found.mean()) if len(found) else float("nan"),
        different_pairs=len(different), different_mean_cosine=float(different.mean()),
        false_match_rate=float((different >= SAME_PERSON_COSINE).mean()),
        same_pairs=len(same), same_mean_cosine=float(same.mean()),
        same_match_rate=float((same >= SAME_PERSON_COSINE).mean()))
