"""Figures of training and evaluation: curves, schedules, confusion, BatchNorm, gradients (notebooks 03, 04, 06).

Part of :mod:`tlcnn_helpers.viz`; import the figures from there (``viz.<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .base import KERNEL_CMAP, closed_figure


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
    >>> all(tick == int(tick) for tick in fig.axes[0].get_xticks())  # whole epochs: no 1.25
    True
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
        if against == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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

    >>> fig = plot_per_class_accuracy({"m": [0.5, 1.0]}, ["a", "b"])
    >>> fig.axes[0].get_xlabel(), [float(y) for y in fig.axes[0].get_ylim()]  # room for the legend
    ('true class', [0.0, 1.15])
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
    ax.set_ylim(0, 1.15)  # the band above 1.0 holds the legend, clear of the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", ncol=max(len(accuracies), 1), frameon=False)
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
    return fig
