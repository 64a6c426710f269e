"""A run's data splits: each read (or generated once, then cached in the run's `data/`) on
its own, so that reading the held-out faces never prepares the training faces.

    train = train_faces(profile, folder)     # profile.train_samples faces of the train split
    test = held_out_faces(profile, folder)       # profile.test_samples held-out faces
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from ..config import Profile
from .folder import MaskedFaceFolder
from .synthetic import SyntheticMaskedFaces


def train_faces(profile: Profile, folder: str | Path, progress: bool = True,
                photos: str | Path | None = None) -> Dataset:
    """N3D's and G's training faces: the first `train_samples` of the synthetic train split;
    `photos`: a folder of the user's face photos beside them (`MaskedFaceFolder`, with pseudo
    ground truth fitted once and kept in the run's `data/`)."""
    train = SyntheticMaskedFaces.of_run(profile, folder, "train", profile.train_samples,
                                        progress)
    if photos is None:
        return train
    cache = Path(folder) / "data" / f"photo-truth-{profile.image_size}px.pt"
    return ConcatDataset([train, MaskedFaceFolder(photos, profile.image_size, profile.seed,
                                                  pseudo_truth=True, cache=cache,
                                                  progress=progress)])


def held_out_faces(profile: Profile, folder: str | Path,
               progress: bool = True) -> SyntheticMaskedFaces:
    """The held-out test faces (identities never trained on): `test_samples` of the test
    split."""
    return SyntheticMaskedFaces.of_run(profile, folder, "test", profile.test_samples, progress)


def identity_train_faces(profile: Profile, folder: str | Path,
                         progress: bool = True) -> SyntheticMaskedFaces:
    """The identity encoder's training faces: `identity_train_samples` of the train split
    (its first `train_samples` are `train_faces`)."""
    return SyntheticMaskedFaces.of_run(profile, folder, "train", profile.identity_train_samples,
                                       progress)


def identity_test_faces(profile: Profile, folder: str | Path,
                        progress: bool = True) -> SyntheticMaskedFaces:
    """Held-out faces for face verification: `identity_test_samples` of the test split, 8
    per identity."""
    return SyntheticMaskedFaces.of_run(profile, folder, "test", profile.identity_test_samples,
                                       progress)
