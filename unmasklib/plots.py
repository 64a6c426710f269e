"""Matplotlib figures shared by the notebooks: image tables, samples with their ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .face3d import RenderOutput
from .images import to_uint8


def image_table(rows: Sequence[torch.Tensor], row_titles: Sequence[str] | None = None,
                column_titles: Sequence[str] | None = None, cell: float = 1.8) -> Figure:
    """A table of images: each row `(N, 3, H, W)` in [-1, 1] (or `(N, 1, H, W)` in [0, 1])."""
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(cell * columns, cell * len(rows)),
                                squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(row):
                continue
            image = row[c]
            if image.shape[0] == 1:
                ax.imshow(image[0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(to_uint8(image))
            if r == 0 and column_titles is not None:
                ax.set_title(column_titles[c], fontsize=9)
        if row_titles is not None:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=9)
    figure.tight_layout()
    return figure


def triangle_colours(tri_id: torch.Tensor) -> torch.Tensor:
    """Triangle ids `(B, H, W)` -> a random but fixed colour per triangle `(B, 3, H, W)`."""
    generator = torch.Generator().manual_seed(0)
    palette = torch.rand(int(tri_id.max()) + 2, 3, generator=generator) * 1.6 - 0.8
    palette[0] = -1  # background (id -1) stays black
    return palette[tri_id.cpu() + 1].permute(0, 3, 1, 2)


def show_samples(samples: Sequence[dict], landmarks: bool = True, cell: float = 1.8) -> Figure:
    """Samples of a masked-face data set: masked (landmarks dotted), occlusion, clean."""
    figure, axes = plt.subplots(3, len(samples), figsize=(cell * len(samples), cell * 3),
                                squeeze=False)
    for c, sample in enumerate(samples):
        axes[0, c].imshow(to_uint8(sample["masked"]))
        if landmarks and torch.isfinite(sample["landmarks"]).all():
            points = sample["landmarks"].numpy()
            axes[0, c].scatter(points[:, 0] - 0.5, points[:, 1] - 0.5, s=2, c="#00ff66")
        axes[1, c].imshow(sample["occlusion"][0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[2, c].imshow(to_uint8(sample["clean"]))
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
        ax.imshow(to_uint8(image))
    titles = ["projected mesh", "triangle id", "albedo", "normals", "SH shading", "image"]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    return figure
