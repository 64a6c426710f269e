"""Training: the machinery every phase shares (deterministic batches, the loop `fit` with
exact resume, torchrun), and each network's training built on it:

    training.identity     the identity encoder (ArcFace)          notebook 02
    training.n3d          phase 1: N3D                            notebook 03
    training.inpainting   phase 2: the generator G and critic D   notebook 04

Using a trained network never imports this package (`trained`, `guidance`, `painting`,
`pipeline`); the `load_or_train_*` functions here are for entry points (notebooks, the command
line, `make demo`), which may have to train what a run folder lacks.
"""

from .batches import Batches, batch_indices, step_generator, to_device
from .loop import (
    NonFiniteLossError,
    Run,
    StepFn,
    adam,
    descend,
    fit,
    learning_rate,
    load_or_train,
)

__all__ = [
    "Batches", "NonFiniteLossError", "Run", "StepFn", "adam", "batch_indices", "descend", "fit",
    "learning_rate", "load_or_train", "step_generator", "to_device",
]
