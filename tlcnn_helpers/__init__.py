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

__version__ = "0.1.0"
