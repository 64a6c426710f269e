"""Where networks run: choosing the device, and running a network over many images in batches.

    device = pick_device()                                   # CUDA, then MPS, then the CPU
    coeffs = in_batches(lambda x: n3d(x).coeffs, images)     # (N, size) on the CPU
    computes_bfloat16_natively("cpu")                        # False on an AVX2-only CPU

Every use of a trained network over a set of images (N3D's guidance, the fit, G's paintings,
identity embeddings) goes through `in_batches`, so memory stays bounded on a laptop and the
results come back on the CPU in the order given.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .progress import progress_bar


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """`preference` if given (checked to be available), else CUDA (under torchrun the GPU of
    this process's local rank, `$LOCAL_RANK`), then MPS, then the CPU."""
    if preference is not None:
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def computes_bfloat16_natively(device_type: str) -> bool:
    """Whether devices of `device_type` ("cpu", "cuda", "mps") run bfloat16 convolutions and
    matrix products in hardware: a CUDA GPU that supports them (Ampere on), a CPU for which
    oneDNN has bfloat16 kernels (AVX-512 or AMX). Elsewhere bfloat16 is emulated and far
    slower than float32: a `paper` phase-1 step took 60.0 s in bfloat16 against 4.5 s in
    float32 on an AVX2-only CPU (`benchmarks/bench_phase1.py`). MPS: False (not measured)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(
            including_emulation=False)
    if device_type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def device_of(network: nn.Module) -> torch.device:
    """The device a network's weights are on."""
    return next(network.parameters()).device


def in_batches(function: Callable[..., Any], *inputs: torch.Tensor, batch_size: int = 32,
               device: torch.device | str | None = None, desc: str | None = None) -> Any:
    """`function(*parts)` on consecutive slices of `batch_size` rows of `inputs` (each moved
    to `device` when given), the results moved to the CPU and joined along the first
    dimension: a tensor, or a tuple (a NamedTuple keeps its type) of tensors. The slices run
    in order, so a generator the function draws from advances as it would over one batch
    after another. `desc`: a progress bar over the batches with that label. Gradient mode is
    the caller's (decorate with `torch.no_grad()` for inference)."""
    if not inputs or not len(inputs[0]) or any(len(x) != len(inputs[0]) for x in inputs):
        raise ValueError(f"in_batches needs inputs of one length, not zero, got "
                         f"{[len(x) for x in inputs]}")
    outputs = []
    for start in progress_bar(range(0, len(inputs[0]), batch_size), desc=desc, unit="batch",
                              disable=desc is None):
        parts = [x[start:start + batch_size] for x in inputs]
        outputs.append(function(*(p if device is None else p.to(device) for p in parts)))
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat([out.cpu() for out in outputs])
    joined = [torch.cat([part.cpu() for part in column]) for column in zip(*outputs, strict=True)]
    return type(outputs[0])(*joined) if hasattr(outputs[0], "_fields") else tuple(joined)
