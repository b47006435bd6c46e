"""Helpers for the TLCNN course: CNNs and transfer learning with TensorFlow/Keras 3.

Each module is named after what the course teaches, so a notebook cell tells you where to
look; imports go one way, from plumbing to what a student sees (``tests/test_layers.py``):

1. plumbing: ``errors``, ``settings`` (profiles, folders, ``TLCNN_*``), ``files``, ``compat``
2. ``environment`` (versions, devices, precision), ``memory``, ``records``, ``synthetic``
3. taught: ``data``, ``pipelines``, ``convolution``, ``pooling``, ``models``
4. ``training``, ``evaluation``
5. ``tuning``, ``distributed``, ``transfer``, ``pretrained``
6. what a student sees: ``viz`` (every figure), ``widgets``
7. ``notebook`` (the set-up cell), ``report``, ``exercises`` (one module per notebook)
8. ``cli`` and ``commands`` (``python -m tlcnn_helpers``)

>>> import tlcnn_helpers
>>> tlcnn_helpers.__version__
'0.1.0'
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notices, "no CUDA drivers") would fill every
# notebook's set-up cell; set before TensorFlow is first imported, and only if unset.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
