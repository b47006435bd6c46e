"""The set-up every notebook runs after its parameters cell.

>>> session = start_notebook("smoke", "00_setup", environ={}, quiet=True)
>>> session.profile.name, session.in_colab
('smoke', False)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .profiles import Profile, resolve_profile
from .records import record_result

COLAB_ENV_MARKERS = ("COLAB_RELEASE_TAG", "COLAB_GPU")


def in_colab(environ: Mapping[str, str] | None = None, modules: Mapping[str, Any] | None = None) -> bool:
    """True inside Google Colab (its module is imported or its environment markers are set)."""
    env = os.environ if environ is None else environ
    mods = sys.modules if modules is None else modules
    return "google.colab" in mods or any(marker in env for marker in COLAB_ENV_MARKERS)


@dataclass
class NotebookSession:
    """What a notebook knows about its run: name, profile, Colab, start time."""

    name: str
    profile: Profile
    in_colab: bool
    started: float = field(default_factory=time.perf_counter)

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


def start_notebook(profile: str, name: str, *, environ: Mapping[str, str] | None = None,
                   quiet: bool = False) -> NotebookSession:
    """Resolve the profile (``TLCNN_PROFILE`` wins), seed everything, print a summary.

    Seeds Python, NumPy and the Keras backend with the profile's seed so that a re-run
    gives the same numbers.
    """
    chosen = resolve_profile(profile, environ)
    import keras

    keras.utils.set_random_seed(chosen.seed)
    session = NotebookSession(name=name, profile=chosen, in_colab=in_colab(environ))
    if not quiet:
        print(f"{name}: profile {chosen.name!r} ({chosen.description}); "
              f"data: {chosen.data_source}; seed {chosen.seed}")
    return session
