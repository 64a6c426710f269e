"""The one batched-inference loop (`devices.in_batches`) and N3D's map as G gets it
(`guidance.occlusion_map`)."""

from __future__ import annotations

import warnings

import pytest
import torch

from unmasklib.devices import computes_bfloat16_natively, in_batches
from unmasklib.guidance import occlusion_map
from unmasklib.models import N3DOutput


def test_batches_join_to_the_unbatched_result_in_order():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10.0, 20.0).view(10, 1)
    seen = []

    def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append(len(a))
        return a + b

    assert torch.equal(in_batches(add, x, y, batch_size=4), x + y)
    assert seen == [4, 4, 2]


def test_tuples_keep_their_type_and_a_generator_advances_as_over_one_batch():
    images = torch.zeros(7, 1, 2, 2)
    noise = torch.Generator().manual_seed(3)

    def network(part: torch.Tensor) -> N3DOutput:
        return N3DOutput(part + torch.rand(part.shape, generator=noise), part.flatten(1))

    out = in_batches(network, images, batch_size=3)
    assert isinstance(out, N3DOutput) and out.coeffs.shape == (7, 4)
    expected = torch.rand(images.shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out.occlusion_logits, expected)
    plain = in_batches(lambda part: (part, part + 1), images, batch_size=3)
    assert type(plain) is tuple and torch.equal(plain[1], images + 1)


def test_inputs_of_different_lengths_or_none_are_refused():
    with pytest.raises(ValueError, match="one length"):
        in_batches(torch.add, torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="not zero"):
        in_batches(torch.neg, torch.zeros(0))


def test_the_map_g_gets_is_n3d_s_probability_above_a_half_grown_by_the_dilation():
    logits = torch.full((1, 1, 7, 7), -3.0)
    logits[0, 0, 3, 3] = 0.5       # probability 0.62: occluded
    logits[0, 0, 0, 6] = 0.0       # probability exactly 0.5: not occluded
    grown = occlusion_map(logits, 1)
    assert grown.dtype == torch.float32 and set(grown.unique().tolist()) == {0.0, 1.0}
    assert grown.sum() == 9 and grown[0, 0, 2:5, 2:5].eq(1).all()
    assert torch.equal(occlusion_map(logits, 0), (torch.sigmoid(logits) > 0.5).float())


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()}


def test_a_cpu_without_avx512_or_amx_is_not_taken_to_compute_bfloat16():
    """oneDNN's bfloat16 kernels need AVX-512 (BW, VL, DQ) or AMX; an AVX2-only CPU emulates
    bfloat16, 13 times slower than float32 for a paper phase-1 step."""
    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    hardware = {"avx512bw", "avx512vl", "avx512dq"} <= flags or "amx_bf16" in flags
    if not hardware:
        assert not computes_bfloat16_natively("cpu")
    assert not computes_bfloat16_natively("mps")
    if not torch.cuda.is_available():
        assert not computes_bfloat16_natively("cuda")


def test_bfloat16_autocast_runs_only_where_the_device_computes_it(monkeypatch):
    """Asked for bfloat16, `autocast_in` gives bfloat16 products where the device has it in
    hardware, and float32 with one warning where it would emulate it."""
    from unmasklib.training import n3d as phase1

    a = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(phase1, "computes_bfloat16_natively",
                            lambda device_type, native=native: native)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with phase1.autocast_in("cpu", torch.bfloat16):
                product = a @ a
        assert product.dtype == expected
        assert [str(w.message).startswith("this cpu has no bfloat16") for w in caught] == (
            [] if native else [True])
    with phase1.autocast_in("cpu", None):
        assert (a @ a).dtype == torch.float32
