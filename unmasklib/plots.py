"""Matplotlib figures shared by the notebooks: image tables, samples with their ground truth."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .face3d import RenderOutput
from .images import to_uint8

# Crops of 64 to 256 px are drawn pixel for pixel: sharper than matplotlib's resampling, and
# the notebooks' PNGs come out about half the size.
PIXELS = {"interpolation": "nearest"}
GREY_MAP = {"cmap": "gray", "vmin": 0, "vmax": 1, **PIXELS}  # maps in [0, 1]


MIN_CELL_PIXELS = 100  # smaller crops are enlarged by a whole factor, so titles still fit
TABLE_GAP, TITLE_ROOM, LABEL_ROOM = 4, 18, 36  # pixels between cells, above, left of them


def cell_pixels(height: int) -> int:
    """Screen pixels per cell for crops `height` px tall: the crop itself, or a whole multiple
    of it for crops under `MIN_CELL_PIXELS`, so that every image pixel covers the same
    number of screen pixels (nearest-neighbour drawing stays even)."""
    return height * math.ceil(MIN_CELL_PIXELS / height)


def image_table(rows: Sequence[torch.Tensor], row_titles: Sequence[str] | None = None,
                column_titles: Sequence[str] | None = None,
                cell: float | None = None) -> Figure:
    """A table of images: each row `(N, 3, H, W)` in [-1, 1] (or `(N, 1, H, W)` in [0, 1]).

    cell: inches per image; None: `cell_pixels` of the tallest image, so that crops are drawn
    pixel for pixel at the figure's resolution (`figure.dpi`) instead of resampled.
    """
    columns = max(len(row) for row in rows)
    dpi = plt.rcParams["figure.dpi"]
    size = round(cell * dpi) if cell else cell_pixels(max(row.shape[-2] for row in rows))
    left = LABEL_ROOM if row_titles is not None else 0
    top = TITLE_ROOM if column_titles is not None else 0
    width = left + columns * (size + TABLE_GAP)
    height = top + len(rows) * (size + TABLE_GAP)
    figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    for r, row in enumerate(rows):
        for c in range(columns):
            # Axes placed in whole pixels, (0, 0) the figure's lower left corner.
            ax = figure.add_axes([(left + c * (size + TABLE_GAP)) / width,
                                  (height - top - (r + 1) * (size + TABLE_GAP)) / height,
                                  size / width, size / height])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c == 0 and row_titles is not None:
                # a 9-point character is about 6 px wide: longer titles take two lines
                ax.set_ylabel(textwrap.fill(row_titles[r], max(8, size // 6)), fontsize=9)
            if c >= len(row):
                continue
            image = row[c]
            if image.shape[0] == 1:
                ax.imshow(image[0].detach().cpu().numpy(), **GREY_MAP)
            else:
                ax.imshow(to_uint8(image), **PIXELS)
            if r == 0 and column_titles is not None:
                ax.set_title(column_titles[c], fontsize=9)
    return figure


def triangle_colours(tri_id: torch.Tensor) -> torch.Tensor:
    """Triangle ids `(B, H, W)` -> a random but fixed colour per triangle `(B, 3, H, W)`."""
    generator = torch.Generator().manual_seed(0)
    palette = torch.rand(int(tri_id.max()) + 2, 3, generator=generator) * 1.6 - 0.8
    palette[0] = -1  # background (id -1) stays black
    return palette[tri_id.cpu() + 1].permute(0, 3, 1, 2)


def _landmark_dots(ax: plt.Axes, points: torch.Tensor, colour: str) -> None:
    """Landmarks `(68, 2)` in pixel coordinates as dots over an `imshow` image (whose pixel
    centres sit at integers, where ours sit at +0.5)."""
    points = points.detach().cpu().numpy()
    ax.scatter(points[:, 0] - 0.5, points[:, 1] - 0.5, s=2, c=colour)


def show_samples(samples: Sequence[dict], landmarks: bool = True, cell: float = 1.8) -> Figure:
    """Samples of a masked-face data set: masked (landmarks dotted), occlusion, clean."""
    figure, axes = plt.subplots(3, len(samples), figsize=(cell * len(samples), cell * 3),
                                squeeze=False)
    for c, sample in enumerate(samples):
        axes[0, c].imshow(to_uint8(sample["masked"]), **PIXELS)
        if landmarks and torch.isfinite(sample["landmarks"]).all():
            _landmark_dots(axes[0, c], sample["landmarks"], "#00ff66")
        axes[1, c].imshow(sample["occlusion"][0].numpy(), **GREY_MAP)
        axes[2, c].imshow(to_uint8(sample["clean"]), **PIXELS)
        axes[0, c].set_title(f"{sample['mask_type']} · id {sample['identity']}", fontsize=8)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    for r, title in enumerate(["masked + landmarks", "occlusion", "clean"]):
        axes[r, 0].set_ylabel(title, fontsize=9)
    figure.tight_layout()
    return figure


def bar_counts(counts: dict[str, int], title: str) -> Figure:
    """A bar chart of counts per category, each bar labelled with its count and share."""
    figure, ax = plt.subplots(figsize=(4.5, 2.6))
    names, values = list(counts), np.array(list(counts.values()))
    bars = ax.bar(names, values, color="#4c72b0")
    total = values.sum()
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(f"{value} ({100 * value / total:.0f} %)",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, values.max() * 1.2)
    ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def oracle_gap_figure(rows: Sequence[dict]) -> Figure:
    """PSNR and SSIM of the oracle render against the clean image, per mask type: bars of
    the mean with the standard deviation, inside the face and inside its hidden part.

    rows: `baselines.OracleGap.table()`.
    """
    figure, axes = plt.subplots(1, 2, figsize=(9, 3))
    names = [row["mask_type"] for row in rows]
    x = np.arange(len(rows))
    for ax, metric, unit in zip(axes, ("psnr", "ssim"), ("dB", ""), strict=True):
        for shift, region, colour in ((-0.2, "face", "#4c72b0"), (0.2, "occluded", "#dd8452")):
            means = [row[f"{region}_{metric}"] for row in rows]
            stds = [row[f"{region}_{metric}_std"] for row in rows]
            ax.bar(x + shift, means, 0.4, yerr=stds, capsize=3, color=colour,
                   label=f"inside the {'face' if region == 'face' else 'hidden face'}")
        ax.set_xticks(x, names)
        ax.set_title(f"oracle render vs clean: {metric.upper()}", fontsize=10)
        ax.set_ylabel(unit)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure


def angular_margin_figure(margin: float, scale: float) -> Figure:
    """What ArcFace's additive angular margin does: the target class's logit is
    `s cos(theta + m)` instead of `s cos(theta)`, so a face must sit `m` radians closer to its
    identity's centre than a margin-free softmax would need before the loss lets go."""
    theta = np.linspace(0, np.pi - margin, 200)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(np.degrees(theta), scale * np.cos(theta), label="other classes: s cos θ")
    left.plot(np.degrees(theta), scale * np.cos(theta + margin),
              label=f"own class: s cos(θ + m), m = {margin}")
    left.set_xlabel("angle θ between embedding and class centre (degrees)")
    left.set_ylabel("logit")
    left.legend(fontsize=8)
    left.spines[["top", "right"]].set_visible(False)
    # Two class centres on the unit circle: where each class wins, without and with the margin.
    centres = np.radians([60.0, 120.0])
    angles = np.linspace(0, np.pi, 400)
    right.plot(np.cos(angles), np.sin(angles), color="0.8", lw=1)
    for k, (centre, colour) in enumerate(zip(centres, ("#4c72b0", "#dd8452"), strict=True)):
        right.plot([0, np.cos(centre)], [0, np.sin(centre)], color=colour, lw=2,
                   label=f"class {k} centre")
    boundary = centres.mean()
    right.plot([0, np.cos(boundary)], [0, np.sin(boundary)], "k--", lw=1,
               label="boundary without margin")
    for edge in (boundary - margin / 2, boundary + margin / 2):
        right.plot([0, np.cos(edge)], [0, np.sin(edge)], "k:", lw=1)
    wedge = np.linspace(boundary - margin / 2, boundary + margin / 2, 50)
    right.fill(np.r_[0, np.cos(wedge)], np.r_[0, np.sin(wedge)], color="0.85",
               label="no class wins with the margin")
    right.set_aspect("equal")
    right.set_xlim(-1.1, 1.1)
    right.set_ylim(0, 1.1)
    right.axis("off")
    right.legend(fontsize=7, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.25))
    figure.tight_layout()
    return figure


def embedding_projection(embeddings: np.ndarray, identities: np.ndarray, masked: np.ndarray,
                         ) -> Figure:
    """Embeddings `(N, D)` projected on their first two principal components, one colour per
    identity; clean faces as dots, masked faces as crosses."""
    centred = embeddings - embeddings.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    figure, ax = plt.subplots(figsize=(5, 4.2))
    colours = plt.get_cmap("tab10")
    for k, person in enumerate(np.unique(identities)):
        for worn, marker in ((False, "o"), (True, "x")):
            chosen = (identities == person) & (masked == worn)
            ax.scatter(points[chosen, 0], points[chosen, 1], marker=marker, s=28,
                       color=colours(k % 10), label=f"id {person}" if not worn else None)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title("test identities (o clean, x masked)", fontsize=10)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def n3d_predictions(masked: torch.Tensor, occlusion: torch.Tensor, true_occlusion: torch.Tensor,
                    render: RenderOutput, landmarks: torch.Tensor, cell: float = 1.8) -> Figure:
    """What N3D sees and says, one column per face: the masked input; its occlusion map
    (white) against the truth (red outline); its 3D face rendered over the input; its
    landmarks (green) against the true ones (red).

    masked `(N, 3, H, W)` in [-1, 1]; occlusion, true_occlusion `(N, 1, H, W)` in [0, 1];
    render: `render_faces` of the predicted coefficients; landmarks `(N, 68, 2)` true, px.
    """
    count = len(masked)
    figure, axes = plt.subplots(4, count, figsize=(cell * count, cell * 4), squeeze=False)
    overlay = torch.where(render.face_mask > 0, 0.35 * masked + 0.65 * render.image, masked)
    for c in range(count):
        axes[0, c].imshow(to_uint8(masked[c]), **PIXELS)
        axes[1, c].imshow(occlusion[c, 0].numpy(), **GREY_MAP)
        axes[1, c].contour(true_occlusion[c, 0].numpy(), levels=[0.5], colors="red",
                           linewidths=0.8)
        axes[2, c].imshow(to_uint8(overlay[c]), **PIXELS)
        axes[3, c].imshow(to_uint8(masked[c]), **PIXELS)
        for points, colour in ((landmarks[c], "#ff3333"), (render.landmarks[c], "#00ff66")):
            _landmark_dots(axes[3, c], points, colour)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    titles = ["masked input", "occlusion (truth: red)", "predicted 3D face", "landmarks"]
    for r, title in enumerate(titles):
        axes[r, 0].set_ylabel(title, fontsize=9)
    figure.tight_layout()
    return figure


def render_stages(out: RenderOutput, faces: torch.Tensor, index: int = 0) -> Figure:
    """The renderer's stages for image `index` of a `face3d.RenderOutput`: projected mesh,
    triangle ids, albedo, normals, SH shading and the final image."""
    figure, axes = plt.subplots(1, 6, figsize=(13, 2.5))
    size = out.image.shape[-1]
    screen = out.screen_vertices[index].detach().cpu()
    axes[0].triplot(screen[:, 0], screen[:, 1], faces.cpu(), linewidth=0.15, color="k")
    axes[0].set_xlim(0, size)
    axes[0].set_ylim(size, 0)
    axes[0].set_aspect("equal")
    stages = [triangle_colours(out.tri_id[index:index + 1])[0], out.albedo[index] * 2 - 1,
              out.normals[index], out.shading[index].clamp(0, 1) * 2 - 1, out.image[index]]
    for ax, image in zip(axes[1:], stages, strict=True):
        ax.imshow(to_uint8(image), **PIXELS)
    titles = ["projected mesh", "triangle id", "albedo", "normals", "SH shading", "image"]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    return figure


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over the last `window` values (fewer at the start), same length."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.r_[0, values])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_history(history: dict[str, Sequence[float]], window: int | None = None,
                 cell: tuple[float, float] = (3.6, 2.6)) -> Figure:
    """Training curves: one panel per loss term (term -> one value per step), the raw values
    faint, a moving average (`window` steps, default 2 % of the run) on top; log y for a term
    that stays positive and spans more than a factor of ten."""
    names = list(history)
    figure, axes = plt.subplots(1, len(names), figsize=(cell[0] * len(names), cell[1]),
                                squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        values = np.asarray(history[name], dtype=np.float64)
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, color="#4c72b0", alpha=0.25, linewidth=0.6)
        ax.plot(steps, smooth(values, window or max(1, len(values) // 50)), color="#4c72b0")
        if len(values) and values.min() > 0 and values.max() > 10 * values.min():
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def plot_roc(results: dict, size: tuple[float, float] = (4.5, 3.4)) -> Figure:
    """ROC curves (TAR against FAR, log FAR axis) of verification results by protocol name
    (objects with `far`, `tar`, `auc`, `tar_at_far`, `far_target`, as
    `verification.Verification`), with AUC and TAR at the target FAR (dotted) in the legend."""
    figure, ax = plt.subplots(figsize=size)
    floor = 1.0
    for name, result in results.items():
        far, tar = np.asarray(result.far), np.asarray(result.tar)
        positive = far > 0  # FAR = 0 has no place on a log axis
        floor = min(floor, far[positive].min())
        ax.step(far[positive], tar[positive], where="post",
                label=f"{name}: AUC {result.auc:.3f}, "
                      f"TAR {result.tar_at_far:.2f} @ FAR {result.far_target:g}")
    for target in {result.far_target for result in results.values()}:
        ax.axvline(target, color="0.6", linestyle=":", linewidth=1)
    chance = np.geomspace(floor, 1, 50)
    ax.plot(chance, chance, color="0.75", linestyle="--", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false accept rate (FAR)", fontsize=9)
    ax.set_ylabel("true accept rate (TAR)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def edit_fidelity_figure(results: dict, size: tuple[float, float] = (4.6, 3.6)) -> Figure:
    """Set against recovered value of an edited expression: a thin line per face and a thick
    one for the mean over faces, one colour per model; r (per face and pooled) in the legend,
    and the line where set and recovered agree.

    results: label -> `evaluation.EditFidelity` (`set`, `recovered` `(N, V)`, `r`, `pooled_r`).
    """
    figure, ax = plt.subplots(figsize=size)
    low, high = math.inf, -math.inf
    for k, (label, fidelity) in enumerate(results.items()):
        values, recovered = fidelity.set.numpy(), fidelity.recovered.numpy()
        ax.plot(values.T, recovered.T, color=f"C{k}", alpha=0.2, linewidth=0.8)
        ax.plot(values[0], recovered.mean(0), color=f"C{k}", linewidth=2.2, marker="o",
                label=f"{label}: r = {fidelity.r:.2f} per face, {fidelity.pooled_r:.2f} pooled")
        low = min(low, float(values.min()), float(recovered.min()))
        high = max(high, float(values.max()), float(recovered.max()))
    ax.plot([low, high], [low, high], "k:", linewidth=1, label="recovered = set")
    name = next(iter(results.values())).name
    ax.set(xlabel=f"{name} set for the render", ylabel=f"{name} N3D reads from the result")
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def method_rows(rows: dict[str, torch.Tensor], cell: float | None = None) -> Figure:
    """Faces in columns, one row per entry of `rows` (name -> `(N, 3, H, W)` in [-1, 1]):
    e.g. the masked input, each method's result and the clean face. A parenthesis in a name
    starts a second line of its label."""
    return image_table(list(rows.values()), [name.replace(" (", "\n(") for name in rows],
                       cell=cell)


def scores_by_mask_type(by_mask_type: dict[str, list[dict]],
                        metrics: Sequence[str] = ("psnr_occluded", "ssim_occluded"),
                        size: tuple[float, float] = (10, 3.2)) -> Figure:
    """Grouped bars (mean, std as error bars) of `metrics` per method and mask type.

    by_mask_type: mask type -> rows of `evaluation.Evaluation.table(kind)`."""
    kinds = list(by_mask_type)
    methods = [row["method"] for row in next(iter(by_mask_type.values()))]
    figure, axes = plt.subplots(1, len(metrics), figsize=size, squeeze=False)
    width = 0.8 / len(methods)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for m, method in enumerate(methods):
            rows = [next(r for r in by_mask_type[kind] if r["method"] == method) for kind in kinds]
            ax.bar(np.arange(len(kinds)) + m * width, [r[metric] for r in rows], width,
                   yerr=[r[f"{metric}_std"] for r in rows], label=method, capsize=2)
        ax.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds)
        ax.set_title(metric.replace("_occluded", " inside the occlusion").upper()
                     .replace("INSIDE THE OCCLUSION", "inside the occlusion"), fontsize=10)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def photo_panels(photo: np.ndarray, masked: np.ndarray, points: np.ndarray, result,
                 samples: Sequence = (), cell: float = 2.2) -> Figure:
    """A whole photo unmasked: the photo, the masked photo with the points found (dots), the
    result; below, close-ups of the face (a box around the occlusion) in the photo, the result
    and each of `samples`. photo, masked `(H, W, 3)` uint8; points `(N, 2)` pixels (the eyes
    or the five points); result and samples: `UnmaskResult`s."""
    rows, cols = np.nonzero(result.occlusion)
    if len(rows) == 0:
        rows, cols = np.array([0, photo.shape[0] - 1]), np.array([0, photo.shape[1] - 1])
    half = int(max(np.ptp(rows), np.ptp(cols)) * 0.9) + 8
    centre = (int(rows.mean()) - half // 3, int(cols.mean()))
    top, left = max(centre[0] - half, 0), max(centre[1] - half, 0)
    box = (slice(top, centre[0] + half), slice(left, centre[1] + half))
    close = [("photo (truth)", photo[box]), ("result", result.image[box])]
    close += [(f"sample {i + 1}", s.image[box]) for i, s in enumerate(samples)]
    columns = max(3, len(close))
    figure = plt.figure(figsize=(cell * columns, cell * 2.3))
    grid = figure.add_gridspec(2, columns, height_ratios=[1.3, 1])
    for k, (title, image) in enumerate([("photo", photo), ("masked; points found", masked),
                                        ("unmasked", result.image)]):
        ax = figure.add_subplot(grid[0, k * columns // 3:(k + 1) * columns // 3])
        ax.imshow(image)
        if k == 1:
            ax.plot(points[:, 0], points[:, 1], "o", color="red", markersize=3)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for k, (title, image) in enumerate(close):
        ax = figure.add_subplot(grid[1, k])
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    figure.tight_layout()
    return figure


def five_points_figure(images: torch.Tensor, ours: np.ndarray, found: Sequence,
                       cell: float = 1.9) -> Figure:
    """Faces `(N, 3, H, W)` in [-1, 1] with two sets of five points: `ours` `(N, 5, 2)` (the
    3D face's, green) and `found` (N entries of `(5, 2)` or None: a detector's, red crosses)."""
    figure, axes = plt.subplots(1, len(images), figsize=(cell * len(images), cell * 1.1),
                                squeeze=False)
    for ax, image, truth, points in zip(axes[0], to_uint8(images), ours, found, strict=True):
        ax.imshow(image)
        ax.plot(truth[:, 0], truth[:, 1], "o", color="lime", markersize=3)
        if points is None:
            ax.set_title("no face found", fontsize=8)
        else:
            ax.plot(points[:, 0], points[:, 1], "x", color="red", markersize=4)
            eye = np.linalg.norm(truth[1] - truth[0])
            error = np.linalg.norm(points - truth, axis=1).mean() / eye
            ax.set_title(f"error {error:.2f} eye dist.", fontsize=8)
        ax.axis("off")
    figure.tight_layout()
    return figure
