"""The synthetic masked-face data set and the folder data set for real photos."""

from __future__ import annotations

import collections
import math
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from unmasklib import data, face3d
from unmasklib.data.masks import render_masks
from unmasklib.data.synthetic import (
    CHUNK_SIZE,
    draw_coefficients,
    mean_coefficients,
    render_masked_faces,
)
from unmasklib.evaluation.pseudo_truth import landmarks_into_crop
from unmasklib.face3d import render_faces
from unmasklib.images import load_rgb, to_uint8
from unmasklib.metrics import landmark_errors

SIZE = 64  # small images keep these tests fast; nothing here depends on resolution


@pytest.fixture(scope="module")
def model():
    return face3d.load_face_model()


@pytest.fixture(scope="module")
def train(model):
    return data.SyntheticMaskedFaces("train", size=CHUNK_SIZE + 8, image_size=SIZE, seed=0,
                                     model=model)


def assert_same_item(a: dict, b: dict) -> None:
    for key in ("clean", "masked", "occlusion", "coeffs", "landmarks"):
        assert torch.equal(a[key], b[key]), key
    assert a["identity"] == b["identity"] and a["mask_type"] == b["mask_type"]


def test_item_format(train):
    item = train[3]
    assert item["clean"].shape == item["masked"].shape == (3, SIZE, SIZE)
    assert item["clean"].min() >= -1 and item["clean"].max() <= 1
    assert item["occlusion"].shape == (1, SIZE, SIZE)
    assert set(item["occlusion"].unique().tolist()) <= {0.0, 1.0}
    assert item["coeffs"].shape == (237,) and item["landmarks"].shape == (68, 2)
    assert item["mask_type"] in data.MASK_KINDS and item["has_ground_truth"]
    with pytest.raises(IndexError):
        train[len(train)]


def test_same_seed_same_bytes_different_seed_different_data(model, train):
    again = data.SyntheticMaskedFaces("train", size=CHUNK_SIZE + 8, image_size=SIZE, seed=0,
                                      model=model)
    for index in (0, 5, CHUNK_SIZE + 1):
        assert_same_item(train[index], again[index])
    other = data.SyntheticMaskedFaces("train", size=8, image_size=SIZE, seed=1, model=model)
    assert not torch.equal(train[0]["clean"], other[0]["clean"])
    assert not torch.equal(train[0]["coeffs"], other[0]["coeffs"])


def test_item_does_not_depend_on_data_set_size(model, train):
    small = data.SyntheticMaskedFaces("train", size=6, image_size=SIZE, seed=0, model=model)
    assert_same_item(small[5], train[5])


def test_disk_cache_round_trip_and_repair(model, train, tmp_path):
    cached = data.SyntheticMaskedFaces("train", size=CHUNK_SIZE + 8, image_size=SIZE, seed=0,
                                       root=tmp_path, model=model, progress=False)
    files = sorted(cached.folder.glob("chunk*.npz"))
    assert len(files) == 2
    assert_same_item(cached[CHUNK_SIZE + 2], train[CHUNK_SIZE + 2])

    files[0].write_bytes(b"truncated")  # an unreadable chunk is regenerated on open
    repaired = data.SyntheticMaskedFaces("train", size=CHUNK_SIZE + 8, image_size=SIZE, seed=0,
                                         root=tmp_path, model=model, progress=False)
    assert files[0].stat().st_size > 1000
    assert_same_item(repaired[1], train[1])


def test_masked_differs_from_clean_only_under_the_occlusion(train):
    for index in range(12):
        item = train[index]
        differs = (item["masked"] != item["clean"]).any(0)
        occluded = item["occlusion"][0] > 0
        assert not (differs & ~occluded).any(), index
        if item["mask_type"] == "none":
            assert not occluded.any()
        else:
            # The mask hides a real part of the face, and it looks different from what it hides.
            assert occluded.float().mean() > 0.05
            assert differs[occluded].float().mean() > 0.5


def test_mask_covers_the_nose_tip_and_mouth(train):
    for index in range(12):
        item = train[index]
        if item["mask_type"] == "none":
            continue
        for landmark in (30, 62, 66):  # nose tip, inner lips
            x, y = item["landmarks"][landmark].long().tolist()
            assert item["occlusion"][0, y, x] == 1, (index, landmark)


def test_landmarks_are_the_rendered_ones(model, train):
    item = train[7]
    out = face3d.render_faces(model, item["coeffs"][None], SIZE)
    torch.testing.assert_close(item["landmarks"], out.landmarks[0], atol=1e-4, rtol=0)


def test_mean_coefficients_are_the_mean_of_the_samples_coefficients(model, train):
    stored = torch.stack([train[i]["coeffs"] for i in range(len(train))])
    assert torch.equal(mean_coefficients(model, 0, "train", len(train)), stored.mean(0))


def test_identity_pools_are_disjoint_and_shared_within(model, train):
    test = data.SyntheticMaskedFaces("test", size=16, image_size=SIZE, seed=0, model=model)
    train_ids = {train[i]["identity"] for i in range(len(train))}
    test_ids = {test[i]["identity"] for i in range(len(test))}
    assert not train_ids & test_ids
    counts = collections.Counter(train[i]["identity"] for i in range(len(train)))
    assert min(counts.values()) >= 2  # an identity encoder needs several views of each face

    layout = model.layout
    shape = layout.slice("identity")
    same = [i for i in range(len(train)) if train[i]["identity"] == train[0]["identity"]]
    for i in same[1:]:
        assert torch.equal(train[i]["coeffs"][shape], train[0]["coeffs"][shape])
        assert not torch.equal(train[i]["coeffs"][layout.slice("pose")],
                               train[0]["coeffs"][layout.slice("pose")])
    assert not torch.equal(test[0]["coeffs"][shape], train[0]["coeffs"][shape])


def test_mask_types_are_balanced():
    counts = collections.Counter(data.synthetic.mask_kind_of(i) for i in range(800))
    assert counts["surgical"] == counts["n95"] == counts["cloth"] == 240
    assert counts["none"] == 80


def test_poses_stay_in_the_documented_ranges(model):
    pose = torch.stack([draw_coefficients(model, 0, "train", i)[model.layout.slice("pose")]
                        for i in range(200)])
    limits = torch.tensor([30.0, 15.0, 10.0]).deg2rad()
    assert (pose[:, :3].abs() <= limits).all()
    assert (pose[:, :3].abs().amax(0) > 0.8 * limits).all()  # and use them


def test_mask_centroid_follows_yaw(model):
    coeffs = draw_coefficients(model, 0, "train", 0).repeat(3, 1)
    yaw = model.layout.slice("pose").start
    coeffs[:, yaw] = torch.tensor([-0.4, 0.0, 0.4])
    style = data.sample_mask_style("surgical", torch.Generator().manual_seed(0))
    out = render_masked_faces(model, coeffs, [style] * 3, -torch.ones(3, 3, 128, 128), 128)
    columns = torch.arange(128, dtype=torch.float32)
    centroid = [(out["occlusion"][k].float().sum(0) * columns).sum().item()
                / out["occlusion"][k].sum().item() for k in range(3)]
    nose = out["landmarks"][:, 30, 0].tolist()
    # Positive yaw moves the nose tip to the image right (camera.py); the mask goes with it.
    assert centroid[0] < centroid[1] - 3 < centroid[2] - 6
    assert nose[0] < nose[1] < nose[2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        data.SyntheticMaskedFaces("validation", size=4, image_size=SIZE)
    with pytest.raises(ValueError, match="mask type"):
        data.sample_mask_style("bandana", torch.Generator())


# --- real photos -------------------------------------------------------------------------


def write_photos(folder):
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(astronaut[..., 1]).save(folder / "grey.png")
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:64, :64, 3] = 0  # a transparent corner
    Image.fromarray(rgba).save(folder / "rgba.png")
    Image.fromarray(astronaut[..., 1].astype(np.uint16) * 257).save(folder / "deep16.png")
    (folder / "sub").mkdir()
    Image.fromarray(astronaut[::2, ::3]).save(folder / "sub" / "small.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (folder / "notes.txt").write_text("not an image")


def test_load_rgb_converts_grey_rgba_and_16_bit(tmp_path):
    write_photos(tmp_path)
    grey = load_rgb(tmp_path / "grey.png")
    assert grey.shape == (512, 512, 3) and (grey[..., 0] == grey[..., 2]).all()
    deep = load_rgb(tmp_path / "deep16.png")
    assert deep.dtype == np.uint8 and np.abs(deep.astype(int) - grey.astype(int)).max() <= 1
    rgba = load_rgb(tmp_path / "rgba.png")
    assert (rgba[:64, :64] == 255).all()  # transparent -> white
    assert (rgba[100:, 100:] == skdata.astronaut()[100:, 100:]).all()
    with pytest.raises(ValueError, match="broken.png"):
        load_rgb(tmp_path / "broken.png")


def test_masked_face_folder(tmp_path, model):
    write_photos(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = data.MaskedFaceFolder(tmp_path, image_size=SIZE, seed=0, model=model)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "broken.png" in messages[0] and "notes.txt" in messages[0]
    assert len(folder) == 5
    kinds = set()
    for index in range(len(folder)):
        item = folder[index]
        kinds.add(item["mask_type"])
        assert item["clean"].shape == item["masked"].shape == (3, SIZE, SIZE)
        assert torch.isnan(item["coeffs"]).all() and not item["has_ground_truth"]
        occluded = item["occlusion"][0] > 0
        differs = (item["masked"] != item["clean"]).any(0)
        assert not (differs & ~occluded).any()
        if item["mask_type"] != "none":
            # The template puts the mask over the lower-middle of an aligned crop.
            rows, cols = torch.nonzero(occluded, as_tuple=True)
            assert 0.1 < occluded.float().mean() < 0.6
            assert SIZE * 0.5 < rows.float().mean() < SIZE * 0.9
            assert abs(cols.float().mean() - SIZE / 2) < SIZE * 0.1
    assert kinds == {"surgical", "n95", "cloth"}
    with pytest.warns(UserWarning, match="broken.png"):
        again = data.MaskedFaceFolder(tmp_path, image_size=SIZE, seed=0, model=model)
    assert torch.equal(again[2]["masked"], folder[2]["masked"])


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no readable images"):
        data.MaskedFaceFolder(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        data.MaskedFaceFolder(tmp_path / "nowhere")


def test_backgrounds_vary_and_stay_in_range():
    backgrounds = torch.stack([data.random_background(32, torch.Generator().manual_seed(k))
                               for k in range(12)])
    assert backgrounds.min() >= -1 and backgrounds.max() <= 1
    means = backgrounds.mean((2, 3))
    assert torch.cdist(means, means).max() > 0.5  # not one colour for all
    assert not math.isclose(backgrounds[0].std().item(), backgrounds[1].std().item())


def test_items_are_copies_of_the_cache(train):
    item = train[2]
    item["coeffs"].mul_(0)
    item["landmarks"].mul_(0)
    item["masked"].mul_(0)
    again = train[2]
    assert again["coeffs"].abs().sum() > 0 and again["landmarks"].abs().sum() > 0
    assert again["masked"].abs().sum() > 0


def test_dark_16_bit_and_float_images_keep_their_scale(tmp_path):
    dark = np.full((8, 8), 200, np.uint16)  # 16-bit, nearly black: must stay nearly black
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert load_rgb(tmp_path / "dark16.png").max() <= 1
    Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F").save(tmp_path / "half.tiff")
    assert (load_rgb(tmp_path / "half.tiff") == 128).all()


def test_masks_need_the_embedded_model(tmp_path):
    bfm = face3d.MorphableModel(**{**face3d.load_face_model().__dict__, "surface": None,
                                   "name": "no-surface"})
    with pytest.raises(ValueError, match="embedded face model"):
        data.SyntheticMaskedFaces("train", size=4, image_size=SIZE, model=bfm)
    Image.fromarray(skdata.astronaut()).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="embedded face model"):
        data.MaskedFaceFolder(tmp_path, model=bfm)


def test_masks_render_in_float64(model):
    style = data.sample_mask_style("n95", torch.Generator().manual_seed(0))
    mask32 = render_masks(model, model.zero_coeffs(1), [style], SIZE)
    model64 = model.to(dtype=torch.float64)
    mask64 = render_masks(model64, model64.zero_coeffs(1), [style], SIZE)
    assert mask64.image.dtype == torch.float64
    assert (mask32.face_mask != mask64.face_mask).float().mean() < 0.01


def similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_the_folder_aligns_each_photo_by_its_own_five_points(tmp_path, model):
    """A photo written as it is, and again turned, scaled and shifted into a larger one: both
    come out of the folder as one crop, to within a pixel. A real face, because YuNet places
    its points on it alike in both copies; on some synthetic faces they differ by pixels."""
    size = 128
    photo = skdata.astronaut()[:256, 96:352]
    moved = similarity(0.35, 0.8, (120.0, 10.0))
    bigger = cv2.warpAffine(photo, moved, (360, 340), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    Image.fromarray(photo).save(tmp_path / "a_photo.png")
    Image.fromarray(bigger).save(tmp_path / "b_moved.png")
    folder = data.MaskedFaceFolder(tmp_path, image_size=size, model=model)
    # Where points of the photo's face land in each crop: through the moved photo for the second.
    ys, xs = np.mgrid[60:180:20, 80:180:20]
    points = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    in_photo = points @ folder.matrices[0][:, :2].T + folder.matrices[0][:, 2]
    in_bigger = points @ moved[:, :2].T + moved[:, 2]
    in_moved = in_bigger @ folder.matrices[1][:, :2].T + folder.matrices[1][:, 2]
    shift = np.linalg.norm(in_photo - in_moved, axis=1)
    print(f"the two crops disagree by {shift.mean():.2f} px on the face "
          f"(at most {shift.max():.2f})")
    assert shift.mean() < 1.0


def test_a_rendered_face_is_framed_as_the_folder_aligns_faces(tmp_path, model):
    """Our synthetic faces are drawn about where alignment puts a face: nearly 1:1."""
    size = 128
    face = data.SyntheticMaskedFaces("test", 1, image_size=size, seed=0, model=model,
                                     progress=False)[0]
    Image.fromarray(to_uint8(face["clean"])).save(tmp_path / "rendered.png")
    linear = data.MaskedFaceFolder(tmp_path, image_size=size, model=model).matrices[0][:, :2]
    assert 0.8 < np.sqrt(np.linalg.det(linear)) < 1.25
    assert abs(math.atan2(linear[1, 0], linear[0, 0])) < 0.25


def test_pseudo_ground_truth_fits_faces_and_is_kept(tmp_path, model):
    size = 128  # YuNet misses some faces at 64 px
    faces = data.SyntheticMaskedFaces("test", 6, image_size=size, seed=0, model=model,
                                      progress=False)
    for i in range(len(faces)):
        Image.fromarray(to_uint8(faces[i]["clean"])).save(tmp_path / f"{i}.png")
    cache = tmp_path / "truth.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a face YuNet misses is skipped
        folder = data.MaskedFaceFolder(tmp_path, size, model=model, pseudo_truth=True,
                                       cache=cache)
    kept = [int(p.stem) for p in folder.files]
    assert len(kept) >= 4 and cache.is_file()
    truth = torch.stack([landmarks_into_crop(faces[i]["landmarks"], m)
                         for i, m in zip(kept, folder.matrices, strict=True)])
    nme = landmark_errors(folder.truth.landmarks.double(), truth).mean(1)
    mean_face = landmark_errors(
        render_faces(model, model.zero_coeffs(len(kept)), size).landmarks.double(), truth)
    print(f"pseudo truth NME {nme.numpy().round(3)}, mean face {mean_face.mean(1).numpy()}")
    assert nme.median() < 0.05 and nme.median() < 0.5 * mean_face.mean(1).median()
    item = folder[kept.index(kept[1])]
    assert item["has_ground_truth"] and torch.equal(item["coeffs"], folder.truth.coeffs[1])
    # A mask worn by the fitted face covers its lower half: below the nose tip (landmark 30).
    if item["mask_type"] != "none":
        rows = torch.nonzero(item["occlusion"][0] > 0)[:, 0].float()
        assert rows.mean() > item["landmarks"][30, 1]
    # Opened again, the folder reads the kept fit instead of fitting: marked, it comes back.
    kept_fit = torch.load(cache, weights_only=True)
    kept_fit["coeffs"] = kept_fit["coeffs"] + 1
    torch.save(kept_fit, cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = data.MaskedFaceFolder(tmp_path, size, model=model, pseudo_truth=True,
                                      cache=cache)
    assert torch.equal(again.truth.coeffs, folder.truth.coeffs + 1)
