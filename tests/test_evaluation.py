"""The evaluation end to end on the smoke profile, its report, and the optional standard FID."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision
from conftest import TINY as PROFILE

from unmasklib.evaluation import (
    EDIT_VALUES,
    METRICS,
    evaluate,
    evaluate_n3d,
    inception_features,
    inception_weights,
    markdown_table,
    painting_table,
    write_report,
)
from unmasklib.metrics import occlusion_iou
from unmasklib.trained import load_identity_encoder, load_inpainting, load_n3d
from unmasklib.training.inpainting import load_or_train_inpainting

METHODS = ["ours", "no 3D prior", "biharmonic (N3D occlusion)", "biharmonic (true occlusion)",
           "oracle render paste"]


@pytest.fixture(scope="module")
def evaluation(tiny_run):
    generators = {"ours": load_inpainting(PROFILE, tiny_run),
                  "no 3D prior": load_or_train_inpainting(PROFILE, tiny_run, use_render=False,
                                                          progress=False)}
    return evaluate(generators, load_n3d(PROFILE, tiny_run),
                    load_identity_encoder(PROFILE, tiny_run), PROFILE, tiny_run, k=3,
                    diversity_faces=2, edit_faces=2, examples=2, progress=False)


def test_every_method_gets_every_metric_on_every_face(evaluation):
    faces = PROFILE.test_samples
    assert list(evaluation.scores) == METHODS
    for metrics in evaluation.scores.values():
        assert set(metrics) == set(METRICS)
        assert all(values.shape == (faces,) for values in metrics.values())
    masked = int(evaluation.masked.sum())
    assert [row["n"] for row in evaluation.table()] == [masked] * len(METHODS)
    identity = evaluation.scores["ours"]["identity"]
    assert ((identity >= -1 - 1e-6) & (identity <= 1 + 1e-6)).all()


def test_whole_image_scores_are_better_than_occluded_ones_for_copied_pixels(evaluation):
    # Outside the occlusion the oracle paste copies the input exactly, so over the whole image
    # its L1 is the occluded L1 times the occluded share: strictly smaller on masked faces.
    oracle = evaluation.scores["oracle render paste"]
    worn = evaluation.masked
    assert (oracle["l1"][worn] < oracle["l1_occluded"][worn]).all()


def test_a_paste_into_the_true_occlusion_leaves_no_mask_and_the_clean_face_no_seam(evaluation):
    worn = evaluation.masked
    # biharmonic and the oracle paste repaint every pixel of the true occlusion (a repainted
    # pixel may still come out within a level of the mask's colour, rarely)
    for method in ("biharmonic (true occlusion)", "oracle render paste"):
        assert evaluation.scores[method]["mask_left"][worn].mean() < 0.01
    assert torch.isnan(evaluation.scores["ours"]["mask_left"][~worn]).all()
    row = evaluation.table()[0]
    ours = evaluation.scores["ours"]["seam_step"][worn]
    # the table's median is over the faces that have a seam (NaN: no border, or a flat clean
    # image there, as a tiny face grown by the map's dilation can have)
    finite = ours[torch.isfinite(ours)]
    assert len(finite) >= len(ours) // 2
    assert row["seam_step_median"] == pytest.approx(float(finite.median()))


def test_non_determinism_stays_inside_the_map(evaluation):
    diversity = evaluation.diversity
    assert diversity["outside"] == 0 and diversity["inside"] > 0
    assert diversity["best_of_k_psnr"] >= diversity["first_psnr"]


def test_the_summary_scores_edit_fidelity_as_numpy_correlates_it(evaluation):
    assert evaluation.edit.set.shape == evaluation.edit_ceiling.set.shape == (2, 5)
    summary = evaluation.summary()["edit_fidelity"]
    for fidelity, prefix in ((evaluation.edit, ""), (evaluation.edit_ceiling, "perfect_painter_")):
        values, read = fidelity.set.double().numpy(), fidelity.recovered.double().numpy()
        per_face = np.nan_to_num([np.corrcoef(v, r)[0, 1] for v, r in zip(values, read,
                                                                            strict=True)])
        assert summary[f"{prefix}r"] == pytest.approx(per_face.mean(), abs=1e-6)
        assert summary[f"{prefix}pooled_r"] == pytest.approx(
            np.corrcoef(values.ravel(), read.ravel())[0, 1], abs=1e-6)
        if not prefix:
            assert summary["r_std"] == pytest.approx(per_face.std(ddof=1), abs=1e-6)
    assert summary["values"] == list(EDIT_VALUES) and summary["faces"] == 2


def test_failures_are_the_worst_masked_faces_by_psnr_inside_the_occlusion(evaluation):
    psnr = evaluation.scores["ours"]["psnr_occluded"]
    faces = evaluation.failure_faces
    assert len(faces) == len(evaluation.failures["ours"]) == min(5, int(evaluation.masked.sum()))
    assert all(evaluation.masked[faces])
    others = [i for i in range(len(psnr)) if evaluation.masked[i] and i not in faces]
    assert all(psnr[f] <= psnr[o] for f in faces for o in others)


def test_the_report_files_hold_the_table(evaluation, tmp_path):
    paths = write_report(evaluation, tmp_path / "report")
    stored = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [row["method"] for row in stored["table"]] == METHODS
    assert stored["table"][0]["psnr_occluded"] == pytest.approx(
        evaluation.table()[0]["psnr_occluded"])
    table = (tmp_path / "report" / "table.md").read_text()
    assert all(method in table for method in METHODS) and "FID" in table and "SFace" in table
    assert "seam step" in table and "colour error" in table
    assert [p.name for p in paths[2:]] == ["comparison.png", "failures.png", "by_mask_type.png",
                                           "edit_fidelity.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    if inception_weights() is None:
        assert "not computed" in table


def test_markdown_rows_show_mean_and_std():
    row = {"method": "m", "n": 3, "frechet_identity": 0.5, "fid": math.nan,
           **{name: 1.0 for name in METRICS}, **{f"{name}_std": 0.25 for name in METRICS}}
    line = markdown_table([row]).splitlines()[-1]
    assert line.startswith("| m | 1.00 ± 0.25 | 1.000 ± 0.250") and line.endswith("| — | 3 |")
    row.update({f"{name}_median": 0.5 for name in METRICS}, mask_left=0.004)
    line = painting_table([row]).splitlines()[-1]
    assert line == "| m | 0.50 | 1.00 ± 0.25 | 0.50 | 1.00 ± 0.25 | 0.40 ± 25.00 | 3 |"


def test_inception_features_read_a_local_weights_file(tmp_path):
    torch.manual_seed(0)
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception_v3_google-test.pth"
    torch.save(network.state_dict(), path)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    features = inception_features(images, path)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert torch.equal(features, inception_features(images, path))


def test_the_held_out_guidance_is_kept_and_reused_while_its_inputs_stay(tiny_run, tmp_path):
    import dataclasses

    from unmasklib.data import as_one_batch, held_out_faces
    from unmasklib.evaluation.n3d import held_out_guidance
    from unmasklib.face3d import load_face_model

    n3d, model = load_n3d(PROFILE, tiny_run), load_face_model()
    masked = as_one_batch(held_out_faces(PROFILE, tiny_run, progress=False))["masked"][:4]
    cache = tmp_path / "guidance.pt"
    found, guidance = held_out_guidance(n3d, masked, PROFILE, model)
    kept_found, kept = held_out_guidance(n3d, masked, PROFILE, model, cache)
    assert torch.equal(found, kept_found) and torch.equal(guidance.coeffs, kept.coeffs)
    stored = torch.load(cache, weights_only=True)
    stored["coeffs"] = stored["coeffs"] + 1  # a marker: read back only if the file is reused
    torch.save(stored, cache)
    assert torch.equal(held_out_guidance(n3d, masked, PROFILE, model, cache)[1].coeffs,
                       guidance.coeffs + 1)
    tolerant = dataclasses.replace(PROFILE, fit_tolerance=0.5)
    assert not torch.equal(held_out_guidance(n3d, masked, tolerant, model, cache)[1].coeffs,
                           guidance.coeffs + 1)
    other = dataclasses.replace(PROFILE, fit_steps=PROFILE.fit_steps + 1)
    refitted = held_out_guidance(n3d, masked, other, model, cache)[1]
    assert not torch.equal(refitted.coeffs, guidance.coeffs + 1)
    # other images: fitted anew, as without a cache (the same batch: a batch of another size
    # moves a float ulp, which Adam's normalised steps can grow past any fixed tolerance)
    fresh = held_out_guidance(n3d, masked[:3], other, model)[1].coeffs
    assert torch.equal(held_out_guidance(n3d, masked[:3], other, model, cache)[1].coeffs, fresh)


def test_evaluate_n3d_fits_the_faces_once_for_the_later_notebooks(tiny_run):
    """Notebook 03's fitted report writes the guidance notebooks 04 and 05 read back."""
    from unmasklib.data import as_one_batch, held_out_faces
    from unmasklib.evaluation.n3d import held_out_guidance, held_out_guidance_file
    from unmasklib.face3d import load_face_model

    cache = held_out_guidance_file(tiny_run)
    cache.unlink(missing_ok=True)
    n3d = load_n3d(PROFILE, tiny_run)
    report = evaluate_n3d(n3d, PROFILE, tiny_run, progress=False)
    assert cache.is_file()
    faces = as_one_batch(held_out_faces(PROFILE, tiny_run, progress=False))
    found, guidance = held_out_guidance(n3d, faces["masked"], PROFILE, load_face_model())
    assert torch.equal(report.predicted, guidance.coeffs)
    torch.testing.assert_close(report.iou, occlusion_iou(found, faces["occlusion"]).float())
