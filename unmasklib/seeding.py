"""Seeds derived from names, so that every random draw depends only on what it is for."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def derived_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts`, e.g. `(seed, "train", "sample", 17)`."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator_for(*parts: object) -> torch.Generator:
    """A CPU `torch.Generator` seeded with `derived_seed(*parts)`."""
    return torch.Generator().manual_seed(derived_seed(*parts))


@contextmanager
def seeded_torch(*parts: object) -> Iterator[None]:
    """Inside: torch's global CPU generator seeded with `derived_seed(*parts)` (for the random
    initial weights a network draws from it); outside, its state is as before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(*parts))
        yield
