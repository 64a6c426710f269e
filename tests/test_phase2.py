"""Phase-2 training, reuse, loading and evaluation end to end on the smoke profile, and the
pieces around it: dilation, the renders G is shown, the baselines, edit fidelity."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import TINY as PROFILE
from conftest import check_reused_and_frozen

from unmasklib.baselines import biharmonic_inpaint, oracle_paste
from unmasklib.checkpoint import load_checkpoint
from unmasklib.data import collate, held_out_faces
from unmasklib.evaluation import (
    EDIT_VALUES,
    EditFidelity,
    edit_fidelity,
    edit_fidelity_ceiling,
    evaluate_inpainting,
    read_back,
)
from unmasklib.evaluation.editing import bare_faces
from unmasklib.face3d import load_face_model, render_faces
from unmasklib.guidance import Guidance, n3d_guidance
from unmasklib.images import dilate
from unmasklib.metrics import pairwise_l1, pearson_r
from unmasklib.models.n3d import N3DOutput
from unmasklib.painting import paint_prior_samples
from unmasklib.trained import load_identity_encoder, load_inpainting, load_n3d
from unmasklib.training.inpainting import (
    guide_renders,
    train_inpainting,
    train_inpainting_with_snapshots,
)


@pytest.fixture
def run_folder(tiny_run):
    return tiny_run


def frozen(folder):
    """The run's frozen N3D and identity encoder, what phase 2 trains with."""
    return load_n3d(PROFILE, folder), load_identity_encoder(PROFILE, folder)


def test_load_or_train_trains_what_is_missing_first_and_writes_a_checkpoint(tiny_training):
    folder, printed = tiny_training
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    # G was missing; training it first made the encoder, then N3D (which needs the encoder)
    assert [note.split(" checkpoint")[0] for note in notes] == [
        "note: no inpainting", "note: no identity", "note: no n3d"]
    steps = {"identity": PROFILE.identity_steps, "n3d": PROFILE.n3d_steps,
             "inpainting": PROFILE.inpaint_steps}
    for name, count in steps.items():
        state = load_checkpoint(folder / f"{name}.pt", name, PROFILE.name)
        assert state["finished"] and state["step"] == count
    written = [(folder / f"{name}.pt").stat().st_mtime for name in steps]
    assert written == sorted(written)


def test_a_finished_run_is_reused_and_loads_frozen(run_folder, capsys):
    generator, run = train_inpainting(*frozen(run_folder), PROFILE, run_folder, progress=False)
    check_reused_and_frozen(generator, run, load_inpainting(PROFILE, run_folder),
                            capsys.readouterr().out,
                            {"pix", "id", "tv", "adv", "critic", "gp", "total"},
                            PROFILE.inpaint_steps)


def test_the_same_seed_trains_the_same_weights(run_folder, tmp_path):
    for name in ("identity.pt", "n3d.pt", "data"):
        source = run_folder / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    again, _ = train_inpainting(*frozen(tmp_path), PROFILE, tmp_path, progress=False)
    first = load_inpainting(PROFILE, run_folder)
    for ours, theirs in zip(first.state_dict().values(), again.state_dict().values(),
                            strict=True):
        assert torch.equal(ours.cpu(), theirs.cpu())


def test_evaluation_scores_every_method_inside_the_true_occlusion(run_folder):
    n3d, encoder = frozen(run_folder)
    ablation, _ = train_inpainting(n3d, encoder, PROFILE, run_folder, use_render=False,
                                   progress=False)
    ours = load_inpainting(PROFILE, run_folder)
    scores = evaluate_inpainting({"ours": ours, "no prior": ablation}, n3d, PROFILE,
                                 run_folder, progress=False)
    methods = [row["method"] for row in scores.table()]
    assert methods == ["ours", "no prior", "biharmonic (N3D occlusion)",
                       "biharmonic (true occlusion)", "oracle render paste"]
    worn = sum(kind != "none" for kind in scores.mask_type)
    assert all(row["n"] == worn for row in scores.table())
    assert all(np.isfinite(row["psnr"]) for row in scores.table())


def test_a_missing_checkpoint_names_what_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        load_inpainting(PROFILE, tmp_path)
    with pytest.raises(FileNotFoundError, match="use_render=False"):
        load_inpainting(PROFILE, tmp_path, use_render=False)


def test_edit_fidelity_sets_and_reads_back_the_named_expression(run_folder):
    test = held_out_faces(PROFILE, run_folder, progress=False)
    masked = torch.stack([test[i]["masked"] for i in range(3)])
    n3d = load_n3d(PROFILE, run_folder)
    fidelity = edit_fidelity(load_inpainting(PROFILE, run_folder), n3d, load_face_model(),
                             masked, "jaw_open", (0.0, 1.0, 2.0))
    assert fidelity.set.shape == fidelity.recovered.shape == (3, 3)
    assert torch.equal(fidelity.set[:, 2], torch.full((3,), 2.0))
    each = [float(pearson_r(fidelity.set[i], fidelity.recovered[i])) for i in range(3)]
    assert fidelity.r == pytest.approx(sum(each) / 3)
    assert fidelity.pooled_r == pytest.approx(float(pearson_r(fidelity.set.flatten(),
                                                              fidelity.recovered.flatten())))


def test_edit_fidelity_per_face_ignores_offsets_between_faces_that_pooling_counts():
    values = torch.tensor([0.0, 1.0, 2.0]).expand(3, 3)
    # Each face read back exactly along a line of slope 1/2, but each from its own offset;
    # the third face's reading never moves.
    recovered = torch.stack([0.5 * values[0], 0.5 * values[0] + 3.0, torch.full((3,), 1.0)])
    fidelity = EditFidelity("jaw_open", values, recovered)
    assert torch.allclose(fidelity.per_face_r, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert fidelity.r == pytest.approx(2 / 3)
    x, y = (t.flatten().double() for t in (values, recovered))
    x, y = x - x.mean(), y - y.mean()
    pooled = (x * y).sum() / (x.norm() * y.norm())
    assert fidelity.pooled_r == pytest.approx(float(pooled))
    assert fidelity.pooled_r < 0.5


def test_read_back_needs_three_distinct_values():
    model = load_face_model()
    with pytest.raises(ValueError, match="at least 3 distinct"):
        read_back(JawFromBrightness(model), model, "jaw_open", (0.0, 1.0, 1.0),
                  [torch.zeros(1, 3, 8, 8)] * 3)


def test_bare_faces_are_the_data_sets_clean_images_and_follow_the_edit(run_folder):
    test = held_out_faces(PROFILE, run_folder, progress=False)
    model = load_face_model()
    indices = [0, 5, 9]
    faces, = bare_faces(model, PROFILE.seed, "test", indices, PROFILE.image_size)
    assert torch.equal(faces, torch.stack([test[i]["clean"] for i in indices]))
    opened, = bare_faces(model, PROFILE.seed, "test", indices, PROFILE.image_size,
                         [{"jaw_open": 2.0}])
    assert (opened - faces).abs().amax((1, 2, 3)).min() > 0.1  # every face changes


class JawFromBrightness(torch.nn.Module):
    """A stand-in N3D whose `jaw_open` reading is an image's mean brightness."""

    def __init__(self, model):
        super().__init__()
        self.layout, self.jaw = model.layout, model.layout.slice("expression").start
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        coeffs = torch.zeros(len(images), self.layout.size)
        coeffs[:, self.jaw] = images.mean((1, 2, 3))
        return N3DOutput(torch.zeros(len(images), 1, *images.shape[-2:]), coeffs)


def test_the_ceiling_reads_every_edited_face_back_and_correlates(run_folder):
    model = load_face_model()
    reader = JawFromBrightness(model)
    indices = [1, 2, 3, 4]
    ceiling = edit_fidelity_ceiling(reader, model, PROFILE.seed, "test", indices,
                                    PROFILE.image_size)
    expected = torch.stack([faces.mean((1, 2, 3)) for faces in bare_faces(
        model, PROFILE.seed, "test", indices, PROFILE.image_size,
        [{"jaw_open": v} for v in EDIT_VALUES])], 1)
    assert torch.allclose(ceiling.recovered, expected)
    assert torch.equal(ceiling.set[0], torch.tensor(EDIT_VALUES, dtype=ceiling.set.dtype))
    assert ceiling.pooled_r == pytest.approx(float(pearson_r(ceiling.set.flatten(),
                                                             expected.flatten())))


def test_dilation_grows_a_pixel_into_a_square():
    mask = torch.zeros(1, 1, 9, 9)
    mask[0, 0, 4, 4] = 1
    grown = dilate(mask, 2)
    assert grown.sum() == 25 and grown[0, 0, 2:7, 2:7].eq(1).all()
    assert torch.equal(dilate(mask, 0), mask)


def test_renders_come_from_the_truth_with_the_given_probability():
    model = load_face_model()
    g = torch.Generator().manual_seed(0)
    truth, guess = model.sample_coeffs(2, g), model.sample_coeffs(2, g)
    batch = {"coeffs": truth, "masked": torch.zeros(2, 3, 32, 32),
             "has_ground_truth": torch.tensor([True, False])}
    always = guide_renders(model, batch, guess, 1.0, torch.Generator().manual_seed(0))
    never = guide_renders(model, batch, guess, 0.0, torch.Generator().manual_seed(0))
    of_truth = render_faces(model, truth, 32).image
    of_guess = render_faces(model, guess, 32).image
    assert (of_truth - of_guess).abs().amax(dim=(1, 2, 3)).min() > 0.1  # the two are told apart

    # A row's pixels may move by a float ulp with what else is in the batch (vectorised CPU
    # kernels group the rows differently), so rows are compared to a tolerance, not bit for bit.
    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=0, atol=1e-5)

    assert same(always.image[0], of_truth[0]) and same(never.image[0], of_guess[0])
    assert same(always.image[1], of_guess[1])  # no ground truth: N3D's guess, always


def test_biharmonic_inpainting_continues_a_linear_ramp_and_keeps_the_rest():
    ramp = torch.linspace(-0.8, 0.8, 32)
    image = ramp.view(1, 1, 1, 32).expand(1, 3, 32, 32).clone()
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 10:20, 12:22] = 1
    masked = torch.where(hole > 0, torch.ones_like(image), image)
    filled = biharmonic_inpaint(masked, hole)
    outside = hole.expand_as(image) == 0
    assert torch.equal(filled[outside], masked[outside])
    assert (filled - image)[~outside].abs().max() < 2 / 255 + 1e-6  # 8-bit levels
    everything = torch.ones_like(hole)
    assert torch.equal(biharmonic_inpaint(masked, everything), torch.zeros_like(masked))


def test_the_oracle_paste_is_the_true_render_inside_the_occlusion():
    model = load_face_model()
    coeffs = model.sample_coeffs(2, torch.Generator().manual_seed(1))
    masked = torch.rand(2, 3, 32, 32) * 2 - 1
    occlusion = torch.zeros(2, 1, 32, 32)
    occlusion[..., 16:, :] = 1
    batch = collate([{"masked": masked[i], "occlusion": occlusion[i], "coeffs": coeffs[i]}
                     for i in range(2)])
    pasted = oracle_paste(model, batch)
    render = render_faces(model, coeffs, 32).image
    assert torch.equal(pasted[..., 16:, :], render[..., 16:, :])
    assert torch.equal(pasted[..., :16, :], masked[..., :16, :])


def test_pearson_r_matches_numpy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=g), torch.randn(50, generator=g)
    assert float(pearson_r(a, a + 0.3 * b)) == pytest.approx(
        np.corrcoef(a.numpy(), (a + 0.3 * b).numpy())[0, 1], rel=1e-6)
    assert float(pearson_r(a, -2 * a)) == pytest.approx(-1.0)


def test_named_expressions_are_set_and_unknown_names_refused():
    model = load_face_model()
    coeffs = model.sample_coeffs(3, torch.Generator().manual_seed(0))
    edited = model.with_expression(coeffs, {"jaw_open": 1.5, "smile": -0.5})
    start = model.layout.slice("expression").start
    assert edited[:, start + model.expression_names.index("jaw_open")].eq(1.5).all()
    assert edited[:, start + model.expression_names.index("smile")].eq(-0.5).all()
    changed = (edited != coeffs).any(0).nonzero().flatten().tolist()
    assert set(changed) <= {start + model.expression_names.index(n) for n in ("jaw_open",
                                                                                 "smile")}
    with pytest.raises(KeyError, match="grin"):
        model.with_expression(coeffs, {"grin": 1.0})


def test_snapshots_follow_training_and_are_kept(run_folder, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    n3d, encoder = frozen(run_folder)
    generator, run, snapshots = train_inpainting_with_snapshots(n3d, encoder, PROFILE, folder,
                                                                points=2, faces=3,
                                                                progress=False)
    assert list(snapshots) == [0, 2, 4] and run.finished
    assert all(s.shape == (3, 3, PROFILE.image_size, PROFILE.image_size)
               for s in snapshots.values())
    assert not torch.equal(snapshots[0], snapshots[4])  # training changed the painting
    capsys.readouterr()
    _, again, kept = train_inpainting_with_snapshots(n3d, encoder, PROFILE, folder, points=2,
                                                     faces=3, progress=False)
    assert again.reused and all(torch.equal(kept[k], snapshots[k]) for k in snapshots)


def test_prior_samples_differ_inside_the_occlusion_only(run_folder):
    test = held_out_faces(PROFILE, run_folder, progress=False)
    masked = test[0]["masked"][None]
    n3d = load_n3d(PROFILE, run_folder)
    model = load_face_model()
    # The smoke N3D is barely trained: its coefficients, with a known occlusion (lower half).
    occlusion = torch.zeros(1, 1, PROFILE.image_size, PROFILE.image_size)
    occlusion[..., PROFILE.image_size // 2:, :] = 1
    guidance = Guidance(occlusion, n3d_guidance(n3d, masked, 0).coeffs)
    generator = load_inpainting(PROFILE, run_folder)
    samples = paint_prior_samples(generator, model, masked, guidance, k=4, seed=3)
    assert samples.shape == (4, 3, PROFILE.image_size, PROFILE.image_size)
    outside = guidance.occlusion.expand_as(samples) == 0
    assert torch.equal(samples[outside], masked.expand_as(samples)[outside])
    assert float(pairwise_l1(samples, guidance.occlusion)) > 0
    assert float(pairwise_l1(samples, 1 - guidance.occlusion)) == 0
    again = paint_prior_samples(generator, model, masked, guidance, k=4, seed=3)
    assert torch.equal(samples, again)
