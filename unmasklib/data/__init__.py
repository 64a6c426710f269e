"""Data sets: synthetic masked faces with exact ground truth, and a folder of real photos;
a run's splits, and reading samples as batches."""

from .backgrounds import random_background
from .folder import MaskedFaceFolder, PseudoTruth, pseudo_ground_truth
from .loading import as_one_batch, collate, dataset_batches
from .masks import MASK_TYPES, MaskStyle, mask_faces, mask_vertices, sample_mask_style
from .splits import held_out_faces, identity_test_faces, identity_train_faces, train_faces
from .synthetic import (
    MASK_KINDS,
    SyntheticMaskedFaces,
    draw_coefficients,
    generate_chunk,
    identity_of,
    render_masked_faces,
    wears_mask,
)

__all__ = [
    "MASK_KINDS", "MASK_TYPES", "MaskStyle", "MaskedFaceFolder", "PseudoTruth",
    "SyntheticMaskedFaces",
    "as_one_batch", "collate", "dataset_batches", "draw_coefficients", "generate_chunk",
    "held_out_faces", "identity_of", "identity_test_faces", "identity_train_faces",
    "mask_faces", "mask_vertices", "pseudo_ground_truth", "random_background",
    "render_masked_faces",
    "sample_mask_style", "train_faces", "wears_mask",
]
