"""What a student's machine offers: versions, processors, accelerators, Colab.

>>> report = environment_report()
>>> report["backend"], isinstance(report["gpu"], bool)
('tensorflow', True)
>>> version_problems({"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1",
...                   "keras_tuner": "1.4.8"})
[]
"""

from __future__ import annotations

import platform
from typing import Any

from .notebook import in_colab

# The oldest versions the course is tested with (pyproject.toml pins the same ranges).
MINIMUM_VERSIONS = {"python": (3, 10), "tensorflow": (2, 17), "keras": (3, 6),
                    "keras_tuner": (1, 4)}


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def environment_report() -> dict[str, Any]:
    """Versions of Python and the libraries, the devices TensorFlow sees, Colab or not."""
    import keras
    import keras_tuner
    import numpy
    import tensorflow as tf

    from .training import cpu_supports_bfloat16

    devices = [f"{d.device_type}:{d.name.split(':')[-1]}"
               for d in tf.config.list_physical_devices()]
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_tuner": keras_tuner.__version__,
        "numpy": numpy.__version__,
        "backend": keras.backend.backend(),
        "devices": devices,
        "gpu": any(d.startswith("GPU") for d in devices),
        "cpu_bf16": cpu_supports_bfloat16(),
        "colab": in_colab(),
        "machine": platform.machine(),
    }


def version_problems(report: dict[str, Any]) -> list[str]:
    """One sentence per library older than the course needs (empty when all is well)."""
    problems = []
    for name, minimum in MINIMUM_VERSIONS.items():
        if name in report and _version_tuple(report[name]) < minimum:
            wanted = ".".join(map(str, minimum))
            problems.append(f"{name} {report[name]} is older than {wanted}: run `make course` "
                            f"(or `pip install -e .`) to install the course's versions")
    if report.get("backend", "tensorflow") != "tensorflow":
        problems.append(f"Keras runs on the {report['backend']} backend; the course needs "
                        f"TensorFlow: set KERAS_BACKEND=tensorflow before starting Jupyter")
    return problems
