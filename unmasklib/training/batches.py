"""Batches whose content is a pure function of (seed, step), so resuming needs no loader state.

Step `s` of a run with `n` samples and batch size `b` reads slice `s mod (n // b)` of epoch
`s // (n // b)`'s permutation, and each epoch's permutation comes from a generator seeded by
`(seed, epoch)`. A run resumed at step `k` therefore sees exactly the batches an uninterrupted
run would, without saving a DataLoader iterator. The last `n mod b` samples of each epoch's
permutation are skipped (a different few every epoch), so every batch has the same size.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..data.loading import collate
from ..seeding import generator_for
from .distributed import shard


def step_generator(seed: int, step: int, purpose: str = "step") -> torch.Generator:
    """A CPU generator for the random draws of one training step (augmentation, choices).

    Seeded by `(seed, purpose, step)` only, so a resumed run draws the same numbers."""
    return generator_for(seed, purpose, step)


def batch_indices(num_samples: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The sample indices `(batch_size,)` int64 of training step `step` (0-based)."""
    if not 1 <= batch_size <= num_samples:
        raise ValueError(f"batch_size must be between 1 and the number of samples "
                         f"({num_samples}), got {batch_size}")
    steps_per_epoch = num_samples // batch_size
    epoch, position = divmod(step, steps_per_epoch)
    order = torch.randperm(num_samples, generator=generator_for(seed, "epoch", epoch))
    return order[position * batch_size:(position + 1) * batch_size]


class Batches:
    """`batches(step)` -> the collated batch of training step `step` from `dataset`.

    The callable a training loop asks for its data: indices from `batch_indices`, samples
    read one by one (cheap for the in-memory synthetic set) and stacked by `collate`. Under
    torchrun it returns this process's share of the batch (`distributed.shard`)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        # Fails here, not at the first step, when the data set is too small.
        batch_indices(len(dataset), batch_size, seed, 0)

    def __call__(self, step: int) -> dict:
        # Under torchrun each process reads only its slice of the global batch.
        indices = shard(batch_indices(len(self.dataset), self.batch_size, self.seed, step))
        return collate([self.dataset[int(i)] for i in indices])


def to_device(batch: dict, device: torch.device | str) -> dict:
    """The batch with its tensors on `device` (non-blocking copies); other values unchanged."""
    return {key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor)
            else value for key, value in batch.items()}
