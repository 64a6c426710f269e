"""Networks only: the identity encoder (ArcFace), N3D, the inpainting U-Net G and its PatchGAN
critic, on shared backbones. Nothing here trains, loads data or reads run folders: building a
run's networks from a checkpoint is `trained`'s, training them `training`'s."""

from .identity import ArcFaceHead, IdentityEncoder, arcface_logits, identity_similarity
from .inpainting import InpaintingGenerator, PatchDiscriminator
from .n3d import N3D, N3DOutput

__all__ = [
    "N3D", "ArcFaceHead", "IdentityEncoder", "InpaintingGenerator", "N3DOutput",
    "PatchDiscriminator", "arcface_logits", "identity_similarity",
]
