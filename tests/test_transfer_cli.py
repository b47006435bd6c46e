"""``python -m tlcnn_helpers transfer``: the copy report, the saved model, and bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcnn_helpers.cli import main
from tlcnn_helpers.commands.transfer import parse_input_shape
from tlcnn_helpers.errors import CourseError
from tlcnn_helpers.models import paper_cnn


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model = paper_cnn(filters=(4, 4, 8, 8), dense_units=8)
    model.get_layer("bn2").moving_mean.assign(np.arange(4, dtype="float32"))
    path = tmp_path_factory.mktemp("models") / "small.keras"
    model.save(path)
    return path


def run(model, x):
    """Predictions without model.predict's tracing (eager: much less CPU for a few images)."""
    return np.asarray(model(np.asarray(x, "float32"), training=False))


def test_transfer_prints_the_report_and_saves_the_model(saved_model, tmp_path, capsys):
    out = tmp_path / "model96.keras"
    assert main(["transfer", "--model", str(saved_model), "--input-shape", "96,96,3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "hidden" in printed and "re-initialised" in printed and f"saved {out}" in printed
    moved = keras.models.load_model(out)
    original = keras.models.load_model(saved_model, compile=False)
    assert moved.input_shape == (None, 96, 96, 3)
    np.testing.assert_array_equal(moved.get_layer("bn2").moving_mean.numpy(), np.arange(4))
    np.testing.assert_array_equal(moved.get_layer("conv3").kernel.numpy(),
                                  original.get_layer("conv3").kernel.numpy())
    assert not list(tmp_path.glob(".*partial*"))


def test_size_agnostic_option(saved_model, tmp_path, capsys):
    out = tmp_path / "any.keras"
    assert main(["transfer", "--model", str(saved_model), "--size-agnostic", "--pooling", "max",
                 "--out", str(out)]) == 0
    assert "global_max_pool" in capsys.readouterr().out
    model = keras.models.load_model(out)
    assert model.input_shape == (None, None, None, 3)
    assert run(model, np.zeros((1, 72, 72, 3))).shape == (1, 9)


def test_existing_output_is_kept_unless_overwrite(saved_model, tmp_path, capsys):
    out = tmp_path / "taken.keras"
    out.write_bytes(b"precious")
    code = main(["transfer", "--model", str(saved_model), "--input-shape", "64,64,3",
                 "--out", str(out)])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["transfer", "--model", str(saved_model), "--input-shape", "64,64,3",
                 "--out", str(out), "--overwrite"]) == 0
    assert keras.models.load_model(out).input_shape == (None, 64, 64, 3)


@pytest.mark.parametrize(("extra", "expected"), [
    (["--input-shape", "8,8,3"], "'pool4'"),
    (["--input-shape", "96,96,1"], "grayscale_to_rgb"),
    (["--input-shape", "96;96"], "--input-shape"),
    (["--size-agnostic", "--input-shape", "8,8,3"], "smallest size that works is 16x16"),
    ([], "--size-agnostic"),
])
def test_bad_arguments_exit_2_with_the_fix(saved_model, tmp_path, capsys, extra, expected):
    out = tmp_path / "never.keras"
    code = main(["transfer", "--model", str(saved_model), "--out", str(out), *extra])
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_bad_files(saved_model, tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    assert main(["transfer", "--model", str(missing), "--input-shape", "96,96,3",
                 "--out", str(tmp_path / "o.keras")]) == 2
    assert f"--model {missing}: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert main(["transfer", "--model", str(broken), "--input-shape", "96,96,3",
                 "--out", str(tmp_path / "o.keras")]) == 2
    assert "not a readable Keras model" in capsys.readouterr().err
    before = saved_model.read_bytes()
    assert main(["transfer", "--model", str(saved_model), "--input-shape", "96,96,3",
                 "--out", str(saved_model), "--overwrite"]) == 2
    assert "is the input model" in capsys.readouterr().err
    assert saved_model.read_bytes() == before
    assert main(["transfer", "--model", str(saved_model), "--input-shape", "96,96,3",
                 "--out", str(tmp_path / "o.h5")]) == 2
    assert ".keras" in capsys.readouterr().err


def test_parse_input_shape():
    assert parse_input_shape("96, 96, 3") == (96, 96, 3)
    with pytest.raises(CourseError, match="positive integers"):
        parse_input_shape("96,-1,3")
