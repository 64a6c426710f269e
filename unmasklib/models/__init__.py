"""Networks: the identity encoder (ArcFace) and N3D; the inpainting U-Net and PatchGAN later."""

from .identity import (
    ArcFaceHead,
    IdentityEncoder,
    arcface_logits,
    evaluate_identity_encoder,
    identity_similarity,
    load_identity_encoder,
    train_identity_encoder,
)
from .n3d import N3D, N3DOutput, phase1_terms

__all__ = [
    "N3D", "ArcFaceHead", "IdentityEncoder", "N3DOutput", "arcface_logits",
    "evaluate_identity_encoder", "identity_similarity", "load_identity_encoder", "phase1_terms",
    "train_identity_encoder",
]
