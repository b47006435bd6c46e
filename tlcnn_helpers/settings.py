"""Settings: the three run profiles, the course's folders and every ``TLCNN_*`` variable.

One source of truth for every budget a notebook or command uses, and for where files go.
A notebook's papermill ``parameters`` cell sets ``PROFILE = "teach"``; the environment
variable ``TLCNN_PROFILE`` overrides it (the test-suite and ``make course`` use ``smoke``).

=====================  ==========================================  =====================
variable               what it sets                                default
=====================  ==========================================  =====================
``TLCNN_PROFILE``      the profile, over the notebook's cell       the cell's value
``TLCNN_DATA_DIR``     where datasets are looked for               ``data/``
``TLCNN_MODELS_DIR``   where notebooks save trained models         ``models/``
``TLCNN_RECORDS_DIR``  where metrics are recorded                  ``build/records/``
``TLCNN_TUNING_DIR``   where searches keep their state             ``tuning/``
``TLCNN_LOGS_DIR``     where TensorBoard logs go                   ``logs/``
``TLCNN_OFFLINE``      never try the network                       unset
=====================  ==========================================  =====================

>>> p = get_profile("smoke")
>>> p.data_source, p.cifar.paper_epochs
('synthetic', 2)
>>> resolve_profile("teach", environ={"TLCNN_PROFILE": "smoke"}).name
'smoke'
>>> default_data_dir(environ={"TLCNN_DATA_DIR": "/tmp/my-data"}).as_posix()
'/tmp/my-data'

Used by every notebook's set-up cell (through :mod:`tlcnn_helpers.notebook`) and by every
command of ``python -m tlcnn_helpers``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ProfileError

PROFILE_ENV_VAR = "TLCNN_PROFILE"
DATA_DIR_ENV_VAR = "TLCNN_DATA_DIR"
RECORDS_DIR_ENV_VAR = "TLCNN_RECORDS_DIR"
MODELS_DIR_ENV_VAR = "TLCNN_MODELS_DIR"
TUNING_DIR_ENV_VAR = "TLCNN_TUNING_DIR"
LOGS_DIR_ENV_VAR = "TLCNN_LOGS_DIR"
OFFLINE_ENV_VAR = "TLCNN_OFFLINE"
# Named here, not in tuning, so `tune --help` lists them without importing TensorFlow.
TUNER_KINDS = ("random", "hyperband", "bayesian")
SEARCH_SPACE_NAMES = ("paper", "small")


# ---------------------------------------------------------------------------- profiles
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
    """Notebook 04: training the CIFAR-10 model.

    ``batch_size`` is the fast recipe's; the paper's recipe keeps the paper's batch of
    ``paper_batch_size``. ``time_budget_seconds`` caps each training run (a safety net:
    the epochs are chosen to fit within it on 2 CPU cores); ``None`` never cuts a run.
    ``best_epochs`` and ``best_batch_size``: the ``best`` recipe's schedule (command line
    only; at batch 256 its 20 epochs take about 30 minutes on 2 cores, ``benchmarks/README.md``).
    """

    paper_epochs: int
    fast_epochs: int
    batch_size: int = 64
    time_budget_seconds: float | None = None
    paper_batch_size: int = 64
    best_epochs: int = 20
    best_batch_size: int = 256


# Hyperband keeps the best 1/factor of each round. keras-tuner's default, 3, runs 5 trials of
# 2 epochs (max_epochs 4) before its first promotion: more than the teach budget holds.
HYPERBAND_FACTOR = 2


@dataclass(frozen=True)
class TuningBudget:
    """Notebook 05: the keras-tuner searches on STL-10.

    The paper gives none of these numbers but the 30 retraining epochs: trials, epochs per
    trial, batch size and images per class are the course's reconstruction. The tuners are
    compared on the same number of epochs, :attr:`epoch_budget` (the random search's);
    :meth:`trials_for` says how many trials each tuner may run to spend it.

    >>> b = TuningBudget(max_trials=4, epochs_per_trial=2, retrain_epochs=5, hyperband_max_epochs=4)
    >>> b.epoch_budget, b.trials_for("random"), b.trials_for("hyperband")
    (8, 4, 7)
    """

    max_trials: int
    epochs_per_trial: int
    retrain_epochs: int
    hyperband_max_epochs: int = 3
    batch_size: int = 32
    # Training images per class used by the search and the retraining (None: all of them).
    images_per_class: int | None = None
    # The hyperparameter space: "paper" (the paper's six), or "small" (same six, tiny models).
    search_space: str = "paper"

    @property
    def epoch_budget(self) -> int:
        """Epochs each tuner may spend: the random search's ``max_trials`` x ``epochs_per_trial``."""
        return self.max_trials * self.epochs_per_trial

    def trials_for(self, kind: str) -> int:
        """Trials tuner ``kind`` may run within :attr:`epoch_budget` epochs.

        Random and Bayesian trials train ``epochs_per_trial`` epochs each; Hyperband gets the
        longest start of its schedule (:func:`~tlcnn_helpers.compat.hyperband_schedule`,
        promoted trials count the epochs they add) that fits, at least one trial.
        """
        if kind != "hyperband":
            return self.max_trials
        from .compat import hyperband_schedule  # imports keras: only when asked

        spent = 0
        for trials, row in enumerate(hyperband_schedule(self.hyperband_max_epochs,
                                                        HYPERBAND_FACTOR)):
            spent += row["trained"]
            if spent > self.epoch_budget:
                return max(1, trials)
        return trials + 1


@dataclass(frozen=True)
class TransferBudget:
    """Notebook 06: moving the CIFAR model to 96x96 images."""

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
    # "One model for every size": the multiscale recipe's schedule length and time budget
    # (which ends it first), when no saved multiscale model is found. None: no budget, so
    # a smoke re-run gives the same numbers.
    multiscale_seconds: float | None = None
    multiscale_epochs: int = 2


@dataclass(frozen=True)
class InterpretationBudget:
    """Notebook 07: what the CNN sees (the defaults are the smoke profile's).

    ``images_per_class`` test images are embedded, classified and searched for mistakes;
    ``occlusion_images`` get the patch-hiding check. When notebook 04's fast model is missing,
    one is trained for ``fallback_epochs`` on at most ``fallback_train_images`` images, cut
    at ``fallback_seconds``.
    """

    images_per_class: int = 20
    occlusion_images: int = 16
    occlusion_patch: int = 8
    fallback_epochs: int = 2
    fallback_train_images: int | None = None
    fallback_seconds: float | None = None


@dataclass(frozen=True)
class LearningBudget:
    """Notebook 03: the small problem its optimizers, range test and deep stacks train on.

    ``images`` CIFAR-10 training images (a stratified subset), ``epochs`` for each
    comparison run, ``range_test_steps`` steps of the learning-rate range test, ``depth``
    convolutions in the plain and residual stacks.
    """

    images: int = 2000
    epochs: int = 5
    batch_size: int = 32
    range_test_steps: int = 300
    depth: int = 12


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
    interpretation: InterpretationBudget = InterpretationBudget()
    learning: LearningBudget = LearningBudget()  # teach's and paper's: nothing here is long

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
        cifar=CifarBudget(paper_epochs=2, fast_epochs=2, batch_size=64, paper_batch_size=16,
                          best_epochs=1),
        # 3 epochs per tuner: Hyperband's 2 trials of 1 epoch, then the better one promoted.
        tuning=TuningBudget(max_trials=3, epochs_per_trial=1, retrain_epochs=2,
                            hyperband_max_epochs=2, batch_size=32, images_per_class=40,
                            search_space="small"),
        transfer=TransferBudget(source_epochs=2, head_epochs=1, finetune_epochs=1,
                                scratch_epochs=2, recalibration_images=64,
                                target_train_per_class=20, target_test_per_class=20,
                                sweep_test_per_class=6),
        learning=LearningBudget(images=256, epochs=3, range_test_steps=60),
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
        # benchmarks/README.md: about 7 minutes on 2 cores with 150 images per class (an
        # estimate). 8 epochs per tuner: Hyperband runs one whole bracket, 3 promotions.
        tuning=TuningBudget(max_trials=4, epochs_per_trial=2, retrain_epochs=5,
                            hyperband_max_epochs=4, batch_size=64, images_per_class=150),
        transfer=TransferBudget(source_epochs=5, head_epochs=2, finetune_epochs=2,
                                scratch_epochs=4, recalibration_images=1024,
                                target_train_per_class=100, target_test_per_class=200,
                                sweep_test_per_class=100, multiscale_seconds=600,
                                multiscale_epochs=100),
        # Without notebook 04's model: 3 epochs on 15,000 images, about 1.5 minutes.
        interpretation=InterpretationBudget(images_per_class=100, occlusion_images=64,
                                            fallback_epochs=3, fallback_train_images=15000,
                                            fallback_seconds=100),
    ),
    "paper": Profile(
        name="paper",
        description="the paper's own settings (30 epochs); hours on a CPU, minutes on a GPU",
        data_source="official",
        seed=42,
        data=DataBudget(cifar_train=None, cifar_test=None, stl_train=None, stl_test=None),
        cifar=CifarBudget(paper_epochs=30, fast_epochs=30, batch_size=64),
        # 100 epochs per tuner; Hyperband's longest trial, 10 epochs, is a random trial's.
        tuning=TuningBudget(max_trials=10, epochs_per_trial=10, retrain_epochs=30,
                            hyperband_max_epochs=10, batch_size=64),
        transfer=TransferBudget(source_epochs=30, head_epochs=5, finetune_epochs=10,
                                scratch_epochs=15, recalibration_images=2048,
                                multiscale_seconds=600, multiscale_epochs=100),
        interpretation=InterpretationBudget(images_per_class=300, occlusion_images=256,
                                            fallback_epochs=30),
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


# ---------------------------------------------------------------------------- folders
def repo_root() -> Path:
    """The course checkout: the folder above the package, or the working directory.

    In Colab the package is installed from the repository into site-packages, so the
    working directory (the cloned course, or ``/content``) stands in for the checkout.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def path_from_env(var: str, default: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The folder named by environment variable ``var`` (``~`` expanded), else ``default``.

    >>> path_from_env("TLCNN_X_DIR", Path("/d"), environ={"TLCNN_X_DIR": "/e"}).as_posix()
    '/e'
    """
    env = os.environ if environ is None else environ
    value = env.get(var)
    return Path(value).expanduser() if value else default


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``TLCNN_DATA_DIR`` if set, else the checkout's ``data/`` folder."""
    return path_from_env(DATA_DIR_ENV_VAR, repo_root() / "data", environ)


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where notebooks save trained models (``models/``, gitignored)."""
    return path_from_env(MODELS_DIR_ENV_VAR, repo_root() / "models", environ)


def records_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where notebooks record their metrics (``build/records/`` unless a course run sets it)."""
    return path_from_env(RECORDS_DIR_ENV_VAR, repo_root() / "build" / "records", environ)


def trained_model_path(dataset: str, recipe: str, profile: str,
                       environ: Mapping[str, str] | None = None) -> Path:
    """Where notebook 04 saves, and notebook 06 looks for, a trained model.

    The profile is part of the name so a ``teach`` run never picks up a ``smoke`` model.

    >>> trained_model_path("cifar10", "paper", "smoke", environ={"TLCNN_MODELS_DIR": "/m"}).as_posix()
    '/m/cifar10_paper_smoke.keras'
    """
    return models_dir(environ) / f"{dataset}_{recipe}_{profile}.keras"


def tuning_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where searches keep their state: ``TLCNN_TUNING_DIR``, else the checkout's ``tuning/``.

    >>> tuning_dir(environ={"TLCNN_TUNING_DIR": "/tmp/t"}).as_posix()
    '/tmp/t'
    """
    return path_from_env(TUNING_DIR_ENV_VAR, repo_root() / "tuning", environ)


def logs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where TensorBoard logs go: ``TLCNN_LOGS_DIR``, else the checkout's ``logs/``.

    >>> logs_dir(environ={"TLCNN_LOGS_DIR": "/tmp/l"}).as_posix()
    '/tmp/l'
    """
    return path_from_env(LOGS_DIR_ENV_VAR, repo_root() / "logs", environ)


def offline_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``TLCNN_OFFLINE`` is set to anything but ``0``, ``false``, ``no``, ``off`` or
    nothing (in any case): never try the network.

    Downloads of datasets and pretrained weights are then refused at once with a clear
    message instead of being attempted; the test-suite runs this way.

    >>> offline_mode(environ={"TLCNN_OFFLINE": "1"}), offline_mode(environ={"TLCNN_OFFLINE": "false"})
    (True, False)
    """
    env = os.environ if environ is None else environ
    return env.get(OFFLINE_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")


@contextmanager
def environment_overrides(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block, then put back what was there (or nothing).

    Kernels started inside the block (papermill, tests) inherit the values.

    >>> with environment_overrides({"TLCNN_DEMO_VAR": "1"}):
    ...     os.environ["TLCNN_DEMO_VAR"]
    '1'
    >>> "TLCNN_DEMO_VAR" in os.environ
    False
    """
    saved = {var: os.environ.get(var) for var in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
