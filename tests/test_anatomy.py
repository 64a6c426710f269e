"""The embedded face model looks like a face: landmark order, symmetry, expressions, pose,
light, mesh statistics, determinism and input checks."""

import math

import pytest
import torch

from unmasklib import face3d

SIZE = 256
# iBUG-68 left/right pairs (the image-left point first, as it is for a frontal face).
MIRROR_PAIRS = ([(k, 16 - k) for k in range(8)]                     # jaw
                + [(17 + i, 26 - i) for i in range(5)]              # brows
                + [(31, 35), (32, 34)]                              # nostrils
                + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
                + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]            # outer lips
                + [(60, 64), (61, 63), (67, 65)])                               # inner lips
ON_MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def render(model, coeffs, size=SIZE):
    return face3d.render_faces(model, coeffs, size)


def with_entry(model, block, index, value, base=None):
    coeffs = model.layout.zeros(1) if base is None else base.clone()
    coeffs[0, model.layout.slice(block).start + index] = value
    return coeffs


@pytest.fixture(scope="module")
def neutral(model):
    return render(model, model.layout.zeros(1))


def test_landmarks_ordered_top_to_bottom(neutral):
    y = neutral.landmarks[0, :, 1]
    assert neutral.landmarks.shape == (1, 68, 2)
    brows, eyes, nose_tip = y[17:27].mean(), y[36:48].mean(), y[30]
    mouth, chin = y[48:68].mean(), y[8]
    assert brows < eyes < nose_tip < mouth < chin
    # by clear margins at 256 px, and all inside the image
    assert eyes - brows > 5 and nose_tip - eyes > 10 and mouth - nose_tip > 10
    assert chin - mouth > 10
    assert (neutral.landmarks > 0).all() and (neutral.landmarks < SIZE).all()
    # the nose bridge runs downwards from 27 to 30, and the jaw descends to the chin
    assert (y[28:31] > y[27:30]).all()
    assert (y[1:9] > y[0:8]).all()


def test_eyes_are_mirror_images(neutral):
    lm = neutral.landmarks[0]
    right_eye = lm[36:42].clone()                 # subject's right eye, image left
    right_eye[:, 0] = SIZE - right_eye[:, 0]      # mirror about x = SIZE / 2
    left_eye = lm[[45, 44, 43, 42, 47, 46]]
    torch.testing.assert_close(right_eye, left_eye, rtol=0, atol=1e-3)
    assert (lm[36:42, 0] < SIZE / 2).all() and (lm[42:48, 0] > SIZE / 2).all()


def test_all_landmarks_mirror_symmetric(neutral):
    lm = neutral.landmarks[0]
    mirrored = lm.clone()
    mirrored[:, 0] = SIZE - mirrored[:, 0]
    # the pairs cover every landmark exactly once
    covered = sorted([a for a, _ in MIRROR_PAIRS] + [b for _, b in MIRROR_PAIRS] + ON_MIDLINE)
    assert covered == list(range(68))
    for a, b in MIRROR_PAIRS:
        torch.testing.assert_close(mirrored[a], lm[b], rtol=0, atol=1e-3, msg=f"{a} <-> {b}")
        assert lm[a, 0] < SIZE / 2 - 1, a
    torch.testing.assert_close(lm[ON_MIDLINE, 0], torch.full((10,), SIZE / 2), rtol=0, atol=1e-3)


def test_neutral_render_is_mirror_symmetric(neutral):
    mask = neutral.face_mask[0, 0] > 0
    assert (mask != mask.flip(-1)).sum() <= 0.001 * mask.sum()
    both = mask & mask.flip(-1)
    diff = (neutral.image[0] - neutral.image[0].flip(-1)).abs()[:, both]
    assert diff.max() < 1e-3


def mouth_interior_pixels(model, out):
    return int(torch.isin(out.tri_id, model.regions["mouth_interior"]).sum())


def test_jaw_open_reveals_mouth_interior(model):
    k = model.expression_names.index("jaw_open")
    outs = {v: render(model, with_entry(model, "expression", k, v)) for v in (0.0, 1.0, 2.0)}
    counts = {v: mouth_interior_pixels(model, o) for v, o in outs.items()}
    face_pixels = float(outs[2.0].face_mask.sum())
    assert counts[0.0] < 20
    assert counts[2.0] > 0.005 * face_pixels
    assert counts[2.0] > 10 * counts[0.0] + 100
    assert counts[0.0] < counts[1.0] < counts[2.0]

    gap = {v: float((o.landmarks[0, 66] - o.landmarks[0, 62]).norm()) for v, o in outs.items()}
    assert gap[0.0] < 1.0
    assert gap[2.0] > 5.0
    # the lower lip moves down (image y grows), the upper lip stays put
    assert outs[2.0].landmarks[0, 66, 1] > outs[0.0].landmarks[0, 66, 1] + 5
    assert abs(outs[2.0].landmarks[0, 62, 1] - outs[0.0].landmarks[0, 62, 1]) < 2
    # and the chin drops
    assert outs[2.0].landmarks[0, 8, 1] > outs[0.0].landmarks[0, 8, 1] + 3


def test_sampled_jaw_open_is_one_sided(model):
    coeffs = model.sample_coeffs(64, generator=torch.Generator().manual_seed(0))
    k = model.layout.slice("expression").start + model.expression_names.index("jaw_open")
    assert (coeffs[:, k] >= 0).all()
    assert coeffs[:, k].std() > 0.3


def test_yaw_moves_nose_tip_right(model, neutral):
    x0 = neutral.landmarks[0, 30, 0]
    assert abs(x0 - SIZE / 2) < 1e-3
    xs = [render(model, with_entry(model, "pose", 0, yaw)).landmarks[0, 30, 0]
          for yaw in (-0.3, 0.15, 0.3)]
    assert xs[0] < x0 - 5 and x0 + 5 < xs[1] < xs[2]


def test_pitch_moves_nose_tip_down(model, neutral):
    y0 = neutral.landmarks[0, 30, 1]
    ys = [render(model, with_entry(model, "pose", 1, pitch)).landmarks[0, 30, 1]
          for pitch in (-0.2, 0.1, 0.2)]
    assert ys[0] < y0 - 3 and y0 + 3 < ys[1] < ys[2]


@pytest.mark.parametrize("roll", [0.2, -0.3])
def test_roll_turns_eye_line_counter_clockwise(model, roll):
    """On screen (y down), the angle of the line from landmark 36 (image left) to 45 is
    atan2(-(y45 - y36), x45 - x36); roll > 0 turns it counter-clockwise by exactly `roll`
    (roll is a rotation about the optical axis, which perspective preserves), and the top of
    the head (nose bridge, 27) goes to the image left of the chin (8)."""
    lm = render(model, with_entry(model, "pose", 2, roll)).landmarks[0]
    d = lm[45] - lm[36]
    angle = math.atan2(-float(d[1]), float(d[0]))
    assert abs(angle - roll) < 1e-4
    assert (lm[27, 0] - lm[8, 0]) * roll < 0


def test_translation_moves_face(model, neutral):
    """x > 0 moves the face right, y > 0 up, z > 0 closer (bigger)."""
    lm0 = neutral.landmarks[0]
    right = render(model, with_entry(model, "pose", 3, 0.2)).landmarks[0]
    up = render(model, with_entry(model, "pose", 4, 0.2)).landmarks[0]
    near = render(model, with_entry(model, "pose", 5, 1.0)).landmarks[0]
    assert (right[:, 0] > lm0[:, 0] + 5).all()
    assert (up[:, 1] < lm0[:, 1] - 5).all()
    width = lambda lm: lm[16, 0] - lm[0, 0]  # noqa: E731
    assert width(near) > 1.05 * width(lm0)


def test_first_sh_band_brightens(model, neutral):
    light = model.layout.slice("lighting")
    coeffs = model.layout.zeros(1)
    coeffs[0, [light.start + 0, light.start + 9, light.start + 18]] = 0.3
    bright = render(model, coeffs)
    mask = neutral.face_mask[0, 0] > 0
    assert torch.equal(bright.face_mask, neutral.face_mask)
    for c in range(3):
        assert bright.image[0, c][mask].mean() > neutral.image[0, c][mask].mean() + 0.05
    # the constant band adds 0.3 * pi * Y_00 = 0.3 * sqrt(pi) / 2 to the irradiance everywhere
    lit = mask & (neutral.shading[0] > 0).all(0)
    delta = bright.shading[0][:, lit] - neutral.shading[0][:, lit]
    torch.testing.assert_close(delta, torch.full_like(delta, 0.3 * math.sqrt(math.pi) / 2),
                               rtol=0, atol=1e-5)
    # outside the face nothing changes
    assert torch.equal(bright.image[0][:, ~mask], neutral.image[0][:, ~mask])


def test_mesh_statistics(model):
    num_faces = model.faces.shape[0]
    assert 5000 <= num_faces <= 15000
    assert model.faces.dtype == torch.long
    assert model.faces.min() == 0 and model.faces.max() == model.num_vertices - 1
    v = model.mean_shape
    assert torch.isfinite(v).all()
    face_height = v[:, 1].max() - v[:, 1].min()
    assert 1.5 < face_height < 4
    corners = v[model.faces]
    edges = (corners - corners.roll(1, dims=1)).norm(dim=-1)
    assert edges.max() < 0.1 * face_height
    assert (edges > 0).all()  # no degenerate triangles
    assert model.landmark_index.shape == (68,)
    assert len(set(model.landmark_index.tolist())) >= 66  # (62/66 could share a position)
    interior = model.regions["mouth_interior"]
    assert 0 < len(interior) < 0.1 * num_faces
    assert interior.max() < num_faces


def test_names(model):
    assert model.expression_names[:10] == ["jaw_open", "smile", "frown", "pucker", "mouth_left",
                                           "mouth_right", "brow_raise", "brow_furrow",
                                           "cheek_puff", "lip_press"]
    assert model.texture_names[:4] == ["skin_tone", "redness", "lip_colour", "brow_darkness"]
    assert len(model.expression_names) == len(set(model.expression_names)) == 44
    assert len(model.texture_names) == len(set(model.texture_names)) == 80
    assert len(model.identity_names) == len(set(model.identity_names)) == 80
    assert model.identity_basis.shape == (80, model.num_vertices, 3)
    assert model.expression_basis.shape == (44, model.num_vertices, 3)
    assert model.texture_basis.shape == (80, model.num_vertices, 3)
    assert model.mean_albedo.min() >= 0 and model.mean_albedo.max() <= 1


def test_build_is_deterministic():
    a = face3d.embedded.build_embedded_model.__wrapped__()
    b = face3d.embedded.build_embedded_model.__wrapped__()
    assert a is not b
    for name in ("mean_shape", "identity_basis", "expression_basis", "mean_albedo",
                 "texture_basis", "faces", "landmark_index"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.regions.keys() == b.regions.keys()
    for key in a.regions:
        assert torch.equal(a.regions[key], b.regions[key]), key
    assert a.expression_names == b.expression_names and a.layout == b.layout


def test_sample_coeffs_reproducible(model):
    def draw(seed):
        return model.sample_coeffs(4, generator=torch.Generator().manual_seed(seed))

    a, b, c = draw(0), draw(0), draw(1)
    assert a.shape == (4, 237) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.isclose(a, c).any(dim=0).all()
    assert (a - c).abs().mean() > 0.1


def test_sampled_faces_cover_image_and_differ(model):
    coeffs = model.sample_coeffs(16, generator=torch.Generator().manual_seed(3))
    out = render(model, coeffs, 128)
    assert out.image.shape == (16, 3, 128, 128)
    assert torch.isfinite(out.image).all()
    assert out.image.min() >= -1 and out.image.max() <= 1
    share = out.face_mask.mean(dim=(1, 2, 3))
    assert ((share > 0.15) & (share < 0.8)).all(), share
    flat = out.image.reshape(16, -1)
    distance = torch.cdist(flat, flat) / flat.shape[1] ** 0.5  # RMS difference
    off_diagonal = distance[~torch.eye(16, dtype=torch.bool)]
    assert off_diagonal.min() > 0.02
    # a batch renders each face as if alone
    alone = render(model, coeffs[5:6], 128)
    same = alone.tri_id[0] == out.tri_id[5]  # float32 rounding may flip a pixel on an edge
    assert (~same).sum() <= 5
    torch.testing.assert_close(alone.image[0][:, same], out.image[5][:, same], rtol=0, atol=1e-4)


@pytest.mark.parametrize("coeffs", [
    torch.zeros(1, 236), torch.zeros(1, 238), torch.zeros(237), torch.zeros(1, 1, 237),
    torch.zeros(1, 257),
])
def test_wrong_coeff_shape_raises(model, coeffs):
    with pytest.raises(ValueError, match="237"):
        face3d.render_faces(model, coeffs, 64)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coeffs_raise(model, bad):
    coeffs = model.layout.zeros(2)
    coeffs[1, 100] = bad
    with pytest.raises(ValueError, match="NaN|finite"):
        face3d.render_faces(model, coeffs, 64)
    with pytest.raises(ValueError):
        model.decode(coeffs)


def test_other_bad_inputs_raise(model):
    with pytest.raises(ValueError):
        face3d.render_faces(model, model.layout.zeros(1), 4)
    with pytest.raises(ValueError):
        face3d.render_faces(model, model.layout.zeros(1), 64, background=torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError):
        face3d.render_faces(model, model.layout.zeros(1).numpy(), 64)


def test_background_is_kept_outside_face(model):
    background = torch.linspace(-1, 1, 3 * 64 * 64).view(1, 3, 64, 64)
    out = render(model, model.layout.zeros(1), 64)
    with_bg = face3d.render_faces(model, model.layout.zeros(1), 64, background=background)
    mask = out.face_mask.bool().expand(1, 3, 64, 64)
    assert torch.equal(with_bg.image[~mask], background[~mask])
    assert torch.equal(with_bg.image[mask], out.image[mask])


@pytest.mark.parametrize("name, check", [
    # (landmark displacements d (68, 2) in pixels at +2, image y down) -> what must hold
    ("smile", lambda d: d[48, 1] < -3 and d[54, 1] < -3 and d[48, 0] < -2 and d[54, 0] > 2),
    ("frown", lambda d: d[48, 1] > 3 and d[54, 1] > 3),
    ("pucker", lambda d: d[48, 0] > 3 and d[54, 0] < -3),  # corners come together
    ("mouth_left", lambda d: (d[48:68, 0] > 2).all() and d[36:48].abs().max() < 0.01),
    ("mouth_right", lambda d: (d[48:68, 0] < -2).all() and d[36:48].abs().max() < 0.01),
    ("brow_raise", lambda d: (d[17:27, 1] < -3).all() and d[48:68].abs().max() < 0.01),
    ("brow_furrow", lambda d: d[21, 0] > 2 and d[22, 0] < -2 and d[21, 1] > 2),
    ("cheek_puff", lambda d: d[48, 0] < -1 and d[54, 0] > 1),
    ("lip_press", lambda d: d[51, 1] > 1 and d[57, 1] < -1),
])
def test_named_expressions(model, neutral, name, check):
    """Each named expression moves the landmarks the way its name says (mouth_left is the
    subject's left, the image right); the symmetric ones keep the face mirror-symmetric."""
    coeffs = with_entry(model, "expression", model.expression_names.index(name), 2.0)
    lm = render(model, coeffs).landmarks[0]
    assert check(lm - neutral.landmarks[0])
    if name not in ("mouth_left", "mouth_right"):
        mirrored = lm.clone()
        mirrored[:, 0] = SIZE - mirrored[:, 0]
        a, b = zip(*MIRROR_PAIRS, strict=True)
        torch.testing.assert_close(mirrored[list(a)], lm[list(b)], rtol=0, atol=1e-2)


def test_empty_batch_and_background_shape(model):
    out = face3d.render_faces(model, model.zero_coeffs(0), 32)
    assert out.image.shape == (0, 3, 32, 32) and out.landmarks.shape == (0, 68, 2)
    with pytest.raises(ValueError, match="background"):
        face3d.render_faces(model, model.zero_coeffs(3), 32, background=torch.zeros(2, 3, 32, 32))
