"""Figures of dataset images: a grid of examples per class, side by side for two datasets.

>>> import numpy as np, matplotlib
>>> matplotlib.use("Agg")
>>> images = np.zeros((18, 32, 32, 3), np.uint8); labels = np.repeat(np.arange(9), 2)
>>> fig = show_class_samples([("CIFAR-10", images, labels)], ["c%d" % i for i in range(9)], per_class=2)
>>> len(fig.axes)
18
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pick_per_class(labels: np.ndarray, num_classes: int, per_class: int, seed: int = 0
                   ) -> list[np.ndarray]:
    """Indices of up to ``per_class`` examples of each class, the same for a seed.

    >>> [idx.tolist() for idx in pick_per_class(np.array([0, 1, 0, 1]), 2, 1)]
    [[2], [3]]
    """
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(num_classes):
        where = np.flatnonzero(labels == label)
        picks.append(np.sort(rng.choice(where, size=min(per_class, len(where)), replace=False)))
    return picks


def show_class_samples(datasets: Sequence[tuple[str, np.ndarray, np.ndarray]],
                       class_names: Sequence[str], per_class: int = 4, seed: int = 0):
    """One row per class, ``per_class`` images from each dataset in turn; returns the figure.

    ``datasets`` is a list of ``(title, images, labels)``; images of different sizes are
    shown at the same display size, so a 32x32 CIFAR image and a 96x96 STL image of the
    same class sit next to each other.
    """
    import matplotlib.pyplot as plt

    columns = per_class * len(datasets)
    fig, axes = plt.subplots(len(class_names), columns, squeeze=False,
                             figsize=(1.1 * columns, 1.1 * len(class_names)))
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
