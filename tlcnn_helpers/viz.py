"""Every figure of the course: images, kernels, feature maps, filters, training curves, confusion
matrices, search results.

Every helper returns a closed :class:`matplotlib.figure.Figure`: a notebook cell that ends
with the call shows it exactly once (Jupyter renders the returned figure), scripts and
tests can save it, and nothing piles up in pyplot's figure list. Titles and axis labels
are always set; maps use colour-blind-safe colour maps (``gray`` for photographs,
``viridis`` for feature maps, ``cividis`` for kernels and charts).

Sample photographs come from the files that ship inside scikit-image's wheel
(``cat`` is its "chelsea"), so they need no download.

>>> image = sample_image("coffee", size=64)
>>> image.shape, image.dtype, float(image.max()) <= 1.0
((64, 96, 3), dtype('float32'), True)
>>> fig = show_images([image], ["coffee"], suptitle="A sample")
>>> len(fig.axes)
1

Used by every notebook from 00 on (each figure cell ends with a call to this module);
notebook 07 (what the CNN sees) has its own section at the end.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .convolution import ReceptiveField, to_grayscale
from .errors import ModelInputError

IMAGE_CMAP = "gray"
MAP_CMAP = "viridis"
KERNEL_CMAP = "cividis"

# Course name -> scikit-image loader name; all of these are files inside the wheel.
SAMPLE_IMAGES: dict[str, str] = {
    "cat": "chelsea",
    "astronaut": "astronaut",
    "coffee": "coffee",
    "camera": "camera",
}


def sample_image(name: str, size: int = 128, gray: bool = False) -> np.ndarray:
    """A scikit-image sample photograph, ``size`` pixels high, float32 in [0, 1].

    The width keeps the photo's proportions. ``gray=True`` gives a 2-D image.

    >>> sample_image("cat", size=32, gray=True).shape
    (32, 48)
    >>> scratch = sample_image("cat", size=32); scratch[:] = 0  # yours to change
    >>> float(sample_image("cat", size=32).max()) > 0
    True
    """
    if name not in SAMPLE_IMAGES:
        raise ModelInputError(f"unknown sample image {name!r}: use one of "
                              f"{', '.join(SAMPLE_IMAGES)}")
    image = _resized_sample(name, int(size)).copy()  # a copy: callers may write into it
    return to_grayscale(image) if gray else image


@functools.lru_cache(maxsize=16)
def _resized_sample(name: str, size: int) -> np.ndarray:
    # Resizing a 512-pixel photo with anti-aliasing takes a moment; notebooks ask repeatedly.
    import skimage.data
    from skimage.transform import resize

    image = getattr(skimage.data, SAMPLE_IMAGES[name])()
    width = round(size * image.shape[1] / image.shape[0])
    image = resize(image.astype(np.float32) / 255.0, (size, width), anti_aliasing=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def sample_images(size: int = 128, gray: bool = False) -> dict[str, np.ndarray]:
    """All :data:`SAMPLE_IMAGES`, by name (see :func:`sample_image`).

    >>> list(sample_images(size=16))
    ['cat', 'astronaut', 'coffee', 'camera']
    """
    return {name: sample_image(name, size, gray) for name in SAMPLE_IMAGES}


def closed_figure(nrows: int, ncols: int, width: float, height: float,
                  layout: str | None = "constrained") -> tuple[Figure, np.ndarray]:
    """A new figure and its axes grid, already closed in pyplot: return it from a helper and
    a notebook cell ending with the call shows it once (an open one would show twice).

    >>> fig, axes = closed_figure(1, 2, 6, 3)
    >>> axes.shape, plt.fignum_exists(fig.number)
    ((1, 2), False)
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                             layout=layout)
    plt.close(fig)  # the caller returns it: shown once, never twice
    return fig, axes


def _label_pixels(ax, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("column (pixel)", fontsize=8)
    ax.set_ylabel("row (pixel)", fontsize=8)
    ax.tick_params(labelsize=7)


def _display_range(image: np.ndarray) -> np.ndarray:
    """Floats to [0, 1] for imshow: RGB images are clipped, uint8 scaled."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image, 0.0, 1.0) if image.ndim == 3 else image


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


# ---------------------------------------------------------------------------- datasets
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
    from .data import pick_per_class

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


# ---------------------------------------------------------------------------- training and evaluation
def _series(run: Any, metric: str) -> list[float]:
    """One metric per epoch from a TrainingResult, a Keras History or a dict of lists."""
    if hasattr(run, "curve"):
        return list(run.curve(metric))
    logs = run.history if hasattr(run, "history") and isinstance(run.history, Mapping) else run
    return [float(v) for v in logs.get(metric, [])]


def plot_learning_curves(runs: Mapping[str, Any], *, metrics: Sequence[str] = ("val_accuracy",),
                         against: str = "epoch", validation: bool = False,
                         paper: Mapping[str, float] | None = None,
                         title: str | None = None) -> Figure:
    """One panel per metric, one curve per run: the metric per epoch, or against wall time.

    ``runs`` maps a label to a :class:`~tlcnn_helpers.training.TrainingResult`, a Keras
    ``History`` or a dict of per-epoch lists. ``against="elapsed_seconds"`` puts the wall
    time on the x axis (TrainingResult only). ``validation`` adds each metric's ``val_``
    curve, dashed; ``paper`` draws the paper's figure for a metric as a dotted line.

    >>> fig = plot_learning_curves({"run": {"accuracy": [0.3, 0.5], "val_accuracy": [0.3, 0.4],
    ...                                     "loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}},
    ...                            metrics=("accuracy", "loss"), validation=True)
    >>> [a.get_title() for a in fig.axes], fig.axes[0].get_xlabel()
    (['Accuracy', 'Loss'], 'epoch')
    """
    fig, axes = closed_figure(1, len(metrics), 5.0 * len(metrics) + 1.4, 3.6)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, max(len(runs), 1)))
    markers = ["o", "s", "^", "D"]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, run) in enumerate(runs.items()):
            shown = [(metric, "-", label)]
            if validation and not metric.startswith("val_"):
                shown.append((f"val_{metric}", "--", f"{label}: validation"))
                shown[0] = (metric, "-", f"{label}: training")
            for name, style, text in shown:
                values = _series(run, name)
                if not values:
                    continue
                x = (np.arange(1, len(values) + 1) if against == "epoch"
                     else _series(run, against)[:len(values)])
                ax.plot(x, values, style, color=colours[i], marker=markers[i % 4], label=text)
        if paper and metric in paper:
            ax.axhline(paper[metric], color="grey", linestyle=":",
                       label=f"paper (test): {paper[metric]}")
        ax.set_xlabel("wall time (s)" if against == "elapsed_seconds" else against.replace("_", " "))
        ax.set_ylabel(metric.replace("_", " "))
        if len(metrics) == 1:
            ax.set_title(title or f"{metric.replace('_', ' ')} during training")
        else:
            ax.set_title(metric.replace("_", " ").capitalize())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title and len(metrics) > 1:
        fig.suptitle(title)
    return fig


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], *,
                          title: str = "Confusion matrix") -> Figure:
    """The confusion matrix as a heat map (cividis), each row normalised to shares.

    >>> plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"]).axes[0].get_ylabel()
    'true class'
    """
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, axes = closed_figure(1, 1, 6.2, 5.2)  # shown once by the cell that returns it
    ax = axes[0, 0]
    shown = ax.imshow(shares, cmap="cividis", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    for (row, col), share in np.ndenumerate(shares):
        ax.text(col, row, f"{share:.2f}"[1:] if share < 1 else "1", ha="center", va="center",
                fontsize=7, color="black" if share > 0.5 else "white")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="share of the true class")
    return fig


def plot_per_class_accuracy(accuracies: dict[str, Sequence[float]], class_names: Sequence[str],
                            *, title: str = "Accuracy per class") -> Figure:
    """Grouped bars: one group per class, one bar (hatched differently) per model.

    >>> plot_per_class_accuracy({"m": [0.5, 1.0]}, ["a", "b"]).axes[0].get_xlabel()
    'true class'
    """
    fig, axes = closed_figure(1, 1, 7, 3.4)  # shown once by the cell that returns it
    ax = axes[0, 0]
    width = 0.8 / max(len(accuracies), 1)
    colours = plt.get_cmap("cividis")(np.linspace(0.15, 0.85, max(len(accuracies), 1)))
    hatches = ["", "//", "..", "xx"]
    positions = np.arange(len(class_names))
    for i, (label, values) in enumerate(accuracies.items()):
        ax.bar(positions + i * width, values, width, label=label, color=colours[i],
               hatch=hatches[i % len(hatches)], edgecolor="black", linewidth=0.4)
    ax.set_xticks(positions + width * (len(accuracies) - 1) / 2, class_names, rotation=30)
    ax.set_ylim(0, 1)
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig



def plot_accuracy_bars(accuracies: Mapping[str, float], *, chance: float | None = None,
                       xlabel: str = "accuracy", title: str = "Accuracy") -> Figure:
    """One horizontal bar per variant, in the given order, with the chance level dotted.

    >>> fig = plot_accuracy_bars({"a": 0.5, "b": 0.7}, chance=1 / 9)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['a', 'b']
    """
    fig, axes = closed_figure(1, 1, 7, 1.2 + 0.4 * len(accuracies))
    ax = axes[0, 0]
    colours = plt.get_cmap("cividis")(np.linspace(0.1, 0.9, max(len(accuracies), 1)))
    ax.barh(list(accuracies), list(accuracies.values()), color=colours)
    if chance is not None:
        ax.axvline(chance, color="black", linestyle=":", label=f"chance ({chance:.2f})")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------- searches
def plot_trial_scores(summaries: Mapping[str, Any]) -> Figure:
    """Each trial's validation accuracy and the best so far, one colour per tuner.

    ``summaries`` maps a tuner's name to its
    :class:`~tlcnn_helpers.tuning.SearchSummary` (anything with ``trials``, a list of dicts
    with a ``score``).

    >>> from types import SimpleNamespace
    >>> fig = plot_trial_scores({"random": SimpleNamespace(trials=[{"score": 0.5}])})
    >>> fig.axes[0].get_ylabel()
    'validation accuracy'
    """
    fig, axes = closed_figure(1, 1, 7, 4)
    ax = axes[0, 0]
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(summaries))))
    markers = "osD^v"
    for i, (kind, summary) in enumerate(summaries.items()):
        scores = [t["score"] for t in summary.trials if t["score"] is not None]
        trial_numbers = np.arange(1, len(scores) + 1)
        ax.plot(trial_numbers, scores, markers[i % len(markers)], color=colours[i], alpha=0.6,
                label=f"{kind}: each trial")
        ax.plot(trial_numbers, np.maximum.accumulate(scores) if scores else [], "-",
                color=colours[i], label=f"{kind}: best so far")
    ax.set_title("Hyperparameter search: validation accuracy per trial")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize="small")
    return fig


# ---------------------------------------------------------------------------- notebook 04 (CIFAR-10 CNN)
def plot_learning_rate_schedule(progress: Sequence[float], rates: Mapping[str, Sequence[float]], *,
                                title: str, xlabel: str = "progress through training "
                                                          "(0 = start, 1 = end)") -> Figure:
    """Learning rate(s) against training progress, one curve per named schedule.

    >>> fig = plot_learning_rate_schedule([0.0, 0.5, 1.0], {"constant": [1e-3] * 3}, title="lr")
    >>> fig.axes[0].get_ylabel()
    'learning rate'
    """
    fig, axes = closed_figure(1, 1, 6.0, 3.4)
    ax = axes[0, 0]
    colours = plt.get_cmap(KERNEL_CMAP)(np.linspace(0.0, 0.75, max(len(rates), 1)))
    for colour, style, (name, values) in zip(colours, ("-", "--", ":", "-."), rates.items(),
                                             strict=False):
        ax.plot(progress, values, style, color=colour, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------- notebook 06: transfer across sizes
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


# ---------------------------------------------------------------------------- 07_what_the_cnn_sees
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

    Panels keep their own pixel axes, so the same square looks smaller on a larger image.

    >>> fig = show_maps_with_receptive_field([("32 px", np.zeros((32, 32, 3)), np.eye(2))], 78)
    >>> fig.axes[0].get_xlabel(), len(fig.axes[0].patches)
    ('column (pixel)', 1)
    """
    from matplotlib.patches import Rectangle

    fig, axes = closed_figure(1, len(panels), 3.2 * len(panels), 3.6)
    for ax, (title, image, heat) in zip(axes.flat, panels, strict=True):
        _overlay(ax, image, heat, alpha)
        height, width = np.asarray(image).shape[:2]
        heat = np.asarray(heat)
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        centre_y = (row + 0.5) * height / heat.shape[0] - 0.5
        centre_x = (col + 0.5) * width / heat.shape[1] - 0.5
        half = receptive_field / 2
        ax.add_patch(Rectangle((centre_x - half, centre_y - half), receptive_field,
                               receptive_field, fill=False, edgecolor="white", linestyle="--",
                               linewidth=1.5, label=f"receptive field {receptive_field} px"))
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_xticks([0, width // 2, width - 1])
        ax.set_yticks([0, height // 2, height - 1])
        _label_pixels(ax, f"{title} (map {heat.shape[0]}x{heat.shape[1]})")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(suptitle)
    return fig


def class_colours(count: int) -> np.ndarray:
    """``count`` colours from viridis (colour-blind safe, also distinct in grey), RGBA rows.

    >>> class_colours(9).shape
    (9, 4)
    """
    return plt.get_cmap(MAP_CMAP)(np.linspace(0.0, 0.95, count))


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


# ---------------------------------------------------------------------------- 03_how_a_cnn_learns
def plot_backprop_diagram() -> Figure:
    """Backpropagation in one picture: the forward pass left to right (values), the
    backward pass right to left (gradients, by the chain rule), for a tiny CNN.

    >>> fig = plot_backprop_diagram()
    >>> fig.axes[0].get_title()
    'Backpropagation: values forward, gradients backward'
    """
    fig, axes = closed_figure(1, 1, 9.5, 3.4, layout=None)
    ax = axes[0, 0]
    boxes = [("image\nx", None), ("convolution\nz = w * x + b", "w, b"),
             ("ReLU\na = max(z, 0)", None), ("dense\ns = V a + c", "V, c"),
             ("softmax\np = softmax(s)", None), ("loss\nL = -log p[y]", None)]
    grads = ["", "dL/dz = dL/da · [z > 0]", "dL/da = V^T dL/ds", "dL/ds = p - one_hot(y)",
             "", ""]
    colours = plt.get_cmap(KERNEL_CMAP)(np.linspace(0.25, 0.85, len(boxes)))
    xs = np.arange(len(boxes)) * 1.75
    for x, (label, weights), colour in zip(xs, boxes, colours, strict=True):
        ax.add_patch(plt.Rectangle((x - 0.7, -0.45), 1.4, 0.9, facecolor=colour, alpha=0.35,
                                   edgecolor="black"))
        ax.text(x, 0, label, ha="center", va="center", fontsize=8)
        if weights:
            ax.text(x, 0.75, f"weights {weights}\n(dL/d{weights.split(',')[0]} is what the "
                    "optimizer uses)", ha="center", va="bottom", fontsize=7)
    for left, right, text in zip(xs[:-1], xs[1:], grads[1:], strict=True):
        ax.annotate("", xy=(right - 0.72, 0.2), xytext=(left + 0.72, 0.2),
                    arrowprops={"arrowstyle": "->", "color": "black"})
        ax.annotate("", xy=(left + 0.72, -0.2), xytext=(right - 0.72, -0.2),
                    arrowprops={"arrowstyle": "->", "color": "darkred", "linestyle": "--"})
        if text:
            ax.text((left + right) / 2, -0.75, text, ha="center", va="top", fontsize=7,
                    color="darkred")
    ax.text(xs[0] - 0.7, 1.45, "forward: values (solid arrows)", fontsize=8)
    ax.text(xs[0] - 0.7, -1.45, "backward: gradients, multiplied link by link (dashed)",
            fontsize=8, color="darkred")
    ax.set_xlim(xs[0] - 0.9, xs[-1] + 0.9)
    ax.set_ylim(-1.6, 1.7)
    ax.set_axis_off()
    ax.set_title("Backpropagation: values forward, gradients backward")
    return fig


def plot_lr_range_test(rates: Sequence[float], losses: Sequence[float], *,
                       smoothing: float = 0.9, title: str = "Learning-rate range test") -> Figure:
    """Loss against a learning rate that grows every step, on a log axis; the curve
    smoothed with an exponential moving average (``smoothing``) is drawn over the raw one.

    >>> fig = plot_lr_range_test([1e-3, 1e-2, 1e-1], [2.2, 2.0, 3.0])
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_xlabel()
    ('log', 'learning rate (log scale)')
    """
    losses = np.asarray(losses, dtype=float)
    smoothed, average = [], losses[0]
    for value in losses:
        average = smoothing * average + (1 - smoothing) * value
        smoothed.append(average)
    fig, axes = closed_figure(1, 1, 6.5, 3.6)
    ax = axes[0, 0]
    ax.plot(rates, losses, ":", color="grey", label="loss of each step")
    ax.plot(rates, smoothed, "-", color=plt.get_cmap(KERNEL_CMAP)(0.1), label="smoothed")
    ax.axhline(np.log(9), color="black", linestyle="--", linewidth=1,
               label="ln 9 (a uniform guess)")
    ax.set_xscale("log")
    ax.set_ylim(min(np.nanmin(losses), np.log(9)) - 0.3, np.log(9) + 1.5)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_moving_statistics(steps: Sequence[int], moving_mean: Sequence[float],
                           moving_variance: Sequence[float], *, true_mean: float,
                           true_variance: float, momentum: float,
                           marks: Mapping[str, int] | None = None) -> Figure:
    """BatchNorm's moving mean and variance step by step, against the values they chase
    and the curve ``1 - momentum ** step`` predicts; ``marks`` draws labelled step counts.

    >>> fig = plot_moving_statistics([1, 2], [0.05, 0.1], [1.1, 1.2], true_mean=5,
    ...                              true_variance=9, momentum=0.99)
    >>> [a.get_title() for a in fig.axes]
    ['moving_mean', 'moving_variance']
    """
    steps = np.asarray(steps)
    weight = 1.0 - momentum ** steps
    fig, axes = closed_figure(1, 2, 11, 3.6)
    colour = plt.get_cmap(KERNEL_CMAP)(0.1)
    for ax, values, target, start, name in (
            (axes[0, 0], moving_mean, true_mean, 0.0, "moving_mean"),
            (axes[0, 1], moving_variance, true_variance, 1.0, "moving_variance")):
        ax.plot(steps, values, "-", color=colour, label=f"Keras layer ({name})")
        ax.plot(steps, start + (target - start) * weight, "--", color="grey",
                label=f"{start:g} + ({target:g} - {start:g}) (1 - {momentum}^step)")
        ax.axhline(target, color="black", linestyle=":", linewidth=1,
                   label=f"the data's value ({target:g})")
        for label, step in (marks or {}).items():
            ax.axvline(step, color="darkred", linestyle="-.", linewidth=1)
            ax.text(step, start + 0.05 * (target - start), f" {label}", rotation=90,
                    va="bottom", fontsize=7, color="darkred")
        ax.set_title(name)
        ax.set_xlabel("training step (one batch each)")
        ax.set_ylabel(name.replace("_", " "))
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(f"BatchNorm's moving statistics (momentum {momentum}) start at 0 and 1")
    return fig


def plot_gradient_norms(norms: Mapping[str, Sequence[float]], *,
                        title: str = "Gradient norm of each layer's kernel") -> Figure:
    """One line per model: the norm of the loss gradient of each layer (input side on the
    left), on a log axis so that tiny and large gradients both show.

    >>> fig = plot_gradient_norms({"plain": [1e-5, 1e-5], "residual": [3.0, 2.0]})
    >>> fig.axes[0].get_yscale()
    'log'
    """
    fig, axes = closed_figure(1, 1, 6.5, 3.6)
    ax = axes[0, 0]
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, max(len(norms), 1)))
    for (name, values), colour, marker in zip(norms.items(), colours, "osD^", strict=False):
        ax.plot(np.arange(1, len(values) + 1), values, marker=marker, color=colour, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")


# ---------------------------------------------------------------------------- notebook 05_stl10_tuning
def plot_hyperparameter_scores(trials: Sequence[Mapping[str, Any]], *, x: str = "learning_rate",
                               colour_by: str = "optimizer") -> Figure:
    """Each trial's validation accuracy against one hyperparameter (log axis), coloured by
    another.

    ``trials`` are dicts with a ``score`` and ``hyperparameters`` (the rows of
    :class:`~tlcnn_helpers.tuning.SearchSummary` ``.trials``). Groups are told apart by
    marker as well as colour (cividis: colour-blind safe).

    >>> fig = plot_hyperparameter_scores([
    ...     {"score": 0.4, "hyperparameters": {"learning_rate": 1e-3, "optimizer": "adam"}},
    ...     {"score": 0.2, "hyperparameters": {"learning_rate": 1e-2, "optimizer": "sgd"}}])
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_xlabel()
    ('log', 'learning_rate (log scale)')
    """
    fig, axes = closed_figure(1, 1, 6.4, 3.8)
    ax = axes[0, 0]
    rows = [t for t in trials if t.get("score") is not None]
    groups = sorted({str(t["hyperparameters"].get(colour_by)) for t in rows})
    colours = plt.get_cmap(KERNEL_CMAP)(np.linspace(0.0, 0.85, max(len(groups), 1)))
    markers = "os^Dv"
    for i, group in enumerate(groups):
        chosen = [t for t in rows if str(t["hyperparameters"].get(colour_by)) == group]
        ax.scatter([t["hyperparameters"][x] for t in chosen], [t["score"] for t in chosen],
                   color=colours[i], marker=markers[i % len(markers)], s=45, alpha=0.85,
                   edgecolors="black", linewidths=0.4, label=f"{colour_by} = {group}")
    ax.set_xscale("log")
    ax.set_title(f"Validation accuracy of each trial against its {x}")
    ax.set_xlabel(f"{x} (log scale)")
    ax.set_ylabel("validation accuracy")
    if groups:
        ax.legend(fontsize="small")
    return fig


def plot_scores_by_epochs(summaries: Mapping[str, Any], *,
                          epoch_budget: int | None = None) -> Figure:
    """Each tuner's trials and best validation accuracy so far against the epochs it has spent.

    ``summaries`` maps a tuner's name to its :class:`~tlcnn_helpers.tuning.SearchSummary`
    (``trials``: dicts with ``score`` and ``epochs``, in the order they ran); a dashed line
    marks ``epoch_budget``, the epochs every tuner was allowed.

    >>> from types import SimpleNamespace
    >>> fig = plot_scores_by_epochs({"random": SimpleNamespace(
    ...     trials=[{"score": 0.3, "epochs": 2}, {"score": 0.5, "epochs": 2}])}, epoch_budget=4)
    >>> fig.axes[0].get_xlabel()
    'epochs spent (cumulative)'
    """
    fig, axes = closed_figure(1, 1, 7, 4)
    ax = axes[0, 0]
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(summaries))))
    markers = "osD^v"
    for i, (kind, summary) in enumerate(summaries.items()):
        rows = [t for t in summary.trials if t.get("score") is not None]
        spent = np.cumsum([t.get("epochs") or 0 for t in rows])
        scores = [t["score"] for t in rows]
        ax.plot(spent, scores, markers[i % len(markers)], color=colours[i], alpha=0.6,
                label=f"{kind}: each trial")
        # line styles too: tuners that tie draw the same steps
        ax.step(spent, np.maximum.accumulate(scores) if scores else [], where="post",
                linestyle=("-", "--", ":", "-.")[i % 4], linewidth=2 - 0.4 * (i % 3),
                color=colours[i], label=f"{kind}: best so far")
    if epoch_budget is not None:
        ax.axvline(epoch_budget, color="gray", linestyle="--", label=f"budget: {epoch_budget} epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Tuners on an equal budget of epochs")
    ax.set_xlabel("epochs spent (cumulative)")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize="small")
    return fig


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (for image widgets and static outputs).

    >>> figure_to_png(show_images([np.zeros((2, 2))]))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
