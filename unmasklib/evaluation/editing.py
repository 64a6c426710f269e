"""Edit fidelity: do the sliders steer the result? An expression is set on N3D's
coefficients, G paints, and N3D (with the fit) reads the expression back from the painting.

    fidelity = edit_fidelity(G, n3d, face_model, masked, "jaw_open", fit=fit)
    fidelity.r, fidelity.pooled_r
    ceiling = edit_fidelity_ceiling(n3d, face_model, seed, "test", indices, image_size)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..data.synthetic import draw_coefficients, looks_of, render_masked_faces
from ..face3d import MorphableModel
from ..fitting import FaceFit
from ..guidance import n3d_guidance
from ..images import batch_of
from ..metrics import pearson_r
from ..models import InpaintingGenerator
from ..painting import paint_edited
from ..progress import progress_bar


@dataclass
class EditFidelity:
    """A named expression set to `values` on each of N faces and read back by N3D from the
    result: set `(N, V)`, recovered `(N, V)`.

    r: the mean over faces of `per_face_r`, each face's Pearson correlation between its V set
    and recovered values: does moving the slider move that face's expression as asked?
    pooled_r: one correlation over all N * V results. It also counts how differently N3D
    reads different faces at the same setting (each from its own starting point), which no
    painter controls: a perfect painter scores well under 1 on it.
    """

    name: str
    set: torch.Tensor
    recovered: torch.Tensor

    @property
    def per_face_r(self) -> torch.Tensor:
        """`(N,)` in [-1, 1]; 0 for a face whose reading never moves (the edit did nothing)."""
        return torch.stack([pearson_r(s, r) for s, r in zip(self.set, self.recovered,
                                                             strict=True)]).nan_to_num(0.0)

    @property
    def r(self) -> float:
        return float(self.per_face_r.mean())

    @property
    def pooled_r(self) -> float:
        return float(pearson_r(self.set.flatten(), self.recovered.flatten()))


EDIT_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0)  # jaw_open 0 (closed) to 2 (the prior's 2 sigma)


def read_back(n3d: torch.nn.Module, face_model: MorphableModel, name: str,
              values: Sequence[float], results: Sequence[torch.Tensor],
              fit: FaceFit | None = None, progress: bool = False) -> EditFidelity:
    """N3D's estimate of expression `name` on `results` (one `(N, 3, H, W)` batch per value
    of `values`, the same N faces in each), fitted to them with `fit` when given, against the
    values they were made with. At least 3 distinct values: through 2 points every line
    correlates perfectly. `progress`: a bar over the values."""
    if len(set(values)) < 3 or len(values) != len(results):
        raise ValueError(f"edit fidelity needs one result batch for each of at least 3 distinct "
                         f"values, got values {tuple(values)} and {len(results)} batches")
    index = face_model.layout.slice("expression").start + face_model.expression_names.index(name)
    recovered = torch.stack([n3d_guidance(n3d, result, 0, fit=fit).coeffs[:, index]
                             for result in progress_bar(results, desc=f"reading {name} back",
                                                        unit="value", disable=not progress)],
                            1)
    return EditFidelity(name, torch.tensor(values, dtype=recovered.dtype).expand_as(recovered),
                        recovered)


@torch.no_grad()
def edit_fidelity(generator: InpaintingGenerator, n3d: torch.nn.Module,
                  face_model: MorphableModel, masked: torch.Tensor, name: str = "jaw_open",
                  values: Sequence[float] = EDIT_VALUES, dilation: int = 1,
                  seed: int = 0, fit: FaceFit | None = None,
                  progress: bool = False, band: int = 0) -> EditFidelity:
    """Do the sliders steer the result? For each masked face `(N, 3, H, W)`: N3D's
    coefficients (fitted with `fit` when given) with expression `name` set to each of
    `values`, rendered and painted by G; then N3D (and `fit`) re-estimates `name` from the
    result (which no longer wears a mask). r near 1: the painted face shows the expression it
    was asked for. `progress`: bars over the reading. `dilation`, `band`: the painted map's
    (`guidance.occlusion_map`)."""
    guidance = n3d_guidance(n3d, masked, dilation, fit=fit, progress=progress, band=band)
    return read_back(n3d, face_model, name, values,
                     [paint_edited(generator, face_model, masked, guidance, {name: value}, seed)
                      for value in values], fit, progress)


@torch.no_grad()
def bare_faces(face_model: MorphableModel, seed: int, split: str, indices: Sequence[int],
               image_size: int, expressions: Sequence[Mapping[str, float]] = ({},),
               ) -> list[torch.Tensor]:
    """Samples `indices` of the synthetic `split` (data `seed`) without their masks, rendered
    by the data pipeline itself (their coefficients, skin and background), once per entry of
    `expressions` with those named components set (e.g. {"jaw_open": 1.5}; {}: as drawn).
    One batch `(N, 3, H, W)` in [-1, 1] each; unedited, they are the data set's "clean"
    images bit for bit. Coefficients and looks are drawn once for all entries."""
    truth = torch.stack([draw_coefficients(face_model, seed, split, i) for i in indices])
    truth = truth.to(face_model.device, face_model.dtype)
    looks = {**looks_of(seed, split, indices, image_size), "styles": [None] * len(indices)}
    return [batch_of(render_masked_faces(face_model,
                                         face_model.with_expression(truth, dict(expression)),
                                         image_size=image_size, **looks)["clean"].numpy())
            for expression in expressions]


@torch.no_grad()
def edit_fidelity_ceiling(n3d: torch.nn.Module, face_model: MorphableModel, seed: int,
                          split: str, indices: Sequence[int], image_size: int,
                          name: str = "jaw_open", values: Sequence[float] = EDIT_VALUES,
                          fit: FaceFit | None = None, progress: bool = False) -> EditFidelity:
    """Edit fidelity of a perfect painter: the true faces `indices` of `split` with `name`
    set to each of `values` (`bare_faces`), read back by N3D (and `fit`). No generator can
    score above it: what it lacks of 1 is the instrument's, not G's."""
    return read_back(n3d, face_model, name, values,
                     bare_faces(face_model, seed, split, indices, image_size,
                                [{name: value} for value in values]), fit, progress)
