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
import re as _re
import sys as _sys

# TensorFlow's C++ start-up chatter (oneDNN notices, "no CUDA drivers") would fill every
# notebook's set-up cell; set before TensorFlow is first imported, and only if unset.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC's (keras-tuner's chief) info lines

# Lines TensorFlow writes before its logging starts, which no variable silences (absl's
# pre-init warning, I/W lines, "failed call to cuInit" on a machine without a GPU driver).
_STARTUP_NOISE = _re.compile(r"WARNING: All log messages before absl::InitializeLog|[IW]\d{4} "
                             r"|E\d{4} .*cuInit|To enable the following instructions")


class _QuietTensorFlowImport:
    """Import finder: the first ``import tensorflow`` (through Keras too) runs with file
    descriptor 2 captured, then replays whatever is not start-up noise to stderr. Device
    discovery runs inside it too, as that is where cuInit complains; a real GPU still works.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        import importlib.machinery

        _sys.meta_path.remove(self)  # once only
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _quietly(spec.loader.exec_module)
        return spec


def _quietly(exec_module):
    def run(module):
        import tempfile

        _sys.stderr.flush()
        saved = _os.dup(2)
        with tempfile.TemporaryFile() as captured:
            _os.dup2(captured.fileno(), 2)
            try:
                exec_module(module)
                module.config.list_physical_devices()
            finally:
                _os.dup2(saved, 2)
                _os.close(saved)
                captured.seek(0)
                text = captured.read().decode(errors="replace")
                kept = [line for line in text.splitlines(True) if not _STARTUP_NOISE.match(line)]
                if kept:
                    _sys.stderr.write("".join(kept))
    return run


if "tensorflow" not in _sys.modules:
    _sys.meta_path.insert(0, _QuietTensorFlowImport())

__version__ = "0.1.0"
