"""Figures of images and what convolutions make of them (notebooks 00, 01, 02, 04, 06, 07).

Part of :mod:`tlcnn_helpers.viz`; import the figures from there (``viz.<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..convolution import ReceptiveField
from ..errors import ModelInputError
from .base import IMAGE_CMAP, KERNEL_CMAP, MAP_CMAP, _display_range, _label_pixels, closed_figure


def show_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, *,
                cmap: str = IMAGE_CMAP, suptitle: str | None = None, ncols: int | None = None,
                colorbar: bool = False, size: float = 2.6) -> Figure:
    """Images side by side, each with a title and pixel axes.

    2-D arrays use ``cmap`` (gray for photos, viridis for feature maps); ``(H, W, 3)``
    arrays are shown in colour. ``colorbar=True`` adds a value scale to 2-D images.

    >>> fig = show_images([np.zeros((4, 4)), np.ones((4, 4, 3))], ["a", "b"])
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    images = list(images)
    if not images:
        raise ModelInputError("show_images got no images: pass a list of arrays")
    titles = list(titles) if titles is not None else [f"image {i}" for i in range(len(images))]
    ncols = ncols or min(len(images), 4)
    nrows = -(-len(images) // ncols)
    fig, axes = closed_figure(nrows, ncols, size * ncols, size * nrows + (0.4 if suptitle else 0))
    for ax in axes.flat[len(images):]:
        ax.set_axis_off()
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        shown = ax.imshow(_display_range(image), cmap=cmap if image.ndim == 2 else None)
        if colorbar and image.ndim == 2:
            fig.colorbar(shown, ax=ax, shrink=0.8)
        _label_pixels(ax, title)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def draw_kernel(ax, kernel: np.ndarray, title: str = "kernel") -> None:
    """A small kernel as a cividis heat map with its numbers written in the cells.

    >>> fig, axes = plt.subplots()
    >>> draw_kernel(axes, np.eye(3), "identity-ish"); plt.close(fig)
    >>> len(axes.texts)
    9
    """
    kernel = np.asarray(kernel, dtype=float)
    limit = max(float(np.abs(kernel).max()), 1e-9)
    ax.imshow(kernel, cmap=KERNEL_CMAP, vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        ax.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=8,
                color="white" if value < -0.3 * limit else "black")
    ax.set_xticks(range(kernel.shape[1]))
    ax.set_yticks(range(kernel.shape[0]))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("kernel column", fontsize=8)
    ax.set_ylabel("kernel row", fontsize=8)
    ax.tick_params(labelsize=7)


def show_kernels(kernels: Mapping[str, np.ndarray], suptitle: str = "Kernels") -> Figure:
    """Several named 2-D kernels with their values.

    >>> len(show_kernels({"a": np.eye(3), "b": -np.eye(3)}).axes)
    2
    """
    fig, axes = closed_figure(1, len(kernels), 2.2 * len(kernels), 2.6)
    for ax, (name, kernel) in zip(axes.flat, kernels.items(), strict=True):
        draw_kernel(ax, kernel, name)
    fig.suptitle(suptitle)
    return fig


def show_pair(before: np.ndarray, after: np.ndarray, titles: Sequence[str], *,
              cmaps: Sequence[str] = (IMAGE_CMAP, MAP_CMAP), suptitle: str | None = None,
              size: float = 3.4) -> Figure:
    """An image and what an operation made of it, side by side at their true pixel scale.

    Both panels share the pixel scale, so a smaller output looks smaller; the second one
    has a colour bar.

    >>> fig = show_pair(np.zeros((8, 8)), np.zeros((4, 4)), ["in", "out"])
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['in', 'out']
    """
    # A fixed layout: explorers redraw this on every control change, and the constrained
    # layout engine would double the drawing time.
    fig, axes = closed_figure(1, 2, 2 * size + 0.8, size + (0.3 if suptitle else 0), layout=None)
    fig.subplots_adjust(left=0.08, right=0.92, bottom=0.14, top=0.84, wspace=0.25)
    for ax, image, title, cmap in zip(axes.flat, (before, after), titles, cmaps, strict=True):
        image = np.asarray(image)
        shown = ax.imshow(_display_range(image) if image.ndim == 3 else image,
                          cmap=cmap if image.ndim == 2 else None)
        _label_pixels(ax, title)
    fig.colorbar(shown, ax=axes[0, 1], fraction=0.046, pad=0.03)
    # same pixel scale: the output panel spans as many pixels as the input one
    height, width = np.asarray(before).shape[:2]
    axes[0, 1].set_xlim(-0.5, width - 0.5)
    axes[0, 1].set_ylim(height - 0.5, -0.5)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def show_feature_maps(maps: np.ndarray, title: str = "Feature maps", max_maps: int = 16,
                      ncols: int = 8) -> Figure:
    """The channels of one feature map ``(H, W, F)``, one small image per filter.

    >>> len(show_feature_maps(np.zeros((6, 6, 3))).axes)
    3
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ModelInputError(f"maps has shape {maps.shape}: pass one image's maps (H, W, F)")
    count = min(maps.shape[-1], max_maps)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = closed_figure(nrows, ncols, 1.5 * ncols, 1.5 * nrows + 0.5)
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_axis_off()
            continue
        ax.imshow(maps[..., index], cmap=MAP_CMAP)
        ax.set_title(f"filter {index}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.supxlabel("column (pixel)", fontsize=8)
    fig.supylabel("row (pixel)", fontsize=8)
    fig.suptitle(f"{title} {maps.shape[:2]}, {count} of {maps.shape[-1]} filters")
    return fig


def show_filters(kernel: np.ndarray, title: str = "First-layer filters",
                 max_filters: int = 16) -> Figure:
    """First-layer filters ``(kh, kw, 3, F)`` as small colour patches (each scaled to [0, 1]).

    >>> len(show_filters(np.random.default_rng(0).normal(size=(3, 3, 3, 4))).axes)
    4
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim != 4 or kernel.shape[2] not in (1, 3):
        raise ModelInputError(f"kernel has shape {kernel.shape}: pass a first layer's weights "
                              "(kh, kw, 3, filters), e.g. model.layers[0].get_weights()[0]")
    count = min(kernel.shape[-1], max_filters)
    ncols = min(8, count)
    nrows = -(-count // ncols)
    fig, axes = closed_figure(nrows, ncols, 1.3 * ncols, 1.3 * nrows + 0.5)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= count:
            ax.set_axis_off()
            continue
        patch = kernel[..., index]
        patch = (patch - patch.min()) / max(float(np.ptp(patch)), 1e-9)
        ax.imshow(patch[..., 0] if patch.shape[-1] == 1 else patch, cmap=IMAGE_CMAP)
        ax.set_title(f"filter {index}", fontsize=7)
    fig.suptitle(f"{title} ({kernel.shape[0]}x{kernel.shape[1]}, colours = RGB weights)")
    return fig


def plot_receptive_fields(rows: Sequence[ReceptiveField], image_size: int | None = None,
                          title: str = "Receptive field grows with depth") -> Figure:
    """Receptive field size after each layer, optionally against the image size.

    >>> from tlcnn_helpers.convolution import receptive_fields
    >>> fig = plot_receptive_fields(receptive_fields([("c1", 3, 1), ("c2", 3, 1)]), 32)
    >>> fig.axes[0].get_ylabel()
    'receptive field (pixels)'
    """
    fig, axes = closed_figure(1, 1, 6.0, 3.2)
    ax = axes[0, 0]
    colours = plt.get_cmap(KERNEL_CMAP)(np.linspace(0.15, 0.85, len(rows)))
    bars = ax.bar([r.layer for r in rows], [r.size for r in rows], color=colours)
    ax.bar_label(bars, labels=[f"{r.size}" for r in rows], fontsize=8)
    if image_size:
        ax.axhline(image_size, color="black", linestyle="--", linewidth=1,
                   label=f"image size ({image_size} px)")
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("layer")
    ax.set_ylabel("receptive field (pixels)")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return fig


def plot_lines(x: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str,
               xlabel: str, ylabel: str) -> Figure:
    """A few named curves, told apart by marker and line style as well as colour.

    >>> fig = plot_lines([1, 2], {"a": [0, 1], "b": [1, 0]}, title="t", xlabel="x", ylabel="y")
    >>> fig.axes[0].get_title()
    't'
    """
    fig, axes = closed_figure(1, 1, 6.0, 3.4)
    ax = axes[0, 0]
    colours = plt.get_cmap(KERNEL_CMAP)(np.linspace(0.0, 0.85, max(len(series), 1)))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    for index, (name, values) in enumerate(series.items()):
        ax.plot(x, values, label=name, color=colours[index], marker=markers[index % 5],
                linestyle=styles[index % 4])
    ax.set_xticks(list(x))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def show_class_samples(datasets: Sequence[tuple[str, np.ndarray, np.ndarray]],
                       class_names: Sequence[str], per_class: int = 4, seed: int = 0) -> Figure:
    """One row per class, ``per_class`` images from each dataset in turn; returns the figure.

    ``datasets`` is a list of ``(title, images, labels)``; images of different sizes are
    shown at the same display size, so a 32x32 CIFAR image and a 96x96 STL image of the
    same class sit next to each other.

    >>> images = np.zeros((18, 32, 32, 3), np.uint8); labels = np.repeat(np.arange(9), 2)
    >>> fig = show_class_samples([("CIFAR-10", images, labels)], ["c%d" % i for i in range(9)],
    ...                          per_class=2)
    >>> len(fig.axes)
    18
    """
    from ..data import pick_per_class

    columns = per_class * len(datasets)
    fig, axes = closed_figure(len(class_names), columns, 1.1 * columns, 1.1 * len(class_names),
                              layout=None)
    for d, (title, images, labels) in enumerate(datasets):
        for row, indices in enumerate(pick_per_class(labels, len(class_names), per_class, seed)):
            for k in range(per_class):
                ax = axes[row, d * per_class + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k < len(indices):
                    ax.imshow(images[indices[k]])
                if row == 0 and k == 0:
                    ax.set_title(f"{title}\n{images.shape[1]}x{images.shape[2]}", fontsize=9,
                                 loc="left")
                if d == 0 and k == 0:
                    ax.set_ylabel(class_names[row], rotation=0, ha="right", va="center")
    fig.suptitle("The 9 shared classes, " + " and ".join(t for t, _, _ in datasets))
    fig.tight_layout()
    return fig


def show_receptive_field(images: Sequence[np.ndarray], field: int, titles: Sequence[str], *,
                         suptitle: str | None = None, size: float = 3.2) -> Figure:
    """Each image at its own pixel scale with the ``field`` x ``field`` square one output cell sees.

    The square is centred on the image; where it is larger than the image it is drawn past
    the border (the axes grow to show all of it), so a 46 px field over a 32 px image and
    over a 96 px one can be compared. Images are uint8, or floats in 0..1 or 0..255.

    >>> fig = show_receptive_field([np.zeros((32, 32, 3)), np.zeros((96, 96, 3))], 46, ["32", "96"])
    >>> [ax.get_title() for ax in fig.axes], len(fig.axes[1].patches)
    (['32', '96'], 1)
    """
    from matplotlib.patches import Rectangle

    images, titles = list(images), list(titles)
    if not images or len(images) != len(titles):
        raise ModelInputError(f"got {len(images)} images and {len(titles)} titles: pass one "
                              "title per image")
    if field < 1:
        raise ModelInputError(f"field={field}: a receptive field is at least 1 pixel")
    fig, axes = closed_figure(1, len(images), size * len(images), size + (0.4 if suptitle else 0))
    edge = plt.get_cmap(KERNEL_CMAP)(0.95)  # cividis' yellow: visible on dark and light photos
    for ax, image, title in zip(axes.flat, images, titles, strict=True):
        image = np.asarray(image)
        if image.dtype != np.uint8 and float(image.max(initial=0.0)) > 1.0:
            image = image / 255.0  # 0..255 floats, e.g. from transfer.resize_images
        ax.imshow(_display_range(image), cmap=IMAGE_CMAP if image.ndim == 2 else None)
        height, width = image.shape[:2]
        left, top = (width - field) / 2 - 0.5, (height - field) / 2 - 0.5
        ax.add_patch(Rectangle((left, top), field, field, fill=False, edgecolor=edge,
                               linewidth=2, linestyle="--",
                               label=f"receptive field {field}x{field} px"))
        ax.set_xlim(min(-0.5, left) - 1, max(width - 0.5, left + field) + 1)
        ax.set_ylim(max(height - 0.5, top + field) + 1, min(-0.5, top) - 1)
        _label_pixels(ax, title)
        ax.legend(fontsize=7, loc="lower center")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def show_image_rows(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]], *,
                    row_labels: Sequence[str] | None = None, suptitle: str = "Images",
                    size: float = 1.4) -> Figure:
    """A grid of small images, one list per row, each with its own title.

    >>> fig = show_image_rows([[np.zeros((4, 4, 3))] * 2], [["a", "b"]], row_labels=["r"])
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    ncols = max(len(row) for row in rows)
    # A fixed layout: the constrained engine takes seconds on a grid of 50 or more images.
    fig, axes = closed_figure(len(rows), ncols, size * ncols + 0.6, size * len(rows) + 0.5,
                              layout=None)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.02, top=1 - 0.6 / (size * len(rows) + 0.5),
                        wspace=0.1, hspace=0.35)
    for r, (images, names) in enumerate(zip(rows, titles, strict=True)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(images):
                ax.set_axis_off()
                continue
            image = np.asarray(images[c])
            ax.imshow(_display_range(image.astype(np.float32) / 255.0 if image.max() > 1.0
                                     else image))
            ax.set_title(names[c], fontsize=7)
        if row_labels:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(suptitle)
    return fig


def show_confident_mistakes(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                            class_names: Sequence[str], indices: Sequence[int], *,
                            title: str = "Confident mistakes (true → predicted)") -> Figure:
    """The images at ``indices`` titled "true → predicted (confidence)"; with no mistake at
    all, a figure that says so (a cell ending with the call always shows something).

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> fig = show_confident_mistakes(np.zeros((2, 4, 4, 3)), np.array([1, 1]), p, ["a", "b"], [0])
    >>> fig.axes[0].get_title()
    'b → a (0.90)'
    >>> fig = show_confident_mistakes(np.zeros((0, 4, 4, 3)), np.array([]), p[:0], ["a"], [])
    >>> fig.axes[0].texts[0].get_text()
    'no mistakes: every image was classified correctly'
    """
    if len(indices) == 0:
        fig, axes = closed_figure(1, 1, 5, 1.2)
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, "no mistakes: every image was classified correctly",
                        ha="center", va="center")
        axes[0, 0].set_title(title)
        return fig
    predicted = probabilities.argmax(axis=1)
    titles = [f"{class_names[labels[i]]} → {class_names[predicted[i]]} "
              f"({probabilities[i, predicted[i]]:.2f})" for i in indices]
    return show_images([images[i] for i in indices], titles, ncols=min(4, len(indices)),
                       size=2.0, suptitle=title)
