"""Reading a data set's samples as batches: `collate` stacks samples, `dataset_batches` walks
a whole set in order (how evaluations read the test faces)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from ..progress import progress_bar


def collate(samples: Sequence[dict]) -> dict:
    """Samples (dicts sharing their keys) -> one batch dict: tensors stacked along a new first
    dimension, ints and bools as an int64 / bool tensor `(B,)`, anything else (strings) as a
    list."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], bool):
            batch[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(values[0], int):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch


def dataset_batches(dataset: Dataset, batch_size: int, desc: str,
                    progress: bool = True) -> Iterator[dict]:
    """Every sample of `dataset` once, in order, as collated batches of up to `batch_size`,
    with a progress bar labelled `desc`: how evaluations walk a test set."""
    for start in progress_bar(range(0, len(dataset), batch_size), desc=desc, unit="batch",
                      disable=not progress):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def as_one_batch(dataset: Dataset) -> dict:
    """Every sample of `dataset` collated into one batch (a test set held in memory)."""
    return collate([dataset[i] for i in range(len(dataset))])
