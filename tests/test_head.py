"""Data v3: the head around the face (hair, ears, neck, clothes) and the broader people."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from unmasklib import face3d
from unmasklib.data.head import (
    HAIR_STYLES,
    NECK_STAYS_BELOW,
    NECK_TURNS_FROM,
    bare_scalp,
    face_scale,
    hairline_heights,
    head_ellipse,
    head_mesh,
    head_topology,
    render_heads,
)
from unmasklib.data.synthetic import head_of, render_masked_faces
from unmasklib.face3d.camera import pose_vertices, project
from unmasklib.face3d.shading import vertex_normals

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return face3d.load_face_model()


def posed(model, yaw: float = 0.0, **identity: float) -> torch.Tensor:
    coeffs = torch.zeros(1, model.layout.size)
    coeffs[0, model.layout.slice("pose").start] = yaw
    for name, value in identity.items():
        coeffs[0, model.layout.slice("identity").start + model.identity_names.index(name)] = value
    return coeffs


def test_heads_are_drawn_per_identity_with_every_style():
    assert head_of(0, 5) == head_of(0, 5) != head_of(0, 6)
    assert head_of(1, 5) != head_of(0, 5)
    styles = [head_of(0, k).hair for k in range(200)]
    assert set(styles) == set(HAIR_STYLES)


def test_hairlines_of_the_styles():
    style = head_of(0, 3)
    middle = len(hairline_heights(style)) // 2  # the column at the forehead
    lines = {hair: hairline_heights(replace(style, hair=hair, hairline=0.95))[middle]
             for hair in ("short", "bangs", "receding")}
    assert lines["bangs"] == pytest.approx(0.5)
    assert lines["receding"] == pytest.approx(1.05)  # scalp shows above the forehead
    assert lines["short"] == pytest.approx(0.95)
    long_hair = hairline_heights(replace(style, hair="long"))
    assert long_hair.min() == pytest.approx(-2.0)  # down to the shoulders at the back


def test_head_scale_follows_the_face(model):
    vertices, _ = model.decode(torch.cat([posed(model), posed(model, face_width=2.0),
                                          posed(model, face_depth=-2.0)]))
    scale = face_scale(model, vertices)
    assert torch.allclose(scale[0], torch.ones(3), atol=1e-6)
    # face_width moves every vertex by 0.045 x per unit: two units make it 9 % wider.
    assert scale[1].tolist() == pytest.approx([1.09, 1.0, 1.0], abs=1e-5)
    # face_depth moves every vertex by 0.05 (z - mean z) per unit: -2 make it 10 % shallower.
    assert scale[2].tolist() == pytest.approx([1.0, 1.0, 0.9], abs=1e-5)


def test_every_part_faces_outwards(model):
    vertices, _, _ = head_mesh(head_of(0, 4), np.array([0.6, 0.45, 0.4]))
    faces, parts = head_topology()
    points = torch.from_numpy(vertices)[None]
    normals = vertex_normals(points, faces)[0].numpy()
    x, y, z = vertices.T
    _, _, centre = head_ellipse(np.clip(y, -0.6, 1.25))
    from_axis = np.stack([x, 0 * y, z - centre], 1)
    away = {"scalp": from_axis, "hair": from_axis, "neck": np.stack([x, 0 * y, z + 0.3], 1),
            "ear_left": np.tile([1.0, 0, 0], (len(x), 1)),
            "ear_right": np.tile([-1.0, 0, 0], (len(x), 1)),
            "torso": np.tile([0, 0, 1.0], (len(x), 1))}
    for name, part in parts.items():
        outwards = (normals[part] * away[name][part]).sum(1) > 0
        assert outwards.mean() > 0.8, name


def turned_on_screen(screen: torch.Tensor, yaw: float) -> torch.Tensor:
    """Screen vertices `(1, V, 3)` of an unturned, unshifted head, turned by `yaw` as the
    face's pose turns it: back to world space, rotated, projected again."""
    depth = screen[..., 2]
    focal = face3d.camera.focal_length(SIZE)
    x = (screen[..., 0] - SIZE / 2) * depth / focal
    y = -(screen[..., 1] - SIZE / 2) * depth / focal
    world = torch.stack([x, y, face3d.camera.CAMERA_DISTANCE - depth], -1)
    return project(pose_vertices(world, torch.tensor([[yaw, 0.0, 0.0]]), torch.zeros(1, 3)),
                   SIZE, SIZE)


def test_skull_turns_with_the_face_and_shoulders_stay(model):
    style = head_of(0, 1)
    _, parts = head_topology()
    still, turned = (render_heads(model, posed(model, yaw), [style], SIZE).screen_vertices
                     for yaw in (0.0, 0.4))
    torso, scalp = parts["torso"], parts["scalp"]
    assert torch.equal(still[:, torso], turned[:, torso])
    assert torch.allclose(turned[:, scalp], turned_on_screen(still[:, scalp], 0.4), atol=1e-3)


def test_the_neck_turns_near_the_skull_and_stays_at_the_collar(model):
    style = head_of(0, 1)
    _, parts = head_topology()
    neck_y = torch.from_numpy(head_mesh(style, np.full(3, 0.5))[0][parts["neck"], 1])
    still, turned = (render_heads(model, posed(model, yaw), [style], SIZE).screen_vertices
                     for yaw in (0.0, 0.4))
    still, turned = still[:, parts["neck"]], turned[:, parts["neck"]]
    top, collar = neck_y > NECK_TURNS_FROM, neck_y < NECK_STAYS_BELOW
    assert torch.allclose(turned[:, top], turned_on_screen(still[:, top], 0.4), atol=1e-3)
    assert torch.equal(turned[:, collar], still[:, collar])
    between = ~top & ~collar
    assert not torch.allclose(turned[:, between], still[:, between], atol=1e-2)
    assert not torch.allclose(turned[:, between], turned_on_screen(still[:, between], 0.4),
                              atol=1e-2)


def test_clean_images_composite_face_and_head_by_depth(model):
    coeffs = torch.cat([posed(model, 0.3), posed(model, -0.2, face_length=1.0)])
    heads = [replace(head_of(0, 2), hair="bangs"), head_of(0, 9)]
    background = torch.full((2, 3, SIZE, SIZE), -0.5)
    out = render_masked_faces(model, coeffs, [None, None], background, SIZE, heads=heads)
    face = face3d.render_faces(model, coeffs, SIZE, background=background,
                               albedo=bare_scalp(model, model.decode(coeffs)[1]))
    head = render_heads(model, coeffs, heads, SIZE)
    clean = out["clean"].permute(0, 3, 1, 2).float() / 127.5 - 1

    def quantised(image: torch.Tensor) -> torch.Tensor:
        return torch.round((image + 1) * 127.5) / 127.5 - 1

    # Fixed places: the nose tip is the face's; the forehead under the bangs is the hair's.
    nose = face.landmarks[0, 30].long()
    assert torch.equal(clean[0, :, nose[1], nose[0]], quantised(face.image)[0, :, nose[1], nose[0]])
    brow = face.landmarks[0, 17:27].mean(0)
    under_bangs = (int(brow[0]), int(brow[1] - 0.15 * SIZE))  # above the brows, below y=0.5
    assert face.face_mask[0, 0, under_bangs[1], under_bangs[0]] == 1
    assert torch.equal(clean[0, :, under_bangs[1], under_bangs[0]],
                       quantised(head.image)[0, :, under_bangs[1], under_bangs[0]])
    # Everywhere: the nearer of the two, or the background where neither is.
    in_front = (head.depth < face.depth).expand_as(clean)
    assert 0.05 < in_front.float().mean() < 0.6  # hair, ears, neck: some of the picture
    for source, where in ((head.image, in_front), (face.image, ~in_front)):
        assert (quantised(source) - clean)[where].abs().max() < 1e-5
    # The face is hidden where its mesh covers the picture and the head's is in front.
    assert torch.equal(out["hidden_face"], (face.face_mask[:, 0] > 0) & in_front[:, 0])
    assert out["hidden_face"][0, under_bangs[1], under_bangs[0]]
    assert not out["hidden_face"][0, nose[1], nose[0]]
    assert 0 < out["hidden_face"].float().mean() < in_front.float().mean()  # not the neck
    bare = render_masked_faces(model, coeffs, [None, None], background, SIZE)
    assert not bare["hidden_face"].any()


def test_a_bare_scalp_is_the_face_own_skin(model):
    coeffs = torch.zeros(2, model.layout.size)
    coeffs[1, model.layout.slice("texture").start + model.texture_names.index("skin_tone")] = 1.5
    _, albedo = model.decode(coeffs)
    bare = bare_scalp(model, albedo)
    cap = model.vertex_regions["hair"] > 0.999
    skin = model.vertex_regions["skin"]
    expected = (albedo * skin[:, None]).sum(1) / skin.sum()
    assert torch.allclose(bare[:, cap], expected[:, None].expand(-1, int(cap.sum()), -1), atol=1e-3)
    elsewhere = model.vertex_regions["hair"] == 0
    assert torch.equal(bare[:, elsewhere], albedo[:, elsewhere])


def test_a_style_per_face_is_required(model):
    with pytest.raises(ValueError, match="one head style per face"):
        render_heads(model, torch.zeros(2, model.layout.size), [head_of(0, 0)], SIZE)
