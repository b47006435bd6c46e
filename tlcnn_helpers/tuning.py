"""Hyperparameter search for the STL-10 model with keras-tuner: resumable and distributed.

The paper picked its STL-10 model with a keras-tuner random search over six
hyperparameters: learning rate, optimizer, filters, neurons, conv blocks and dense layers.
:class:`STL10HyperModel` declares that space (plus a dropout rate); :func:`make_tuner`
builds a RandomSearch, Hyperband or BayesianOptimization tuner over it whose state lives
in a folder (``tuning/`` by default, gitignored) so that an interrupted search resumes
with every completed trial kept. The same code runs as keras-tuner's chief and workers
for a distributed search (:mod:`tlcnn_helpers.distributed`).

Safety nets around keras-tuner, which reloads any folder it is pointed at:

* a fingerprint of the search space is stored next to the tuner's state; a folder made
  for a different space raises :class:`SearchSpaceMismatchError` instead of mixing trials;
* reusing an older search emits :class:`ReusedSearchWarning` with the way to start fresh;
* the oracle's and trials' JSON files are written atomically, so a search killed at any
  moment reloads;
* what TensorFlow keeps of each trial's model is released when the trial ends
  (:mod:`tlcnn_helpers.memory`), so memory stays flat however many trials run.

The tuners are compared on an equal budget of epochs, not trials (``TuningBudget.trials_for``
in :mod:`tlcnn_helpers.settings`). The search ranges are the course's reconstruction.

>>> space = SEARCH_SPACES["small"]
>>> space.filters, space.conv_blocks
((4, 8), (2, 3))
>>> sorted(STL10HyperModel(space=space).declare_space().values)
['conv_blocks', 'dense_layers', 'dropout', 'filters', 'learning_rate', 'neurons', 'optimizer']

Used by notebook 05 (the search, the tuners compared, resuming) and the ``tune`` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile  # noqa: F401 (the doctests use it)
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import numpy as np

from . import compat
from .compat import hyperband_schedule  # noqa: F401 (notebook 05 prints the plan)
from .data import stratified_split, stratified_subset
from .errors import (
    ReusedSearchWarning,
    TuningError,
)
from .evaluation import evaluate
from .files import read_json
from .memory import custom_gradient_names, release_custom_gradients
from .models import compile_for_classification, make_optimizer, paper_cnn
from .search_state import (
    FINGERPRINT_FILE,
    FRESH,
    TRIAL_INFO_FILE,
    AtomicOracleMixin,
    check_fingerprint,
    check_project_name,
    completed_trials,
    empty_for_fresh,
    trial_infos,
    write_state_json,
)
from .settings import HYPERBAND_FACTOR, TUNER_KINDS, logs_dir, tuning_dir

if TYPE_CHECKING:
    from .settings import Profile

OPTIMIZERS = ("adam", "sgd", "rmsprop")
OBJECTIVE = "val_accuracy"
STL10_INPUT_SHAPE = (96, 96, 3)
MAX_FILTERS = 256  # the widest block of notebook 04's CIFAR model (a reconstruction)


def default_project_name(kind: str, profile_name: str) -> str:
    """The search folder's name: one per tuner and profile, so runs never collide.

    >>> default_project_name("random", "smoke")
    'stl10_random_smoke'
    """
    return f"stl10_{kind}_{profile_name}"


# ---------------------------------------------------------------------------- the space
@dataclass(frozen=True)
class SearchSpace:
    """The ranges of the paper's six hyperparameters (plus dropout, the course's addition).

    The paper names the hyperparameters but gives no ranges: every range here is the
    course's reconstruction.

    ``filters`` is the width of the first conv block; each further block doubles it up to
    256, as in notebook 04's 32-64-128-256 CIFAR model (the course's reconstruction too).

    >>> SearchSpace().optimizers
    ('adam', 'sgd', 'rmsprop')
    """

    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    optimizers: tuple[str, ...] = OPTIMIZERS
    filters: tuple[int, ...] = (16, 32, 64)
    neurons: tuple[int, ...] = (64, 128, 256)
    conv_blocks: tuple[int, int] = (3, 5)
    dense_layers: tuple[int, int] = (1, 3)
    dropout: tuple[float, ...] = (0.0, 0.25, 0.5)

    def check(self, image_size: int) -> None:
        """Raise :class:`TuningError` if a model of this space cannot be built."""
        low, high = self.learning_rate
        if not 0 < low < high:
            raise TuningError(f"learning_rate range {self.learning_rate}: need 0 < low < high")
        unknown = sorted(set(self.optimizers) - set(OPTIMIZERS))
        if unknown or not self.optimizers:
            raise TuningError(f"optimizers {self.optimizers}: choose among {', '.join(OPTIMIZERS)}")
        for name in ("conv_blocks", "dense_layers"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise TuningError(f"{name} range {(low, high)}: need 1 <= low <= high")
        if image_size // 2 ** self.conv_blocks[1] < 1:
            raise TuningError(
                f"conv_blocks up to {self.conv_blocks[1]} pools a {image_size}-pixel image below "
                f"one pixel; lower the maximum to {int(np.log2(image_size))} or less")


SEARCH_SPACES: dict[str, SearchSpace] = {
    "paper": SearchSpace(),
    # Same six hyperparameters, models small enough for the smoke profile and the tests.
    "small": SearchSpace(filters=(4, 8), neurons=(16, 32), conv_blocks=(2, 3),
                         dense_layers=(1, 2)),
}


def get_search_space(name: str) -> SearchSpace:
    """The named search space (``"paper"`` or ``"small"``).

    >>> get_search_space("paper").conv_blocks
    (3, 5)
    """
    if name not in SEARCH_SPACES:
        raise TuningError(f"unknown search space {name!r}: use one of {', '.join(SEARCH_SPACES)}")
    return SEARCH_SPACES[name]


def build_search_model(*, learning_rate: float, optimizer: str, filters: int, neurons: int,
                       conv_blocks: int, dense_layers: int, dropout: float = 0.0,
                       input_shape: tuple[int, int, int] = (96, 96, 3), num_classes: int = 9,
                       **_ignored: Any) -> keras.Model:
    """The paper's CNN (:func:`~tlcnn_helpers.models.paper_cnn`) for one point of the search
    space, compiled for integer labels.

    ``filters`` is the first block's width; each further block doubles it up to
    :data:`MAX_FILTERS`. Extra keys (keras-tuner's ``tuner/epochs``...) are ignored so that
    ``build_search_model(**best.values)`` works.

    >>> m = build_search_model(learning_rate=1e-3, optimizer="adam", filters=4, neurons=8,
    ...                        conv_blocks=2, dense_layers=1, input_shape=(16, 16, 3))
    >>> m.output_shape, m.loss.__class__.__name__
    ((None, 9), 'SparseCategoricalCrossentropy')
    """
    widths = tuple(min(filters * 2 ** i, MAX_FILTERS) for i in range(conv_blocks))
    model = paper_cnn(input_shape, num_classes, filters=widths, dense_units=neurons,
                      dense_layers=dense_layers, dropout=dropout, name="stl10_tuned_cnn")
    return compile_for_classification(model, optimizer=make_optimizer(optimizer, learning_rate),
                                      labels="integer")


class STL10HyperModel(keras_tuner.HyperModel):
    """The paper's search space over :func:`build_search_model`, for 96x96 STL-10 images.

    ``build`` re-seeds Keras so every trial starts from the same random state: a resumed
    or distributed search gives each trial the result it would have had in one run.

    >>> hp = keras_tuner.HyperParameters()
    >>> STL10HyperModel(space=SEARCH_SPACES["small"], input_shape=(16, 16, 3)).build(hp).count_params() > 0
    True
    """

    def __init__(self, space: SearchSpace | None = None, *,
                 input_shape: tuple[int, int, int] = (96, 96, 3), num_classes: int = 9,
                 seed: int = 42, batch_size: int = 32) -> None:
        super().__init__(name="stl10_cnn", tunable=True)
        self.space = space or SEARCH_SPACES["paper"]
        self.space.check(input_shape[0])
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.seed = seed
        self.batch_size = batch_size

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        space = self.space
        hp.Float("learning_rate", *space.learning_rate, sampling="log")
        hp.Choice("optimizer", list(space.optimizers))
        hp.Choice("filters", list(space.filters))
        hp.Choice("neurons", list(space.neurons))
        hp.Int("conv_blocks", *space.conv_blocks)
        hp.Int("dense_layers", *space.dense_layers)
        hp.Choice("dropout", list(space.dropout))

    def declare_space(self) -> keras_tuner.HyperParameters:
        """The declared space with every hyperparameter at its default value."""
        hp = keras_tuner.HyperParameters()
        self.declare_hyperparameters(hp)
        return hp

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        self.declare_hyperparameters(hp)
        keras.utils.set_random_seed(self.seed)
        return build_search_model(**hp.values, input_shape=self.input_shape,
                                 num_classes=self.num_classes)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any,
            **kwargs: Any) -> Any:
        kwargs.setdefault("batch_size", self.batch_size)
        return model.fit(*args, **kwargs)

    def fingerprint(self, kind: str, **settings: Any) -> dict[str, Any]:
        """What makes two searches the same: space, input, classes, tuner and settings."""
        described = {
            "space": self.declare_space().get_config()["space"],
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "tuner": kind,
            "objective": OBJECTIVE,
            **settings,
        }
        text = json.dumps(described, sort_keys=True, default=str)
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "described": described}


# ---------------------------------------------------------------------------- data
@dataclass
class SearchData:
    """Images (uint8) and integer labels for the search: train, validation and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "validation": len(self.x_val),
                "test": len(self.x_test)}


def split_search_data(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      y_test: np.ndarray, *, num_classes: int = 9,
                      images_per_class: int | None = None, validation_fraction: float = 0.2,
                      seed: int = 0) -> SearchData:
    """Hold out a stratified validation split from the training images (never the test set).

    >>> x = np.zeros((90, 8, 8, 3), np.uint8); y = np.repeat(np.arange(9), 10)
    >>> split_search_data(x, y, x[:9], y[:9], images_per_class=5).sizes()
    {'train': 36, 'validation': 9, 'test': 9}
    """
    if not 0 < validation_fraction < 1:
        raise TuningError(f"validation_fraction={validation_fraction}: use a value in (0, 1)")
    if images_per_class is not None and images_per_class < 2:
        raise TuningError(f"images_per_class={images_per_class}: need at least 2 (train and "
                          "validation)")
    if images_per_class is not None:
        x_train, y_train = stratified_subset(x_train, y_train, images_per_class * num_classes,
                                             seed=seed)
    train, val = stratified_split(y_train, validation_fraction, seed=seed)
    return SearchData(x_train[train], y_train[train], x_train[val], y_train[val], x_test,
                      np.asarray(y_test), num_classes)


def load_search_data(profile: Profile, data_dir: str | os.PathLike | None = None) -> SearchData:
    """STL-10's 9 shared classes at 96x96 as the profile says (synthetic in ``smoke``).

    >>> from tlcnn_helpers.settings import get_profile
    >>> load_search_data(get_profile("smoke"), tempfile.mkdtemp()).sizes()
    {'train': 288, 'validation': 72, 'test': 540}
    """
    from .data import SHARED_CLASSES, load_dataset

    (x_train, y_train), (x_test, y_test) = load_dataset("stl10", profile, data_dir)
    return split_search_data(x_train, y_train, x_test, y_test, num_classes=len(SHARED_CLASSES),
                             images_per_class=profile.tuning.images_per_class,
                             seed=profile.seed)


# ---------------------------------------------------------------------------- tuners
class _CourseTunerMixin:
    """Per-trial bookkeeping (who ran it, seconds, memory) and memory released after each."""

    def save(self) -> None:
        if not self._is_worker():
            self.oracle.save()
        write_state_json(compat.tuner_state_file(self), self.get_state())

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        self._trial_started = time.perf_counter(), _cpu_seconds()
        self._gradients_before_trial = custom_gradient_names()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        import psutil

        # keras-tuner clears the session only before building the next model, and that
        # alone frees nothing: TensorFlow's gradient registry holds every traced training
        # step (see memory.py). Releasing it here keeps memory flat across trials, and
        # the resident memory recorded below is what the next trial starts from.
        release_custom_gradients(self._gradients_before_trial)
        keras.backend.clear_session()
        wall, cpu = self._trial_started
        info = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id, "pid": os.getpid(),
                "seconds": round(time.perf_counter() - wall, 3),
                "cpu_seconds": round(_cpu_seconds() - cpu, 3),
                "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
                "status": trial.status,
                "epochs": _trial_epochs(trial.hyperparameters.values, self._fit_epochs)}
        write_state_json(Path(self.get_trial_dir(trial.trial_id)) / TRIAL_INFO_FILE, info)
        super().on_trial_end(trial)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        self._fit_epochs = int(fit_kwargs.get("epochs", 1))
        super().search(*fit_args, **fit_kwargs)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads): unlike wall time, it ignores other load."""
    cpu = os.times()
    return cpu.user + cpu.system


def _trial_epochs(values: Mapping[str, Any], fit_epochs: int) -> int:
    if "tuner/epochs" in values:  # Hyperband resumes from tuner/initial_epoch
        return int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
    return fit_epochs


class _RandomOracle(AtomicOracleMixin, keras_tuner.oracles.RandomSearchOracle):
    pass


class _HyperbandOracle(AtomicOracleMixin, keras_tuner.oracles.HyperbandOracle):
    pass


class _BayesianOracle(AtomicOracleMixin, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class CourseTuner(_CourseTunerMixin, keras_tuner.Tuner):
    """keras-tuner's Tuner with the course's bookkeeping (random and Bayesian searches)."""


class CourseHyperband(_CourseTunerMixin, keras_tuner.Hyperband):
    """keras-tuner's Hyperband with the course's bookkeeping."""

    def __init__(self, oracle: keras_tuner.Oracle, **kwargs: Any) -> None:
        # Hyperband.__init__ only builds its oracle; we pass ours (atomic saves) instead.
        keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)


def _make_oracle(kind: str, max_trials: int, seed: int, hyperband_max_epochs: int,
                 dimensions: int) -> keras_tuner.Oracle:
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    if kind == "random":
        return _RandomOracle(objective=objective, max_trials=max_trials, seed=seed)
    if kind == "bayesian":
        # keras-tuner's default (3 random points per hyperparameter) would use up a small
        # budget before the Gaussian process ever chooses a trial.
        initial = max(1, min(3 * dimensions, max_trials // 2))
        return _BayesianOracle(objective=objective, max_trials=max_trials, seed=seed,
                               num_initial_points=initial)
    oracle = _HyperbandOracle(objective=objective, max_epochs=hyperband_max_epochs,
                              factor=HYPERBAND_FACTOR, hyperband_iterations=1, seed=seed)
    oracle.max_trials = max_trials  # TuningBudget.trials_for: same epochs as the others
    return oracle


def prepare_search_folder(kind: str, hypermodel: STL10HyperModel, *, directory: Path,
                          project_name: str, max_trials: int, seed: int, epochs_per_trial: int,
                          hyperband_max_epochs: int, overwrite: bool = False,
                          warn_reuse: bool = True) -> Path:
    """Check the settings and the folder of a search before any tuner touches it.

    Deletes the folder when ``overwrite``; raises :class:`SearchSpaceMismatchError` for a
    folder made for another search; warns (:class:`ReusedSearchWarning`) before reusing
    completed trials; stores the fingerprint of this search. Returns the folder.

    >>> folder = prepare_search_folder("random", STL10HyperModel(SEARCH_SPACES["small"]),
    ...     directory=Path(tempfile.mkdtemp()), project_name="demo", max_trials=2, seed=1,
    ...     epochs_per_trial=1, hyperband_max_epochs=2)
    >>> (folder / FINGERPRINT_FILE).exists()
    True
    """
    if kind not in TUNER_KINDS:
        raise TuningError(f"unknown tuner {kind!r}: use one of {', '.join(TUNER_KINDS)}")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise TuningError(f"max_trials={max_trials!r}: a search needs at least 1 trial")
    if epochs_per_trial < 1 or hyperband_max_epochs < 1:
        raise TuningError(f"epochs_per_trial={epochs_per_trial} and hyperband_max_epochs="
                          f"{hyperband_max_epochs}: both must be at least 1")
    project_dir = Path(directory) / check_project_name(project_name)
    epochs_setting = ({"hyperband_max_epochs": hyperband_max_epochs,
                       "hyperband_factor": HYPERBAND_FACTOR} if kind == "hyperband"
                      else {"epochs_per_trial": epochs_per_trial})
    fingerprint = hypermodel.fingerprint(kind, seed=seed, **epochs_setting)
    if project_dir.exists() and not overwrite:
        # keras-tuner would fail on a damaged file with a bare JSONDecodeError, naming nothing.
        for path in sorted([*project_dir.glob("*.json"), *project_dir.glob("trial_*/*.json")]):
            read_json(path, fix=FRESH, error=TuningError)
        check_fingerprint(project_dir, fingerprint)
    if compat.is_worker_process():
        return project_dir
    if overwrite and project_dir.exists():
        empty_for_fresh(project_dir)
    elif project_dir.exists():
        done = completed_trials(project_dir)
        if done and warn_reuse:
            more = max(0, max_trials - len(done))
            warnings.warn(
                f"Reusing the search in {project_dir}: its {len(done)} completed trial(s) are "
                f"reloaded, not rerun, and only {more} more will run"
                f"{' (the search returns at once)' if more == 0 else ''}. To start fresh, "
                f"pass overwrite=True (command line: --fresh) or delete that folder.",
                ReusedSearchWarning, stacklevel=3)
    write_state_json(project_dir / FINGERPRINT_FILE, fingerprint)
    return project_dir


def make_tuner(kind: str, hypermodel: STL10HyperModel, *,
               directory: str | os.PathLike | None = None, project_name: str | None = None,
               max_trials: int = 10, seed: int = 42, epochs_per_trial: int = 1,
               hyperband_max_epochs: int = 3, overwrite: bool = False,
               warn_reuse: bool = True) -> keras_tuner.Tuner:
    """A RandomSearch (the paper's), Hyperband or BayesianOptimization tuner.

    Its state lives in ``directory/project_name`` (default: :func:`tuning_dir`). With
    ``overwrite=False`` an existing search made for the same space is reloaded (completed
    trials are kept, not rerun) and a :class:`ReusedSearchWarning` says so; one made for
    another space raises :class:`SearchSpaceMismatchError`. ``overwrite=True`` deletes the
    folder first. ``max_trials`` caps Hyperband too: ``TuningBudget.trials_for`` gives the
    cap that spends the same epochs as the other tuners.

    >>> tuner = make_tuner("random", STL10HyperModel(SEARCH_SPACES["small"]),
    ...                    directory=tempfile.mkdtemp(), max_trials=2)
    >>> tuner.oracle.max_trials
    2
    """
    directory = Path(directory) if directory is not None else tuning_dir()
    project_name = project_name or f"stl10_{kind}"
    project_dir = prepare_search_folder(
        kind, hypermodel, directory=directory, project_name=project_name,
        max_trials=max_trials, seed=seed, epochs_per_trial=epochs_per_trial,
        hyperband_max_epochs=hyperband_max_epochs, overwrite=overwrite, warn_reuse=warn_reuse)
    oracle = _make_oracle(kind, max_trials, seed, hyperband_max_epochs,
                          len(hypermodel.declare_space().space))
    tuner_class = CourseHyperband if kind == "hyperband" else CourseTuner
    tuner = tuner_class(oracle=oracle, hypermodel=hypermodel, directory=str(directory),
                        project_name=project_name, overwrite=False)
    # keras-tuner reloads only a folder holding this tuner id's file; a search run by other
    # processes (a distributed chief) is reloaded through its oracle.
    if (not tuner._is_worker() and (project_dir / "oracle.json").exists()
            and not Path(compat.tuner_state_file(tuner)).exists()):
        tuner.oracle.reload()
    return tuner


# ---------------------------------------------------------------------------- searching
@dataclass
class SearchSummary:
    """What a search found and what it cost."""

    kind: str
    project_dir: str
    best_hyperparameters: dict[str, Any]
    best_score: float | None
    trials_completed: int
    seconds_per_trial: float | None
    total_epochs: int
    wall_seconds: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trial_seconds_total(self) -> float:
        """Seconds the completed trials took, also when they were reloaded, not rerun."""
        return round(sum(t.get("seconds") or 0.0 for t in self.trials), 1)

    def trials_by_tuner(self) -> dict[str, list[str]]:
        """Trial ids grouped by the tuner (process) that ran them."""
        grouped: dict[str, list[str]] = {}
        for trial in self.trials:
            grouped.setdefault(str(trial.get("tuner_id")), []).append(trial["trial_id"])
        return grouped


def _public_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def summarize_search(tuner: keras_tuner.Tuner, kind: str,
                     wall_seconds: float | None = None) -> SearchSummary:
    """Best hyperparameters and score, trial count, seconds per trial, epochs, per-trial rows."""
    project_dir = Path(tuner.project_dir)
    infos = trial_infos(project_dir)
    done = [info for info in infos.values() if info["status"] == "COMPLETED"]
    best = [t for t in tuner.oracle.get_best_trials(1) if t.status == "COMPLETED"]
    seconds = [info["seconds"] for info in done if "seconds" in info]
    return SearchSummary(
        kind=kind, project_dir=str(project_dir),
        best_hyperparameters=_public_values(best[0].hyperparameters.values) if best else {},
        best_score=float(best[0].score) if best else None,
        trials_completed=len(done),
        seconds_per_trial=round(float(np.mean(seconds)), 3) if seconds else None,
        total_epochs=int(sum(info.get("epochs", 0) for info in done)),
        wall_seconds=None if wall_seconds is None else round(wall_seconds, 1),
        trials=[{"trial_id": info["trial_id"], "score": info["score"],
                 "seconds": info.get("seconds"), "cpu_seconds": info.get("cpu_seconds"),
                 "epochs": info.get("epochs"),
                 "tuner_id": info.get("tuner_id"), "rss_mb": info.get("rss_mb"),
                 "hyperparameters": _public_values(info["hyperparameters"]),
                 "tuner": {k: v for k, v in info["hyperparameters"].items()
                           if k.startswith("tuner/")}}
                for info in sorted(done, key=lambda i: i["trial_id"])])


def tensorboard_callback(project_name: str,
                         root: str | os.PathLike | None = None) -> keras.callbacks.TensorBoard:
    """A TensorBoard callback under ``logs/tuning/<project>``; keras-tuner adds HParams to it.

    >>> tensorboard_callback("demo", root="/tmp/logs").log_dir
    '/tmp/logs/tuning/demo'
    """
    folder = Path(root) if root is not None else logs_dir()
    return keras.callbacks.TensorBoard(log_dir=str(folder / "tuning" / project_name),
                                       write_graph=False, profile_batch=0)


def run_search(tuner: keras_tuner.Tuner, data: SearchData, *, kind: str, epochs: int,
               batch_size: int | None = None, callbacks: Sequence[keras.callbacks.Callback] = (),
               tensorboard: bool = True, logs_root: str | os.PathLike | None = None,
               verbose: int = 0) -> SearchSummary:
    """Run (or resume) the search on the training split, scored on the validation split.

    >>> x = np.random.default_rng(0).integers(0, 255, (36, 16, 16, 3), dtype="uint8")
    >>> data = split_search_data(x, np.arange(36) % 9, x, np.arange(36) % 9, images_per_class=4)
    >>> tuner = make_tuner("random", STL10HyperModel(SEARCH_SPACES["small"], input_shape=(16, 16, 3)),
    ...                    directory=tempfile.mkdtemp(), max_trials=1)
    >>> run_search(tuner, data, kind="random", epochs=1, tensorboard=False).trials_completed
    1
    """
    callbacks = list(callbacks)
    if tensorboard:
        callbacks.append(tensorboard_callback(tuner.project_name, logs_root))
    fit_kwargs: dict[str, Any] = {"epochs": epochs, "callbacks": callbacks, "verbose": verbose}
    if batch_size is not None:
        fit_kwargs["batch_size"] = batch_size
    started = time.perf_counter()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 **fit_kwargs)
    return summarize_search(tuner, kind, time.perf_counter() - started)


def evaluate_search_model(model: keras.Model, data: SearchData) -> dict[str, float]:
    """``{"test_accuracy", "test_loss"}`` of ``model`` on the search data's test split
    (:func:`~tlcnn_helpers.evaluation.evaluate`).

    >>> x = np.zeros((9, 16, 16, 3), np.uint8); y = np.arange(9)
    >>> data = SearchData(x, y, x, y, x, y, 9)
    >>> model = build_search_model(learning_rate=1e-3, optimizer="adam", filters=4, neurons=8,
    ...                            conv_blocks=2, dense_layers=1, input_shape=(16, 16, 3))
    >>> sorted(evaluate_search_model(model, data))
    ['test_accuracy', 'test_loss']
    """
    return evaluate(model, data.x_test, data.y_test)


def retrain_best(hyperparameters: Mapping[str, Any], data: SearchData, *, epochs: int,
                 batch_size: int = 32, seed: int = 42, verbose: int = 0
                 ) -> tuple[keras.Model, keras.callbacks.History]:
    """Train a fresh model with the best hyperparameters; the validation split gives curves.

    >>> x = np.random.default_rng(0).integers(0, 255, (36, 16, 16, 3), dtype="uint8")
    >>> data = split_search_data(x, np.arange(36) % 9, x, np.arange(36) % 9, images_per_class=4)
    >>> best = {"learning_rate": 1e-3, "optimizer": "adam", "filters": 4, "neurons": 8,
    ...         "conv_blocks": 2, "dense_layers": 1, "dropout": 0.0}
    >>> model, history = retrain_best(best, data, epochs=2)
    >>> len(history.history["val_accuracy"]), model.output_shape
    (2, (None, 9))
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_search_model(**hyperparameters, input_shape=data.input_shape,
                              num_classes=data.num_classes)
    history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                        epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model, history


def compare_tuners(data: SearchData, profile: Profile, *, kinds: Sequence[str] = TUNER_KINDS,
                   directory: str | os.PathLike | None = None, overwrite: bool = False,
                   space: SearchSpace | None = None, verbose: int = 0
                   ) -> dict[str, SearchSummary]:
    """Run each tuner on the same data and the same budget of epochs; one folder each.

    The budget is the profile's random search, ``max_trials`` x ``epochs_per_trial``
    epochs; each tuner gets ``profile.tuning.trials_for(kind)`` trials.

    >>> from tlcnn_helpers.settings import get_profile
    >>> x = np.random.default_rng(0).integers(0, 255, (36, 16, 16, 3), dtype="uint8")
    >>> data = split_search_data(x, np.arange(36) % 9, x, np.arange(36) % 9, images_per_class=4)
    >>> summaries = compare_tuners(data, get_profile("smoke"), kinds=("random",),
    ...                            directory=tempfile.mkdtemp(), space=SEARCH_SPACES["small"])
    >>> list(summaries), summaries["random"].total_epochs == get_profile("smoke").tuning.epoch_budget
    (['random'], True)
    """
    budget = profile.tuning
    space = space or get_search_space(budget.search_space)
    summaries = {}
    for kind in kinds:
        hypermodel = STL10HyperModel(space, input_shape=data.input_shape,
                                     num_classes=data.num_classes, seed=profile.seed,
                                     batch_size=budget.batch_size)
        tuner = make_tuner(kind, hypermodel, directory=directory,
                           project_name=default_project_name(kind, profile.name),
                           max_trials=budget.trials_for(kind), seed=profile.seed, epochs_per_trial=budget.epochs_per_trial,
                           hyperband_max_epochs=budget.hyperband_max_epochs, overwrite=overwrite)
        summaries[kind] = run_search(tuner, data, kind=kind, epochs=budget.epochs_per_trial,
                                     verbose=verbose)
    return summaries


def comparison_table(summaries: Mapping[str, SearchSummary]) -> str:
    """A plain-text table of the tuners compared: best score, trials, epochs, seconds.

    The seconds are those the trials took when they ran, so a reloaded search shows them too.

    >>> s = SearchSummary("random", "/t", {}, 0.5, 2, 1.5, 2, 0.1,
    ...                   [{"seconds": 1.25}, {"seconds": 1.75}])
    >>> print(comparison_table({"random": s}))
    tuner        best val_accuracy  trials  epochs  s/trial  total s
    random                  0.5000       2       2      1.5      3.0
    """
    lines = [f"{'tuner':<12} {'best ' + OBJECTIVE:>17} {'trials':>7} {'epochs':>7} "
             f"{'s/trial':>8} {'total s':>8}"]
    for kind, s in summaries.items():
        score = "-" if s.best_score is None else f"{s.best_score:.4f}"
        per_trial = "-" if s.seconds_per_trial is None else f"{s.seconds_per_trial:.1f}"
        lines.append(f"{kind:<12} {score:>17} {s.trials_completed:>7} {s.total_epochs:>7} "
                     f"{per_trial:>8} {s.trial_seconds_total:>8.1f}")
    return "\n".join(lines)


def trial_table(summary: SearchSummary) -> str:
    """One line a trial: Hyperband's ``tuner/epochs``, ``tuner/initial_epoch`` and, for a
    promoted trial, ``tuner/trial_id`` (the trial whose weights it goes on training).

    >>> s = SearchSummary("hyperband", "/t", {}, 0.5, 1, 1.0, 1, 1.0, [{"trial_id": "0",
    ...     "score": 0.5, "epochs": 1, "tuner": {"tuner/epochs": 1, "tuner/initial_epoch": 0}}])
    >>> print(trial_table(s))
    trial  tuner/epochs  tuner/initial_epoch  tuner/trial_id  trained  val_accuracy
    0                 1                    0               -        1        0.5000
    """
    lines = ["trial  tuner/epochs  tuner/initial_epoch  tuner/trial_id  trained  val_accuracy"]
    for t in summary.trials:
        values = t.get("tuner", {})
        lines.append(f"{t['trial_id']:<5} {values.get('tuner/epochs', '-'):>13} "
                     f"{values.get('tuner/initial_epoch', '-'):>20} "
                     f"{values.get('tuner/trial_id') or '-':>15} {t.get('epochs') or '-':>8} "
                     f"{t['score']:>13.4f}")
    return "\n".join(lines)
