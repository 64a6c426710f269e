"""Phase-1 training and evaluation end to end on the smoke profile."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import check_reused_and_frozen, printed_by

from unmasklib import face3d
from unmasklib.checkpoint import load_checkpoint
from unmasklib.config import get_profile
from unmasklib.data import held_out_faces, wears_mask
from unmasklib.evaluation.n3d import evaluate_n3d, masked_expression_guess, surface_errors
from unmasklib.fitting import FaceFit, lower_face_expressions
from unmasklib.guidance import n3d_outputs, occlusion_map
from unmasklib.metrics import LANDMARK_REGIONS, occlusion_iou, pearson_r
from unmasklib.trained import load_identity_encoder, load_n3d
from unmasklib.training.n3d import load_or_train_n3d, train_n3d, unmask_some

PROFILE = dataclasses.replace(get_profile("smoke"), n3d_steps=8, identity_steps=4,
                              n3d_lr_drop_at=0.75)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """An empty run folder after `load_or_train_n3d`, and what that call printed."""
    folder = tmp_path_factory.mktemp("phase1")
    return folder, printed_by(lambda: load_or_train_n3d(PROFILE, folder, progress=False))


@pytest.fixture(scope="module")
def run_folder(trained_run):
    return trained_run[0]


def test_load_or_train_trains_the_missing_encoder_first_then_n3d(trained_run):
    folder, printed = trained_run
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    assert len(notes) == 2  # N3D was missing, and so was the encoder it needs
    assert "no n3d checkpoint" in notes[0] and "no identity checkpoint" in notes[1]
    encoder = load_checkpoint(folder / "identity.pt", "identity", PROFILE.name)
    n3d = load_checkpoint(folder / "n3d.pt", "n3d", PROFILE.name)
    assert encoder["finished"] and encoder["step"] == PROFILE.identity_steps
    assert n3d["finished"] and n3d["step"] == PROFILE.n3d_steps
    # the encoder was written before N3D's training ended: trained first
    assert (folder / "identity.pt").stat().st_mtime <= (folder / "n3d.pt").stat().st_mtime
    load_identity_encoder(PROFILE, folder)  # finished and loadable


def test_a_finished_run_is_reused_and_loads_frozen(run_folder, capsys):
    n3d, run = train_n3d(load_identity_encoder(PROFILE, run_folder), PROFILE, run_folder,
                         progress=False)
    assert run.settings["lr_drop_step"] == 6  # three quarters of the 8 steps
    check_reused_and_frozen(n3d, run, load_n3d(PROFILE, run_folder), capsys.readouterr().out,
                            {"bce", "coef", "photo", "id", "lm", "total"}, PROFILE.n3d_steps)


@pytest.fixture(scope="module")
def report(run_folder):
    """The trained toy N3D evaluated once, for every test that reads its report."""
    return evaluate_n3d(load_n3d(PROFILE, run_folder), PROFILE, run_folder, batch_size=5,
                        progress=False)


def test_the_report_scores_the_coefficients_fitted_to_the_visible_face(run_folder, report):
    n3d = load_n3d(PROFILE, run_folder)
    unfitted = evaluate_n3d(n3d, PROFILE, run_folder, batch_size=5, progress=False, fit=False)
    test = held_out_faces(PROFILE, run_folder, progress=False)
    masked = torch.stack([test[i]["masked"] for i in range(len(test))])
    assert torch.equal(unfitted.predicted, n3d_outputs(n3d, masked, batch_size=5).coeffs)
    # fitted outside the map as it is painted: snapped to the colour edges, then grown; N3D
    # read in the report's batches, as a float ulp of another batch size can grow in the fit
    logits, coeffs = n3d_outputs(n3d, masked)
    dilation, band = PROFILE.painting_map()
    assert band > 0
    painted = occlusion_map(logits, dilation, masked, band)
    fit = FaceFit.of_profile(PROFILE, face3d.load_face_model())
    torch.testing.assert_close(report.predicted, fit(masked, painted, coeffs), atol=1e-4, rtol=0)
    assert not torch.equal(report.predicted, unfitted.predicted)
    torch.testing.assert_close(report.iou, unfitted.iou)
    snapped = occlusion_map(logits, 0, masked, band)
    torch.testing.assert_close(report.snapped_iou, occlusion_iou(snapped, torch.stack(
        [test[i]["occlusion"] for i in range(len(test))])).float())


def test_evaluation_reports_every_test_face(report):
    count = PROFILE.test_samples
    assert report.iou.shape == report.nme.shape == (count,)
    assert report.pose_error.shape == (count, 3) and (report.pose_error >= 0).all()
    assert ((report.iou >= 0) & (report.iou <= 1)).all()
    blocks = report.block_errors()
    assert set(blocks) == {"identity", "expression", "texture", "pose", "lighting"}
    expression = report.layout.slice("expression")
    assert blocks["expression"][0] == pytest.approx(
        float(report.coeff_error[:, expression].mean()))
    components = expression.stop - expression.start
    weights = torch.zeros(report.layout.size)
    first = expression.start
    weights[first] = components  # the first component alone counts
    ours, mean_face = report.block_errors(weights)["expression"]
    assert ours == pytest.approx(float(report.coeff_error[:, first].mean()))
    assert mean_face == pytest.approx(float(report.mean_face_coeff_error[:, first].mean()))
    assert 0 <= report.summary()["iou"] <= 1
    for errors in (report.surface_error, report.mean_face_surface_error):
        assert set(errors) == {"shape", "albedo"} and errors["shape"].shape == (count,)


def test_evaluation_breaks_the_landmark_error_down(report):
    regions = report.region_nme()
    recombined = sum(len(LANDMARK_REGIONS[name]) * ours for name, (ours, _) in regions.items())
    assert recombined / 68 == pytest.approx(float(report.nme.mean()), rel=1e-5)
    assert report.summary()["nme_floor"] == pytest.approx(
        sum(len(LANDMARK_REGIONS[name]) * floor for name, (_, floor) in regions.items()) / 68,
        rel=1e-5)
    # the floor changes only what a mask hides: unmasked faces keep their true landmarks
    # (to float rounding); on masked ones the mouth moves, the eyes hardly
    worn = wears_mask(report.mask_type)
    assert report.floor_landmark_error[~worn].max() < 1e-4
    masked = report.floor_landmark_error[worn]
    mouth = masked[:, list(LANDMARK_REGIONS["mouth"])].mean()
    assert mouth > 0.01 and masked[:, list(LANDMARK_REGIONS["eyes"])].mean() < 0.2 * mouth
    expression = report.layout.slice("expression")
    assert report.component_r("expression")[0].item() == pytest.approx(pearson_r(
        report.predicted[:, expression.start], report.truth[:, expression.start]).item())


def test_a_mask_hides_the_mouth_expressions_not_the_brows():
    model = face3d.load_face_model()
    hidden = dict(zip(model.expression_names, lower_face_expressions(model, 128).tolist(),
                      strict=True))
    assert all(hidden[name] for name in ("jaw_open", "smile", "pucker", "mouth_left"))
    assert not hidden["brow_raise"] and not hidden["brow_furrow"]


def test_the_masked_guess_replaces_the_hidden_expressions_of_masked_faces_only():
    layout = face3d.load_face_model().layout
    truth, mean = torch.randn(2, layout.size), torch.randn(layout.size)
    expression = layout.slice("expression")
    hidden = torch.zeros(expression.stop - expression.start, dtype=torch.bool)
    hidden[[0, 3]] = True
    guess = masked_expression_guess(truth, mean, hidden, torch.tensor([True, False]), layout)
    changed = expression.start + torch.tensor([0, 3])
    assert torch.equal(guess[0, changed], mean[changed]) and torch.equal(guess[1], truth[1])
    kept = torch.ones(layout.size, dtype=torch.bool)
    kept[changed] = False
    assert torch.equal(guess[0, kept], truth[0, kept])


def test_surface_errors_see_shape_and_albedo_apart():
    model = face3d.load_face_model()
    truth = model.sample_coeffs(3, torch.Generator().manual_seed(0))
    assert all(e.abs().max() == 0 for e in surface_errors(model, truth, truth).values())
    tinted = truth.clone()
    tinted[:, model.layout.slice("texture")] += 0.5
    errors = surface_errors(model, tinted, truth)
    assert errors["shape"].abs().max() == 0 and (errors["albedo"] > 0).all()
    _, albedo = model.decode(tinted)
    _, true_albedo = model.decode(truth)
    assert torch.allclose(errors["albedo"], (albedo - true_albedo).abs().mean((1, 2)))


def test_a_missing_checkpoint_names_what_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        load_n3d(PROFILE, tmp_path)


def test_unmask_some_takes_the_mask_off_a_share_of_the_faces_that_have_a_clean_image():
    count = 4000
    batch = {"masked": torch.full((count, 3, 2, 2), -0.5),
             "clean": torch.full((count, 3, 2, 2), 0.5),
             "occlusion": torch.ones(count, 1, 2, 2),
             "has_clean": torch.arange(count) % 4 != 0}  # every fourth is a photo: no clean
    out = unmask_some(batch, 0.25, torch.Generator().manual_seed(0))
    bare = out["masked"][:, 0, 0, 0] == 0.5
    assert torch.equal(bare, out["occlusion"][:, 0, 0, 0] == 0)  # image and map agree
    assert not bare[~batch["has_clean"]].any()
    assert abs(float(bare[batch["has_clean"]].float().mean()) - 0.25) < 0.03
    assert torch.equal(out["masked"][~bare], batch["masked"][~bare])
    same = unmask_some(batch, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(same["masked"], out["masked"])  # the generator fixes the draw
    for probability, expected in ((0.0, 0), (1.0, int(batch["has_clean"].sum()))):
        out = unmask_some(batch, probability, torch.Generator().manual_seed(1))
        assert int((out["occlusion"][:, 0, 0, 0] == 0).sum()) == expected
