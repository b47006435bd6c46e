"""``python -m tlcnn_helpers transfer``: move a saved model to another input size.

Loads ``--model``, rebuilds it for ``--input-shape`` (or, with ``--size-agnostic``, for any
size: Flatten becomes global pooling), copies every weight that fits, prints the copy report
and saves the result to ``--out`` (written atomically; an existing file is only replaced
with ``--overwrite``).

>>> import tempfile
>>> from pathlib import Path
>>> from tlcnn_helpers.cli import main
>>> from tlcnn_helpers.models import paper_cnn
>>> work = Path(tempfile.mkdtemp())
>>> paper_cnn(filters=(4, 4, 8, 8), dense_units=8).save(work / "model.keras")
>>> main(["transfer", "--model", str(work / "model.keras"), "--input-shape", "96,96,3",
...       "--out", str(work / "model96.keras")])  # doctest: +ELLIPSIS
layer ...
hidden1 ...re-initialised...
0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CourseError, ModelInputError


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"96,96,3"`` (or ``"96x96x3"``, or ``"96,96"`` keeping the channels) as a tuple.

    >>> parse_input_shape("96,96,3"), parse_input_shape("64x48")
    ((96, 96, 3), (64, 48))
    """
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) <= 0:
        raise CourseError(f"--input-shape {text!r}: give height,width,channels as positive "
                          f"integers, e.g. --input-shape 96,96,3")
    return shape


def _load(path: Path):
    from ..files import load_model

    if not path.is_file():
        raise ModelInputError(f"--model {path}: no such file. Save a model with model.save(...) "
                              f"or train one with `python -m tlcnn_helpers train cifar10`")
    try:
        return load_model(path, compile=False)
    except ModelInputError as err:
        raise ModelInputError(f"--model {err}") from None


def run_transfer(model_path: Path, out: Path, input_shape: tuple[int, ...] | None = None,
                 size_agnostic: bool = False, pooling: str = "avg",
                 overwrite: bool = False):
    """Load, transfer, report, save; returns the :class:`~tlcnn_helpers.transfer.TransferReport`.

    >>> import tempfile
    >>> from tlcnn_helpers.models import paper_cnn
    >>> work = Path(tempfile.mkdtemp())
    >>> paper_cnn(filters=(4, 4, 8, 8), dense_units=8).save(work / "model.keras")
    >>> report = run_transfer(work / "model.keras", work / "any.keras", size_agnostic=True)
    ... # doctest: +ELLIPSIS
    layer ...
    >>> report.folded
    ['hidden1']
    """
    from ..files import check_output_file, save_model
    from ..transfer import check_input_shape, make_size_agnostic, with_input_shape

    if out.suffix != ".keras":
        raise CourseError(f"--out {out}: Keras 3 saves whole models as .keras files; use that "
                          f"suffix")
    check_output_file(out, "--out")
    if out.resolve() == model_path.resolve():
        raise CourseError(f"--out {out} is the input model: choose another file so the original "
                          f"is kept")
    if out.exists() and not overwrite:
        raise CourseError(f"--out {out} already exists: pass --overwrite to replace it, or "
                          f"choose another name")
    if input_shape is None and not size_agnostic:
        raise CourseError("give --input-shape HEIGHT,WIDTH,CHANNELS, or --size-agnostic")
    model = _load(model_path)
    if size_agnostic:
        if input_shape is not None:  # fail early if this size can never work
            check_input_shape(model, input_shape)
        rebuilt, report = make_size_agnostic(model, pooling=pooling)
    else:
        rebuilt, report = with_input_shape(model, input_shape)
    print(report)
    save_model(rebuilt, out)  # atomic: an old file stays intact until the new one is whole
    print(f"saved {out}")
    return report


def _command(args: argparse.Namespace) -> int:
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    run_transfer(Path(args.model), Path(args.out), shape, args.size_agnostic, args.pooling,
                 args.overwrite)
    return 0


def register(subparsers) -> None:
    """Add the ``transfer`` command."""
    parser = subparsers.add_parser(
        "transfer", help="rebuild a saved model for another input size, keeping its weights",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""))
    parser.add_argument("--model", required=True, help="the trained model (.keras)")
    parser.add_argument("--input-shape", metavar="H,W,C",
                        help="the new input shape, e.g. 96,96,3 (with --size-agnostic: checked "
                             "to be large enough)")
    parser.add_argument("--size-agnostic", action="store_true",
                        help="replace Flatten by global pooling: the model takes any image size")
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg",
                        help="global pooling for --size-agnostic (default avg)")
    parser.add_argument("--out", required=True, help="where to save the new model (.keras)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=_command)
