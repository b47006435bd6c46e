"""Figures of hyperparameter searches (notebook 05).

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
