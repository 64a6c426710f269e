"""From a photo to the face crop the networks were trained on, and back.

Synthetic training faces are rendered by the default camera, so a photo is aligned by a
similarity transform (rotation, uniform scale, shift) that carries its eyes, or the paper's
five points (eyes, nose tip, mouth corners), onto where the embedded model's mean face lands
in that camera: `canonical_points`. Without landmarks, OpenCV's Haar cascades (shipped inside
`opencv-python-headless` 4.x) find the face and its eyes; nothing is downloaded.

A transform is a `(2, 3)` matrix M taking photo pixels (x, y, 1) to crop pixels. Pixel centres
sit at integer coordinates in both, as OpenCV's `warpAffine` assumes.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .face3d import MorphableModel, posed_vertices, project

# Each point as a range of iBUG-68 landmarks whose mean it is; in image order: the eye on the
# left of the picture (the subject's right), the other eye, the nose tip, the mouth corner on
# the left of the picture, the other corner.
FIVE_POINTS = (range(36, 42), range(42, 48), range(30, 31), range(48, 49), range(54, 55))


class FaceNotFoundError(ValueError):
    """The Haar cascades found no face, or no pair of eyes in it."""


def canonical_points(face_model: MorphableModel, size: int) -> np.ndarray:
    """The five points `(5, 2)` (x, y pixels, `FIVE_POINTS` order) of the mean face with zero
    coefficients in a `size` x `size` render: where training faces have them on average."""
    coeffs = face_model.zero_coeffs(1)
    screen = project(posed_vertices(face_model, coeffs, face_model.mean_shape[None]),
                     size, size)[0, face_model.landmark_index, :2]
    # project() puts pixel centres at half-integers; warpAffine at integers.
    return np.stack([screen[list(p)].mean(0).cpu().numpy() for p in FIVE_POINTS]) - 0.5


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


def warp_to_crop(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Photo `(H, W, C)` or `(H, W)` uint8 -> crop `(size, size, ...)` under `matrix`; beyond
    the photo's border its edge pixels are repeated. A large photo is first shrunk by area
    averaging, so the crop does not alias."""
    scale = scale_of(matrix)
    if scale < 1:
        height, width = photo.shape[:2]
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        shrunk = cv2.resize(photo, small, interpolation=cv2.INTER_AREA)
        # Coordinates of the shrunk photo in terms of the original's (pixel centres).
        fx, fy = small[0] / width, small[1] / height
        to_original = np.array([[1 / fx, 0, (1 / fx - 1) / 2], [0, 1 / fy, (1 / fy - 1) / 2],
                                [0, 0, 1]])
        photo, matrix = shrunk, matrix @ to_original
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


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    # Parsed once per process: a batch of photos would otherwise reread the XML each time.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's cascade {name} is missing: install "
                           "opencv-python-headless 4.x (5.x dropped the cascade files)")
    return cascade


def find_eyes(photo: np.ndarray) -> np.ndarray:
    """Eye centres `(2, 2)` (x, y pixels, the left of the picture first) of the largest face in
    photo `(H, W, 3)` uint8, by Haar cascades. Raises FaceNotFoundError when there is no face
    or no plausible pair of eyes in it.

    A mask hides the lower face, which the frontal-face cascade weighs heavily, so when it
    finds nothing the eyes are looked for over the whole photo instead.
    """
    grey = cv2.equalizeHist(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    side = min(grey.shape)
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(side // 8, side // 8))
    eye_cascade = _cascade("haarcascade_eye.xml")
    if len(faces):
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        upper = grey[y:y + h * 3 // 5, x:x + w]
        eyes = eye_cascade.detectMultiScale(upper, scaleFactor=1.05, minNeighbors=3,
                                            minSize=(w // 10, w // 10), maxSize=(w // 3, w // 3))
        pair = _best_eye_pair([(ex + x, ey + y, ew, eh) for ex, ey, ew, eh in eyes])
        where = f"a face at x={x}, y={y} ({w}x{h} px) but"
    else:
        eyes = eye_cascade.detectMultiScale(grey, scaleFactor=1.05, minNeighbors=5,
                                            minSize=(side // 30, side // 30))
        pair = _best_eye_pair(list(eyes))
        where = "no face and"
    if pair is None:
        raise FaceNotFoundError(f"found {where} no pair of eyes in the photo: pass "
                                "eyes=((x, y), (x, y)) with the eye centres in pixels")
    return pair


def _best_eye_pair(boxes: list) -> np.ndarray | None:
    """The two boxes (x, y, w, h) most like a pair of eyes: similar size, side by side, about
    1.5 to 4 eye widths apart, level within a third of that; the largest such pair."""
    best, best_size = None, 0.0
    for i, (x1, y1, w1, h1) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[i + 1:]:
            c1 = np.array([x1 + w1 / 2, y1 + h1 / 2])
            c2 = np.array([x2 + w2 / 2, y2 + h2 / 2])
            width = (w1 + w2) / 2
            dx, dy = abs(c2[0] - c1[0]), abs(c2[1] - c1[1])
            plausible = (max(w1, w2) < 1.5 * min(w1, w2) and 1.2 * width < dx < 4 * width
                         and dy < dx / 3)
            if plausible and width > best_size:
                best, best_size = np.stack(sorted([c1, c2], key=lambda c: c[0])), width
    return best
