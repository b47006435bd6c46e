"""Shared by every figure: colour maps, closed figures, sample photographs, PNG export.

Part of :mod:`tlcnn_helpers.viz`; import the figures from there (``viz.<name>``).
"""

from __future__ import annotations

import functools
import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..convolution import to_grayscale
from ..errors import ModelInputError

IMAGE_CMAP = "gray"


MAP_CMAP = "viridis"


KERNEL_CMAP = "cividis"


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


def class_colours(count: int) -> np.ndarray:
    """``count`` colours from viridis (colour-blind safe, also distinct in grey), RGBA rows.

    >>> class_colours(9).shape
    (9, 4)
    """
    return plt.get_cmap(MAP_CMAP)(np.linspace(0.0, 0.95, count))


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (for image widgets and static outputs).

    >>> figure_to_png(closed_figure(1, 1, 2, 2)[0])[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
