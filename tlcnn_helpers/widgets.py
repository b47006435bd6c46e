"""Interactive explorers (ipywidgets) for convolution and pooling.

An explorer is a small object holding its controls, the array it last computed
(``.output``) and what it shows: a picture (an ``Image`` widget with the input and the
output side by side) and a text line with the output shape. Moving a control recomputes
and redraws at once. Displayed in Jupyter it is the live widget; a non-interactive run
(papermill, nbval, ``make course``) stores the first picture as a plain PNG, because the
explorer renders it when it is built and never waits for input.

>>> explorer = convolution_explorer(image_size=32)
>>> explorer.output.shape
(30, 46)
>>> explorer.controls["stride"].value = 2
>>> explorer.output.shape, explorer.summary.value.startswith("Output shape: (15, 23)")
((15, 23), True)

Used by notebooks 01 (the convolution explorer) and 02 (the pooling explorer).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from .convolution import CLASSIC_KERNELS, PADDINGS, conv2d, to_grayscale
from .errors import ModelInputError, TLCNNError
from .pooling import pool2d
from .viz import IMAGE_CMAP, MAP_CMAP, figure_to_png, sample_images, show_pair

CUSTOM_KERNEL = "custom (edit below)"
PICTURE_DPI = 72
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def _grayscale_images(images: Mapping[str, np.ndarray] | None, image_size: int
                      ) -> dict[str, np.ndarray]:
    chosen = sample_images(image_size, gray=True) if images is None else dict(images)
    if not chosen:
        raise ModelInputError("images is empty: pass a dict of name -> image, or None for "
                              "the scikit-image samples")
    return {name: to_grayscale(image) for name, image in chosen.items()}


class _Explorer:
    """Shared plumbing: controls, a picture, a summary line, redraw on every change."""

    css_class = "tlcnn-explorer"

    def __init__(self, images: dict[str, np.ndarray], controls: dict[str, widgets.Widget],
                 layout_rows: list[list[str]]):
        self.images = images
        self.controls = controls
        self.output: np.ndarray = np.empty((0, 0))
        self.png = b""  # the picture shown, as PNG bytes
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.summary = widgets.HTML()
        self.picture.add_class(f"{self.css_class}-picture")
        self.summary.add_class(f"{self.css_class}-summary")
        rows = [widgets.HBox([controls[name] for name in row]) for row in layout_rows]
        self.widget = widgets.VBox([*rows, *self._extra_rows(), self.picture, self.summary])
        self.widget.add_class(self.css_class)
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    def _extra_rows(self) -> list[widgets.Widget]:
        return []

    def _on_change(self, change: dict[str, Any]) -> None:
        self.update()

    @property
    def image(self) -> np.ndarray:
        """The input image currently chosen."""
        return self.images[self.controls["image"].value]

    def compute(self) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def figure(self) -> Figure:
        raise NotImplementedError

    def update(self) -> None:
        """Recompute the output from the controls and redraw the picture and the text."""
        try:
            self.output = self.compute()
        except TLCNNError as err:  # e.g. a window larger than the image: say so, keep going
            self.summary.value = f"Cannot compute this: {err}"
            return
        self.png = figure_to_png(self.figure(), dpi=PICTURE_DPI)
        self.picture.value = self.png
        self.summary.value = self.describe()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # Live Jupyter renders the widget; a saved, non-interactive run keeps the PNG.
        if hasattr(self.widget, "_repr_mimebundle_"):  # ipywidgets 8
            bundle = self.widget._repr_mimebundle_(**kwargs)
            bundle = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        else:  # ipywidgets 7 (Colab's) displays through _ipython_display_ instead
            bundle = {"text/plain": repr(self.widget),
                      WIDGET_VIEW_MIME: {"version_major": 2, "version_minor": 0,
                                         "model_id": self.widget.model_id}}
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        return bundle


class ConvolutionExplorer(_Explorer):
    """Pick an image, a preset or hand-edited 3x3 kernel, a stride and a padding.

    Controls (``.controls``, descriptions in brackets): ``image`` [Image], ``kernel``
    [Kernel], ``stride`` [Stride], ``padding`` [Padding] and ``k00`` ... ``k22`` [k[0,0]...]
    for the nine kernel values. Editing a value switches the preset to "custom".
    """

    css_class = "tlcnn-conv-explorer"

    def __init__(self, images: Mapping[str, np.ndarray] | None = None, image_size: int = 128,
                 kernel: str = "sobel vertical edges"):
        if kernel not in CLASSIC_KERNELS:
            raise ModelInputError(f"kernel={kernel!r}: use one of {', '.join(CLASSIC_KERNELS)}")
        chosen = _grayscale_images(images, image_size)
        self._syncing = False
        controls: dict[str, widgets.Widget] = {
            "image": widgets.Dropdown(options=list(chosen), description="Image"),
            "kernel": widgets.Dropdown(options=[*CLASSIC_KERNELS, CUSTOM_KERNEL], value=kernel,
                                       description="Kernel"),
            "stride": widgets.IntSlider(value=1, min=1, max=4, description="Stride",
                                        continuous_update=False),
            "padding": widgets.Dropdown(options=list(PADDINGS), value="valid",
                                        description="Padding"),
        }
        for (row, col), value in np.ndenumerate(CLASSIC_KERNELS[kernel]):
            controls[f"k{row}{col}"] = widgets.FloatText(
                value=float(value), description=f"k[{row},{col}]", step=0.1,
                style={"description_width": "40px"}, layout=widgets.Layout(width="130px"))
        self._cells = [name for name in controls if name.startswith("k") and name != "kernel"]
        super().__init__(chosen, controls, [["image", "kernel"], ["stride", "padding"]])

    def _extra_rows(self) -> list[widgets.Widget]:
        grid = [widgets.HBox([self.controls[f"k{row}{col}"] for col in range(3)])
                for row in range(3)]
        return [widgets.HTML("3x3 kernel (choose a preset or edit the values):"), *grid]

    @property
    def kernel(self) -> np.ndarray:
        """The 3x3 kernel in the value boxes."""
        return np.array([[self.controls[f"k{r}{c}"].value for c in range(3)] for r in range(3)],
                        dtype=np.float32)

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        owner = change["owner"]
        self._syncing = True
        try:
            if owner is self.controls["kernel"] and change["new"] in CLASSIC_KERNELS:
                for (row, col), value in np.ndenumerate(CLASSIC_KERNELS[change["new"]]):
                    self.controls[f"k{row}{col}"].value = float(value)
            elif owner in (self.controls[name] for name in self._cells):
                self.controls["kernel"].value = CUSTOM_KERNEL
        finally:
            self._syncing = False
        self.update()

    def compute(self) -> np.ndarray:
        return conv2d(self.image, self.kernel, stride=self.controls["stride"].value,
                      padding=self.controls["padding"].value)

    def describe(self) -> str:
        c = self.controls
        return (f"Output shape: {self.output.shape} from input {self.image.shape}: kernel "
                f"'{c['kernel'].value}' 3x3, stride {c['stride'].value}, padding "
                f"'{c['padding'].value}'; values {self.output.min():.2f} to "
                f"{self.output.max():.2f}")

    def figure(self) -> Figure:
        c = self.controls
        return show_pair(self.image, self.output,
                         [f"input '{c['image'].value}' {self.image.shape}",
                          f"feature map {self.output.shape}"],
                         cmaps=(IMAGE_CMAP, MAP_CMAP),
                         suptitle=f"{c['kernel'].value}, stride {c['stride'].value}, "
                                  f"padding '{c['padding'].value}'")


class PoolingExplorer(_Explorer):
    """Pick an image, a window size, a stride, max or average, and a padding.

    Controls: ``image`` [Image], ``pool_size`` [Window], ``stride`` [Stride], ``mode``
    [Mode], ``padding`` [Padding].
    """

    css_class = "tlcnn-pool-explorer"

    def __init__(self, images: Mapping[str, np.ndarray] | None = None, image_size: int = 128):
        chosen = _grayscale_images(images, image_size)
        controls: dict[str, widgets.Widget] = {
            "image": widgets.Dropdown(options=list(chosen), description="Image"),
            "mode": widgets.Dropdown(options=["max", "average"], value="max",
                                     description="Mode"),
            "pool_size": widgets.IntSlider(value=2, min=1, max=8, description="Window",
                                           continuous_update=False),
            "stride": widgets.IntSlider(value=2, min=1, max=8, description="Stride",
                                        continuous_update=False),
            "padding": widgets.Dropdown(options=list(PADDINGS), value="valid",
                                        description="Padding"),
        }
        super().__init__(chosen, controls, [["image", "mode"], ["pool_size", "stride"],
                                            ["padding"]])

    def compute(self) -> np.ndarray:
        c = self.controls
        return pool2d(self.image, c["pool_size"].value, c["stride"].value, c["padding"].value,
                      mode=c["mode"].value)

    def describe(self) -> str:
        c = self.controls
        kept = self.output.size / self.image.size
        return (f"Output shape: {self.output.shape} from input {self.image.shape}: "
                f"{c['mode'].value} pooling, window {c['pool_size'].value}, stride "
                f"{c['stride'].value}, padding '{c['padding'].value}'; {kept:.0%} of the "
                "values remain")

    def figure(self) -> Figure:
        c = self.controls
        return show_pair(self.image, self.output,
                         [f"input '{c['image'].value}' {self.image.shape}",
                          f"pooled {self.output.shape}"],
                         cmaps=(IMAGE_CMAP, IMAGE_CMAP),
                         suptitle=f"{c['mode'].value} pooling, window {c['pool_size'].value}, "
                                  f"stride {c['stride'].value}")


def convolution_explorer(images: Mapping[str, np.ndarray] | None = None, image_size: int = 128,
                         kernel: str = "sobel vertical edges") -> ConvolutionExplorer:
    """Build the convolution explorer; show it by ending a cell with it.

    ``images``: name -> image (any size, gray or RGB, uint8 or float); default: the
    scikit-image samples (cat, astronaut, coffee, camera), ``image_size`` pixels high.

    >>> round(convolution_explorer(image_size=32, kernel="box blur").controls["k11"].value, 3)
    0.111
    """
    return ConvolutionExplorer(images, image_size, kernel)


def pooling_explorer(images: Mapping[str, np.ndarray] | None = None,
                     image_size: int = 128) -> PoolingExplorer:
    """Build the pooling explorer; show it by ending a cell with it.

    >>> pooling_explorer(image_size=32).output.shape
    (16, 24)
    """
    return PoolingExplorer(images, image_size)
