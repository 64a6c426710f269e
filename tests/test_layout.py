"""CoeffLayout: named blocks of a flat coefficient vector."""

import pytest
import torch

from unmasklib import face3d
from unmasklib.face3d import CoeffLayout

EMBEDDED_BLOCKS = [("identity", 80), ("expression", 44), ("texture", 80), ("pose", 6),
                   ("lighting", 27)]
BFM_BLOCKS = [("identity", 80), ("expression", 64), ("texture", 80), ("rotation", 3),
              ("lighting", 27), ("translation", 3)]


@pytest.fixture()
def small():
    return CoeffLayout((("a", 2), ("b", 3), ("c", 1)))


def test_names_size_and_slices_of_small_layout(small):
    assert small.names == ["a", "b", "c"]
    assert small.size == 6
    assert small.slice("a") == slice(0, 2)
    assert small.slice("b") == slice(2, 5)
    assert small.slice("c") == slice(5, 6)
    assert small.describe() == "a 2 + b 3 + c 1"


def test_split_join_round_trip(small):
    coeffs = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0))
    parts = small.split(coeffs)
    assert list(parts) == ["a", "b", "c"]
    assert {k: tuple(v.shape) for k, v in parts.items()} == {
        "a": (4, 5, 2), "b": (4, 5, 3), "c": (4, 5, 1)}
    torch.testing.assert_close(parts["b"], coeffs[..., 2:5], rtol=0, atol=0)
    torch.testing.assert_close(small.join(parts), coeffs, rtol=0, atol=0)


def test_split_returns_views(small):
    coeffs = torch.zeros(2, 6)
    parts = small.split(coeffs)
    for name, part in parts.items():
        assert part.data_ptr() == coeffs[:, small.slice(name)].data_ptr()
    parts["b"][1, 2] = 7.0  # writing into the view writes into the flat vector
    assert coeffs[1, 4] == 7.0
    assert coeffs.sum() == 7.0


def test_embedded_layout_blocks(model):
    layout = model.layout
    # Layouts compare by their blocks: the model's is the embedded one, a rebuilt copy equals
    # it, and moving one entry from a block to the next makes another layout.
    assert layout == face3d.EMBEDDED_LAYOUT == CoeffLayout(tuple(EMBEDDED_BLOCKS))
    moved = [("identity", 79), ("expression", 45), *EMBEDDED_BLOCKS[2:]]
    assert layout != CoeffLayout(tuple(moved)) and CoeffLayout(tuple(moved)).size == 237
    assert list(layout.blocks) == EMBEDDED_BLOCKS
    assert layout.size == 237
    start = 0
    for name, size in EMBEDDED_BLOCKS:
        assert layout.slice(name) == slice(start, start + size)
        start += size
    assert start == 237


def test_embedded_layout_round_trip(model):
    layout = model.layout
    coeffs = torch.randn(3, 237, generator=torch.Generator().manual_seed(1))
    parts = layout.split(coeffs)
    for name, size in EMBEDDED_BLOCKS:
        assert parts[name].shape == (3, size)
        torch.testing.assert_close(parts[name], coeffs[:, layout.slice(name)], rtol=0, atol=0)
    torch.testing.assert_close(layout.join(parts), coeffs, rtol=0, atol=0)


def test_bfm_layout_blocks():
    layout = face3d.BFM_LAYOUT
    assert list(layout.blocks) == BFM_BLOCKS
    assert layout.size == 257
    assert layout.slice("rotation") == slice(224, 227)
    assert layout.slice("lighting") == slice(227, 254)
    assert layout.slice("translation") == slice(254, 257)


@pytest.mark.parametrize("layout", [face3d.EMBEDDED_LAYOUT, face3d.BFM_LAYOUT])
def test_unknown_block_raises_key_error(layout):
    with pytest.raises(KeyError, match="nose"):
        layout.slice("nose")


def test_join_missing_block_raises(small):
    parts = small.split(torch.zeros(6))
    del parts["b"]
    with pytest.raises(ValueError, match="missing"):
        small.join(parts)


def test_join_extra_block_raises(small):
    parts = small.split(torch.zeros(6))
    parts["d"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected"):
        small.join(parts)


def test_join_wrong_block_size_raises(small):
    parts = small.split(torch.zeros(6))
    parts["b"] = torch.zeros(4)
    with pytest.raises(ValueError, match="'b'"):
        small.join(parts)


@pytest.mark.parametrize("size", [0, 5, 7, 237])
def test_split_wrong_size_raises(small, size):
    with pytest.raises(ValueError, match="6"):
        small.split(torch.zeros(2, size))


def test_split_wrong_size_embedded_raises(model):
    with pytest.raises(ValueError):
        model.layout.split(torch.zeros(1, 257))
    with pytest.raises(ValueError):
        face3d.BFM_LAYOUT.split(torch.zeros(1, 237))


def test_zeros(model):
    z = model.layout.zeros(3, dtype=torch.float64)
    assert z.shape == (3, 237) and z.dtype == torch.float64
    assert not z.any()


def test_pose_embedded(model):
    layout = model.layout
    coeffs = torch.randn(2, 237, generator=torch.Generator().manual_seed(2))
    angles, translation = layout.pose(coeffs)
    start = layout.slice("pose").start
    torch.testing.assert_close(angles, coeffs[:, start:start + 3], rtol=0, atol=0)
    torch.testing.assert_close(translation, coeffs[:, start + 3:start + 6], rtol=0, atol=0)


def test_pose_bfm():
    layout = face3d.BFM_LAYOUT
    coeffs = torch.randn(2, 257, generator=torch.Generator().manual_seed(3))
    angles, translation = layout.pose(coeffs)
    torch.testing.assert_close(angles, coeffs[:, 224:227], rtol=0, atol=0)
    torch.testing.assert_close(translation, coeffs[:, 254:257], rtol=0, atol=0)


def test_pose_wrong_size_raises():
    with pytest.raises(ValueError):
        face3d.BFM_LAYOUT.pose(torch.zeros(1, 237))
