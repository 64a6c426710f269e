"""Photo <-> crop alignment: the similarity fit, the warps, YuNet's five points, photo masks."""

import math

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from unmasklib.alignment import (
    FaceNotFoundError,
    _turned,
    above_the_eyes,
    alignment_to,
    canonical_points,
    find_face_points,
    mask_to_photo,
    similarity_from_points,
    square_fit,
    transform_points,
    warp_to_crop,
    warp_to_photo,
)
from unmasklib.data import SyntheticMaskedFaces
from unmasklib.data.folder import mask_photo
from unmasklib.real_faces import detect_faces

# The astronaut's five points (pupils, nose tip, mouth corners), read off 4x and 8x
# enlargements by eye.
ASTRONAUT_POINTS = np.array([[203.0, 101.0], [247.0, 103.5], [224.5, 127.0], [203.0, 140.0],
                             [245.0, 140.5]])
ASTRONAUT_EYES = ASTRONAUT_POINTS[:2]
EYE_DISTANCE = float(np.linalg.norm(ASTRONAUT_EYES[1] - ASTRONAUT_EYES[0]))


def similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_the_fit_recovers_a_known_similarity_from_five_points():
    truth = similarity(0.3, 1.7, (12.0, -5.0))
    source = np.array([[10.0, 20.0], [40.0, 22.0], [25.0, 35.0], [14.0, 50.0], [37.0, 51.0]])
    np.testing.assert_allclose(similarity_from_points(source, apply(truth, source)), truth,
                               atol=1e-10)


def test_two_points_fit_exactly_and_noisy_points_in_the_least_squares_sense():
    source = np.array([[3.0, 4.0], [9.0, 1.0]])
    target = np.array([[50.0, 60.0], [70.0, 90.0]])
    np.testing.assert_allclose(apply(similarity_from_points(source, target), source), target,
                               atol=1e-9)
    rng = np.random.default_rng(0)
    source = rng.normal(size=(6, 2)) * 20
    target = apply(similarity(-0.7, 0.8, (3, 4)), source) + rng.normal(size=(6, 2))
    fitted = similarity_from_points(source, target)
    best = ((apply(fitted, source) - target) ** 2).sum()
    # No nearby similarity does better: the fit is the least-squares optimum.
    for angle, scale in [(0.01, 1), (-0.01, 1), (0, 1.01), (0, 0.99)]:
        nudged = similarity(angle, scale, (0, 0))
        moved = np.concatenate([nudged[:, :2] @ fitted[:, :2], fitted[:, 2:]], axis=1)
        assert ((apply(moved, source) - target) ** 2).sum() > best


def test_a_mirrored_point_set_gets_no_reflection_and_bad_points_a_clear_error():
    source = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fitted = similarity_from_points(source, source * [-1, 1])
    assert np.linalg.det(fitted[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        similarity_from_points(np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="N >= 2"):
        similarity_from_points(np.ones((1, 2)), np.ones((1, 2)))


def test_square_fit_centres_the_image_and_fills_the_square_with_its_longer_side():
    matrix = square_fit(100, 300, 128)
    # The outer edges of the first and last pixel columns land on the square's edges.
    np.testing.assert_allclose(apply(matrix, np.array([[-0.5, 49.5], [299.5, 49.5]])),
                               [[-0.5, 63.5], [127.5, 63.5]], atol=1e-9)


def test_a_large_photo_is_area_averaged_into_the_crop_not_aliased():
    checker = (np.indices((1024, 1024)).sum(0) % 2 * 255).astype(np.uint8)
    photo = np.repeat(checker[..., None], 3, axis=2)
    crop = warp_to_crop(photo, square_fit(1024, 1024, 128), 128)
    # Each crop pixel is the mean of an 8x8 block of the checkerboard: mid grey.
    assert np.abs(crop.astype(float) - 127.5).max() <= 1


def test_warping_to_the_crop_and_back_returns_a_smooth_photo():
    y, x = np.mgrid[0:200, 0:240]
    photo = np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)
    matrix = similarity(0.2, 0.9, (-10.0, 15.0))
    back = warp_to_photo(warp_to_crop(photo, matrix, 256), matrix, 200, 240)
    inside = mask_to_photo(np.ones((256, 256), bool), matrix, 200, 240)
    assert inside.mean() > 0.5
    assert np.abs(back.astype(int) - photo)[inside].max() <= 2
    assert not inside[-1, 0]  # the bottom-left corner lies beyond the crop


def test_canonical_points_are_where_training_faces_have_their_eyes():
    from unmasklib.face3d import load_face_model

    model = load_face_model()
    points = canonical_points(model, 64)
    faces = SyntheticMaskedFaces("train", 200, image_size=64, seed=0, model=model,
                                 progress=False)
    eyes = np.stack([np.stack([faces[i]["landmarks"][36:42].mean(0).numpy(),
                               faces[i]["landmarks"][42:48].mean(0).numpy()])
                     for i in range(len(faces))]) - 0.5
    # Faces vary (yaw alone moves the eyes by 0.08 of the side); their mean is the mean face's.
    assert np.abs(eyes.mean(0) - points[:2]).max() < 0.03 * 64
    # Level eyes, symmetric about the vertical centre line; nose below, mouth below the nose.
    assert points[0, 1] == pytest.approx(points[1, 1])
    assert points[0, 0] + points[1, 0] == pytest.approx(63, abs=0.5)
    assert points[0, 1] < points[2, 1] < points[3, 1]


def point_errors(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance of each point to the truth, in eye distances."""
    return np.linalg.norm(found - truth, axis=1) / np.linalg.norm(truth[1] - truth[0])


def test_yunet_finds_the_astronauts_five_points():
    errors = point_errors(find_face_points(skimage.data.astronaut()), ASTRONAUT_POINTS)
    print(f"astronaut, five-point error / eye distance: {np.round(errors, 3)}, "
          f"mean {errors.mean():.3f}")
    assert errors.mean() < 0.10
    assert errors[:2].max() < 0.10  # the eyes, which fix the alignment most


def test_a_rolled_masked_face_is_found_and_the_mask_sits_below_the_eyes():
    photo = skimage.data.astronaut()
    masked, covered = mask_photo(photo, ASTRONAUT_EYES, "surgical", seed=0)
    assert covered.sum() > 2000
    assert (masked[~covered] == photo[~covered]).all()
    # The mask sits below the eyes and between them horizontally, centred on the face.
    rows, cols = np.nonzero(covered)
    assert rows.min() > ASTRONAUT_EYES[:, 1].max()
    assert ASTRONAUT_EYES[0, 0] < cols.mean() < ASTRONAUT_EYES[1, 0]
    # Rolled by 30 degrees about the face, where eye finders that expect level eyes fail.
    turn = cv2.getRotationMatrix2D((225.0, 120.0), 30.0, 1.0)
    rolled = cv2.warpAffine(masked, turn, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    truth = ASTRONAUT_POINTS @ turn[:, :2].T + turn[:, 2]
    errors = point_errors(find_face_points(rolled), truth)
    print(f"masked, rolled 30 deg: {np.round(errors, 3)}")
    assert errors[:2].max() < 0.15


@pytest.mark.parametrize(("kind", "degrees"), [("none", 60.0), ("cloth", 45.0),
                                               ("surgical", -45.0)])
def test_a_strongly_rolled_face_is_first_seen_turned_upright(kind, degrees):
    """Looked at upright only, YuNet put these points 0.5-0.8 eye distances off on average
    (the detector learned mostly upright faces, and a mask hides the mouth); the first look at turns
    of the photo (`LOOK_ROLLS`, chosen on another photo) finds them, and the points come back
    into the photo's own frame, whatever the turned view's size."""
    photo = skimage.data.astronaut()
    worn = photo if kind == "none" else mask_photo(photo, ASTRONAUT_EYES, kind, seed=0)[0]
    turn = cv2.getRotationMatrix2D(tuple(ASTRONAUT_POINTS[:2].mean(0)), degrees, 1.0)
    rolled = cv2.warpAffine(worn, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    truth = ASTRONAUT_POINTS @ turn[:, :2].T + turn[:, 2]
    errors = point_errors(find_face_points(rolled), truth)
    print(f"{kind}, rolled {degrees} deg: {np.round(errors, 3)}")
    assert errors.mean() < 0.25 and errors[:2].max() < 0.15


@pytest.mark.parametrize("degrees", [25.0, -50.0, 90.0])
def test_a_turned_view_holds_the_whole_photo_and_maps_back_to_its_pixels(degrees):
    """`_turned` on a photo wider than tall, marked near each corner and inside: every mark
    is in the view, and its centre there, carried back, is where it is in the photo."""
    photo = np.zeros((120, 200, 3), np.uint8)
    marks = np.array([[4.0, 4.0], [195.0, 4.0], [4.0, 115.0], [195.0, 115.0], [77.0, 50.0]])
    for x, y in marks.astype(int):
        photo[y - 2:y + 3, x - 2:x + 3] = 255
    view, back = _turned(photo, degrees)
    labels = cv2.connectedComponents((view[..., 0] > 20).astype(np.uint8))[1]
    assert labels.max() == len(marks)
    centres = []
    for label in range(1, labels.max() + 1):
        rows, cols = np.nonzero(labels == label)
        weight = view[rows, cols, 0].astype(np.float64)
        centres.append([(cols * weight).sum() / weight.sum(), (rows * weight).sum() / weight.sum()])
    back_in_photo = transform_points(np.array(centres), back)
    for mark in marks:
        assert np.linalg.norm(back_in_photo - mark, axis=1).min() < 0.3


def test_a_large_photo_is_first_looked_at_scaled_down_and_a_small_face_still_found():
    """The first look sees a photo larger than `FIRST_LOOK_SIZE` scaled down (five looks at
    a 12-megapixel photo took 16 s), and the points come back to its own pixels; a face too
    small to be found so is looked for at the photo's own size."""
    photo = skimage.data.astronaut()
    large = np.pad(cv2.resize(photo, (2048, 2048), interpolation=cv2.INTER_CUBIC),
                   ((0, 0), (600, 0), (0, 0)), mode="edge")  # not square
    truth = (ASTRONAUT_POINTS + 0.5) * 4 - 0.5 + [600, 0]
    errors = point_errors(find_face_points(large), truth)
    assert errors.mean() < 0.10 and errors[:2].max() < 0.10
    sheet = np.full((2000, 3000, 3), 200, np.uint8)
    face = cv2.resize(photo[40:220, 130:320], (57, 54), interpolation=cv2.INTER_AREA)
    sheet[1000:1054, 1500:1557] = face  # 14 px between the eyes: 5 px when scaled down
    scaled = cv2.resize(sheet, (1024, 683), interpolation=cv2.INTER_AREA)
    assert not detect_faces(scaled)  # so the face is found by the look at full size
    eyes = find_face_points(sheet)[:2]
    expected = (ASTRONAUT_POINTS[:2] - [130, 40]) * 0.3 + [1500, 1000]
    assert np.abs(eyes - expected).max() < 4


def test_no_face_gets_an_error_that_asks_for_the_points():
    with pytest.raises(FaceNotFoundError, match=r"eyes=\(\(x, y\), \(x, y\)\).*five points"):
        find_face_points(np.full((200, 200, 3), 128, np.uint8))
    # Nor is a photo of a thing taken for a face.
    with pytest.raises(FaceNotFoundError):
        find_face_points(skimage.data.coffee())


def test_aligning_to_the_eyes_maps_them_onto_the_canonical_eyes():
    from unmasklib.face3d import load_face_model

    model = load_face_model()
    matrix = alignment_to(model, 128, ASTRONAUT_EYES[::-1])  # either order
    np.testing.assert_allclose(apply(matrix, ASTRONAUT_EYES), canonical_points(model, 128)[:2],
                               atol=1e-9)
    with pytest.raises(ValueError, match="five points"):
        alignment_to(model, 128, np.zeros((3, 2)))


def test_above_the_eyes_is_the_band_over_the_eye_line_at_any_roll():
    """Pixel for pixel against the plain definition: a level face is the rows above the eyes
    within 0.75 eye distances of their midpoint; a rolled face the same, turned with it."""
    level = above_the_eyes(np.array([[70.0, 50.0], [30.0, 50.0]]), 96)  # either order
    rows, cols = np.mgrid[0:96, 0:96]
    np.testing.assert_array_equal(level, (rows < 50) & (np.abs(cols - 50) < 30))
    roll = 0.5
    along, up = np.array([np.cos(roll), np.sin(roll)]), np.array([np.sin(roll), -np.cos(roll)])
    middle = np.array([48.0, 60.0])
    rolled = above_the_eyes(np.stack([middle - 20 * along, middle + 20 * along]), 96)

    def at(point: np.ndarray) -> bool:
        x, y = np.round(point).astype(int)
        return bool(rolled[y, x])

    assert at(middle + 6 * up) and not at(middle - 6 * up)
    assert at(middle + 10 * up + 28 * along) and not at(middle + 10 * up + 32 * along)
    assert at(middle + 10 * up - 28 * along) and not at(middle + 10 * up - 32 * along)
    with pytest.raises(ValueError, match="same point"):
        above_the_eyes(np.array([[40.0, 50.0], [40.0, 50.0]]), 96)


def test_light_direction_round_trips_and_lights_the_side_it_names():
    from unmasklib.face3d import (
        light_direction,
        load_face_model,
        render_faces,
        with_light_direction,
    )

    model = load_face_model()
    coeffs = model.zero_coeffs(2)
    lighting = model.layout.slice("lighting")
    turned = with_light_direction(coeffs[:, lighting], torch.tensor([0.8, -0.8]), 0.3)
    azimuth, elevation = light_direction(turned)
    torch.testing.assert_close(azimuth, torch.tensor([0.8, -0.8]))
    torch.testing.assert_close(elevation, torch.tensor([0.3, 0.3]))
    coeffs[:, lighting] = turned
    out = render_faces(model, coeffs, 64)
    brightness = out.image.mean(1)  # (B, H, W)
    inside = out.face_mask[:, 0] > 0
    left = (brightness[:, :, :32] * inside[:, :, :32]).sum((1, 2)) / inside[:, :, :32].sum((1, 2))
    right = (brightness[:, :, 32:] * inside[:, :, 32:]).sum((1, 2)) / inside[:, :, 32:].sum((1, 2))
    assert right[0] > left[0] + 0.1  # azimuth > 0: light from the image right
    assert left[1] > right[1] + 0.1
