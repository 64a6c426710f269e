"""The Unmasker on the tiny smoke run: inputs of every kind and size, pixels outside the
occlusion untouched, seeds, edits, prior samples, clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

from unmasklib import Unmasker, alignment
from unmasklib.alignment import (
    FaceNotFoundError,
    above_the_eyes,
    canonical_points,
    mask_to_photo,
    transform_points,
)
from unmasklib.data import held_out_faces
from unmasklib.fitting import PHOTO_FIT_STOPS, PHOTO_POINT_WEIGHT
from unmasklib.guidance import n3d_guidance
from unmasklib.images import to_uint8
from unmasklib.pipeline import as_rgb_array, edit_coeffs


@pytest.fixture(scope="module")
def unmasker(tiny_run):
    return Unmasker.from_run(tiny_run, profile=TINY)


@pytest.fixture(scope="module")
def face(tiny_run) -> np.ndarray:
    """A held-out masked face as uint8 `(64, 64, 3)`."""
    return as_rgb_array(held_out_faces(TINY, tiny_run, progress=False)[0]["masked"])


def lower_half(height: int, width: int) -> np.ndarray:
    occlusion = np.zeros((height, width), bool)
    occlusion[height // 2:] = True
    return occlusion


def test_pixels_outside_the_occlusion_are_the_inputs_at_any_size(unmasker, face):
    wide = np.asarray(Image.fromarray(face).resize((90, 50)))
    occlusion = lower_half(50, 90)
    result = unmasker.session(wide, occlusion).update(seed=0)
    assert result.image.shape == (50, 90, 3) and result.image.dtype == np.uint8
    assert np.array_equal(result.image[~occlusion], wide[~occlusion])
    assert not np.array_equal(result.image[occlusion], wide[occlusion])  # painted
    assert result.render.shape == (TINY.image_size, TINY.image_size, 3)


def test_n3d_finds_the_occlusion_when_none_is_given(unmasker, face):
    result = unmasker.unmask(face, seed=0)
    assert result.occlusion.shape == face.shape[:2]
    assert np.array_equal(result.image[~result.occlusion], face[~result.occlusion])


def test_n3d_is_fitted_to_the_face_outside_the_map_that_is_painted(unmasker, face):
    occlusion = lower_half(64, 64)
    session = unmasker.session(face, occlusion)
    working = session.working
    raw = n3d_guidance(unmasker.n3d, working, unmasker.dilation).coeffs
    painted_map = torch.from_numpy(occlusion).float()[None, None]
    torch.testing.assert_close(session.guidance.coeffs,
                               unmasker.fit(working, painted_map, raw).cpu())
    assert not torch.equal(session.guidance.coeffs, raw)


def test_the_same_seed_gives_the_same_result_and_another_seed_another(unmasker, face):
    session = unmasker.session(face, lower_half(64, 64))
    first, again, other = (session.update(seed=s).image for s in (1, 1, 2))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_edits_reach_the_coefficients_and_the_render(unmasker, face):
    session = unmasker.session(face, lower_half(64, 64))
    plain = session.update()
    edited = session.update(expression={"jaw_open": 2.0}, pose={"yaw": 0.3})
    model = unmasker.face_model
    jaw = model.layout.slice("expression").start + model.expression_names.index("jaw_open")
    assert float(edited.coeffs[jaw]) == 2.0
    assert float(edited.coeffs[model.layout.slice("pose").start]) == pytest.approx(0.3)
    assert not np.array_equal(plain.render, edited.render)
    with pytest.raises(KeyError, match="tilt"):
        edit_coeffs(model, plain.coeffs[None], pose={"tilt": 1.0})


def test_prior_samples_differ_in_the_hidden_expression_only(unmasker, face):
    samples = unmasker.sample(face, k=3, seed=5)
    model = unmasker.face_model
    expression = model.layout.slice("expression")
    coeffs = torch.stack([r.coeffs for r in samples])
    rest = torch.cat([coeffs[:, :expression.start], coeffs[:, expression.stop:]], 1)
    assert torch.equal(rest[0], rest[1]) and not torch.equal(coeffs[0], coeffs[1])
    again = unmasker.sample(face, k=3, seed=5)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(samples, again, strict=True))


def test_grey_rgba_pil_and_tensor_inputs_give_the_pixels_of_their_rgb_array(unmasker, face,
                                                                           tmp_path):
    def same_result(image, rgb: np.ndarray) -> bool:
        return np.array_equal(unmasker.unmask(image, seed=2).image,
                              unmasker.unmask(rgb, seed=2).image)

    grey = face.mean(axis=2).astype(np.uint8)
    assert same_result(grey, np.repeat(grey[..., None], 3, axis=2))
    rgba = np.concatenate([face, np.full((64, 64, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "face.png")
    assert same_result(tmp_path / "face.png", face)
    assert same_result(rgba, face)
    assert same_result(Image.fromarray(face), face)
    tensor = torch.from_numpy(face).permute(2, 0, 1).float() / 127.5 - 1
    assert same_result(tensor, face)


def test_bad_inputs_get_clear_errors(unmasker, tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        unmasker.unmask(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        unmasker.unmask(tmp_path / "notes.png")
    with pytest.raises(ValueError, match="NaN"):
        unmasker.unmask(torch.full((3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="uint8"):
        unmasker.unmask(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="occlusion must be"):
        unmasker.session(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), bool))


def test_a_run_folder_without_checkpoints_names_what_makes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        Unmasker.from_run(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        Unmasker.from_run(tmp_path, profile=TINY)


def place_in_photo(face: np.ndarray, scale: float, angle: float, shift: tuple[float, float],
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """`face` carried into a `size` (height, width) grey photo by a similarity; returns the
    photo and the matrix (face pixels -> photo pixels)."""
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    matrix = np.array([[c, -s, shift[0]], [s, c, shift[1]]])
    photo = cv2.warpAffine(face, matrix, size[::-1], flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))
    return photo, matrix


def test_a_face_at_the_canonical_place_aligns_to_itself(unmasker, face):
    eyes = canonical_points(unmasker.face_model, 64)[:2]
    aligned = unmasker.unmask(face, seed=3, eyes=eyes)
    # the same painting, the map kept off what lies above the eyes (given eyes only)
    as_crop = unmasker.session(face, occlusion=aligned.occlusion).update(seed=3)
    assert np.array_equal(aligned.image, as_crop.image)


def test_a_whole_photo_is_aligned_by_its_eyes_and_pasted_back(unmasker, face):
    photo, matrix = place_in_photo(face, 2.5, 0.3, (120.0, 40.0), (300, 400))
    eyes = canonical_points(unmasker.face_model, 64)[:2] @ matrix[:, :2].T + matrix[:, 2]
    session = unmasker.session(photo, eyes=eyes)
    # The crop the networks see is the face again (resampled twice: small differences).
    assert np.abs(to_uint8(session.working[0]).astype(int) - face).mean() < 4
    result = session.update(seed=0)
    assert result.image.shape == photo.shape
    assert np.array_equal(result.image[~result.occlusion], photo[~result.occlusion])
    # N3D's occlusion of the face, carried into the photo by the same similarity, less what
    # lies above the eyes.
    plain = unmasker.session(face).occlusion.astype(np.uint8) * 255
    expected = ((cv2.warpAffine(plain, matrix, (400, 300), flags=cv2.INTER_LINEAR) >= 128)
                & ~session.mask_free)
    overlap = (expected & result.occlusion).sum() / max((expected | result.occlusion).sum(), 1)
    assert expected.sum() > 0 and overlap > 0.85


def test_five_points_given_anchor_the_fit_where_the_crop_has_them(unmasker, face):
    photo, matrix = place_in_photo(face, 2.5, 0.3, (120.0, 40.0), (300, 400))
    canonical = canonical_points(unmasker.face_model, 64)
    session = unmasker.session(photo, eyes=transform_points(canonical, matrix))
    raw = n3d_guidance(unmasker.n3d, session.working, unmasker.dilation).coeffs
    crop_points = torch.from_numpy(transform_points(transform_points(canonical, matrix),
                                                    session.matrix)).float()[None]
    torch.testing.assert_close(crop_points[0], torch.from_numpy(canonical).float(), atol=1e-3,
                               rtol=0)
    anchored = unmasker.fit(session.working, session.guidance.occlusion, raw, crop_points)
    free = unmasker.fit(session.working, session.guidance.occlusion, raw)
    torch.testing.assert_close(session.guidance.coeffs, anchored.cpu())
    assert unmasker.fit.point_weight == PHOTO_POINT_WEIGHT > 0
    # a photo's fit takes every step (PHOTO_FIT_STOPS), where the profile's fit may stop
    assert not PHOTO_FIT_STOPS and unmasker.fit.tolerance is None
    assert not torch.equal(anchored, free)
    # two eyes say nothing of the mouth: no anchor
    eyes_only = unmasker.session(photo, eyes=transform_points(canonical[:2], matrix))
    torch.testing.assert_close(eyes_only.guidance.coeffs,
                               unmasker.fit(eyes_only.working, eyes_only.guidance.occlusion,
                                            n3d_guidance(unmasker.n3d, eyes_only.working,
                                                         unmasker.dilation).coeffs).cpu())


def test_a_photo_s_map_stays_off_what_is_above_the_eyes(unmasker, face, monkeypatch):
    """Given the eyes, nothing above the line through them (near the face's middle) is
    painted, though N3D's map reaches there on this face; a map given is kept as it is."""
    photo, matrix = place_in_photo(face, 2.5, 0.3, (120.0, 40.0), (300, 400))
    eyes = transform_points(canonical_points(unmasker.face_model, 64)[:2], matrix)
    session = unmasker.session(photo, eyes=eyes)
    crop_eyes = transform_points(eyes, session.matrix)
    np.testing.assert_array_equal(session.mask_free,
                                  mask_to_photo(above_the_eyes(crop_eyes, 64), session.matrix,
                                                300, 400))
    result = session.update(seed=0)
    assert session.mask_free.sum() > 1000 and not (result.occlusion & session.mask_free).any()
    assert np.array_equal(result.image[session.mask_free], photo[session.mask_free])
    monkeypatch.setattr(alignment, "MASK_FREE_HALF_WIDTH", 0.0)
    unruled = unmasker.session(photo, eyes=eyes)
    assert not unruled.mask_free.any()
    assert (unruled.occlusion & session.mask_free).sum() > 100  # what the rule took away
    everywhere = np.ones((300, 400), bool)
    given = unmasker.session(photo, occlusion=everywhere, eyes=eyes)
    assert given.occlusion.all() and given.mask_free is None


def test_a_photo_without_a_face_asks_for_the_eyes(unmasker):
    with pytest.raises(FaceNotFoundError, match="eyes="):
        unmasker.unmask(np.full((120, 160, 3), 200, np.uint8), find_face=True)


def test_turning_the_light_changes_the_render_and_names_are_checked(unmasker, face):
    session = unmasker.session(face, lower_half(64, 64))
    left, right = (session.update(light={"azimuth": a}) for a in (-1.0, 1.0))
    columns = [r.render.astype(float).mean(axis=(0, 2)) for r in (left, right)]
    assert columns[0][:32].sum() - columns[0][32:].sum() > 0
    assert columns[1][32:].sum() - columns[1][:32].sum() > 0
    with pytest.raises(KeyError, match="azimuth"):
        session.update(light={"colour": 1.0})


def test_an_empty_occlusion_gives_the_photo_back_unchanged(unmasker, face):
    photo = np.asarray(face)[5:45, 3:53]  # another size than the working crop
    result = unmasker.session(photo, occlusion=np.zeros(photo.shape[:2], bool)).update(seed=0)
    assert np.array_equal(result.image, photo) and not result.occlusion.any()
