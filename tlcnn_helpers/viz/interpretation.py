"""Figures of what a trained CNN looks at: attribution maps, embeddings (notebook 07).

Part of :mod:`tlcnn_helpers.viz`; import the figures from there (``viz.<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .base import KERNEL_CMAP, MAP_CMAP, _display_range, _label_pixels, class_colours, closed_figure


def _scaled(values: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] (a constant map becomes 0), for overlays."""
    values = np.asarray(values, dtype=float)
    spread = float(values.max() - values.min()) if values.size else 0.0
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def _overlay(ax, image: np.ndarray, heat: np.ndarray | None, alpha: float) -> None:
    """``image`` with ``heat`` (any resolution) stretched over it in viridis."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    shown = _display_range(image.astype(np.float32) / 255.0 if image.max() > 1.0 else image)
    ax.imshow(shown)
    if heat is not None:
        ax.imshow(_scaled(heat), cmap=MAP_CMAP, alpha=alpha, vmin=0, vmax=1,
                  extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])


def show_attribution_maps(images: Sequence[np.ndarray], maps: Mapping[str, np.ndarray],
                          row_titles: Sequence[str], *, alpha: float = 0.55,
                          suptitle: str = "Where the CNN looks") -> Figure:
    """One row per image: the image, then each method's map over it (viridis, bright = high).

    ``images`` are 0..255 (or 0..1) RGB arrays; ``maps`` maps a method's name to one map per
    image, at any resolution (a 2x2 Grad-CAM is stretched over the whole image). Each map
    is scaled to [0, 1] on its own, so colours compare places within a map, not methods.

    >>> x = np.zeros((2, 8, 8, 3)); m = {"saliency": np.ones((2, 8, 8)), "Grad-CAM": np.ones((2, 2, 2))}
    >>> [ax.get_title() for ax in show_attribution_maps(x, m, ["a", "b"]).axes[:3]]
    ['image', 'saliency', 'Grad-CAM']
    """
    images = list(images)
    fig, axes = closed_figure(len(images), len(maps) + 1, 1.9 * (len(maps) + 1),
                              1.9 * len(images) + 0.5)
    for row, image in enumerate(images):
        _overlay(axes[row, 0], image, None, alpha)
        axes[row, 0].set_ylabel(row_titles[row], fontsize=8)
        for col, values in enumerate(maps.values(), start=1):
            _overlay(axes[row, col], image, np.asarray(values[row]), alpha)
    for col, name in enumerate(["image", *maps]):
        axes[0, col].set_title(name, fontsize=9)
    fig.suptitle(suptitle)
    return fig


def show_maps_with_receptive_field(panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
                                   receptive_field: int, *, alpha: float = 0.55,
                                   suptitle: str = "Grad-CAM and the receptive field") -> Figure:
    """Each panel ``(title, image, map)``: the map over the image and a dashed square of
    ``receptive_field`` pixels centred on the map's peak (what one cell of the last map sees).

    Panels keep their own pixel axes, so the same square looks smaller on a larger image; the
    axes widen to show a square larger than the image (as ``show_receptive_field`` does).

    >>> fig = show_maps_with_receptive_field([("32 px", np.zeros((32, 32, 3)), np.eye(2))], 78)
    >>> fig.axes[0].get_xlabel(), len(fig.axes[0].patches)
    ('column (pixel)', 1)
    >>> square = fig.axes[0].patches[0].get_bbox()
    >>> left, right = fig.axes[0].get_xlim()
    >>> bool(left <= square.x0 and square.x1 <= right)
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    edge = plt.get_cmap(KERNEL_CMAP)(0.95)  # visible on the image and on the white margin
    fig, axes = closed_figure(1, len(panels), 3.2 * len(panels), 3.6)
    for ax, (title, image, heat) in zip(axes.flat, panels, strict=True):
        _overlay(ax, image, heat, alpha)
        height, width = np.asarray(image).shape[:2]
        heat = np.asarray(heat)
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        centre_y = (row + 0.5) * height / heat.shape[0] - 0.5
        centre_x = (col + 0.5) * width / heat.shape[1] - 0.5
        half = receptive_field / 2
        left, top = centre_x - half, centre_y - half
        ax.add_patch(Rectangle((left, top), receptive_field,
                               receptive_field, fill=False, edgecolor=edge, linestyle="--",
                               linewidth=1.5, label=f"receptive field {receptive_field} px"))
        ax.set_xlim(min(-0.5, left) - 1, max(width - 0.5, left + receptive_field) + 1)
        ax.set_ylim(max(height - 0.5, top + receptive_field) + 1, min(-0.5, top) - 1)
        ax.set_xticks([0, width // 2, width - 1])
        ax.set_yticks([0, height // 2, height - 1])
        _label_pixels(ax, f"{title} (map {heat.shape[0]}x{heat.shape[1]})")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(suptitle)
    return fig


def plot_embedding_2d(points: Mapping[str, np.ndarray], labels: np.ndarray,
                      class_names: Sequence[str], *,
                      title: str = "Penultimate-layer features in 2-D") -> Figure:
    """One scatter panel per projection (e.g. ``{"PCA": ..., "t-SNE": ...}``), points
    coloured by class with viridis colours and a different marker per class.

    >>> p = np.random.default_rng(0).normal(size=(6, 2)); y = np.array([0, 1, 2, 0, 1, 2])
    >>> fig = plot_embedding_2d({"PCA": p}, y, ["a", "b", "c"])
    >>> fig.axes[0].get_title(), fig.axes[0].get_xlabel()
    ('PCA', 'component 1')
    """
    labels = np.asarray(labels)
    colours = class_colours(len(class_names))
    markers = "osD^vP*Xh<>p"
    fig, axes = closed_figure(1, len(points), 5.0 * len(points) + 1.6, 4.6)
    for ax, (name, xy) in zip(axes.flat, points.items(), strict=True):
        for index, class_name in enumerate(class_names):
            chosen = labels == index
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=14, color=colours[index],
                       marker=markers[index % len(markers)], label=class_name,
                       edgecolors="black", linewidths=0.2)
        ax.set_title(name)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    axes.flat[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5),
                         title="true class")
    fig.suptitle(title)
    return fig
