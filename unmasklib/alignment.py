"""From a photo to the face crop the networks were trained on, and back.

Synthetic training faces are rendered by the default camera, so a photo is aligned by a
similarity transform (rotation, uniform scale, shift) that carries its eyes, or the paper's
five points (eyes, nose tip, mouth corners), onto where the embedded model's mean face lands
in that camera: `canonical_points`. Without landmarks, YuNet (`real_faces`, a detector that
learned from real photos) finds the face and its five points; nothing is downloaded.

A transform is a `(2, 3)` matrix M taking photo pixels (x, y, 1) to crop pixels. Pixel centres
sit at integer coordinates in both, as OpenCV's `warpAffine` assumes.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .face3d import MorphableModel, posed_vertices, project
from .real_faces import detect_faces

# Each point as a range of iBUG-68 landmarks whose mean it is; in image order: the eye on the
# left of the picture (the subject's right), the other eye, the nose tip, the mouth corner on
# the left of the picture, the other corner.
FIVE_POINTS = (range(36, 42), range(42, 48), range(30, 31), range(48, 49), range(54, 55))
# find_face_points' later looks: LEVEL_LOOKS views, LEVEL_VIEW px square, the eyes level and
# 96 px apart (a face of about 200 px; chosen on the astronaut under masks and roll).
LEVEL_LOOKS, LEVEL_VIEW = 3, 384
LEVEL_EYES = np.array([[144.0, 160.0], [240.0, 160.0]])
# find_face_points' first look: the photo turned by each of these angles (degrees,
# counter-clockwise), the face YuNet is surest of kept. A detector places the points of a
# strongly rolled masked face far off, and the levelled looks after it cannot recover from
# eyes half an eye distance away. Chosen on Grace Hopper's portrait (matplotlib's sample
# data; her points on the bare upright photo as truth), bare and wearing each mask kind,
# rolled by -45 to 60 degrees: mean five-point error 0.274 / 0.165 / 0.155 / 0.153 eye
# distances (largest 0.73 / 0.58 / 0.47 / 0.41; two faces not found by the first) with turns
# of 0 / 0, +-30 / 0, +-45 / 0, +-25, +-50 degrees, 0.09 / 0.21 / 0.20 / 0.24 s a 512 px
# photo (`benchmarks/choose_look_rolls.py`; a view a pixel wider moves the detector's points
# by a few hundredths, so the three sets with turns are about equal, and the last is steadiest).
LOOK_ROLLS = (0.0, 25.0, -25.0, 50.0, -50.0)
# The first look sees a photo scaled down to this many pixels on its longer side: five looks
# at a 12-megapixel photo took 16.6 s, one 2.0 s; a face too small to be found so is looked
# for in the whole photo after (not tuned; a face fills 128 px of the crop anyway).
FIRST_LOOK_SIZE = 1024


class FaceNotFoundError(ValueError):
    """No face was found in a photo."""


def five_points(landmarks: torch.Tensor) -> torch.Tensor:
    """iBUG-68 landmarks `(N, 68, 2)` as the renderer gives them (pixel centres at half
    integers) -> the five points `(N, 5, 2)` (`FIVE_POINTS` order) in photo pixels (centres at
    integers, as OpenCV and YuNet count them); differentiable."""
    return torch.stack([landmarks[:, list(p)].mean(1) for p in FIVE_POINTS], dim=1) - 0.5


def canonical_points(face_model: MorphableModel, size: int) -> np.ndarray:
    """The five points `(5, 2)` (x, y pixels, `FIVE_POINTS` order) of the mean face with zero
    coefficients in a `size` x `size` render: where training faces have them on average."""
    coeffs = face_model.zero_coeffs(1)
    screen = project(posed_vertices(face_model, coeffs, face_model.mean_shape[None]),
                     size, size)[0, face_model.landmark_index, :2]
    return five_points(screen[None])[0].cpu().numpy()


def similarity_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity `(2, 3)` taking points `source` `(N, 2)` onto `target`
    `(N, 2)`, N >= 2 (Umeyama 1991, without reflection). Two points fit exactly."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 \
            or len(source) < 2:
        raise ValueError(f"need matching (N, 2) point arrays with N >= 2, got {source.shape} "
                         f"and {target.shape}")
    source_mean, target_mean = source.mean(0), target.mean(0)
    s, t = source - source_mean, target - target_mean
    spread = (s ** 2).sum()
    if spread < 1e-12:
        raise ValueError("the points coincide: they fix no scale or rotation")
    # For 2-D points the best rotation-and-scale is a complex number: sum(t * conj(s)) / |s|^2.
    a = ((s * t).sum()) / spread
    b = ((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum()) / spread
    linear = np.array([[a, -b], [b, a]])
    return np.concatenate([linear, (target_mean - linear @ source_mean)[:, None]], axis=1)


def scale_of(matrix: np.ndarray) -> float:
    """How many crop pixels one photo pixel spans under `matrix` `(2, 3)`."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def square_fit(height: int, width: int, size: int) -> np.ndarray:
    """The transform `(2, 3)` that centres an `height` x `width` image in a `size` square,
    scaled so its longer side fills it: how an unaligned input is taken as it is."""
    scale = size / max(height, width)
    # Centre of the image (in pixel-centre coordinates) onto the centre of the square.
    shift = (size - 1) / 2 - scale * (np.array([width, height]) - 1) / 2
    return np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])


def shrunk(photo: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """`photo` `(H, W, ...)` uint8 shrunk by `scale` < 1 with area averaging (no aliasing),
    and the `(2, 3)` transform from its pixels back to the photo's (pixel centres at integers
    in both)."""
    height, width = photo.shape[:2]
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    fx, fy = width / small[0], height / small[1]
    return (cv2.resize(photo, small, interpolation=cv2.INTER_AREA),
            np.array([[fx, 0.0, (fx - 1) / 2], [0.0, fy, (fy - 1) / 2]]))


def warp_to_crop(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Photo `(H, W, C)` or `(H, W)` uint8 -> crop `(size, size, ...)` under `matrix`; beyond
    the photo's border its edge pixels are repeated. A large photo is first shrunk by area
    averaging, so the crop does not alias."""
    scale = scale_of(matrix)
    if scale < 1:
        photo, to_original = shrunk(photo, scale)
        matrix = matrix @ np.vstack([to_original, [0.0, 0.0, 1.0]])
    crop = cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop.reshape(size, size, -1) if photo.ndim == 3 else crop


def warp_to_photo(crop: np.ndarray, matrix: np.ndarray, height: int,
                  width: int) -> np.ndarray:
    """Crop `(S, S, C)` uint8 -> `(height, width, C)` in the photo's frame, the inverse of
    `matrix`, bilinear; beyond the crop its edge pixels are repeated (paste it through a mask,
    e.g. `mask_to_photo`'s)."""
    return _warp_back(crop, matrix, height, width, cv2.BORDER_REPLICATE)


def window_of(matrix: np.ndarray, left: int, top: int) -> np.ndarray:
    """`matrix` `(2, 3)` for the photo window whose top-left pixel is (`left`, `top`): warping
    a crop back into just that window (`warp_to_photo`) costs its size, not the photo's."""
    return np.concatenate([matrix[:, :2], matrix[:, 2:] + matrix[:, :2] @ [[left], [top]]],
                          axis=1)


def mask_to_photo(mask: np.ndarray, matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop mask `(S, S)` bool -> `(height, width)` bool: where the bilinear warp of the mask is
    at least half on (beyond the crop: off), so edges stay smooth when a small crop returns to
    a large photo."""
    return _warp_back(mask.astype(np.uint8) * 255, matrix, height, width,
                      cv2.BORDER_CONSTANT) >= 128


def _warp_back(crop: np.ndarray, matrix: np.ndarray, height: int, width: int,
               border: int) -> np.ndarray:
    photo = cv2.warpAffine(crop, matrix, (width, height),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border,
                           borderValue=0)
    return photo.reshape(height, width, -1) if crop.ndim == 3 else photo


def mask_to_crop(mask: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Photo mask `(H, W)` bool -> crop mask `(size, size)` bool, the same rule."""
    return warp_to_crop(mask.astype(np.uint8) * 255, matrix, size) >= 128


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points `(..., 2)` (x, y) carried by the affine `matrix` `(2, 3)`."""
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


# A face mask never reaches above the eye line between the eyes and a little beyond them: on
# the 180 masked faces among 200 training-split faces training never saw (data v2, true five
# points), no mask pixel lies above the line through the eye centres within 0.75 eye distances
# of the face's midline; at 1.0 eye distances two faces lose up to 0.03 % of theirs, a strap or
# loop (`benchmarks/choose_mask_free.py`). With the eyes YuNet finds through the mask instead
# (162 of the faces; `--found`), none at 0.75 either (3 faces touched at 1.0). Below the line
# masks reach up to the eyes' centres, so the eyes' lower halves stay allowed.
MASK_FREE_HALF_WIDTH = 0.75


def above_the_eyes(eyes: np.ndarray, size: int, half_width: float | None = None) -> np.ndarray:
    """Where a worn mask never is, in an upright crop `size` x `size` (canonical alignment):
    above the line through `eyes` `(2, 2)` (x, y crop pixels, either order) and within
    `half_width` eye distances (default `MASK_FREE_HALF_WIDTH`, read when called) of the point
    between them, along that line; `(size, size)` bool."""
    half_width = MASK_FREE_HALF_WIDTH if half_width is None else half_width
    eyes = np.asarray(eyes, np.float64)
    left, right = eyes[np.argsort(eyes[:, 0])]
    along = right - left
    distance = float(np.linalg.norm(along))
    if distance == 0:
        raise ValueError("the two eyes are at the same point")
    along /= distance
    up = np.array([along[1], -along[0]])  # the crop is upright: up has a negative y
    rows, cols = np.mgrid[0:size, 0:size]
    offset = np.stack([cols, rows], axis=-1) - (left + right) / 2
    return (offset @ up > 0) & (np.abs(offset @ along) < half_width * distance)


def alignment_to(face_model: MorphableModel, size: int, points: np.ndarray) -> np.ndarray:
    """The transform `(2, 3)` carrying `points` of a photo onto the canonical crop: two eyes
    `(2, 2)` (either order) or the five points `(5, 2)` in `FIVE_POINTS` order."""
    points = np.asarray(points, np.float64)
    canonical = canonical_points(face_model, size)
    if points.shape == (2, 2):
        return similarity_from_points(points[np.argsort(points[:, 0])], canonical[:2])
    if points.shape == (5, 2):
        return similarity_from_points(points, canonical)
    raise ValueError(f"landmarks must be two eyes ((x, y), (x, y)) or the five points "
                     f"(eyes, nose tip, mouth corners), got an array of shape {points.shape}")


def find_face_points(photo: np.ndarray) -> np.ndarray:
    """The five points `(5, 2)` (x, y pixels, `FIVE_POINTS` order) of the largest face YuNet
    finds in photo `(H, W, 3)` uint8 RGB (in the turn of the photo where YuNet is surest of
    it, see below). Raises FaceNotFoundError when it finds none.

    A detector places points best on upright faces of moderate size, the kind it mostly
    learned from, so after the first look the face is looked at again `LEVEL_LOOKS` times,
    each time levelled (eyes horizontal) and scaled by the last answer (`LEVEL_EYES`), and
    in its mirror image too, whose points, mirrored back, are averaged with the direct ones
    (it cancels the detector's left-right bias). A view that loses the face ends the looking.
    The first look is itself taken at a few turns of the photo (`LOOK_ROLLS`), so that a
    strongly rolled face is first seen near upright (README, "Finding faces").
    """
    points = _first_look(photo)
    if points is None:
        raise FaceNotFoundError("found no face in the photo: pass eyes=((x, y), (x, y)) with "
                                "the eye centres in pixels, or the five points (eyes, nose "
                                "tip, mouth corners) as eyes= / --eyes with ten numbers")
    for _ in range(LEVEL_LOOKS):
        level = similarity_from_points(points[:2], LEVEL_EYES)
        seen = _level_points(warp_to_crop(photo, level, LEVEL_VIEW))
        if seen is None:
            break
        back = cv2.invertAffineTransform(level)
        points = transform_points(seen, back)
    return points


def _first_look(photo: np.ndarray) -> np.ndarray | None:
    """The five points `(5, 2)` in `photo` of the largest face YuNet finds in it turned by one
    of `LOOK_ROLLS`, the turn whose largest face has the highest score; None: no face. A
    photo larger than `FIRST_LOOK_SIZE` is looked at scaled down to it (the levelled looks
    after this one place the points), and at its own size, upright, where that finds nothing
    (a small face in a large photo)."""
    scale = min(1.0, FIRST_LOOK_SIZE / max(photo.shape[:2]))
    small, to_photo = shrunk(photo, scale) if scale < 1 else (photo, np.eye(2, 3))
    best_score, points = -np.inf, None
    for degrees in LOOK_ROLLS:
        view, back = _turned(small, degrees)
        faces = detect_faces(view)
        if faces and faces[0].score > best_score:
            best_score, points = faces[0].score, transform_points(faces[0].points, back)
    if points is not None:
        return transform_points(points, to_photo)
    if scale < 1 and (full_size := detect_faces(photo)):
        return full_size[0].points
    return None


def _turned(photo: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """`photo` turned by `degrees` counter-clockwise about its centre, in a view wide enough to
    hold all of it, and the `(2, 3)` transform from view pixels back to photo pixels."""
    if degrees == 0:
        return photo, np.eye(2, 3)
    height, width = photo.shape[:2]
    turn = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    size = (round(width * cos + height * sin), round(width * sin + height * cos))
    turn[:, 2] += [(size[0] - width) / 2, (size[1] - height) / 2]
    return (cv2.warpAffine(photo, turn, size, flags=cv2.INTER_LINEAR),
            cv2.invertAffineTransform(turn))


def _level_points(view: np.ndarray) -> np.ndarray | None:
    """The five points `(5, 2)` of the face nearest `LEVEL_EYES` in a levelled view, averaged
    with those of the same face in the view's mirror image; None when neither has a face."""
    width = view.shape[1]
    direct = [face.points for face in detect_faces(view)]
    # Mirrored back, the mirror's left eye and mouth corner are the view's right ones.
    mirrored = [face.points[[1, 0, 2, 4, 3]] * [-1, 1] + [width - 1, 0]
                for face in detect_faces(np.ascontiguousarray(view[:, ::-1]))]
    nearest = [min(found, key=lambda p: np.abs(p[:2] - LEVEL_EYES).sum())
               for found in (direct, mirrored) if found]
    return np.mean(nearest, axis=0) if nearest else None
