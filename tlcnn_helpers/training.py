"""Training: recipes, callbacks, time budgets, backups, and the fit helpers of transfer learning.

Two levels, both used by the notebooks and the ``train`` command:

* :func:`fit` trains any compiled model on two ``tf.data`` datasets with the course's
  callbacks (one progress line per epoch, per-epoch timing, an optional time budget, and
  ``BackupAndRestore`` so an interrupted run resumes from its last finished epoch) and
  returns a :class:`TrainingResult`.
* :func:`train_recipe` does everything for a :class:`Recipe` (one of :data:`RECIPES`, see
  :func:`get_recipe`): pipelines, model, learning-rate schedule, precision, ``fit``.

For transfer learning, :func:`fit_head` trains only a model's head, :func:`fine_tune` the head
and then everything, :func:`fit_classifier` a model from scratch, all alike (Adam, integer
labels).

>>> import numpy as np
>>> from tlcnn_helpers.evaluation import evaluate
>>> x = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype="uint8")
>>> y = np.arange(40) % 3
>>> recipe = get_recipe("fast", epochs=1, batch_size=20, widths=(8, 16), residual_stages=(2,))
>>> result = train_recipe(recipe, (x, y), (x, y), num_classes=3, seed=0, verbose=0)
>>> len(result.history), sorted(evaluate(result.model, x, y))
(1, ['test_accuracy', 'test_loss'])

Used by notebooks 03 (the fast recipe's warm-up + cosine schedule, drawn), 04 (the paper's
and the fast recipe), 06 (fine-tuning, the head, from scratch) and the ``train`` command.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from . import models as model_builders
from .environment import choose_precision
from .errors import BackupMismatchError, ModelInputError, TLCNNError
from .evaluation import check_images, check_labels, image_input_shape, walk_layers
from .files import null_nonfinite, read_json, write_json
from .models import compile_for_classification, make_optimizer
from .pipelines import make_dataset

RECIPES = ("paper", "fast", "multiscale", "best")
BACKUP_SUBFOLDER = "tlcnn-backup"
BACKUP_FINGERPRINT = "fingerprint.json"  # the settings of the run that made a backup
SCHEDULES = ("constant", "warmup_cosine")


# ---------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the data.

    ``schedule`` is ``"constant"`` or ``"warmup_cosine"`` (linear warm-up over
    ``warmup_fraction`` of the steps to ``learning_rate``, then cosine decay to zero).
    ``precision`` is a Keras dtype policy (``"float32"``, ``"mixed_bfloat16"``, ...) or
    ``"auto"`` (see :func:`choose_precision`).
    ``model_options`` go to the model builder (:mod:`tlcnn_helpers.models`).
    ``scales`` (multiscale recipe): a model for any image size, each batch at one of these
    sizes, drawn as ``scale_weighting`` says (:func:`~tlcnn_helpers.pipelines.scale_probabilities`).
    """

    name: str
    model: str  # "paper", "fast" or "best": models.paper_cnn, fast_cifar_cnn, best_cifar_cnn
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str = "adam"  # "adam", "adamw" or "sgd" (Nesterov momentum 0.9)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"
    precision: str = "float32"
    steps_per_execution: int = 1
    model_options: dict = field(default_factory=dict)
    scales: tuple[int, ...] = ()
    scale_weighting: str = "inverse_size"

    def describe(self) -> str:
        """One line for notebooks and logs."""
        sizes = f", sizes {'/'.join(map(str, self.scales))} px ({self.scale_weighting})"
        return (f"{self.name}: {self.model} model, {self.epochs} epochs, batch {self.batch_size}, "
                f"{self.optimizer} lr {self.learning_rate:g} ({self.schedule}), "
                f"label smoothing {self.label_smoothing:g}, augment {self.augment}, "
                f"{self.precision}{sizes if self.scales else ''}")


def paper_recipe(epochs: int = 30, batch_size: int = 64) -> Recipe:
    """The paper's recipe: its CNN, Adam at 1e-3, no augmentation, 30 epochs.

    >>> paper_recipe().epochs
    30
    """
    return Recipe(name="paper", model="paper", epochs=epochs, batch_size=batch_size,
                  learning_rate=model_builders.PAPER_LEARNING_RATE)


def fast_recipe(epochs: int = 10, batch_size: int = 128, **overrides: Any) -> Recipe:
    """The course's fast recipe; each setting is justified in ``benchmarks/README.md``.

    A small ResNet-style model with BatchNorm before ReLU and global pooling (few weights,
    fast on a CPU), AdamW with warm-up plus cosine decay (a high learning rate early, a
    small one late, so few epochs suffice), label smoothing 0.1, and flips plus shifts done
    by Keras preprocessing layers, and bfloat16 where the CPU has it (``precision="auto"``).
    ``overrides`` replace any :class:`Recipe` field; others (``widths``...) go to the model.

    >>> fast_recipe(epochs=3).schedule
    'warmup_cosine'
    """
    fields = set(Recipe.__dataclass_fields__)
    if "scales" in overrides:  # a list (from JSON) would make the frozen Recipe unhashable
        overrides["scales"] = tuple(int(size) for size in overrides["scales"])
    model_options = {k: overrides.pop(k) for k in list(overrides) if k not in fields}
    base = Recipe(name="fast", model="fast", epochs=epochs, batch_size=batch_size,
                  learning_rate=4e-3, optimizer="adamw", weight_decay=5e-4,
                  schedule="warmup_cosine", warmup_fraction=0.15, label_smoothing=0.1,
                  augment="flip_translate", precision="auto", steps_per_execution=1,
                  model_options=model_options)
    return replace(base, **overrides)


def multiscale_recipe(epochs: int = 40, batch_size: int = 128, **overrides: Any) -> Recipe:
    """The fast recipe made to work at every image size (notebook 06, "One model for every size").

    The fast model is built for ``(None, None, 3)`` images and each batch is upsampled to
    32, 48, 64 or 96 px, drawn with probability ~ 1/size (``"inverse_size"``: chosen by
    measurement over ``"uniform"`` and ``"equal_compute"``, ``benchmarks/README.md``).

    >>> multiscale_recipe().scales
    (32, 48, 64, 96)
    """
    settings = {"scales": (32, 48, 64, 96), "scale_weighting": "inverse_size", **overrides}
    return replace(fast_recipe(epochs, batch_size, **settings), name="multiscale")


def best_recipe(epochs: int = 20, batch_size: int = 256, **overrides: Any) -> Recipe:
    """The 30-minute recipe: :func:`~tlcnn_helpers.models.best_cifar_cnn` (whitened), batch 256,
    otherwise the fast recipe but for warm-up 10%, label smoothing 0.2 and AdamW decay 0.05.

    >>> best_recipe().model, best_recipe().model_options
    ('best', {'whiten': True})
    """
    return replace(fast_recipe(epochs, batch_size, **{
        "model": "best", "whiten": True, "weight_decay": 0.05, "label_smoothing": 0.2,
        "warmup_fraction": 0.1, **overrides}), name="best")


def get_recipe(name: str, profile: Any = None, **overrides: Any) -> Recipe:
    """The recipe ``name`` (:data:`RECIPES`), its epochs and batch size from ``profile.cifar``.

    >>> from tlcnn_helpers.settings import get_profile
    >>> get_recipe("paper", get_profile("smoke")).epochs
    2
    """
    if name not in RECIPES:
        raise TLCNNError(f"recipe {name!r} is unknown: use one of {', '.join(RECIPES)}")
    settings: dict[str, Any] = {}
    if profile is not None:
        budget = profile.cifar
        sizes = {"paper": (budget.paper_epochs, budget.paper_batch_size),
                 "best": (budget.best_epochs, budget.best_batch_size)}
        epochs, batch_size = sizes.get(name, (budget.fast_epochs, budget.batch_size))
        settings = {"epochs": epochs, "batch_size": batch_size}
    settings.update(overrides)
    if name == "paper":
        base = paper_recipe(settings.pop("epochs", 30), settings.pop("batch_size", 64))
        return replace(base, **settings)
    return {"fast": fast_recipe, "multiscale": multiscale_recipe, "best": best_recipe}[name](**settings)


def learning_rate_schedule(recipe: Recipe, steps_per_epoch: int):
    """The learning rate of ``recipe``: a float, or a Keras schedule over all its steps.

    >>> lr = learning_rate_schedule(fast_recipe(epochs=2), steps_per_epoch=10)
    >>> round(float(lr(0)), 6), round(float(lr(3)), 4), round(float(lr(19)), 5)
    (0.0, 0.004, 3e-05)
    """

    if recipe.schedule not in SCHEDULES:
        raise TLCNNError(f"schedule {recipe.schedule!r} is unknown: use {', '.join(SCHEDULES)}")
    if recipe.schedule == "constant":
        return recipe.learning_rate
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = int(round(total * recipe.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total - warmup),
        warmup_target=recipe.learning_rate, warmup_steps=warmup)


def optimizer_for(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of ``recipe`` (:func:`~tlcnn_helpers.models.make_optimizer`) with its
    learning-rate schedule; SGD uses Nesterov momentum.

    >>> optimizer_for(fast_recipe(epochs=2), steps_per_epoch=10).__class__.__name__
    'AdamW'
    """
    lr = learning_rate_schedule(recipe, steps_per_epoch)
    decay = recipe.weight_decay if recipe.optimizer == "adamw" else (recipe.weight_decay or None)
    return make_optimizer(recipe.optimizer, lr, weight_decay=decay, nesterov=True)


def build_model(recipe: Recipe, input_shape: Sequence[int], num_classes: int,
                steps_per_epoch: int):
    """Build and compile the model of ``recipe`` under its precision policy.

    The global dtype policy is restored afterwards, so other models are not affected.

    >>> build_model(paper_recipe(1), (32, 32, 3), 9, steps_per_epoch=10).count_params()
    919753
    """
    builders: dict[str, Callable] = {"paper": model_builders.paper_cnn,
                                     "fast": model_builders.fast_cifar_cnn,
                                     "best": model_builders.best_cifar_cnn}
    if recipe.model not in builders:
        raise TLCNNError(f"model {recipe.model!r} is unknown: use one of {', '.join(builders)}")
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(choose_precision(recipe.precision))
    try:
        options = dict(recipe.model_options)
        if recipe.scales:  # one set of weights for every image size
            input_shape = (None, None, input_shape[-1])
        model = builders[recipe.model](tuple(input_shape), num_classes, **options)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    compile_for_classification(
        model, optimizer=optimizer_for(recipe, steps_per_epoch),
        label_smoothing=recipe.label_smoothing)
    model.steps_per_execution = recipe.steps_per_execution
    return model


# ---------------------------------------------------------------------------- callbacks
class EpochClock(keras.callbacks.Callback):
    """Records, for each epoch, its metrics, the training seconds and the elapsed seconds.

    ``elapsed_seconds`` counts from the start of ``fit`` (validation included); the
    training seconds exclude validation, so ``images_per_second`` measures training only.
    Prints one line per epoch when ``verbose``.

    >>> clock = EpochClock(images_per_epoch=1000, epochs=3, batch_size=100)
    >>> clock.rows, clock.resumed_after_epoch
    ([], 0)
    """

    def __init__(self, images_per_epoch: int, epochs: int, verbose: bool = True,
                 history_file: str | os.PathLike | None = None, batch_size: int | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.clock = clock
        # with batch_size, an epoch cut short counts only its batches
        self.images_per_epoch, self.batch_size, self.epochs = images_per_epoch, batch_size, epochs
        self.verbose, self._last_batch = verbose, -1
        self.history_file = Path(history_file) if history_file else None
        self.rows: list[dict[str, float]] = []
        self.budget_callbacks: list[Any] = []  # told the seconds spent before a resume
        self.resumed_after_epoch = 0
        self.offset_seconds = 0.0
        self._fit_start = self._epoch_start = self._train_end = 0.0

    def on_train_begin(self, logs=None):
        self._fit_start = self.clock()
        # BackupAndRestore (earlier in the list) has set the epoch to resume after.
        self.resumed_after_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
        if self.resumed_after_epoch and self.history_file and self.history_file.is_file():
            saved = read_json(self.history_file, fix=f"delete {self.history_file.parent} to "
                              "start this run over")
            self.rows = [row for row in saved if row["epoch"] <= self.resumed_after_epoch]
            if self.rows:
                self.offset_seconds = self.rows[-1]["elapsed_seconds"]
            if self.verbose:
                print(f"resuming after epoch {self.resumed_after_epoch} from the backup",
                      flush=True)
        for callback in self.budget_callbacks:  # they run after this one in the list
            callback.spent_before = self.offset_seconds

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()
        self._train_end = 0.0
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = batch

    def on_test_begin(self, logs=None):
        if self._epoch_start and not self._train_end:
            self._train_end = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        train_seconds = (self._train_end or now) - self._epoch_start
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
        images = self.images_per_epoch
        if self.batch_size and self._last_batch >= 0:
            images = min(images, (self._last_batch + 1) * self.batch_size)
        row["images"] = images
        row["train_seconds"] = round(train_seconds, 3)
        row["elapsed_seconds"] = round(self.offset_seconds + now - self._fit_start, 3)
        self.rows.append(row)
        if self.history_file:
            write_json(null_nonfinite(self.rows), self.history_file)  # a NaN loss: null
        if self.verbose:
            shown = "  ".join(f"{k} {row[k]:.4f}" for k in
                              ("loss", "accuracy", "val_loss", "val_accuracy") if k in row)
            rate = images / max(train_seconds, 1e-9)
            print(f"epoch {epoch + 1}/{self.epochs}  {shown}  "
                  f"{now - self._epoch_start:.1f} s ({rate:,.0f} images/s)", flush=True)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after an epoch when the next one would overrun ``seconds``.

    The estimate is the slowest epoch so far, so the run ends within the budget unless a
    single epoch is longer than it (at least one epoch always runs).

    >>> TimeBudget(120, verbose=False).stopped_at_epoch is None
    True
    """

    def __init__(self, seconds: float, verbose: bool = True,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.clock = clock
        if seconds <= 0:
            raise TLCNNError(f"time budget {seconds} s: give a positive number of seconds")
        self.seconds = seconds
        self.verbose = verbose
        self.stopped_at_epoch: int | None = None
        self.spent_before = 0.0  # seconds of this budget used before a resume
        self._start = self._epoch_start = 0.0
        self._longest = 0.0

    def on_train_begin(self, logs=None):
        self._start = self.clock() - self.spent_before

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self._longest = max(self._longest, now - self._epoch_start)
        if now - self._start + self._longest > self.seconds:
            self.stopped_at_epoch = epoch + 1
            self.model.stop_training = True
            if self.verbose:
                print(f"time budget of {self.seconds:.0f} s reached: stopping after epoch "
                      f"{epoch + 1}", flush=True)


def warmup_cosine(progress: float, peak: float, warmup_fraction: float) -> float:
    """The warm-up + cosine learning rate at ``progress`` (0 at the start, 1 at the end).

    >>> [round(warmup_cosine(p, 1.0, 0.2), 3) for p in (0.0, 0.1, 0.2, 0.6, 1.0)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup_fraction:
        return peak * progress / warmup_fraction
    span = max(1.0 - warmup_fraction, 1e-9)
    return peak * 0.5 * (1.0 + math.cos(math.pi * (progress - warmup_fraction) / span))


class WarmupCosineWithinBudget(keras.callbacks.Callback):
    """Warm-up + cosine decay that ends at the last step *or* at the time budget, if sooner.

    A step-based schedule cut short by a time budget stops while the learning rate is still
    high, which wastes most of what the decay is for. Here progress is the larger of
    ``step / total_steps`` and ``elapsed / budget_seconds``, so on a slow machine the whole
    schedule is squeezed into the budget, and training stops (mid-epoch if need be) when the
    budget is used up. The optimizer must have a plain float learning rate. Without a
    budget the run is exactly the step-based schedule, hence reproducible.

    >>> schedule = WarmupCosineWithinBudget(0.004, total_steps=3000, warmup_fraction=0.15,
    ...                                     budget_seconds=180)
    >>> schedule.stopped, schedule.progress
    (False, 0.0)
    """

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float,
                 budget_seconds: float | None, verbose: bool = True,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.clock = clock
        self.peak, self.total_steps = peak, max(1, total_steps)
        self.warmup_fraction, self.budget_seconds = warmup_fraction, budget_seconds
        self.verbose, self.stopped, self.progress = verbose, False, 0.0
        self.spent_before = 0.0  # seconds of this budget used before a resume
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = self.clock() - self.spent_before

    def _elapsed_fraction(self) -> float:
        if not self.budget_seconds:
            return 0.0
        return (self.clock() - self._start) / self.budget_seconds

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras_ops_value(self.model.optimizer.iterations))
        self.progress = max(step / self.total_steps, self._elapsed_fraction())
        self.model.optimizer.learning_rate.assign(
            warmup_cosine(self.progress, self.peak, self.warmup_fraction))

    def on_train_batch_end(self, batch, logs=None):
        if self.budget_seconds and not self.stopped and self._elapsed_fraction() >= 1.0:
            self.stopped = True
            self.model.stop_training = True
            if self.verbose:
                print(f"time budget of {self.budget_seconds:.0f} s used up: the learning rate "
                      f"has decayed to zero, stopping here", flush=True)


def keras_ops_value(variable) -> float:
    """The current value of a Keras variable as a Python number."""
    return float(keras.ops.convert_to_numpy(variable))


# ---------------------------------------------------------------------------- fit
@dataclass
class TrainingResult:
    """What :func:`fit` returns: the trained model and how the training went."""

    model: Any
    history: list[dict[str, float]]
    train_seconds: float
    wall_seconds: float
    images_per_second: float
    stopped_by_time_budget: bool = False
    resumed_after_epoch: int = 0

    @property
    def epochs(self) -> int:
        return len(self.history)

    def curve(self, metric: str) -> list[float]:
        """One metric across epochs, e.g. ``result.curve("val_accuracy")``."""
        return [row[metric] for row in self.history if metric in row]


def check_backup(backup: str | os.PathLike, fingerprint: Mapping[str, Any]) -> None:
    """Refuse to resume a backup made with other settings; store ``fingerprint`` in a new one.

    Raises :class:`~tlcnn_helpers.errors.BackupMismatchError` naming the folder, what differs
    and the way out, rather than finishing one run's model with another run's settings.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_backup(folder, {"profile": "smoke", "seed": 42})
    >>> sorted(json.loads((folder / BACKUP_FINGERPRINT).read_text()))
    ['profile', 'seed']
    """
    backup = Path(backup)
    wanted = json.loads(json.dumps(null_nonfinite(dict(fingerprint))))  # as it reads back
    stored_file = backup / BACKUP_FINGERPRINT
    fix = f"delete {backup} to start this run fresh, or pass another backup folder"
    state = [p for p in backup.iterdir() if p.name != BACKUP_FINGERPRINT] if backup.is_dir() else []
    if state and not stored_file.is_file():
        raise BackupMismatchError(f"the backup in {backup} has no {BACKUP_FINGERPRINT} (an older "
                                  f"version made it), so nothing says it matches this run; {fix}")
    if state:
        stored = read_json(stored_file, fix=fix, error=BackupMismatchError)
        differing = [
            f"{key}: {stored.get(key)!r} there, {wanted.get(key)!r} now"
            if not isinstance(wanted.get(key), dict) else f"{key} settings"
            for key in sorted(set(stored) | set(wanted)) if stored.get(key) != wanted.get(key)]
        if differing:
            raise BackupMismatchError(f"the backup in {backup} was made by a run with other "
                                      f"settings ({'; '.join(differing)}); resuming it would mix "
                                      f"two runs in one model: {fix}")
        return
    write_json(wanted, stored_file)


def fit(model, train_ds, val_ds=None, *, epochs: int, images_per_epoch: int,
        time_budget_seconds: float | None = None, backup_dir: str | os.PathLike | None = None,
        verbose: bool = True, callbacks: Sequence[Any] = (),
        batch_size: int | None = None, keep_backup: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        fingerprint: Mapping[str, Any] | None = None) -> TrainingResult:
    """Train a compiled ``model`` with the course's callbacks and time it.

    ``backup_dir`` turns on Keras ``BackupAndRestore`` (in its subfolder ``tlcnn-backup``,
    removed when training completes, or kept with ``keep_backup`` until the caller has saved
    the model and calls :func:`remove_backup`): if the process dies, calling ``fit`` again with the
    same folder resumes after the last finished epoch, and the history keeps the epochs
    finished before the interruption; a resumed run continues its time budget where it was.
    ``fingerprint`` (the run's settings) is stored in the backup, and a backup made with
    other settings is refused (:func:`check_backup`). ``time_budget_seconds`` stops training
    early (see :class:`TimeBudget`); ``clock`` is the time function (tests inject one). ``images_per_epoch`` (and ``batch_size``, for an epoch cut
    short) give the throughput figure.

    >>> import numpy as np
    >>> from tlcnn_helpers.models import paper_cnn
    >>> x = np.zeros((8, 32, 32, 3), "uint8"); y = np.arange(8) % 2
    >>> ds = make_dataset(x, y, num_classes=2, batch_size=4)
    >>> r = fit(compile_for_classification(paper_cnn(num_classes=2, dense_units=8)), ds, epochs=1,
    ...         images_per_epoch=8, verbose=False)
    >>> r.epochs, r.images_per_second > 0
    (1, True)
    """
    backup = Path(backup_dir) / BACKUP_SUBFOLDER if backup_dir is not None else None
    if backup is not None and fingerprint is not None:
        check_backup(backup, fingerprint)
    clock = EpochClock(images_per_epoch, epochs, verbose=verbose, batch_size=batch_size,
                       history_file=backup / "history.json" if backup else None, clock=clock)
    all_callbacks: list[Any] = [clock, *callbacks]
    budget = None
    if time_budget_seconds:
        budget = TimeBudget(time_budget_seconds, verbose=verbose, clock=clock.clock)
        all_callbacks.append(budget)
    if backup is not None:
        # First in the list: the backup is written before anything reports the epoch done.
        # double_checkpoint keeps the previous backup if the process dies while writing.
        all_callbacks.insert(0, keras.callbacks.BackupAndRestore(
            os.fspath(backup), double_checkpoint=True, delete_checkpoint=not keep_backup))
    clock.budget_callbacks = [cb for cb in all_callbacks if hasattr(cb, "spent_before")]
    start = clock.clock()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False,
              callbacks=all_callbacks)
    wall = clock.clock() - start + clock.offset_seconds  # offset: time spent before a resume
    train_seconds = sum(row["train_seconds"] for row in clock.rows)
    images = sum(row.get("images", images_per_epoch) for row in clock.rows)
    return TrainingResult(
        model=model, history=clock.rows, train_seconds=round(train_seconds, 3),
        wall_seconds=round(wall, 3),
        images_per_second=round(images / train_seconds, 1) if train_seconds else 0.0,
        stopped_by_time_budget=bool(budget and budget.stopped_at_epoch),
        resumed_after_epoch=clock.resumed_after_epoch)


def remove_backup(backup_dir: str | os.PathLike | None) -> None:
    """Delete the backup :func:`fit` made in ``backup_dir`` (only its ``tlcnn-backup`` subfolder).

    Call it once the trained model and its report are saved (``fit(..., keep_backup=True)``).

    >>> import tempfile
    >>> remove_backup(tempfile.mkdtemp())  # nothing there: nothing to do
    """
    if backup_dir is not None:
        shutil.rmtree(Path(backup_dir) / BACKUP_SUBFOLDER, ignore_errors=True)


def train_recipe(recipe: Recipe, train: tuple[np.ndarray, np.ndarray],
                 val: tuple[np.ndarray, np.ndarray] | None, *, num_classes: int, seed: int = 0,
                 time_budget_seconds: float | None = None,
                 backup_dir: str | os.PathLike | None = None, verbose: bool = True,
                 model=None, callbacks: Sequence[Any] = (),
                 keep_backup: bool = False, run_facts: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> TrainingResult:
    """Train ``recipe`` on ``train`` = (uint8 images, int labels), validating on ``val``.

    Seeds Python, NumPy and Keras with ``seed`` first, so without a time budget the same
    call gives the same model; with ``time_budget_seconds`` the run stops where the
    machine's speed lets it, so a re-run can end elsewhere and give other numbers. ``model``
    replaces the recipe's freshly built model (it is re-compiled with the recipe's
    optimizer); see :func:`fit` for ``backup_dir``: its fingerprint is the recipe, seed,
    data sizes and budget plus ``run_facts`` (profile, data source...), so a backup made by
    another run is refused, not resumed. With ``time_budget_seconds`` a warm-up + cosine
    schedule is fitted into the budget (:class:`WarmupCosineWithinBudget`); otherwise
    training stops after the last epoch that fits (:class:`TimeBudget`).
    """
    if len(x := train[0]) == 0:
        raise ModelInputError("no training images: the training split is empty")
    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    budgeted, compiled_recipe = None, recipe
    if time_budget_seconds and recipe.schedule == "warmup_cosine":
        # The schedule is driven by a callback that fits it into the time budget.
        budgeted = WarmupCosineWithinBudget(recipe.learning_rate, recipe.epochs * steps_per_epoch,
                                            recipe.warmup_fraction, time_budget_seconds,
                                            verbose=verbose, clock=clock)
        compiled_recipe = replace(recipe, schedule="constant")
        callbacks = [budgeted, *callbacks]
    if model is None:
        model = build_model(compiled_recipe, x.shape[1:], num_classes, steps_per_epoch)
        model_builders.fit_whitening(model, x)  # a frozen first layer fitted to the data
    else:
        check_images(model, x, "the training images")
        if recipe.scales and None not in image_input_shape(model)[:2]:
            raise ModelInputError(f"the {recipe.name} recipe trains at several sizes, but model "
                                  f"{model.name!r} takes one size only: make it size-agnostic "
                                  f"first (transfer.make_size_agnostic) or use another recipe")
        compile_for_classification(
            model, optimizer=optimizer_for(compiled_recipe, steps_per_epoch),
            label_smoothing=recipe.label_smoothing)
    train_ds = make_dataset(*train, num_classes=num_classes, batch_size=recipe.batch_size,
                            training=True, seed=seed, augment=recipe.augment,
                            scales=recipe.scales, scale_weighting=recipe.scale_weighting)
    val_ds = None
    if val is not None:
        val_ds = make_dataset(*val, num_classes=num_classes, batch_size=256)
    if verbose:
        print(recipe.describe(), flush=True)
    fingerprint = {"recipe": asdict(recipe), "seed": seed, "train_images": len(x),
                   "val_images": 0 if val is None else len(val[0]), "num_classes": num_classes,
                   "time_budget_seconds": time_budget_seconds, **(run_facts or {})}
    result = fit(model, train_ds, val_ds, epochs=recipe.epochs, images_per_epoch=len(x),
                 time_budget_seconds=None if budgeted else time_budget_seconds,
                 backup_dir=backup_dir, verbose=verbose, callbacks=callbacks,
                 batch_size=recipe.batch_size, keep_backup=keep_backup, clock=clock,
                 fingerprint=fingerprint)
    if budgeted is not None:
        result.stopped_by_time_budget = budgeted.stopped
    return result


# ---------------------------------------------------------------------------- reports
def training_report(result: TrainingResult, metrics: dict[str, float], *, recipe: Recipe,
                    profile: str, data_source: str, **extra: Any) -> dict[str, Any]:
    """The JSON-ready report of a run (the ``train`` command writes it).

    >>> r = TrainingResult(None, [{"epoch": 1, "val_accuracy": 0.5, "elapsed_seconds": 2.0}],
    ...                    2.0, 2.5, 100.0)
    >>> rep = training_report(r, {"test_accuracy": 0.5, "test_loss": 1.2},
    ...                       recipe=paper_recipe(1), profile="smoke", data_source="synthetic")
    >>> rep["epochs"], rep["history"][0]["val_accuracy"]
    (1, 0.5)
    """
    report: dict[str, Any] = {
        "test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
        "epochs": result.epochs, "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds, "images_per_second": result.images_per_second,
        "recipe": recipe.name, "profile": profile, "data_source": data_source,
        "stopped_by_time_budget": result.stopped_by_time_budget,
        "resumed_after_epoch": result.resumed_after_epoch,
        "settings": asdict(recipe), "history": result.history}
    report.update(extra)
    return null_nonfinite(report)  # strict JSON: a diverged loss is reported as null


# ---------------------------------------------------------------------------- transfer learning: head, fine-tuning, from scratch
def batchnorm_layers(model: Any) -> list[tuple[str, Any]]:
    """``(path, layer)`` of every BatchNormalization layer, nested ones included.

    >>> [path for path, _ in batchnorm_layers(model_builders.paper_cnn())]
    ['bn1', 'bn2', 'bn3', 'bn4']
    """
    return [(path, layer) for path, layer in walk_layers(model)
            if isinstance(layer, layers.BatchNormalization)]


def _head_start(model: Any) -> int:
    """Index in ``model.layers`` of the first layer after the last global pooling layer."""
    pools = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.Flatten)
    found = [i for i, layer in enumerate(model.layers) if isinstance(layer, pools)]
    if not found:
        raise ModelInputError(f"model {model.name!r} has no Flatten or global pooling layer at its "
                              f"top level, so its head cannot be told apart from its base")
    return found[-1] + 1


def _fit(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int, batch_size: int,
         learning_rate: float, seed: int) -> Any:
    labels = check_labels(model, images, labels)
    keras.utils.set_random_seed(seed)
    # No XLA: compiling costs more than it saves on the few epochs these helpers run.
    compile_for_classification(model, optimizer=make_optimizer("adam", learning_rate),
                               labels="integer", jit_compile=False)
    return model.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True,
                     verbose=0)


def fit_classifier(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int = 1,
                   batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> Any:
    """Train every trainable layer on integer ``labels`` with Adam (e.g. a model from scratch).

    Uses the same loss, optimizer and seeding as :func:`fit_head` and :func:`fine_tune`,
    so a from-scratch baseline and a fine-tuned model are trained alike.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> len(fit_classifier(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1]), epochs=2).history["loss"])
    2
    """
    return _fit(model, images, labels, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, seed=seed)


def fit_head(model: Any, images: np.ndarray, labels: np.ndarray, *, epochs: int = 1,
             batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> Any:
    """Train only the layers after the (last) Flatten or global pooling; the rest stay frozen.

    ``labels`` are integers; the model is compiled with sparse categorical cross-entropy
    (from logits unless the last layer is a softmax). Trainable flags are restored after.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> before = m.layers[0].kernel.numpy().copy()
    >>> _ = fit_head(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1]))
    >>> bool((m.layers[0].kernel.numpy() == before).all())
    True
    """
    start = _head_start(model)
    flags = [layer.trainable for layer in model.layers]
    try:
        for i, layer in enumerate(model.layers):
            layer.trainable = i >= start and flags[i]
        return _fit(model, images, labels, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed)
    finally:
        for layer, flag in zip(model.layers, flags, strict=True):
            layer.trainable = flag


def fine_tune(model: Any, images: np.ndarray, labels: np.ndarray, *, head_epochs: int = 1,
              finetune_epochs: int = 1, batch_size: int = 64, learning_rate: float = 1e-3,
              finetune_learning_rate: float = 1e-4, seed: int = 0) -> list[Any]:
    """Fine-tune in two stages: the head with the base frozen, then everything at a lower rate.

    The usual recipe (Keras guide "Transfer learning & fine-tuning"): freezing first keeps
    the large gradients of a fresh head from wrecking the copied weights. BatchNorm layers
    stay in inference mode in the second stage too, as that guide recommends.
    Returns the two Keras histories.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> len(fine_tune(m, np.ones((4, 8, 8, 3)), np.array([0, 1, 0, 1])))
    2
    """
    histories = [fit_head(model, images, labels, epochs=head_epochs, batch_size=batch_size,
                          learning_rate=learning_rate, seed=seed)] if head_epochs else []
    norms = batchnorm_layers(model)
    flags = [layer.trainable for _, layer in norms]
    try:
        for _, layer in norms:
            layer.trainable = False
        if finetune_epochs:
            histories.append(_fit(model, images, labels, epochs=finetune_epochs,
                                  batch_size=batch_size, learning_rate=finetune_learning_rate,
                                  seed=seed + 1))
    finally:
        for (_, layer), flag in zip(norms, flags, strict=True):
            layer.trainable = flag
    return histories
