"""Pictures of what the codec did: the per-block quality map as a heat map over the image."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np


def quality_heatmap_png(
    image: np.ndarray, quality_map: np.ndarray, block: int, *, title: str | None = None
) -> bytes:
    """A PNG: the image in gray with each block tinted by its JPEG quality, and a colour bar."""
    h, w = image.shape[:2]
    gray = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
    rows, cols = quality_map.shape
    extent = (0, cols * block, rows * block, 0)
    dpi = 100
    fig_w = max(4.0, min(12.0, w / dpi + 1.5))
    fig, ax = plt.subplots(figsize=(fig_w, fig_w * h / w + 0.6), dpi=dpi)
    ax.imshow(gray, cmap="gray", extent=(0, w, h, 0), vmin=0, vmax=255)
    shown = ax.imshow(quality_map, cmap="viridis", alpha=0.55, extent=extent, vmin=1, vmax=100)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.02, label="JPEG quality")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
