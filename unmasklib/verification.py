"""Face verification: are two images the same person? ROC curve, AUC and TAR at a fixed FAR.

A pair is accepted when its similarity is at least a threshold. Over all thresholds:
    TAR (true accept rate)  = accepted same-identity pairs / same-identity pairs
    FAR (false accept rate) = accepted different-identity pairs / different-identity pairs
The ROC curve is TAR against FAR; its area (AUC) is the probability that a random
same-identity pair scores above a random different-identity pair (ties count one half).
Two protocols on held-out identities: clean-clean (all unordered pairs of clean images) and
masked-clean (the masked image of one sample against the clean image of every other sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .config import Profile, resolve_run
from .data import dataset_batches, identity_test_faces, wears_mask


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of similarity `scores` `(N,)` for pairs labelled `same` `(N,)` bool.

    Returns `far`, `tar`, `thresholds`, each `(K + 1,)` for K distinct scores: the point with
    threshold +inf (nothing accepted, FAR = TAR = 0), then one point per distinct score in
    decreasing order (pairs scoring at least it accepted), ending at FAR = TAR = 1.
    """
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    if scores.shape != same.shape or scores.ndim != 1:
        raise ValueError(f"scores and same must be 1-D of one length, got {scores.shape} "
                         f"and {same.shape}")
    positives, negatives = int(same.sum()), int((~same).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"a ROC needs both kinds of pair, got {positives} same-identity and "
                         f"{negatives} different-identity pairs")
    order = np.argsort(-scores, kind="stable")
    scores, same = scores[order], same[order]
    # Tied scores are accepted together: keep only the last pair of each run of equal scores.
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tar = np.r_[0, np.cumsum(same)[last_of_tie]] / positives
    far = np.r_[0, np.cumsum(~same)[last_of_tie]] / negatives
    return far, tar, np.r_[np.inf, scores[last_of_tie]]


def area_under_curve(far: np.ndarray, tar: np.ndarray) -> float:
    """Area under the ROC polyline (trapezoids), in [0, 1]."""
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def tar_at_far(far: np.ndarray, tar: np.ndarray, far_target: float = 1e-2) -> float:
    """The highest TAR of a threshold whose FAR is at most `far_target` (no interpolation)."""
    return float(tar[far <= far_target].max())


@dataclass
class Verification:
    """One protocol's result: the ROC (`far`, `tar`, `thresholds`), its `auc`, `tar_at_far`
    at `far_target`, and how many same-identity (`genuine`) and other (`impostor`) pairs."""

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    auc: float
    tar_at_far: float
    far_target: float
    genuine: int
    impostor: int

    def summary(self) -> dict[str, float]:
        """The numbers, without the curve."""
        return {"auc": self.auc, f"tar@far={self.far_target:g}": self.tar_at_far,
                "genuine_pairs": self.genuine, "impostor_pairs": self.impostor}


def verification(scores: np.ndarray, same: np.ndarray, far_target: float = 1e-2) -> Verification:
    """ROC, AUC and TAR at `far_target` of pair `scores` `(N,)` labelled `same` `(N,)`."""
    far, tar, thresholds = roc_curve(scores, same)
    return Verification(far, tar, thresholds, area_under_curve(far, tar),
                        tar_at_far(far, tar, far_target), far_target, int(np.sum(same)),
                        int(np.sum(~np.asarray(same, dtype=bool))))


def pair_scores(probe: np.ndarray, gallery: np.ndarray, probe_ids: np.ndarray,
                gallery_ids: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and same-identity label of the probe-gallery pairs where `pairs`
    `(P, G)` is True; embeddings `(P, D)`, `(G, D)` of unit norm, ids `(P,)`, `(G,)`."""
    similarity = probe @ gallery.T
    same = probe_ids[:, None] == gallery_ids[None, :]
    return similarity[pairs], same[pairs]


@torch.no_grad()
def embed(encoder: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Embeddings `(N, D)` float64 of images `(N, 3, H, W)` in [-1, 1], computed on the
    encoder's device (the encoder should be in eval mode)."""
    device = next(encoder.parameters()).device
    return encoder(images.to(device)).double().cpu().numpy()


def verify_identities(encoder: nn.Module, dataset: Dataset, far_target: float = 1e-2, *,
                      batch_size: int = 100, progress: bool = True) -> dict[str, Verification]:
    """Both protocols on a data set of masked faces (items with clean, masked, identity,
    mask_type): {"clean-clean": ..., "masked-clean": ...}. Masked probes are the samples that
    wear a mask (mask_type != "none"); a sample is never paired with itself. Images are read
    and embedded `batch_size` at a time, the encoder in eval mode (restored afterwards)."""
    ids, worn, clean, masked = [], [], [], []
    was_training = encoder.training
    encoder.eval()
    try:
        for batch in dataset_batches(dataset, batch_size, "embedding faces", progress):
            ids.append(batch["identity"].numpy())
            worn.append(wears_mask(batch["mask_type"]).numpy())
            clean.append(embed(encoder, batch["clean"]))
            masked.append(embed(encoder, batch["masked"]))
    finally:
        encoder.train(was_training)
    ids, worn = np.concatenate(ids), np.concatenate(worn)
    clean, masked = np.concatenate(clean), np.concatenate(masked)[worn]
    count = len(ids)
    upper = np.triu(np.ones((count, count), dtype=bool), k=1)
    not_itself = ~np.eye(count, dtype=bool)[worn]
    return {
        "clean-clean": verification(*pair_scores(clean, clean, ids, ids, upper), far_target),
        "masked-clean": verification(*pair_scores(masked, clean, ids[worn], ids, not_itself),
                                     far_target),
    }


def evaluate_identity_encoder(encoder: nn.Module, profile: Profile | str | None = None,
                              run_folder: str | Path | None = None, far_target: float = 1e-2,
                              progress: bool = True) -> dict[str, Verification]:
    """Verification on `profile`'s held-out test identities (`data.identity_test_faces`):
    {"clean-clean": ..., "masked-clean": ...}, each with ROC, AUC and TAR at `far_target`."""
    profile, folder = resolve_run(profile, run_folder)
    return verify_identities(encoder, identity_test_faces(profile, folder, progress),
                             far_target, progress=progress)
