"""N3D: output shapes, the mean-face start, gradients through both heads, the gate, weights,
and one phase-1 step's loss terms."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torchvision
from scipy import ndimage

from unmasklib.config import get_profile
from unmasklib.data import SyntheticMaskedFaces, collate
from unmasklib.evaluation import occlusion_remnants
from unmasklib.face3d import BFM_LAYOUT, EMBEDDED_LAYOUT
from unmasklib.losses import coefficient_l1
from unmasklib.models.identity import IdentityEncoder, identity_similarity
from unmasklib.models.n3d import N3D, N3DOutput
from unmasklib.training import n3d as phase1_training
from unmasklib.training.n3d import phase1_terms


def images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def tiny() -> N3D:
    torch.manual_seed(0)
    return N3D("small", image_size=64, width=8, head_width=16)


@pytest.mark.parametrize(("backbone", "size"), [("small", 64), ("small", 128), ("small", 72),
                                                ("resnet18", 64)])
def test_output_shapes(backbone, size):
    network = N3D(backbone, image_size=size, width=8, head_width=16)
    logits, coeffs = network(images(2, size))
    assert logits.shape == (2, 1, size, size)
    assert coeffs.shape == (2, EMBEDDED_LAYOUT.size) == (2, 237)
    assert torch.isfinite(logits).all()


def test_default_head_width_never_exceeds_the_finest_stage():
    assert N3D("small", image_size=64, width=8).occlusion_head.logits.in_channels == 4
    assert N3D("resnet18", image_size=64).config["head_width"] == 64


def test_coefficient_head_is_sized_by_the_layout():
    network = N3D("small", image_size=64, layout=BFM_LAYOUT, width=8, head_width=16)
    assert network(images(2, 64)).coeffs.shape == (2, 257)


def test_first_prediction_is_the_mean_face(tiny):
    coeffs = tiny(images(3, 64)).coeffs
    assert torch.equal(coeffs, EMBEDDED_LAYOUT.zeros(3))


def test_both_heads_train_the_backbone(tiny):
    # The zero-initialised coefficient layer passes no gradient back until it has moved;
    # give it the weights one update would.
    torch.nn.init.normal_(tiny.coeff_head.weight, std=0.01)
    stem = tiny.stem[0].weight
    out = tiny(images(2, 64))

    out.occlusion_logits.square().mean().backward(retain_graph=True)
    assert stem.grad.abs().sum() > 0
    assert tiny.occlusion_head.logits.weight.grad.abs().sum() > 0
    assert tiny.coeff_head.weight.grad is None  # the occlusion loss leaves the other head alone

    tiny.zero_grad(set_to_none=True)
    out.coeffs.square().sum().backward()
    assert stem.grad.abs().sum() > 0
    assert tiny.gate.gate.weight.grad.abs().sum() > 0
    assert tiny.occlusion_head.logits.weight.grad is None


def test_closed_gate_zeroes_the_coefficient_features(tiny):
    torch.nn.init.normal_(tiny.coeff_head.weight)
    torch.nn.init.normal_(tiny.coeff_head.bias)
    seen = []
    tiny.coeff_head.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    tiny.eval()
    x = images(2, 64)
    open_coeffs = tiny(x).coeffs
    assert seen[-1].abs().sum() > 0
    with torch.no_grad():
        tiny.gate.gate.bias.fill_(-1e4)
    closed_coeffs = tiny(x).coeffs
    assert torch.equal(seen[-1], torch.zeros_like(seen[-1]))
    assert torch.equal(closed_coeffs, tiny.coeff_head.bias.expand(2, -1))
    assert not torch.allclose(open_coeffs, closed_coeffs)


def test_imagenet_weights_load_from_a_local_file(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    network = N3D("resnet18", image_size=64, weights_path=str(path))
    assert torch.equal(network.stem[0].weight, reference.conv1.weight)
    assert torch.equal(network.stages[3][1].conv2.weight, reference.layer4[1].conv2.weight)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        N3D("resnet18", image_size=64, weights_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="torchvision backbones only"):
        N3D("small", image_size=64, weights_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="backbone must be one of"):
        N3D("vgg16", image_size=64)
    network = N3D("small", image_size=64, width=8, head_width=16)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        network(images(2, 128))
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        network(torch.zeros(2, 1, 64, 64))


@pytest.fixture(scope="module")
def batch():
    data = SyntheticMaskedFaces("train", size=4, image_size=64, seed=0, progress=False)
    return collate([data[i] for i in range(4)])


def test_phase1_terms_wire_network_renderer_and_losses(model, batch, monkeypatch):
    torch.manual_seed(0)
    network = N3D("small", image_size=64, width=8, head_width=16)
    encoder = IdentityEncoder("small", width=4, image_size=32).requires_grad_(False).eval()
    similarity = functools.partial(identity_similarity, encoder)
    terms = phase1_terms(network, model, batch, similarity)
    assert set(terms) == {"bce", "coef", "photo", "id", "lm", "total"}
    # The first prediction is the mean face, so the coefficient term is that of zeros.
    assert terms["coef"].item() == pytest.approx(
        coefficient_l1(torch.zeros(4, 237), batch["coeffs"], model.layout).item())
    terms["total"].backward()
    assert network.stem[0].weight.grad.abs().sum() > 0
    assert network.coeff_head.weight.grad.abs().sum() > 0

    network.eval()  # the same batch statistics in both precisions
    # bfloat16 itself, emulated if need be: `autocast_in` would run float32 on a CPU without it.
    monkeypatch.setattr(phase1_training, "computes_bfloat16_natively", lambda device_type: True)
    with torch.no_grad():
        full = phase1_terms(network, model, batch, similarity)
        half = phase1_terms(network, model, batch, similarity, autocast_dtype=torch.bfloat16)
    for name in full:
        assert half[name].dtype == torch.float32
        # abs: the identity encoder's unit embeddings are bfloat16 too, cosines good to ~0.004.
        assert half[name].item() == pytest.approx(full[name].item(), rel=0.02, abs=5e-3), name


def test_phase1_terms_refuse_a_face_model_of_another_layout(model, batch):
    network = N3D("small", image_size=64, layout=BFM_LAYOUT, width=8, head_width=16)
    with pytest.raises(ValueError, match="the face model needs identity 80 \\+ expression 44"):
        phase1_terms(network, model, batch, lambda a, b: torch.ones(len(a)))


def thin_strap_scene(batch: int = 4, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with a blob of mask and a one-pixel strap leaving it sideways at a random
    height, as ear loops leave a mask, and their occlusion maps."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=g) * 0.2 - 0.5
    target = torch.zeros(batch, 1, size, size)
    target[..., 24:44, 20:44] = 1
    for b, row in enumerate(torch.randint(26, 42, (batch,), generator=g).tolist()):
        target[b, :, row, 4:20] = 1
    return torch.where(target > 0, torch.full_like(image, 0.8), image), target


@pytest.mark.parametrize("detail_width", [0, 8])
def test_the_detail_step_finds_a_strap_one_pixel_wide(detail_width):
    torch.manual_seed(0)
    network = N3D("small", image_size=64, width=8, head_width=16, detail_width=detail_width)
    image, target = thin_strap_scene()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            network(image).occlusion_logits, target)
        loss.backward()
        optimizer.step()
    found = network.eval()(image).occlusion_logits > 0
    beside = torch.zeros_like(target, dtype=torch.bool)
    beside[..., 4:20] = True  # the strap's columns, left of the blob
    strap, marked = (target > 0) & beside, found & beside
    iou = float((marked & strap).sum() / (marked | strap).sum())
    # The quarter-resolution map draws a line thinner than its cells blurred or broken (IoU
    # 0.45 here); the detail step draws it exactly.
    assert (iou > 0.9) if detail_width else (iou < 0.6)


class OracleN3D(torch.nn.Module):
    """Reads each image's true occlusion from a table, shifted `shift` pixels to the right."""

    def __init__(self, faces, shift: int) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device
        self.table = {face["masked"].numpy().tobytes(): face["occlusion"] for face in faces}
        self.shift = shift

    def forward(self, images: torch.Tensor) -> N3DOutput:
        truth = torch.stack([self.table[image.numpy().tobytes()] for image in images])
        shifted = torch.zeros_like(truth)
        shifted[..., self.shift:] = truth[..., :truth.shape[-1] - self.shift]
        return N3DOutput(shifted * 2 - 1, torch.zeros(len(images), 1))


def test_occlusion_remnants_count_what_a_shifted_map_leaves_and_overpaints():
    profile = get_profile("smoke")
    faces = SyntheticMaskedFaces("train", size=profile.train_samples + 12,
                                 image_size=profile.image_size, seed=profile.seed, progress=False)
    unseen = [faces[i] for i in range(profile.train_samples, profile.train_samples + 12)]
    worn = [face for face in unseen if face["mask_type"] != "none"]
    true = torch.stack([face["occlusion"] for face in worn]).bool().numpy()[:, 0]
    remnants = occlusion_remnants(OracleN3D(unseen, shift=1), profile, faces=12,
                                  dilations=[0, 1, 2])
    shifted = np.zeros_like(true)
    shifted[..., 1:] = true[..., :-1]
    for d in (0, 1, 2):
        grown = np.stack([ndimage.binary_dilation(s, np.ones((3, 3)), iterations=d) if d else s
                          for s in shifted])
        size = true.sum((1, 2))
        np.testing.assert_allclose(remnants.left[d], (true & ~grown).sum((1, 2)) / size,
                                   atol=1e-6)
        np.testing.assert_allclose(remnants.extra[d], (grown & ~true).sum((1, 2)) / size,
                                   atol=1e-6)
    assert remnants.left[0].min() > 0 and remnants.left[1].max() == 0
    assert remnants.smallest_meeting(0.0) == 1 and remnants.smallest_meeting(-1.0) is None
    assert remnants.table().count("\n") == 4
