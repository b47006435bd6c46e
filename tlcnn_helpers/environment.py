"""What a student's machine offers: versions, processors, accelerators, Colab, and precision.

The one place that decides the Keras dtype policy (:func:`choose_precision`): mixed float16
on a GPU, mixed bfloat16 on a CPU that computes it natively, float32 otherwise.

>>> report = environment_report()
>>> report["backend"], isinstance(report["gpu"], bool)
('tensorflow', True)
>>> version_problems({"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1",
...                   "keras_tuner": "1.4.8"})
[]
>>> choose_precision("auto", devices=["CPU", "GPU"])
'mixed_float16'

Used by notebook 00 (checking the environment), every notebook's set-up cell and the
training recipes (notebook 04).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

COLAB_ENV_MARKERS = ("COLAB_RELEASE_TAG", "COLAB_GPU")
GPU_POLICY = "mixed_float16"
CPU_POLICY = "float32"
CPU_BFLOAT16_POLICY = "mixed_bfloat16"

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



def in_colab(environ: Mapping[str, str] | None = None, modules: Mapping[str, Any] | None = None) -> bool:
    """True inside Google Colab (its module is imported or its environment markers are set)."""
    env = os.environ if environ is None else environ
    mods = sys.modules if modules is None else modules
    return "google.colab" in mods or any(marker in env for marker in COLAB_ENV_MARKERS)


def cpu_supports_bfloat16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (AVX512_BF16 or AMX), from /proc/cpuinfo.

    >>> cpu_supports_bfloat16("flags : fpu avx2 avx512_bf16"), cpu_supports_bfloat16("flags : avx2")
    (True, False)
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no way to tell, so stay with float32
            return False
    flags = set(cpuinfo.lower().split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _device_type(device: Any) -> str:
    return str(getattr(device, "device_type", device)).upper()


def choose_precision(requested: str = "auto", devices: Sequence[Any] | None = None, *,
                     cpu_bfloat16: bool = True) -> str:
    """The Keras dtype policy to compute with; ``"auto"`` picks what is measured to help.

    A GPU: ``"mixed_float16"``. A CPU with native bfloat16 (and ``cpu_bfloat16``):
    ``"mixed_bfloat16"`` (about 1.3 to 1.5x faster per image here, ``benchmarks/README.md``).
    Otherwise ``"float32"``, because emulated bfloat16 is slower than float32. Any other
    value is returned unchanged. ``devices`` are TensorFlow physical devices (or anything
    with ``device_type``, or names); they default to TensorFlow's list.

    >>> choose_precision("float32")
    'float32'
    >>> choose_precision("auto", devices=["CPU"], cpu_bfloat16=False)
    'float32'
    """
    if requested != "auto":
        return requested
    if devices is None:
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    if any(_device_type(d) == "GPU" for d in devices):
        return GPU_POLICY
    return CPU_BFLOAT16_POLICY if cpu_bfloat16 and cpu_supports_bfloat16() else CPU_POLICY
