"""Training and evaluation: recipes, callbacks, time budgets, seeds, precision and reports.

Two levels, both used by the notebooks and the ``train`` command:

* :func:`fit` trains any compiled model on two ``tf.data`` datasets with the course's
  callbacks (one progress line per epoch, per-epoch timing, an optional time budget, and
  ``BackupAndRestore`` so an interrupted run resumes from its last finished epoch) and
  returns a :class:`TrainingResult`.
* :func:`train_recipe` does everything for a :class:`Recipe` (``"paper"`` or ``"fast"``,
  see :func:`get_recipe`): pipelines, model, learning-rate schedule, precision, ``fit``.

>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype="uint8")
>>> y = np.arange(40) % 3
>>> recipe = get_recipe("fast", epochs=1, batch_size=20, widths=(8, 16), residual_stages=(2,))
>>> result = train_recipe(recipe, (x, y), (x, y), num_classes=3, seed=0, verbose=0)
>>> len(result.history), sorted(evaluate(result.model, x, y, num_classes=3))
(1, ['test_accuracy', 'test_loss'])
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import models as model_builders
from .errors import ModelInputError, TLCNNError
from .paths import write_text_atomic
from .pipelines import make_dataset

RECIPES = ("paper", "fast")
BACKUP_SUBFOLDER = "tlcnn-backup"
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
    """

    name: str
    model: str  # "paper" -> models.paper_cifar_cnn, "fast" -> models.fast_cifar_cnn
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

    def describe(self) -> str:
        """One line for notebooks and logs."""
        return (f"{self.name}: {self.model} model, {self.epochs} epochs, batch {self.batch_size}, "
                f"{self.optimizer} lr {self.learning_rate:g} ({self.schedule}), "
                f"label smoothing {self.label_smoothing:g}, augment {self.augment}, "
                f"{self.precision}")


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


def choose_precision(requested: str = "auto", devices: Sequence[Any] | None = None) -> str:
    """The Keras dtype policy to train with; ``"auto"`` picks what is measured to help.

    A GPU: ``"mixed_float16"``. A CPU with native bfloat16: ``"mixed_bfloat16"`` (about 1.3 to
    1.5x faster per image here, ``benchmarks/README.md``). Otherwise ``"float32"``, because
    emulated bfloat16 is slower than float32. Any other value is returned unchanged.

    >>> choose_precision("float32")
    'float32'
    >>> choose_precision("auto", devices=["CPU", "GPU"])
    'mixed_float16'
    """
    if requested != "auto":
        return requested
    if devices is None:
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    kinds = {str(getattr(d, "device_type", d)).upper() for d in devices}
    if "GPU" in kinds:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"


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
    ``overrides`` replace any :class:`Recipe` field, and
    unknown keys (such as ``widths``) go to the model builder.

    >>> fast_recipe(epochs=3).schedule
    'warmup_cosine'
    """
    fields = set(Recipe.__dataclass_fields__)
    model_options = {k: overrides.pop(k) for k in list(overrides) if k not in fields}
    base = Recipe(name="fast", model="fast", epochs=epochs, batch_size=batch_size,
                  learning_rate=4e-3, optimizer="adamw", weight_decay=5e-4,
                  schedule="warmup_cosine", warmup_fraction=0.15, label_smoothing=0.1,
                  augment="flip_translate", precision="auto", steps_per_execution=1,
                  model_options=model_options)
    return replace(base, **overrides)


def get_recipe(name: str, profile: Any = None, **overrides: Any) -> Recipe:
    """The ``"paper"`` or ``"fast"`` recipe, with epochs and batch size from ``profile.cifar``.

    >>> from tlcnn_helpers.profiles import get_profile
    >>> get_recipe("paper", get_profile("smoke")).epochs
    2
    """
    if name not in RECIPES:
        raise TLCNNError(f"recipe {name!r} is unknown: use one of {', '.join(RECIPES)}")
    settings: dict[str, Any] = {}
    if profile is not None:
        budget = profile.cifar
        paper = name == "paper"
        settings = {"epochs": budget.paper_epochs if paper else budget.fast_epochs,
                    "batch_size": budget.paper_batch_size if paper else budget.batch_size}
    settings.update(overrides)
    if name == "paper":
        base = paper_recipe(settings.pop("epochs", 30), settings.pop("batch_size", 64))
        return replace(base, **settings)
    return fast_recipe(**settings)


def learning_rate_schedule(recipe: Recipe, steps_per_epoch: int):
    """The learning rate of ``recipe``: a float, or a Keras schedule over all its steps.

    >>> lr = learning_rate_schedule(fast_recipe(epochs=2), steps_per_epoch=10)
    >>> round(float(lr(0)), 6), round(float(lr(3)), 4), round(float(lr(19)), 5)
    (0.0, 0.004, 3e-05)
    """
    import keras

    if recipe.schedule not in SCHEDULES:
        raise TLCNNError(f"schedule {recipe.schedule!r} is unknown: use {', '.join(SCHEDULES)}")
    if recipe.schedule == "constant":
        return recipe.learning_rate
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = int(round(total * recipe.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total - warmup),
        warmup_target=recipe.learning_rate, warmup_steps=warmup)


def make_optimizer(recipe: Recipe, steps_per_epoch: int):
    """The Keras optimizer of ``recipe`` with its learning-rate schedule.

    >>> make_optimizer(fast_recipe(epochs=2), steps_per_epoch=10).__class__.__name__
    'AdamW'
    """
    import keras

    lr = learning_rate_schedule(recipe, steps_per_epoch)
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True,
                                    weight_decay=recipe.weight_decay or None)
    raise TLCNNError(f"optimizer {recipe.optimizer!r} is unknown: use adam, adamw or sgd")


def build_model(recipe: Recipe, input_shape: Sequence[int], num_classes: int,
                steps_per_epoch: int):
    """Build and compile the model of ``recipe`` under its precision policy.

    The global dtype policy is restored afterwards, so other models are not affected.

    >>> build_model(paper_recipe(1), (32, 32, 3), 9, steps_per_epoch=10).count_params()
    919753
    """
    import keras

    builders: dict[str, Callable] = {"paper": model_builders.paper_cifar_cnn,
                                     "fast": model_builders.fast_cifar_cnn}
    if recipe.model not in builders:
        raise TLCNNError(f"model {recipe.model!r} is unknown: use one of {', '.join(builders)}")
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(choose_precision(recipe.precision))
    try:
        options = dict(recipe.model_options)
        if recipe.model == "paper":
            options["compile"] = False
        model = builders[recipe.model](tuple(input_shape), num_classes, **options)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model_builders.compile_for_classification(
        model, optimizer=make_optimizer(recipe, steps_per_epoch),
        label_smoothing=recipe.label_smoothing)
    model.steps_per_execution = recipe.steps_per_execution
    return model


# ---------------------------------------------------------------------------- callbacks
def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class EpochClock(_keras_callback_base()):
    """Records, for each epoch, its metrics, the training seconds and the elapsed seconds.

    ``elapsed_seconds`` counts from the start of ``fit`` (validation included); the
    training seconds exclude validation, so ``images_per_second`` measures training only.
    Prints one line per epoch when ``verbose``.

    >>> clock = EpochClock(images_per_epoch=1000, epochs=3, batch_size=100)
    >>> clock.rows, clock.resumed_after_epoch
    ([], 0)
    """

    def __init__(self, images_per_epoch: int, epochs: int, verbose: bool = True,
                 history_file: str | os.PathLike | None = None, batch_size: int | None = None):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self.batch_size = batch_size  # with it, an epoch cut short counts only its batches
        self._last_batch = -1
        self.epochs = epochs
        self.verbose = verbose
        self.history_file = Path(history_file) if history_file else None
        self.rows: list[dict[str, float]] = []
        self.resumed_after_epoch = 0
        self.offset_seconds = 0.0
        self._fit_start = self._epoch_start = self._train_end = 0.0

    def on_train_begin(self, logs=None):
        self._fit_start = time.perf_counter()
        # BackupAndRestore (earlier in the list) has set the epoch to resume after.
        self.resumed_after_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
        if self.resumed_after_epoch and self.history_file and self.history_file.is_file():
            saved = json.loads(self.history_file.read_text())
            self.rows = [row for row in saved if row["epoch"] <= self.resumed_after_epoch]
            if self.rows:
                self.offset_seconds = self.rows[-1]["elapsed_seconds"]
            if self.verbose:
                print(f"resuming after epoch {self.resumed_after_epoch} from the backup",
                      flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_end = 0.0
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = batch

    def on_test_begin(self, logs=None):
        if self._epoch_start and not self._train_end:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
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
            save_json(self.rows, self.history_file)
        if self.verbose:
            shown = "  ".join(f"{k} {row[k]:.4f}" for k in
                              ("loss", "accuracy", "val_loss", "val_accuracy") if k in row)
            rate = images / max(train_seconds, 1e-9)
            print(f"epoch {epoch + 1}/{self.epochs}  {shown}  "
                  f"{now - self._epoch_start:.1f} s ({rate:,.0f} images/s)", flush=True)


class TimeBudget(_keras_callback_base()):
    """Stops training after an epoch when the next one would overrun ``seconds``.

    The estimate is the slowest epoch so far, so the run ends within the budget unless a
    single epoch is longer than it (at least one epoch always runs).

    >>> TimeBudget(120, verbose=False).stopped_at_epoch is None
    True
    """

    def __init__(self, seconds: float, verbose: bool = True):
        super().__init__()
        if seconds <= 0:
            raise TLCNNError(f"time budget {seconds} s: give a positive number of seconds")
        self.seconds = seconds
        self.verbose = verbose
        self.stopped_at_epoch: int | None = None
        self._start = self._epoch_start = 0.0
        self._longest = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
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


class WarmupCosineWithinBudget(_keras_callback_base()):
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
                 budget_seconds: float | None, verbose: bool = True):
        super().__init__()
        self.peak, self.total_steps = peak, max(1, total_steps)
        self.warmup_fraction, self.budget_seconds = warmup_fraction, budget_seconds
        self.verbose = verbose
        self.stopped = False
        self.progress = 0.0
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def _elapsed_fraction(self) -> float:
        if not self.budget_seconds:
            return 0.0
        return (time.perf_counter() - self._start) / self.budget_seconds

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
    import keras

    return float(keras.ops.convert_to_numpy(variable))


# ---------------------------------------------------------------------------- fit / evaluate
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


def fit(model, train_ds, val_ds=None, *, epochs: int, images_per_epoch: int,
        time_budget_seconds: float | None = None, backup_dir: str | os.PathLike | None = None,
        verbose: bool = True, callbacks: Sequence[Any] = (),
        batch_size: int | None = None) -> TrainingResult:
    """Train a compiled ``model`` with the course's callbacks and time it.

    ``backup_dir`` turns on Keras ``BackupAndRestore`` (in its subfolder ``tlcnn-backup``,
    removed when training completes): if the process dies, calling ``fit`` again with the
    same folder resumes after the last finished epoch, and the history keeps the epochs
    finished before the interruption. ``time_budget_seconds`` stops training early
    (see :class:`TimeBudget`). ``images_per_epoch`` (and ``batch_size``, for an epoch cut
    short) give the throughput figure.

    >>> import numpy as np
    >>> from tlcnn_helpers.models import paper_cifar_cnn
    >>> x = np.zeros((8, 32, 32, 3), "uint8"); y = np.arange(8) % 2
    >>> ds = make_dataset(x, y, num_classes=2, batch_size=4)
    >>> r = fit(paper_cifar_cnn(num_classes=2, dense_units=8), ds, epochs=1,
    ...         images_per_epoch=8, verbose=False)
    >>> r.epochs, r.images_per_second > 0
    (1, True)
    """
    import keras

    backup = Path(backup_dir) / BACKUP_SUBFOLDER if backup_dir is not None else None
    clock = EpochClock(images_per_epoch, epochs, verbose=verbose, batch_size=batch_size,
                       history_file=backup / "history.json" if backup else None)
    all_callbacks: list[Any] = [clock, *callbacks]
    budget = None
    if time_budget_seconds:
        budget = TimeBudget(time_budget_seconds, verbose=verbose)
        all_callbacks.append(budget)
    if backup is not None:
        # First in the list: the backup is written before anything reports the epoch done.
        # double_checkpoint keeps the previous backup if the process dies while writing.
        all_callbacks.insert(0, keras.callbacks.BackupAndRestore(
            os.fspath(backup), double_checkpoint=True))
    start = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False,
              callbacks=all_callbacks)
    wall = time.perf_counter() - start
    train_seconds = sum(row["train_seconds"] for row in clock.rows)
    images = sum(row.get("images", images_per_epoch) for row in clock.rows)
    wall += clock.offset_seconds  # time spent before a resume
    return TrainingResult(
        model=model, history=clock.rows, train_seconds=round(train_seconds, 3),
        wall_seconds=round(wall, 3),
        images_per_second=round(images / train_seconds, 1) if train_seconds else 0.0,
        stopped_by_time_budget=bool(budget and budget.stopped_at_epoch),
        resumed_after_epoch=clock.resumed_after_epoch)


def check_images_fit(model, x: np.ndarray, source: str = "the images") -> None:
    """Raise :class:`ModelInputError` when images of ``x``'s shape cannot go into ``model``.

    >>> from tlcnn_helpers.models import paper_cifar_cnn
    >>> check_images_fit(paper_cifar_cnn(), np.zeros((1, 96, 96, 3)), "stl10")
    Traceback (most recent call last):
    ...
    tlcnn_helpers.errors.ModelInputError: stl10 are 96x96x3 images but the model expects 32x32x3: ...
    """
    expected = tuple(model.input_shape[1:])
    got = tuple(np.shape(x)[1:])
    if expected != got:
        def shape_text(s):
            return "x".join(str(d) for d in s)

        raise ModelInputError(
            f"{source} are {shape_text(got)} images but the model expects "
            f"{shape_text(expected)}: a model trained on one image size cannot be evaluated on "
            f"another. Resize the images, or see notebooks/05_transfer_across_sizes.ipynb to move "
            f"a trained model to a new input size.")


def evaluate(model, x: np.ndarray, y: np.ndarray, *, num_classes: int | None = None,
             batch_size: int = 256) -> dict[str, float]:
    """``{"test_accuracy", "test_loss"}`` of ``model`` on uint8 images ``x``, int labels ``y``.

    The loss is plain categorical cross-entropy (no label smoothing), so recipes trained
    with and without smoothing are compared on the same scale.

    >>> from tlcnn_helpers.models import paper_cifar_cnn
    >>> sorted(evaluate(paper_cifar_cnn(), np.zeros((4, 32, 32, 3), "uint8"), np.arange(4)))
    ['test_accuracy', 'test_loss']
    """
    import keras

    num_classes = num_classes or int(model.output_shape[-1])
    probabilities = predict(model, x, batch_size=batch_size)
    labels = model_builders.one_hot(np.asarray(y), num_classes)
    loss = keras.losses.categorical_crossentropy(labels, probabilities)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(y)))
    return {"test_accuracy": round(accuracy, 6), "test_loss": round(float(np.mean(loss)), 6)}


def predict(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (float32) for uint8 images, batched through tf.data.

    >>> from tlcnn_helpers.models import paper_cifar_cnn
    >>> predict(paper_cifar_cnn(), np.zeros((2, 32, 32, 3), "uint8")).shape
    (2, 9)
    """
    import tensorflow as tf

    check_images_fit(model, x)
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(x)).batch(batch_size)
    return np.concatenate([np.asarray(model(batch, training=False), dtype="float32")
                           for batch in ds]) if len(x) else np.zeros((0, model.output_shape[-1]))


# ---------------------------------------------------------------------------- recipes end to end
def train_recipe(recipe: Recipe, train: tuple[np.ndarray, np.ndarray],
                 val: tuple[np.ndarray, np.ndarray] | None, *, num_classes: int, seed: int = 0,
                 time_budget_seconds: float | None = None,
                 backup_dir: str | os.PathLike | None = None, verbose: bool = True,
                 model=None, callbacks: Sequence[Any] = ()) -> TrainingResult:
    """Train ``recipe`` on ``train`` = (uint8 images, int labels), validating on ``val``.

    Seeds Python, NumPy and Keras with ``seed`` first, so the same call gives the same
    model. ``model`` replaces the recipe's freshly built model (it is re-compiled with the
    recipe's optimizer); see :func:`fit` for ``backup_dir``. ``time_budget_seconds`` stops
    training in time; with the warm-up + cosine schedule the whole schedule is fitted into
    the budget (:class:`WarmupCosineWithinBudget`), otherwise training stops after the last
    epoch that fits (:class:`TimeBudget`).
    """
    import keras

    x, y = train
    if len(x) == 0:
        raise ModelInputError("no training images: the training split is empty")
    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    budgeted = None
    compiled_recipe = recipe
    if time_budget_seconds and recipe.schedule == "warmup_cosine":
        # The schedule is driven by a callback that fits it into the time budget.
        budgeted = WarmupCosineWithinBudget(recipe.learning_rate, recipe.epochs * steps_per_epoch,
                                            recipe.warmup_fraction, time_budget_seconds,
                                            verbose=verbose)
        compiled_recipe = replace(recipe, schedule="constant")
        callbacks = [budgeted, *callbacks]
    if model is None:
        model = build_model(compiled_recipe, x.shape[1:], num_classes, steps_per_epoch)
    else:
        check_images_fit(model, x, "the training images")
        model_builders.compile_for_classification(
            model, optimizer=make_optimizer(compiled_recipe, steps_per_epoch),
            label_smoothing=recipe.label_smoothing)
    train_ds = make_dataset(x, y, num_classes=num_classes, batch_size=recipe.batch_size,
                            training=True, seed=seed, augment=recipe.augment)
    val_ds = None
    if val is not None:
        val_ds = make_dataset(*val, num_classes=num_classes, batch_size=256)
    if verbose:
        print(recipe.describe(), flush=True)
    result = fit(model, train_ds, val_ds, epochs=recipe.epochs, images_per_epoch=len(x),
                 time_budget_seconds=None if budgeted else time_budget_seconds,
                 backup_dir=backup_dir, verbose=verbose, callbacks=callbacks,
                 batch_size=recipe.batch_size)
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
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "epochs": result.epochs,
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "images_per_second": result.images_per_second,
        "recipe": recipe.name,
        "profile": profile,
        "data_source": data_source,
        "stopped_by_time_budget": result.stopped_by_time_budget,
        "resumed_after_epoch": result.resumed_after_epoch,
        "settings": asdict(recipe),
        "history": result.history,
    }
    report.update(extra)
    return report


def save_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as JSON atomically: a crash never leaves a half-written file.

    >>> import tempfile
    >>> json.loads(save_json({"a": 1}, Path(tempfile.mkdtemp()) / "r.json").read_text())
    {'a': 1}
    """
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(model, path: str | os.PathLike) -> Path:
    """Save ``model`` as ``.keras`` atomically (a crash keeps the previous file intact).

    >>> import tempfile
    >>> from tlcnn_helpers.models import paper_cifar_cnn
    >>> path = save_model(paper_cifar_cnn(compile=False), Path(tempfile.mkdtemp()) / "m.keras")
    >>> load_model(path).count_params()
    919753
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise TLCNNError(f"{path}: Keras 3 saves whole models as .keras files; use that suffix")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model, with a clear error when the file is missing or not a model.

    >>> load_model("nowhere.keras")
    Traceback (most recent call last):
    ...
    tlcnn_helpers.errors.ModelInputError: no model file at nowhere.keras: train one first ...
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelInputError(f"no model file at {path}: train one first (notebook 03, or "
                              f"`python -m tlcnn_helpers train cifar10 --out {path}`)")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # Keras raises several types for a damaged archive
        raise ModelInputError(f"{path} is not a readable .keras model ({err}); delete it and "
                              f"train again") from err


# ---------------------------------------------------------------------------- error analysis
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]`` (rows: the truth).

    >>> confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """The share of each true class predicted correctly (the diagonal over the row sums).

    >>> per_class_accuracy(np.array([[3, 1], [0, 2]])).tolist()
    [0.75, 1.0]
    """
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.zeros(len(matrix)), where=totals > 0)


def most_confident_mistakes(probabilities: np.ndarray, y_true: np.ndarray, count: int = 8
                            ) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence, most confident first.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> most_confident_mistakes(p, np.array([1, 1, 1]), count=5).tolist()
    [0, 2]
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y_true))
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], *,
                          title: str = "Confusion matrix"):
    """The confusion matrix as a heat map (cividis), each row normalised to shares.

    >>> plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"]).axes[0].get_ylabel()
    'true class'
    """
    from .viz import closed_figure

    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, axes = closed_figure(1, 1, 6.2, 5.2)  # shown once by the cell that returns it
    ax = axes[0, 0]
    shown = ax.imshow(shares, cmap="cividis", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    for (row, col), share in np.ndenumerate(shares):
        ax.text(col, row, f"{share:.2f}"[1:] if share < 1 else "1", ha="center", va="center",
                fontsize=7, color="black" if share > 0.5 else "white")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="share of the true class")
    return fig


def plot_per_class_accuracy(accuracies: dict[str, Sequence[float]], class_names: Sequence[str],
                            *, title: str = "Accuracy per class"):
    """Grouped bars: one group per class, one bar (hatched differently) per model.

    >>> plot_per_class_accuracy({"m": [0.5, 1.0]}, ["a", "b"]).axes[0].get_xlabel()
    'true class'
    """
    import matplotlib.pyplot as plt

    from .viz import closed_figure

    fig, axes = closed_figure(1, 1, 7, 3.4)  # shown once by the cell that returns it
    ax = axes[0, 0]
    width = 0.8 / max(len(accuracies), 1)
    colours = plt.get_cmap("cividis")(np.linspace(0.15, 0.85, max(len(accuracies), 1)))
    hatches = ["", "//", "..", "xx"]
    positions = np.arange(len(class_names))
    for i, (label, values) in enumerate(accuracies.items()):
        ax.bar(positions + i * width, values, width, label=label, color=colours[i],
               hatch=hatches[i % len(hatches)], edgecolor="black", linewidth=0.4)
    ax.set_xticks(positions + width * (len(accuracies) - 1) / 2, class_names, rotation=30)
    ax.set_ylim(0, 1)
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_learning_curves(results: dict[str, TrainingResult], *, metric: str = "val_accuracy",
                         against: str = "elapsed_seconds", title: str | None = None):
    """One curve per run: ``metric`` per epoch against wall time (or ``against="epoch"``).

    >>> run = TrainingResult(None, [{"epoch": 1, "val_accuracy": 0.5, "elapsed_seconds": 3.0}],
    ...                      2.0, 3.0, 10.0)
    >>> plot_learning_curves({"demo": run}).axes[0].get_xlabel()
    'wall time (s)'
    """
    import matplotlib.pyplot as plt

    from .viz import closed_figure

    fig, axes = closed_figure(1, 1, 6.4, 3.6)  # shown once by the cell that returns it
    ax = axes[0, 0]
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, max(len(results), 1)))
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    for i, (label, result) in enumerate(results.items()):
        ax.plot(result.curve(against), result.curve(metric), label=label, color=colours[i],
                linestyle=styles[i % 4], marker=markers[i % 4])
    ax.set_xlabel("wall time (s)" if against == "elapsed_seconds" else against.replace("_", " "))
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"{metric.replace('_', ' ')} during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
