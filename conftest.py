"""Test-session defaults: smoke profile, and data, models and records in a temporary folder.

Set here (not only in the Makefile) so a bare ``pytest`` behaves like ``make test``; the
kernels that papermill and nbval start inherit these variables.
"""

import os
import tempfile

_SESSION_DIR = tempfile.mkdtemp(prefix="tlcnn-tests-")
os.environ.setdefault("TLCNN_PROFILE", "smoke")
os.environ.setdefault("TLCNN_DATA_DIR", os.path.join(_SESSION_DIR, "data"))
os.environ.setdefault("TLCNN_MODELS_DIR", os.path.join(_SESSION_DIR, "models"))
os.environ.setdefault("TLCNN_RECORDS_DIR", os.path.join(_SESSION_DIR, "records-nbval"))
os.environ.setdefault("TLCNN_TUNING_DIR", os.path.join(_SESSION_DIR, "tuning"))
os.environ.setdefault("TLCNN_LOGS_DIR", os.path.join(_SESSION_DIR, "logs"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
