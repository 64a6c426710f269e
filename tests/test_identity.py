"""The identity encoder, the ArcFace margin, verification ROC/AUC/TAR and identity training."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

from unmasklib import plots
from unmasklib import verification as ver
from unmasklib.checkpoint import load_checkpoint
from unmasklib.config import get_profile
from unmasklib.data.masks import mask_kind_of
from unmasklib.models import ArcFaceHead, IdentityEncoder, arcface_logits, identity_similarity
from unmasklib.trained import load_identity_encoder
from unmasklib.training.identity import random_shift, train_identity_encoder
from unmasklib.verification import evaluate_identity_encoder


def test_arcface_logits_follow_the_formula():
    generator = torch.Generator().manual_seed(0)
    cosine = torch.rand(64, 5, generator=generator, dtype=torch.float64) * 2 - 1
    labels = torch.randint(0, 5, (64,), generator=generator)
    scale, margin = 30.0, 0.5
    logits = arcface_logits(cosine, labels, scale, margin).numpy()
    theta = np.arccos(cosine.numpy())
    for row, label in enumerate(labels.tolist()):
        for column in range(5):
            t = theta[row, column]
            if column != label:
                expected = scale * math.cos(t)
            elif t + margin <= math.pi:
                expected = scale * math.cos(t + margin)
            else:  # past pi: the linear continuation, still decreasing in theta
                expected = scale * (math.cos(t) - margin * math.sin(margin))
            assert logits[row, column] == pytest.approx(expected, abs=1e-6)
    assert (theta[np.arange(64), labels.numpy()] + margin > math.pi).any()  # both cases seen


def test_arcface_head_normalises_centres_and_embeddings():
    head = ArcFaceHead(num_classes=3, embedding_dim=4, scale=10.0, margin=0.3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 0, 1.0]]))
    embedding = torch.tensor([[3.0, 4.0, 0, 0]])  # cos 0.6 to class 0, 0.8 to class 1
    logits = head(embedding, torch.tensor([1]))
    expected = [10 * 0.6, 10 * math.cos(math.acos(0.8) + 0.3), 0.0]
    assert logits[0].tolist() == pytest.approx(expected, abs=1e-5)


def test_encoder_embeds_to_unit_vectors_at_any_input_size():
    torch.manual_seed(0)
    encoder = IdentityEncoder(width=4, image_size=32).eval()
    for size in (32, 48):
        out = encoder(torch.rand(3, 3, size, size) * 2 - 1)
        assert out.shape == (3, 512)
        assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder(torch.zeros(2, 1, 32, 32))


def test_identity_similarity_is_cosine_and_differentiable():
    torch.manual_seed(0)
    encoder = IdentityEncoder(width=4, image_size=32).eval()
    a = (torch.rand(4, 3, 64, 64) * 2 - 1).requires_grad_()
    b = torch.rand(4, 3, 64, 64) * 2 - 1
    similarity = identity_similarity(encoder, a, b)
    expected = torch.nn.functional.cosine_similarity(encoder(a), encoder(b), dim=1)
    assert similarity.shape == (4,) and torch.allclose(similarity, expected, atol=1e-5)
    assert torch.allclose(identity_similarity(encoder, b, b), torch.ones(4), atol=1e-5)
    (1 - similarity).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_missing_imagenet_weights_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="resnet18.pth not found"):
        IdentityEncoder("resnet18", imagenet_weights=tmp_path / "resnet18.pth")


def test_random_shift_moves_whole_images_within_range():
    images = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    for original, moved in zip(images, shifted, strict=True):
        matches = [(dy, dx) for dy, dx in itertools.product(range(-2, 3), repeat=2)
                   if torch.equal(moved[:, 2:-2, 2:-2],
                                  original[:, 2 + dy:14 + dy, 2 + dx:14 + dx])]
        assert len(matches) == 1


def brute_force_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Mann-Whitney: the share of (same, different) pairs ordered right, ties one half."""
    wins = [1.0 if p > n else 0.5 if p == n else 0.0
            for p in scores[same] for n in scores[~same]]
    return sum(wins) / len(wins)


def test_auc_equals_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    for _ in range(5):
        same = rng.random(60) < 0.3
        scores = np.round(rng.normal(same * 0.8, 1.0), 1)  # rounding makes ties
        far, tar, _ = ver.roc_curve(scores, same)
        assert ver.area_under_curve(far, tar) == pytest.approx(brute_force_auc(scores, same),
                                                               abs=1e-12)


def test_roc_and_tar_of_a_hand_worked_example():
    # Sorted by score: same, diff, same, (same, diff tied at 0.5), diff.
    scores = np.array([0.5, 0.9, 0.1, 0.5, 0.7, 0.8])
    same = np.array([True, True, False, False, True, False])
    far, tar, thresholds = ver.roc_curve(scores, same)
    assert thresholds.tolist() == [np.inf, 0.9, 0.8, 0.7, 0.5, 0.1]
    assert tar.tolist() == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert far.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    # Trapezoids: 1/3 * 1/3 + 1/3 * (2/3 + 1) / 2 + 1/3 * 1 = 13/18. Mann-Whitney agrees:
    # same 0.9, 0.7, 0.5 against different 0.8, 0.5, 0.1 win 3 + 2 + 1.5 of 9 comparisons.
    assert ver.area_under_curve(far, tar) == pytest.approx(13 / 18)
    assert ver.tar_at_far(far, tar, 0.0) == pytest.approx(1 / 3)
    assert ver.tar_at_far(far, tar, 0.5) == pytest.approx(2 / 3)
    result = ver.verification(scores, same, far_target=0.5)
    assert (result.genuine, result.impostor) == (3, 3) and result.auc == pytest.approx(13 / 18)
    with pytest.raises(ValueError, match="both kinds"):
        ver.roc_curve(scores[same], same[same])


def test_pairs_of_the_two_protocols():
    class Lookup(torch.nn.Module):
        """Embeds an image by its first pixel's channels: identity encoded in the colour."""

        def __init__(self) -> None:
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return torch.nn.functional.normalize(images[:, :, 0, 0], dim=1)

    colours = torch.eye(3)
    data = [{"clean": colours[i // 2].view(3, 1, 1).expand(3, 4, 4).clone(),
             "masked": colours[(i // 2 + 1) % 3].view(3, 1, 1).expand(3, 4, 4).clone(),
             "identity": i // 2, "mask_type": "none" if i == 0 else "cloth"}
            for i in range(6)]  # 3 identities x 2 samples; sample 0 wears no mask
    results = ver.verify_identities(Lookup(), data, progress=False)
    clean = results["clean-clean"]
    assert (clean.genuine, clean.impostor, clean.auc) == (3, 12, 1.0)
    # 5 probes (sample 0 wears no mask) x 5 others. A mask here shows the next identity's
    # colour: same-identity pairs score 0, pairs with the next identity 1, the other half of
    # the impostors 0 (ties count one half): AUC = 0.5 * 10 / 20.
    masked = results["masked-clean"]
    assert (masked.genuine, masked.impostor) == (5, 20)
    assert masked.auc == pytest.approx(0.25)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("identity")
    # Smaller than smoke: 4 identities of 32 px faces, 4 steps.
    profile = dataclasses.replace(get_profile("smoke"), image_size=32, identity_train_samples=32,
                                  identity_test_samples=16, identity_steps=4, identity_batch=8,
                                  identity_width=4, checkpoint_every=2)
    encoder, run = train_identity_encoder(profile, folder, device="cpu", progress=False)
    return profile, folder, encoder, run


def test_identity_training_checkpoints_and_reuses(smoke_run, capsys):
    profile, folder, encoder, run = smoke_run
    assert run.finished and not run.reused and len(run.history["total"]) == 4
    assert all(math.isfinite(value) for value in run.history["total"])
    state = load_checkpoint(folder / "identity.pt", "identity", "smoke")
    assert set(state["models"]) == {"encoder", "head"}
    assert state["models"]["head"]["weight"].shape == (profile.identity_train_samples // 8, 512)

    again, second = train_identity_encoder(profile, folder, device="cpu", progress=False)
    assert second.reused and "reusing" in capsys.readouterr().out
    loaded = load_identity_encoder(profile, folder, device="cpu")
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    assert torch.equal(loaded(images), encoder(images))
    assert torch.equal(again(images), encoder(images))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_identity_training_is_deterministic(smoke_run, tmp_path):
    profile, _, encoder, _ = smoke_run
    (tmp_path / "data").symlink_to(smoke_run[1] / "data")  # reuse the cached faces
    other, _ = train_identity_encoder(profile, tmp_path, device="cpu", progress=False)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key


def test_identity_evaluation_on_held_out_faces(smoke_run):
    profile, folder, encoder, _ = smoke_run
    results = evaluate_identity_encoder(encoder, profile, folder, progress=False)
    count = profile.identity_test_samples  # 8 per identity
    worn = sum(mask_kind_of(i) != "none" for i in range(count))
    clean, masked = results["clean-clean"], results["masked-clean"]
    assert (clean.genuine, clean.impostor) == (count // 8 * 28, count * (count - 1) // 2
                                               - count // 8 * 28)
    assert (masked.genuine, masked.impostor) == (worn * 7, worn * (count - 8))


def test_roc_plot_labels_each_protocol_with_its_numbers():
    scores = np.array([0.5, 0.9, 0.1, 0.5, 0.7, 0.8])
    same = np.array([True, True, False, False, True, False])
    figure = plots.plot_roc({"clean-clean": ver.verification(scores, same, far_target=0.5)})
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["clean-clean: AUC 0.722, TAR 0.67 @ FAR 0.5", "chance"]
    assert figure.axes[0].get_xscale() == "log"
    plots.plt.close(figure)
