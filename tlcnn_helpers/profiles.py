"""The three run profiles of the course: ``smoke``, ``teach`` and ``paper``.

One source of truth for every budget a notebook or command uses. A notebook's
papermill ``parameters`` cell sets ``PROFILE = "teach"``; the environment variable
``TLCNN_PROFILE`` overrides it (the test-suite and ``make course`` use ``smoke``).

>>> p = get_profile("smoke")
>>> p.data_source, p.cifar.paper_epochs
('synthetic', 2)
>>> resolve_profile("teach", environ={"TLCNN_PROFILE": "smoke"}).name
'smoke'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ProfileError

PROFILE_ENV_VAR = "TLCNN_PROFILE"


@dataclass(frozen=True)
class DataBudget:
    """How much data a profile uses (``None`` means the whole split)."""

    cifar_train: int | None
    cifar_test: int | None
    stl_train: int | None
    stl_test: int | None
    # Synthetic datasets: images per class written to disk in the official formats.
    synthetic_train_per_class: int = 200
    synthetic_test_per_class: int = 60


@dataclass(frozen=True)
class CifarBudget:
    """Notebook 03: training the CIFAR-10 model.

    ``batch_size`` is the fast recipe's; the paper's recipe keeps the paper's batch of
    ``paper_batch_size``. ``time_budget_seconds`` caps each training run (a safety net:
    the epochs are chosen to fit within it on 2 CPU cores); ``None`` never cuts a run.
    """

    paper_epochs: int
    fast_epochs: int
    batch_size: int = 64
    time_budget_seconds: float | None = None
    paper_batch_size: int = 64


@dataclass(frozen=True)
class TuningBudget:
    """Notebook 04: the keras-tuner searches on STL-10."""

    max_trials: int
    epochs_per_trial: int
    retrain_epochs: int
    hyperband_max_epochs: int = 3
    batch_size: int = 32
    # Training images per class used by the search and the retraining (None: all of them).
    images_per_class: int | None = None
    # The hyperparameter space: "paper" (the paper's six), or "small" (same six, tiny models).
    search_space: str = "paper"


@dataclass(frozen=True)
class TransferBudget:
    """Notebook 05: moving the CIFAR model to 96x96 images."""

    source_epochs: int
    head_epochs: int
    finetune_epochs: int
    scratch_epochs: int
    recalibration_images: int = 512
    resolutions: tuple[int, ...] = (32, 48, 64, 96)
    batch_size: int = 64
    # Images per class (None: the whole split) for STL-10 fine-tuning / from-scratch training,
    # the STL-10 test evaluation, and the CIFAR test images of the resolution sweep.
    target_train_per_class: int | None = None
    target_test_per_class: int | None = None
    sweep_test_per_class: int | None = None


@dataclass(frozen=True)
class Profile:
    """All budgets of one profile; see :func:`get_profile`."""

    name: str
    description: str
    data_source: str  # "synthetic", or "official": the real files in their official formats
    seed: int
    data: DataBudget
    cifar: CifarBudget
    tuning: TuningBudget
    transfer: TransferBudget

    @property
    def is_synthetic(self) -> bool:
        return self.data_source == "synthetic"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="synthetic data, tiny budgets: the whole course in a few minutes on 2 CPU cores",
        data_source="synthetic",
        seed=42,
        data=DataBudget(cifar_train=None, cifar_test=None, stl_train=None, stl_test=None,
                        synthetic_train_per_class=200, synthetic_test_per_class=60),
        # Batches of 16 for the paper's recipe: 2 epochs of 64 are only 56 steps, too few for
        # BatchNorm's moving statistics (momentum 0.99) to settle: it scored 0.15, not 0.6.
        cifar=CifarBudget(paper_epochs=2, fast_epochs=2, batch_size=64, paper_batch_size=16),
        tuning=TuningBudget(max_trials=2, epochs_per_trial=1, retrain_epochs=2,
                            hyperband_max_epochs=2, batch_size=32, images_per_class=40,
                            search_space="small"),
        transfer=TransferBudget(source_epochs=2, head_epochs=1, finetune_epochs=1,
                                scratch_epochs=2, recalibration_images=64,
                                target_train_per_class=20, target_test_per_class=20,
                                sweep_test_per_class=6),
    ),
    "teach": Profile(
        name="teach",
        description="real data, budgets for about 5 minutes a notebook on a 2-core laptop CPU",
        data_source="official",
        seed=42,
        data=DataBudget(cifar_train=None, cifar_test=None, stl_train=None, stl_test=None),
        # benchmarks/README.md: 40-47 CPU s an epoch for either model; the fast recipe's
        # schedule is squeezed into the 180 s budget when the machine is slower.
        cifar=CifarBudget(paper_epochs=2, fast_epochs=8, batch_size=128,
                          time_budget_seconds=180),
        # benchmarks/README.md: about 5-6 minutes on 2 cores with 150 images per class.
        tuning=TuningBudget(max_trials=4, epochs_per_trial=2, retrain_epochs=5,
                            hyperband_max_epochs=4, batch_size=64, images_per_class=150),
        transfer=TransferBudget(source_epochs=5, head_epochs=2, finetune_epochs=2,
                                scratch_epochs=4, recalibration_images=1024,
                                target_train_per_class=100, target_test_per_class=200,
                                sweep_test_per_class=100),
    ),
    "paper": Profile(
        name="paper",
        description="the paper's own settings (30 epochs); hours on a CPU, minutes on a GPU",
        data_source="official",
        seed=42,
        data=DataBudget(cifar_train=None, cifar_test=None, stl_train=None, stl_test=None),
        cifar=CifarBudget(paper_epochs=30, fast_epochs=30, batch_size=64),
        tuning=TuningBudget(max_trials=10, epochs_per_trial=10, retrain_epochs=30,
                            hyperband_max_epochs=30, batch_size=64),
        transfer=TransferBudget(source_epochs=30, head_epochs=5, finetune_epochs=10,
                                scratch_epochs=15, recalibration_images=2048),
    ),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    >>> get_profile("paper").cifar.paper_epochs
    30
    """
    key = str(name).strip().lower()
    if key not in PROFILES:
        valid = ", ".join(PROFILES)
        raise ProfileError(
            f"unknown profile {name!r}: valid profiles are {valid}. "
            f"Set PROFILE in the notebook's parameters cell or {PROFILE_ENV_VAR} to one of them."
        )
    return PROFILES[key]


def resolve_profile(notebook_value: str, environ: Mapping[str, str] | None = None) -> Profile:
    """The profile a notebook runs: ``TLCNN_PROFILE`` if set, else its ``PROFILE`` value.

    >>> resolve_profile("smoke", environ={}).name
    'smoke'
    """
    env = os.environ if environ is None else environ
    chosen = env.get(PROFILE_ENV_VAR) or notebook_value
    return get_profile(chosen)
