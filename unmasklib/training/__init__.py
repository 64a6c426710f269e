"""Training machinery shared by every phase: deterministic batches, atomic checkpoints with
exact resume, and one small loop (`fit`)."""

from .batches import (
    Batches,
    batch_indices,
    collate,
    dataset_batches,
    step_generator,
    to_device,
)
from .checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_finished_checkpoint,
    load_or_train,
    load_weights,
    load_weights_only,
    save_checkpoint,
)
from .loop import (
    NonFiniteLossError,
    Run,
    adam,
    descend,
    fit,
    learning_rate,
    pick_device,
)

__all__ = [
    "Batches", "NonFiniteLossError", "Run", "adam", "batch_indices", "checkpoint_path",
    "collate", "dataset_batches", "descend", "fit", "learning_rate", "load_checkpoint",
    "load_finished_checkpoint", "load_or_train", "load_weights", "load_weights_only",
    "pick_device", "save_checkpoint",
    "step_generator", "to_device",
]
