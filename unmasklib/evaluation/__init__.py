"""Measuring the trained networks on held-out test identities; every function takes the
networks it measures (`trained.load_*`, or `training.*.load_or_train_*` at an entry point).

    evaluation.n3d          N3D: occlusion IoU, landmarks, pose, coefficient blocks  (nb 03)
    evaluation.inpainting   every painting method inside the true occlusion          (nb 04)
    evaluation.editing      edit fidelity: do the sliders steer the painting?         (nb 04, 05)
    evaluation.report       everything on one set of faces, the report files          (nb 05)
"""

from .editing import EDIT_VALUES, EditFidelity, edit_fidelity, edit_fidelity_ceiling, read_back
from .inpainting import InpaintingScores, evaluate_inpainting, inpaint_by_every_method
from .n3d import N3DReport, OcclusionRemnants, evaluate_n3d, occlusion_remnants
from .report import (
    METRICS,
    Evaluation,
    evaluate,
    image_scores,
    inception_features,
    inception_weights,
    markdown_table,
    painting_table,
    write_report,
)

__all__ = [
    "EDIT_VALUES", "METRICS", "EditFidelity", "Evaluation", "InpaintingScores", "N3DReport",
    "OcclusionRemnants", "occlusion_remnants",
    "edit_fidelity", "edit_fidelity_ceiling", "evaluate", "evaluate_inpainting",
    "evaluate_n3d", "image_scores", "inception_features", "inception_weights",
    "inpaint_by_every_method", "markdown_table", "painting_table", "read_back", "write_report",
]
