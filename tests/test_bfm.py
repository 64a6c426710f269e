"""Loading a Basel Face Model file in Deep3DFaceRecon's BFM_model_front.mat layout."""

import numpy as np
import pytest
import scipy.io
import torch

from unmasklib import face3d
from unmasklib.face3d.camera import focal_length

GRID = 20  # GRID x GRID vertices


def synthetic_bfm(clockwise=False, index_dtype=np.int32, seed=0):
    """A bulged 20x20 grid over x, y in [-1, 1] with small random bases, as a dict of arrays."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(-1, 1, GRID), np.linspace(-1, 1, GRID), indexing="ij")
    zs = 0.5 * (1 - 0.4 * (xs ** 2 + ys ** 2))
    vertices = np.stack([xs, ys, zs], -1).reshape(-1, 3) + np.array([0.1, -0.2, 0.3])
    n = len(vertices)
    faces = []
    for r in range(GRID - 1):
        for c in range(GRID - 1):
            v = r * GRID + c
            faces += [[v, v + 1, v + GRID], [v + 1, v + GRID + 1, v + GRID]]  # ccw from +z
    faces = np.array(faces)
    if clockwise:
        faces = faces[:, [0, 2, 1]]
    return {
        "meanshape": vertices.reshape(1, 3 * n),
        "idBase": rng.normal(size=(3 * n, 80)) * 0.01,
        "exBase": rng.normal(size=(3 * n, 64)) * 0.01,
        "meantex": rng.uniform(60, 220, size=(1, 3 * n)),
        "texBase": rng.normal(size=(3 * n, 80)) * 2.0,
        "tri": (faces + 1).astype(index_dtype),
        "keypoints": (rng.choice(n, 68, replace=False) + 1).astype(index_dtype).reshape(1, 68),
        "point_buf": np.zeros((n, 8)),  # extra keys in the real file are ignored
    }


@pytest.fixture()
def bfm(tmp_path):
    data = synthetic_bfm()
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, data)
    return path, data


def centred_mean(data):
    mean = data["meanshape"].reshape(-1, 3)
    return mean - mean.mean(0)


def test_layout(bfm):
    model = face3d.load_face_model(bfm[0])
    layout = model.layout
    assert layout.size == 257
    assert list(layout.blocks) == [("identity", 80), ("expression", 64), ("texture", 80),
                                   ("rotation", 3), ("lighting", 27), ("translation", 3)]
    assert layout == face3d.BFM_LAYOUT
    assert model.num_vertices == GRID * GRID
    assert model.dtype == torch.float32
    assert len(model.expression_names) == 64 and len(model.texture_names) == 80


def test_decode_zeros_is_centred_mean(bfm):
    path, data = bfm
    model = face3d.load_face_model(str(path))  # str paths work too
    vertices, albedo = model.decode(model.layout.zeros(1))
    expected = centred_mean(data)
    np.testing.assert_allclose(vertices[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(vertices[0].mean(0).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(albedo[0].numpy(), data["meantex"].reshape(-1, 3) / 255,
                               atol=1e-6)


def test_decode_bases_interleaved_xyz(bfm):
    """Column k of a (3N, K) basis holds x0, y0, z0, x1, ... of component k."""
    path, data = bfm
    model = face3d.load_face_model(path)
    layout = model.layout
    coeffs = layout.zeros(1)
    g = torch.Generator().manual_seed(0)
    parts = layout.split(coeffs)
    parts["identity"][:] = torch.randn(1, 80, generator=g)
    parts["expression"][:] = torch.randn(1, 64, generator=g)
    parts["texture"][:] = torch.randn(1, 80, generator=g) * 0.3
    vertices, albedo = model.decode(coeffs)
    ident, expr, tex = (parts[k][0].double().numpy() for k in ("identity", "expression",
                                                               "texture"))
    expected = (centred_mean(data) + (data["idBase"] @ ident).reshape(-1, 3)
                + (data["exBase"] @ expr).reshape(-1, 3))
    np.testing.assert_allclose(vertices[0].numpy(), expected, atol=1e-5)
    colour = ((data["meantex"][0] + data["texBase"] @ tex) / 255).reshape(-1, 3)
    np.testing.assert_allclose(albedo[0].numpy(), np.clip(colour, 0, 1), atol=1e-5)


def test_render_zero_coeffs(bfm):
    path, data = bfm
    model = face3d.load_face_model(path)
    out = face3d.render_faces(model, model.layout.zeros(1), 64)
    assert out.image.shape == (1, 3, 64, 64)
    assert torch.isfinite(out.image).all()
    share = float(out.face_mask.mean())
    assert 0.2 < share < 0.9, share
    keypoints = data["keypoints"].reshape(-1).astype(np.int64) - 1
    assert model.landmark_index.tolist() == keypoints.tolist()
    torch.testing.assert_close(out.landmarks[0], out.screen_vertices[0, keypoints, :2])
    # pinhole projection of the centred mean shape (zero pose) at the key points
    v = centred_mean(data)[keypoints]
    f = focal_length(64)
    expected = np.stack([32 + f * v[:, 0] / (10 - v[:, 2]), 32 - f * v[:, 1] / (10 - v[:, 2])], -1)
    np.testing.assert_allclose(out.landmarks[0].numpy(), expected, atol=1e-3)
    # the covered pixels are those inside the projected grid outline: the border's depth
    # varies by 0.2 units, less than half a pixel here, so compare with a 1.5 px margin
    centre = data["meanshape"].reshape(-1, 3).mean(0)
    lo, hi = np.array([-0.9, -1.2]) - centre[:2], np.array([1.1, 0.8]) - centre[:2]
    depth = 10 - (0.1 + 0.3 - centre[2])  # a corner of the grid
    x0, x1 = 32 + f * lo[0] / depth, 32 + f * hi[0] / depth
    y0, y1 = 32 - f * hi[1] / depth, 32 - f * lo[1] / depth
    centres = np.arange(64) + 0.5
    mask = out.face_mask[0, 0].bool().numpy()
    inner_rows = (centres > y0 + 1.5) & (centres < y1 - 1.5)
    inner_cols = (centres > x0 + 1.5) & (centres < x1 - 1.5)
    assert inner_rows.sum() > 30 and inner_cols.sum() > 30
    assert mask[np.ix_(inner_rows, inner_cols)].all()
    outer_rows = (centres > y0 - 1.5) & (centres < y1 + 1.5)
    outer_cols = (centres > x0 - 1.5) & (centres < x1 + 1.5)
    assert not mask[~outer_rows].any() and not mask[:, ~outer_cols].any()


def test_front_faces_point_to_camera(tmp_path):
    """Clockwise triangles in the file are turned so that the front faces +z; the render of
    either file is the same."""
    outs = []
    for clockwise in (False, True):
        path = tmp_path / f"bfm_{clockwise}.mat"
        scipy.io.savemat(path, synthetic_bfm(clockwise=clockwise, index_dtype=np.float64))
        model = face3d.load_face_model(path)
        v = model.mean_shape[model.faces]
        normal_z = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
        assert (normal_z > 0).all()
        outs.append(face3d.render_faces(model, model.layout.zeros(1), 64))
    assert torch.equal(outs[0].face_mask, outs[1].face_mask)
    torch.testing.assert_close(outs[0].image, outs[1].image, rtol=0, atol=1e-5)
    # lit from the front, so the bulge's normals point at the camera: bright, not black
    assert outs[0].image[outs[0].face_mask.expand(-1, 3, -1, -1).bool()].mean() > -0.5


def test_pose_and_sampling(bfm):
    model = face3d.load_face_model(bfm[0])
    coeffs = model.sample_coeffs(3, generator=torch.Generator().manual_seed(0))
    assert coeffs.shape == (3, 257)
    again = model.sample_coeffs(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(coeffs, again)
    out = face3d.render_faces(model, coeffs, 32)
    assert torch.isfinite(out.image).all() and (out.face_mask.mean(dim=(1, 2, 3)) > 0.05).all()
    # rotation is (yaw, pitch, roll): yaw > 0 moves the front-most vertex to the image right
    front = int(model.mean_shape[:, 2].argmax())
    base = face3d.render_faces(model, model.layout.zeros(1), 64).screen_vertices[0, front]
    yawed = model.layout.zeros(1)
    yawed[0, model.layout.slice("rotation").start] = 0.3
    moved = face3d.render_faces(model, yawed, 64).screen_vertices[0, front]
    assert moved[0] > base[0] + 0.5
    shifted = model.layout.zeros(1)
    shifted[0, model.layout.slice("translation").start] = 0.2
    moved = face3d.render_faces(model, shifted, 64).screen_vertices[0, front]
    assert moved[0] > base[0] + 1


def test_gradients_flow_to_bfm_coefficients(bfm):
    model = face3d.load_face_model(bfm[0])
    coeffs = model.layout.zeros(1).requires_grad_(True)
    out = face3d.render_faces(model, coeffs, 32)
    (out.image.mean() + out.landmarks.mean()).backward()
    for name in ("identity", "expression", "texture", "rotation", "lighting", "translation"):
        assert coeffs.grad[0, model.layout.slice(name)].abs().max() > 0, name


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not_here.mat"):
        face3d.load_face_model(tmp_path / "not_here.mat")


@pytest.mark.parametrize("key", ["meanshape", "idBase", "exBase", "meantex", "texBase", "tri",
                                 "keypoints"])
def test_missing_key(tmp_path, key):
    data = synthetic_bfm()
    del data[key]
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, data)
    with pytest.raises(ValueError, match=key):
        face3d.load_face_model(path)


@pytest.mark.parametrize("key, shape", [("idBase", (3 * GRID * GRID, 79)),
                                        ("exBase", (3 * GRID * GRID + 3, 64)),
                                        ("texBase", (3 * GRID * GRID, 199))])
def test_wrong_basis_shape(tmp_path, key, shape):
    data = synthetic_bfm()
    data[key] = np.zeros(shape)
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, data)
    with pytest.raises(ValueError, match=key):
        face3d.load_face_model(path)


def test_wrong_keypoint_count(tmp_path):
    data = synthetic_bfm()
    data["keypoints"] = data["keypoints"][:, :5]
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, data)
    with pytest.raises(ValueError, match="68"):
        face3d.load_face_model(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "broken.mat"
    path.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(ValueError):
        face3d.load_face_model(path)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        face3d.load_face_model(tmp_path)


@pytest.mark.parametrize("change", ["tri_zero_based", "tri_too_large", "keypoint_zero",
                                    "keypoint_too_large", "meantex_size"])
def test_inconsistent_indices_and_sizes_raise(tmp_path, change):
    """A file whose indices do not fit its vertices (e.g. 0-based triangles, which would wrap
    to the last vertex) or whose mean texture has another vertex count is rejected when loaded."""
    data = synthetic_bfm()
    n = GRID * GRID
    if change == "tri_zero_based":
        data["tri"] = data["tri"] - 1
    elif change == "tri_too_large":
        data["tri"][5, 1] = n + 1
    elif change == "keypoint_zero":
        data["keypoints"][0, 3] = 0
    elif change == "keypoint_too_large":
        data["keypoints"][0, 3] = n + 1
    else:
        data["meantex"] = np.concatenate([data["meantex"], [[100.0, 100.0, 100.0]]], 1)
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, data)
    with pytest.raises(ValueError):
        face3d.load_face_model(path)
