"""The appearance layer of the synthetic data (data v2) and the oracle-render gap."""

from __future__ import annotations

import math

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from unmasklib import data, face3d
from unmasklib.baselines import oracle_gap, oracle_render
from unmasklib.data.appearance import (
    FOLD_DARKENING,
    MAP_BOUNDS,
    Appearance,
    apply_appearance,
    map_shape,
    surface_coordinates,
)
from unmasklib.data.synthetic import appearance_of
from unmasklib.images import quantize

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return face3d.load_face_model()


def blank_maps(size: int) -> torch.Tensor:
    return torch.zeros(5, *map_shape(size))


def render_with(model, coeffs: torch.Tensor, looks: list[Appearance], size: int):
    with torch.no_grad():
        out = face3d.render_faces(model, coeffs, size)
        return out, apply_appearance(out, model, coeffs, looks)


def test_same_identity_same_maps_different_identities_differ():
    first, again = appearance_of(0, 7, SIZE), appearance_of(0, 7, SIZE)
    assert torch.equal(first.maps, again.maps) and first.shininess == again.shininess
    other = appearance_of(0, 8, SIZE)
    assert (first.maps - other.maps).abs().mean() > 1e-3
    assert not torch.equal(appearance_of(1, 7, SIZE).maps, first.maps)  # another seed
    traits = [appearance_of(0, k, SIZE).traits for k in range(60)]
    for trait, share in (("freckles", 0.3), ("moles", 0.35), ("stubble", 0.35),
                         ("wrinkles", 0.3)):
        assert abs(sum(trait in t for t in traits) / 60 - share) < 0.2, trait  # some, not all


def test_samples_of_one_identity_share_their_look(model):
    # Samples 0 and 1 are the same person in different expressions, poses and lights:
    # the same appearance is drawn for both inside one chunk.
    chunk = data.generate_chunk(model, 0, "test", 0, SIZE)
    assert chunk["identity"][0] == chunk["identity"][1] != chunk["identity"][8]
    coeffs = torch.from_numpy(chunk["coeffs"][:2])
    look = appearance_of(0, int(chunk["identity"][0]), SIZE)
    out, expected = render_with(model, coeffs, [look, look], SIZE)
    clean = torch.from_numpy(chunk["clean"][:2]).permute(0, 3, 1, 2).float() / 127.5 - 1
    face = out.face_mask.bool().expand_as(clean)
    # Inside the face the stored images are exactly these renders, to the 8-bit level.
    assert (quantize(expected) - clean)[face].abs().max() < 1e-5


def test_zero_maps_leave_the_plain_render(model):
    coeffs = model.sample_coeffs(3, generator=torch.Generator().manual_seed(0))
    look = Appearance(blank_maps(SIZE), shininess=10.0, fold_depth=0.4)
    out, detailed = render_with(model, coeffs, [look] * 3, SIZE)
    assert torch.allclose(detailed, out.image, atol=1e-6)


def test_a_spot_in_surface_coordinates_follows_the_head(model):
    size, spot_u, spot_v = 128, 0.3, 0.0
    maps = blank_maps(size)
    height, width = maps.shape[1:]
    u0, u1, v0, v1 = MAP_BOUNDS
    u = u0 + (torch.arange(width) + 0.5) * (u1 - u0) / width
    v = v1 - (torch.arange(height) + 0.5) * (v1 - v0) / height
    maps[:3] = -2.0 * torch.exp(-((u[None] - spot_u) ** 2 + (v[:, None] - spot_v) ** 2)
                                / (2 * 0.015 ** 2))
    coeffs = model.zero_coeffs(2)
    coeffs[:, model.layout.slice("pose").start] = torch.tensor([0.0, 0.45])
    out, detailed = render_with(model, coeffs, [Appearance(maps, 10.0, 0.0)] * 2, size)
    darkening = (out.image - detailed).sum(1)  # (2, H, W), > 0 only on the spot
    coords = surface_coordinates(model)
    vertex = int(((coords[:, 0] - spot_u) ** 2 + (coords[:, 1] - spot_v) ** 2).argmin())
    centres = []
    for k in range(2):
        weight = darkening[k].clamp(min=0)
        assert weight.sum() > 1
        rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5,
                                    indexing="ij")
        centre = torch.stack([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
        expected = out.screen_vertices[k, vertex, :2]
        assert torch.dist(centre, expected) < 1.0, (k, centre, expected)
        centres.append(centre)
    assert torch.dist(centres[0], centres[1]) > 8  # it moved with the head, by many pixels


def test_folds_deepen_with_a_smile_and_an_open_jaw(model):
    maps = blank_maps(SIZE)
    maps[3] = 1.0  # a fold everywhere: the darkening is then the fold strength alone
    look = Appearance(maps, shininess=10.0, fold_depth=0.2)
    coeffs = model.zero_coeffs(3)
    names = model.expression_names
    expression = model.layout.slice("expression").start
    coeffs[1, expression + names.index("smile")] = 2.0
    coeffs[2, expression + names.index("jaw_open")] = 1.0
    out, detailed = render_with(model, coeffs, [look] * 3, SIZE)
    skin_pixels = fully_skin(model, out)
    ratio = (detailed[:, 0] + 1) / (out.image[:, 0] + 1)
    for k, strength in enumerate([0.2, 0.2 + 0.45 * 2, 0.2 + 0.25 * 1]):
        observed = ratio[k][skin_pixels[k]].median()
        assert math.isclose(observed, math.exp(-FOLD_DARKENING * strength), rel_tol=1e-3)


def fully_skin(model, out) -> torch.Tensor:
    """Pixels `(B, H, W)` of pure skin, neither clipped dark nor bright."""
    coords = surface_coordinates(model)[None].expand(len(out.image), -1, -1)
    skin = out.fragments.to_image(out.fragments.interpolate(coords, model.faces))[..., 2]
    red = out.image[:, 0]
    return (skin > 0.999) & (red > -0.9) & (red < 0.9)


def test_masked_equals_clean_outside_the_occlusion_in_v2():
    test = data.SyntheticMaskedFaces("test", size=16, image_size=SIZE, progress=False)
    for item in (test[i] for i in range(16)):
        outside = item["occlusion"][0] == 0
        assert torch.equal(item["masked"][:, outside], item["clean"][:, outside])


def test_oracle_gap_agrees_with_scikit_image_and_is_real(model):
    test = data.SyntheticMaskedFaces("test", size=16, image_size=SIZE, progress=False)
    gap = oracle_gap(test, model, batch_size=5, progress=False)
    for index in (0, 6, 13):
        item = test[index]
        out = oracle_render(model, item["coeffs"][None], SIZE)
        face = out.face_mask[0, 0].bool().numpy()
        render = quantize(out.image[0]).permute(1, 2, 0).numpy()
        clean = item["clean"].permute(1, 2, 0).numpy()
        expected = peak_signal_noise_ratio(clean[face], render[face], data_range=2.0)
        assert gap.face_psnr[index].item() == pytest.approx(expected, abs=1e-3)
        hidden = face & (item["occlusion"][0].numpy() > 0)
        if hidden.any():
            expected = peak_signal_noise_ratio(clean[hidden], render[hidden], data_range=2.0)
            assert gap.occluded_psnr[index].item() == pytest.approx(expected, abs=1e-3)
        else:
            assert math.isnan(gap.occluded_psnr[index])
    # The 3DMM no longer explains the data exactly (v1 was infinite).
    assert torch.isfinite(gap.face_psnr).all() and gap.face_psnr.mean() < 32
    rows = {row["mask_type"]: row for row in gap.table()}
    assert rows["all"]["face_psnr_n"] == 16 and rows["none"]["occluded_psnr_n"] == 0


def test_data_version_names_the_cache(tmp_path):
    test = data.SyntheticMaskedFaces("test", size=4, image_size=32, root=tmp_path, progress=False)
    assert test.folder.name.endswith(f"-v{data.synthetic.DATA_VERSION}")
    assert data.synthetic.DATA_VERSION >= 2
