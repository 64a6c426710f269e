"""Data sets: synthetic masked faces with exact ground truth, and a folder of real photos."""

from .backgrounds import random_background
from .folder import MaskedFaceFolder, render_template_masks
from .masks import MASK_TYPES, MaskStyle, mask_faces, mask_vertices, sample_mask_style
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
    "MASK_KINDS", "MASK_TYPES", "MaskStyle", "MaskedFaceFolder", "SyntheticMaskedFaces",
    "draw_coefficients", "generate_chunk", "identity_of", "mask_faces", "mask_vertices",
    "random_background", "render_masked_faces", "render_template_masks", "sample_mask_style",
    "wears_mask",
]
