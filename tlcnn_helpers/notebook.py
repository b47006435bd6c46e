"""The set-up every notebook runs after its parameters cell.

>>> session = start_notebook("smoke", "00_setup", environ={}, quiet=True)
>>> session.profile.name, session.in_colab
('smoke', False)

The repository's address lives in :data:`REPO_URL` only; the notebooks' "Open in Colab"
badges and their Colab install line are derived from it (tests/test_colab.py checks them).

>>> colab_badge_url("01_convolution.ipynb")
'https://colab.research.google.com/github/tlcnn-course/tlcnn/blob/main/notebooks/01_convolution.ipynb'

Used by every notebook's set-up cell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .environment import CPU_POLICY, GPU_POLICY, choose_precision, in_colab
from .records import record_result
from .settings import OFFLINE_ENV_VAR, Profile, resolve_profile

# The one place the repository's address is written; badges and install lines follow it.
REPO_URL = "https://github.com/tlcnn-course/tlcnn"
REPO_BRANCH = "main"
PACKAGE_NAME = "tlcnn-helpers"
# What the set-up cell gives to ``%pip install -q --no-deps`` inside Colab.
COLAB_PIP_SPEC = f"{PACKAGE_NAME} @ git+{REPO_URL}"
# Colab preinstalls every other dependency, often newer than pyproject.toml's ranges
# (TensorFlow, Keras, ...). ``--no-deps`` keeps pip from downgrading them; only what Colab
# lacks is named (tests/test_colab.py keeps this range equal to pyproject.toml's).
COLAB_EXTRA_REQUIREMENTS = ("keras-tuner>=1.4.7,<1.5",)


def colab_badge_url(notebook_file: str) -> str:
    """The "Open in Colab" link of a notebook in the repository's ``notebooks/`` folder.

    >>> colab_badge_url("04_cifar10_cnn.ipynb").endswith("/blob/main/notebooks/04_cifar10_cnn.ipynb")
    True
    """
    owner_and_name = REPO_URL.removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{owner_and_name}/blob/{REPO_BRANCH}"
            f"/notebooks/{notebook_file}")


def colab_badge_markdown(notebook_file: str) -> str:
    """The badge line every notebook's first cell carries.

    >>> colab_badge_markdown("x.ipynb").startswith("[![Open In Colab]")
    True
    """
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_badge_url(notebook_file)})")


SETUP_CELL_TEMPLATE = """\
# Set-up: in Colab, install the course helpers first (this line never runs elsewhere).
import sys

if "google.colab" in sys.modules:
    %pip install -q --no-deps {requirements}

from tlcnn_helpers.notebook import start_notebook

session = start_notebook(PROFILE, "{name}")
P = session.profile"""


def setup_cell_source(name: str) -> str:
    """The set-up cell (CONTRIBUTING.md) of the notebook called ``name``, install line included.

    >>> print(setup_cell_source("01_convolution").splitlines()[4])
        %pip install -q --no-deps "tlcnn-helpers @ git+https://github.com/tlcnn-course/tlcnn" "keras-tuner>=1.4.7,<1.5"
    """
    requirements = " ".join(f'"{r}"' for r in (COLAB_PIP_SPEC, *COLAB_EXTRA_REQUIREMENTS))
    return SETUP_CELL_TEMPLATE.format(requirements=requirements, name=name)


@dataclass
class NotebookSession:
    """What a notebook knows about its run: name, profile, Colab, start time."""

    name: str
    profile: Profile
    in_colab: bool
    started: float = field(default_factory=time.perf_counter)
    precision: str = CPU_POLICY
    gpus: tuple[str, ...] = ()

    @property
    def data_source(self) -> str:
        return self.profile.data_source

    def elapsed(self) -> float:
        """Seconds since the set-up cell ran."""
        return time.perf_counter() - self.started

    def record(self, experiment: str, metric: str, value: float, *,
               paper_value: float | None = None, wall_seconds: float | None = None) -> dict:
        """Record a metric for the course report (see :mod:`tlcnn_helpers.records`)."""
        return record_result(self.name, experiment, metric, value, profile=self.profile.name,
                             data_source=self.data_source, paper_value=paper_value,
                             wall_seconds=wall_seconds)


def cell_order_hint(error: NameError) -> str:
    """What to tell a student whose cell used a name that no cell has defined yet.

    >>> hint = cell_order_hint(NameError("name 'model' is not defined", name="model"))
    >>> hint.startswith("Hint: `model` is made by an earlier cell"), "Run All Above" in hint
    (True, True)
    """
    name = getattr(error, "name", None) or str(error).split("'")[1 if "'" in str(error) else 0]
    return (f"Hint: `{name}` is made by an earlier cell of this notebook that has not run in "
            f"this kernel (cells ran out of order, or the kernel restarted). Run the cells above "
            f"this one first, from the set-up cell down: Run > Run All Above Selected Cell. "
            f"If no cell makes `{name}`, check its spelling.")


def install_cell_order_hint(shell: Any = None) -> bool:
    """Make a ``NameError`` in a notebook cell end with :func:`cell_order_hint`.

    Returns False outside IPython (plain Python, tests), where there is nothing to hook.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False

    def show_with_hint(shell, etype, value, tb, tb_offset=None):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        print(cell_order_hint(value))

    shell.set_custom_exc((NameError,), show_with_hint)
    return True


_OFFLINE_SET_BY_SMOKE = "smoke profile"


def _follow_profile_offline(profile: Profile, environ: Mapping[str, str]) -> None:
    """A synthetic profile never needs the network: go offline for it, and back after it.

    Only a value this function set is ever removed; one the student set stays.
    """
    if not isinstance(environ, MutableMapping):
        return
    if profile.is_synthetic:
        environ.setdefault(OFFLINE_ENV_VAR, _OFFLINE_SET_BY_SMOKE)
    elif environ.get(OFFLINE_ENV_VAR) == _OFFLINE_SET_BY_SMOKE:
        del environ[OFFLINE_ENV_VAR]


def start_notebook(profile: str, name: str, *, environ: Mapping[str, str] | None = None,
                   quiet: bool = False, devices: Sequence[Any] | None = None) -> NotebookSession:
    """Resolve the profile (``TLCNN_PROFILE`` wins), seed everything, pick the precision.

    Seeds Python, NumPy and the Keras backend with the profile's seed, so that a re-run
    gives the same numbers, except where a time budget stops training (notebook 04's fast
    recipe in the ``teach`` profile): how far a budgeted run gets depends on the machine's
    speed and load. With a GPU (Colab's, for instance) Keras computes in mixed
    float16, which is about twice as fast there; on a CPU the global policy is left alone
    (float32 unless ``training`` chooses bfloat16). ``devices`` defaults to TensorFlow's
    physical devices. A synthetic profile (``smoke``) sets ``TLCNN_OFFLINE``, so nothing in
    it ever tries the network; choosing a real-data profile again lifts that. From here on,
    a cell that uses a name an earlier cell should have made says which cells to run first.

    >>> start_notebook("smoke", "03_demo", environ={}, quiet=True, devices=["CPU"]).precision
    'float32'
    """
    chosen = resolve_profile(profile, environ)
    _follow_profile_offline(chosen, os.environ if environ is None else environ)
    import keras

    keras.utils.set_random_seed(chosen.seed)
    if devices is None:
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    gpus = tuple(getattr(d, "name", str(d)) for d in devices
                 if str(getattr(d, "device_type", d)).upper() == "GPU")
    precision = choose_precision("auto", devices, cpu_bfloat16=False)
    if precision == GPU_POLICY:
        keras.mixed_precision.set_global_policy(GPU_POLICY)
    session = NotebookSession(name=name, profile=chosen, in_colab=in_colab(environ),
                              precision=precision, gpus=gpus)
    install_cell_order_hint()
    if not quiet:
        where = "Colab" if session.in_colab else "local"
        print(f"{name}: profile {chosen.name!r} ({chosen.description}); "
              f"data: {chosen.data_source}; seed {chosen.seed}; {where}")
        if gpus:
            print(f"GPU found ({', '.join(gpus)}): Keras computes in mixed float16.")
        else:
            print("No GPU found: computing on the CPU.")
    return session
