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
import re
from collections.abc import Iterable
from typing import Any

from .notebook import in_colab

DISTRIBUTION = "tlcnn-helpers"
# environment_report() key -> the distribution pyproject.toml names.
CHECKED_DISTRIBUTIONS = {"tensorflow": "tensorflow", "keras": "keras",
                         "keras_tuner": "keras-tuner", "numpy": "numpy"}
# Only for a checkout run without installing it (no metadata); tests keep it equal to
# pyproject.toml, the one source of the version ranges.
FALLBACK_MINIMUMS = {"python": "3.10", "tensorflow": "2.17", "keras": "3.6",
                     "keras_tuner": "1.4.7", "numpy": "1.26"}


def _lower_bound(specifiers: str) -> str | None:
    """The version a ``>=``, ``~=`` or ``==`` specifier starts from, e.g. ``<3,>=2.17`` -> 2.17."""
    from packaging.specifiers import SpecifierSet

    bounds = [spec.version for spec in SpecifierSet(specifiers or "")
              if spec.operator in (">=", "~=", "==")]
    return bounds[0] if bounds else None


def minimums_from_requirements(requires_python: str | None,
                               requirements: Iterable[str]) -> dict[str, str]:
    """The minimum versions of Python and the checked libraries that these requirements set.

    >>> minimums_from_requirements(">=3.10,<3.14", ["keras<4,>=3.6", 'ruff>=0.6; extra == "dev"'])
    {'python': '3.10', 'keras': '3.6'}
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    minimums = {}
    if requires_python and _lower_bound(requires_python):
        minimums["python"] = _lower_bound(requires_python)
    wanted = {canonicalize_name(dist): key for key, dist in CHECKED_DISTRIBUTIONS.items()}
    for text in requirements:
        requirement = Requirement(text)
        key = wanted.get(canonicalize_name(requirement.name))
        if key and not requirement.marker and _lower_bound(str(requirement.specifier)):
            minimums[key] = _lower_bound(str(requirement.specifier))
    return minimums


def installed_minimums() -> dict[str, str]:
    """Minimum versions from the installed package's metadata (built from pyproject.toml)."""
    from importlib import metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
        requires_python = metadata.metadata(DISTRIBUTION)["Requires-Python"]
    except metadata.PackageNotFoundError:
        return dict(FALLBACK_MINIMUMS)
    return minimums_from_requirements(requires_python, requirements)


# The oldest versions the course is tested with: pyproject.toml's lower bounds.
MINIMUM_VERSIONS = installed_minimums()


def _parse_version(version: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version)
    except InvalidVersion:  # e.g. a local build "2.17.0-custom+abc": compare its leading numbers
        return Version(".".join(re.findall(r"\d+", version)[:3]) or "0")


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
        if name in report and _parse_version(report[name]) < _parse_version(minimum):
            problems.append(f"{name} {report[name]} is older than {minimum}: run `make course` "
                            f"(or `pip install -e .`) to install the course's versions")
    if report.get("backend", "tensorflow") != "tensorflow":
        problems.append(f"Keras runs on the {report['backend']} backend; the course needs "
                        f"TensorFlow: set KERAS_BACKEND=tensorflow before starting Jupyter")
    return problems
