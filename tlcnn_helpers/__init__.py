"""Helpers for the TLCNN course: CNNs and transfer learning with TensorFlow/Keras 3.

Notebooks stay thin and call into small modules, one idea each:
``profiles`` (smoke/teach/paper budgets), ``data`` and ``synthetic`` (datasets in their
official formats), ``pipelines`` (tf.data), ``ops`` (NumPy convolution and pooling),
``models``, ``training``, ``tuning``, ``transfer``, ``records`` and ``report`` (metrics and
the course report), ``viz``, ``widgets`` and ``exercises`` (what a student sees and does),
and ``cli`` (``python -m tlcnn_helpers``).

>>> import tlcnn_helpers
>>> tlcnn_helpers.__version__
'0.1.0'
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notices, "no CUDA drivers") would fill every
# notebook's set-up cell; set before TensorFlow is first imported, and only if unset.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
