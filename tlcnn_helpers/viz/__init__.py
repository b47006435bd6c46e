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
the figures are grouped by subject in ``viz/base.py``, ``images.py``, ``training.py``,
``search.py`` and ``interpretation.py``, and all are imported from here.
"""

from .base import (  # noqa: F401
    IMAGE_CMAP,
    KERNEL_CMAP,
    MAP_CMAP,
    SAMPLE_IMAGES,
    class_colours,
    closed_figure,
    figure_to_png,
    sample_image,
    sample_images,
)
from .images import (  # noqa: F401
    draw_kernel,
    plot_lines,
    plot_receptive_fields,
    show_class_samples,
    show_confident_mistakes,
    show_feature_maps,
    show_filters,
    show_image_rows,
    show_images,
    show_kernels,
    show_pair,
    show_receptive_field,
)
from .interpretation import (  # noqa: F401
    plot_embedding_2d,
    show_attribution_maps,
    show_maps_with_receptive_field,
)
from .search import (  # noqa: F401
    plot_hyperparameter_scores,
    plot_scores_by_epochs,
    plot_trial_scores,
)
from .training import (  # noqa: F401
    plot_accuracy_bars,
    plot_backprop_diagram,
    plot_confusion_matrix,
    plot_gradient_norms,
    plot_learning_curves,
    plot_learning_rate_schedule,
    plot_lr_range_test,
    plot_moving_statistics,
    plot_per_class_accuracy,
)
