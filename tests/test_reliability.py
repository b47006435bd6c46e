"""Nothing lost, nothing fabricated: outputs checked before work, backups kept until saved,
search folders guarded and locked, damaged state named, strict JSON, quiet start-up."""

import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tlcnn_helpers import data as data_module
from tlcnn_helpers.cli import main

REPO = Path(__file__).resolve().parent.parent


class DataLoaded(Exception):
    """Raised by a stand-in loader: the command got as far as loading data."""


def tiny_cifar(*args, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (40, 32, 32, 3), dtype="uint8")
    y = np.arange(40) % 2
    return (x, y), (x[:10], y[:10])


def refuse_loading(*args, **kwargs):
    raise DataLoaded


def train_args(tmp_path, *extra):
    return ["train", "cifar10", "--profile", "smoke", "--out", str(tmp_path / "m.keras"),
            "--report", str(tmp_path / "r.json"), *extra]


# ---------------------------------------------------------------------------- item 2
@pytest.mark.parametrize("which", ["folder_report", "folder_out", "same", "parent_is_file",
                                   "read_only"])
def test_train_refuses_an_unwritable_output_before_loading_data(tmp_path, capsys, monkeypatch,
                                                                which):
    monkeypatch.setattr(data_module, "load_dataset", refuse_loading)
    out, report = tmp_path / "m.keras", tmp_path / "r.json"
    if which == "folder_report":
        report.mkdir()
    elif which == "folder_out":
        out.mkdir()
    elif which == "same":
        report = out
    elif which == "parent_is_file":
        (tmp_path / "notes.txt").write_text("mine")
        report = tmp_path / "notes.txt" / "r.json"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        report = locked / "r.json"
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
    code = main(["train", "cifar10", "--profile", "smoke", "--out", str(out),
                 "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert ("--report" in err or "--out" in err) and str(report if which != "folder_out"
                                                         else out) in err


@pytest.mark.slow
def test_train_keeps_the_backup_until_the_model_and_report_are_saved(tmp_path, capsys,
                                                                     monkeypatch):
    from tlcnn_helpers import files
    from tlcnn_helpers.training import BACKUP_SUBFOLDER

    monkeypatch.setattr(data_module, "load_dataset", tiny_cifar)

    def full_disk(model, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(files, "save_model", full_disk)
    backup = tmp_path / "backup"
    args = train_args(tmp_path, "--recipe", "fast", "--epochs", "1", "--batch-size", "20",
                      "--backup-dir", str(backup), "--quiet")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "m.keras" in err and "No space left" in err
    assert (backup / BACKUP_SUBFOLDER / "history.json").is_file()  # the training survives
    monkeypatch.undo()
    monkeypatch.setattr(data_module, "load_dataset", tiny_cifar)
    assert main(args) == 0
    assert (tmp_path / "m.keras").is_file() and (tmp_path / "r.json").is_file()
    assert not (backup / BACKUP_SUBFOLDER).exists()  # removed only once both are saved


# ---------------------------------------------------------------------------- item 3
def tune_args(tmp_path, *extra):
    return ["tune", "stl10", "--profile", "smoke", "--tuning-dir", str(tmp_path / "tuning"),
            *extra]


@pytest.mark.parametrize("project", ["..", ".", "/abs/olute", "a/b", ""])
def test_tune_refuses_a_project_that_is_not_a_plain_folder_name(tmp_path, capsys, project):
    (tmp_path / "tuning").mkdir()
    keep = tmp_path / "precious.txt"
    keep.write_text("mine")
    code = main(tune_args(tmp_path, "--project", project, "--fresh"))
    assert code == 2
    assert "--project" in capsys.readouterr().err
    assert keep.read_text() == "mine" and (tmp_path / "tuning").is_dir()


def test_fresh_deletes_only_a_folder_the_course_made(tmp_path):
    from tlcnn_helpers.errors import TuningError
    from tlcnn_helpers.tuning import SEARCH_SPACES, STL10HyperModel, prepare_search_folder

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    settings = dict(directory=tmp_path, max_trials=1, seed=1, epochs_per_trial=1,
                    hyperband_max_epochs=1, overwrite=True)
    with pytest.raises(TuningError, match="tlcnn_search.json"):
        prepare_search_folder("random", STL10HyperModel(SEARCH_SPACES["small"]),
                              project_name="theirs", **settings)
    assert (theirs / "thesis.tex").read_text() == "years of work"
    with pytest.raises(TuningError, match="plain folder name"):
        prepare_search_folder("random", STL10HyperModel(SEARCH_SPACES["small"]),
                              project_name="..", **settings)
    ours = prepare_search_folder("random", STL10HyperModel(SEARCH_SPACES["small"]),
                                 project_name="ours", **settings)
    (ours / "trial_00").mkdir()
    prepare_search_folder("random", STL10HyperModel(SEARCH_SPACES["small"]),
                          project_name="ours", **settings)
    assert not (ours / "trial_00").exists() and (ours / "tlcnn_search.json").exists()


# ---------------------------------------------------------------------------- item 4
def _save_rounds(path: str, barrier, rounds: int, width: int) -> None:
    import keras

    from tlcnn_helpers.files import save_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width)])
    for _ in range(rounds):
        barrier.wait(timeout=120)
        save_model(model, path)


@pytest.mark.slow
def test_two_processes_saving_one_model_path_at_once_leave_a_loadable_model(tmp_path):
    from tlcnn_helpers.files import load_model

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    path = tmp_path / "m.keras"
    rounds = 4
    processes = [context.Process(target=_save_rounds, args=(str(path), barrier, rounds, w))
                 for w in (3, 5)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=300)
    assert [p.exitcode for p in processes] == [0, 0]
    assert load_model(path).output_shape[-1] in (3, 5)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary file left


# ---------------------------------------------------------------------------- item 5
def _notebook(folder: Path, name: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    params = new_code_cell('PROFILE = "teach"')
    params.metadata["tags"] = ["parameters"]
    path = folder / f"{name}.ipynb"
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(new_notebook(cells=[params, new_code_cell("x = 1")], metadata=kernel), path)
    return path


def test_course_refuses_to_write_into_the_notebooks_folder(tmp_path):
    from tlcnn_helpers.commands.course import run_course
    from tlcnn_helpers.errors import CourseError

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    source = _notebook(notebooks, "01_a").read_text()
    with pytest.raises(CourseError, match="notebooks"):
        run_course("smoke", notebooks, notebooks_dir=notebooks)
    with pytest.raises(CourseError, match="notebooks"):
        run_course("smoke", tmp_path / "notebooks" / ".." / "notebooks", notebooks_dir=notebooks)
    assert (notebooks / "01_a.ipynb").read_text() == source


def test_course_deletes_only_the_records_of_the_notebooks_it_runs(tmp_path, monkeypatch):
    from tlcnn_helpers.commands import course

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks, "01_a")
    records = tmp_path / "build" / "records"
    records.mkdir(parents=True)
    row = {"notebook": "99_mine", "experiment": "e", "metric": "m", "value": 0.5,
           "paper_value": None, "profile": "teach", "data_source": "official",
           "wall_seconds": None}
    (records / "99_mine.json").write_text(json.dumps([row]))
    (records / "01_a.json").write_text(json.dumps([dict(row, notebook="01_a")]))
    monkeypatch.setattr(course, "run_notebook",
                        lambda nb, *a, **k: course.NotebookRun(nb.name, 0.1, "ok"))
    course.run_course("smoke", tmp_path / "build", notebooks_dir=notebooks)
    assert (records / "99_mine.json").exists()  # an interactive run's record is kept
    assert not (records / "01_a.json").exists()  # the run's own old record is replaced


# ---------------------------------------------------------------------------- items 6, 7
class Killed(Exception):
    pass


def _kill_after(epoch: int):
    import keras

    class KillAfter(keras.callbacks.Callback):
        def on_epoch_end(self, e, logs=None):
            if e + 1 == epoch:
                raise Killed

    return KillAfter()


def _small_run(backup, *, facts=None, seed=0, callbacks=(), budget=None, clock=None, epochs=3):
    from tlcnn_helpers.training import get_recipe, train_recipe

    (x, y), _ = tiny_cifar()
    recipe = get_recipe("fast", epochs=epochs, batch_size=20, widths=(4, 8),
                        residual_stages=(1,), precision="float32")
    extra = {"clock": clock} if clock is not None else {}
    return train_recipe(recipe, (x, y), None, num_classes=2, seed=seed, backup_dir=backup,
                        verbose=False, callbacks=callbacks, time_budget_seconds=budget,
                        run_facts=facts, **extra)


@pytest.mark.slow
def test_a_backup_made_with_other_settings_is_refused_not_mixed(tmp_path):
    from tlcnn_helpers.errors import BackupMismatchError

    backup = tmp_path / "backup"
    smoke = {"profile": "smoke", "data_source": "synthetic"}
    with pytest.raises(Killed):
        _small_run(backup, facts=smoke, callbacks=[_kill_after(1)])
    with pytest.raises(BackupMismatchError, match="profile") as caught:
        _small_run(backup, facts={"profile": "teach", "data_source": "official"})
    assert str(backup) in str(caught.value)
    with pytest.raises(BackupMismatchError, match="seed"):
        _small_run(backup, facts=smoke, seed=7)
    resumed = _small_run(backup, facts=smoke)  # the same settings resume
    assert resumed.resumed_after_epoch == 1


def test_notebook_04_backup_folders_name_the_profile():
    source = (REPO / "notebooks" / "04_cifar10_cnn.ipynb").read_text()
    cells = ["".join(c["source"]) for c in json.loads(source)["cells"]]
    backups = [c for c in cells if "backup_dir=" in c]
    assert backups and all("P.name" in c for c in backups)


@pytest.mark.slow
def test_resuming_a_time_budgeted_run_continues_its_budget_and_schedule(tmp_path):
    import keras

    class FakeClock:
        now = 0.0

        def __call__(self):
            return self.now

    class Tick(keras.callbacks.Callback):
        """Each batch takes 10 fake seconds; records the learning rate it ran with."""

        def __init__(self, clock, rates):
            super().__init__()
            self.clock, self.rates = clock, rates

        def on_train_batch_end(self, batch, logs=None):
            self.rates.append(round(float(self.model.optimizer.learning_rate), 8))
            self.clock.now += 10.0

    # 40 images in batches of 20: 2 steps an epoch, 8 steps in all; 10 s a step, budget 60 s.
    clock, straight = FakeClock(), []
    _small_run(tmp_path / "a", callbacks=[Tick(clock, straight)], budget=60, clock=clock,
               epochs=4)
    clock, resumed = FakeClock(), []
    with pytest.raises(Killed):
        _small_run(tmp_path / "b", callbacks=[Tick(clock, resumed), _kill_after(2)], budget=60,
                   clock=clock, epochs=4)
    clock = FakeClock()  # a new process: its clock starts again
    result = _small_run(tmp_path / "b", callbacks=[Tick(clock, resumed)], budget=60,
                        clock=clock, epochs=4)
    assert result.resumed_after_epoch == 2
    assert resumed == straight  # the same schedule, and it stops within the same budget
    assert len(straight) < 8 and result.stopped_by_time_budget


# ---------------------------------------------------------------------------- item 10
HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tlcnn_helpers.search_state import lock_search_folder
    with lock_search_folder(Path(sys.argv[1])):
        Path(sys.argv[2]).write_text("locked")
        while not Path(sys.argv[3]).exists():
            time.sleep(0.05)
""")


@pytest.mark.slow
def test_a_second_tune_on_a_search_folder_in_use_is_refused(tmp_path, capsys):
    project = tmp_path / "tuning" / "shared"
    project.mkdir(parents=True)
    locked, release = tmp_path / "locked", tmp_path / "release"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(project), str(locked),
                               str(release)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not locked.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        code = main(tune_args(tmp_path, "--project", "shared", "--max-trials", "1"))
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"in use by PID {holder.pid}" in err and str(project) in err
    finally:
        release.write_text("go")
        holder.wait(timeout=60)
    assert holder.returncode == 0


# ---------------------------------------------------------------------------- item 14
class _Oracle:
    ongoing_trials: dict = {}


class _Tuner:
    oracle = _Oracle()

    def save(self):
        pass


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_chief_refuses_a_busy_port_clearly(monkeypatch, reuse_port):
    from tlcnn_helpers.distributed import serve_as_chief
    from tlcnn_helpers.errors import TuningError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        if reuse_port:  # like a gRPC chief already serving there
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        with pytest.raises(TuningError, match=f"127.0.0.1:{port}.*KERASTUNER_ORACLE_PORT"):
            serve_as_chief(_Tuner(), expected_workers=0)


# ---------------------------------------------------------------------------- item 17
@pytest.mark.parametrize("damaged", ["oracle.json", "trial_00/trial.json", "tlcnn_search.json",
                                     "trial_00/tlcnn_trial.json"])
def test_a_damaged_search_state_file_is_named_with_the_way_out(tmp_path, damaged):
    from tlcnn_helpers.errors import TuningError
    from tlcnn_helpers.tuning import SEARCH_SPACES, STL10HyperModel, make_tuner

    hypermodel = STL10HyperModel(SEARCH_SPACES["small"])
    settings = dict(directory=tmp_path, project_name="p", max_trials=1, seed=1)
    make_tuner("random", hypermodel, **settings).oracle.save()
    project = tmp_path / "p"
    (project / damaged).parent.mkdir(exist_ok=True)
    (project / damaged).write_text('{"half": ')
    with pytest.raises(TuningError, match="--fresh") as caught:
        make_tuner("random", hypermodel, **settings)
    assert str(project / damaged) in str(caught.value)


# ---------------------------------------------------------------------------- item 18
@pytest.mark.parametrize("flags,match", [
    (["--seed", "-1"], "--seed -1"),
    (["--time-budget", "nan"], "--time-budget nan"),
    (["--time-budget", "inf"], "--time-budget inf"),
])
def test_train_refuses_impossible_numbers_before_loading_data(tmp_path, capsys, monkeypatch,
                                                              flags, match):
    monkeypatch.setattr(data_module, "load_dataset", refuse_loading)
    assert main(train_args(tmp_path, *flags)) == 2
    assert match in capsys.readouterr().err


def test_train_refuses_a_start_model_with_another_number_of_classes(tmp_path, capsys,
                                                                    monkeypatch):
    from tlcnn_helpers.models import paper_cnn

    start = tmp_path / "ten.keras"
    paper_cnn(num_classes=10, dense_units=8).save(start)
    monkeypatch.setattr(data_module, "load_dataset", tiny_cifar)  # 2 classes
    assert main(train_args(tmp_path, "--from-model", str(start))) == 2
    err = capsys.readouterr().err
    assert str(start) in err and "10 classes" in err and "2" in err


def test_transfer_refuses_a_folder_as_out(tmp_path, capsys):
    from tlcnn_helpers.models import paper_cnn

    start = tmp_path / "m.keras"
    paper_cnn(dense_units=8).save(start)
    folder = tmp_path / "folder.keras"
    folder.mkdir()
    code = main(["transfer", "--model", str(start), "--input-shape", "64,64,3",
                 "--out", str(folder), "--overwrite"])
    assert code == 2
    assert "--out" in capsys.readouterr().err and folder.is_dir()


def test_train_honours_tlcnn_profile_like_tune(tmp_path, monkeypatch):
    seen = []

    def spy(name, profile, *args, **kwargs):
        seen.append(profile.name)
        raise DataLoaded

    monkeypatch.setattr(data_module, "load_dataset", spy)
    monkeypatch.setenv("TLCNN_PROFILE", "smoke")
    args = ["train", "cifar10", "--out", str(tmp_path / "m.keras"),
            "--report", str(tmp_path / "r.json")]
    with pytest.raises(DataLoaded):
        main(args)
    with pytest.raises(DataLoaded):
        main([*args, "--profile", "paper"])  # an explicit flag wins over the variable
    assert seen == ["smoke", "paper"]


@pytest.mark.parametrize("value,offline", [("1", True), ("yes", True), ("true", True),
                                           ("0", False), ("false", False), ("No", False),
                                           ("off", False), ("", False), (" False ", False)])
def test_tlcnn_offline_false_means_online(value, offline):
    from tlcnn_helpers.settings import offline_mode

    assert offline_mode(environ={"TLCNN_OFFLINE": value}) is offline


def test_tune_refuses_far_more_workers_than_cores(tmp_path, capsys):
    many = 4 * (os.cpu_count() or 1) + 1
    code = main(tune_args(tmp_path, "--distributed", "--workers", str(many),
                          "--max-trials", str(many)))
    assert code == 2
    err = capsys.readouterr().err
    assert f"--workers {many}" in err and "cores" in err


def test_records_name_the_file_and_row_of_a_hand_edited_record(tmp_path):
    from tlcnn_helpers.errors import TLCNNError
    from tlcnn_helpers.records import load_records, record_result

    record_result("01_a", "e", "m", 0.5, profile="smoke", data_source="synthetic",
                  records_dir=tmp_path)
    (tmp_path / "._01_a.json").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    assert [r["value"] for r in load_records(tmp_path)] == [0.5]  # dot-files skipped
    rows = json.loads((tmp_path / "01_a.json").read_text())
    (tmp_path / "02_b.json").write_text(json.dumps([dict(rows[0], notebook="02_b"),
                                                    {"notebook": "02_b", "value": 1}]))
    with pytest.raises(TLCNNError, match=r"02_b\.json has a row without experiment, .*\(row 2\)"):
        load_records(tmp_path)
    (tmp_path / "02_b.json").write_text(json.dumps([dict(rows[0], value="high")]))
    with pytest.raises(TLCNNError, match=r"02_b\.json has a row with a wrong type of value "
                                         r"\('high'\) \(row 1\)"):
        load_records(tmp_path)


def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_the_course_writes_strict_json_with_null_for_non_finite_numbers(tmp_path):
    from tlcnn_helpers.files import write_json
    from tlcnn_helpers.records import record_result
    from tlcnn_helpers.training import TrainingResult, paper_recipe, training_report

    with pytest.raises(ValueError, match="x.json"):
        write_json({"loss": float("nan")}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    result = TrainingResult(None, [{"epoch": 1, "loss": float("nan")}], 1.0, 1.0, 1.0)
    report = training_report(result, {"test_accuracy": 0.1, "test_loss": float("inf")},
                             recipe=paper_recipe(1), profile="smoke", data_source="synthetic")
    written = _strict(write_json(report, tmp_path / "r.json").read_text())
    assert written["test_loss"] is None and written["history"][0]["loss"] is None
    record_result("01_a", "e", "m", math.inf, profile="smoke", data_source="synthetic",
                  records_dir=tmp_path)
    assert _strict((tmp_path / "01_a.json").read_text())[0]["value"] is None


def test_course_resolves_relative_folder_variables_before_kernels_start(tmp_path, monkeypatch):
    import papermill

    from tlcnn_helpers.commands.course import run_notebook

    seen = {}

    def fake_execute(*args, **kwargs):
        seen.update({k: os.environ.get(k) for k in ("TLCNN_DATA_DIR", "TLCNN_MODELS_DIR")})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TLCNN_DATA_DIR", "mydata")
    monkeypatch.setenv("TLCNN_MODELS_DIR", "/abs/models")
    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    notebook = _notebook(tmp_path, "01_a")
    assert run_notebook(notebook, tmp_path, "smoke", tmp_path / "records").ok
    assert seen == {"TLCNN_DATA_DIR": str(tmp_path / "mydata"), "TLCNN_MODELS_DIR": "/abs/models"}
    assert os.environ["TLCNN_DATA_DIR"] == "mydata"  # put back afterwards


def test_an_os_error_becomes_one_line_naming_the_path(capsys, monkeypatch):
    from tlcnn_helpers.commands import train

    def denied(args):
        raise PermissionError(13, "Permission denied", "/somewhere/r.json")

    monkeypatch.setattr(train, "run", denied)
    assert main(["train", "cifar10", "--out", "m.keras", "--report", "r.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/somewhere/r.json" in err and "Permission denied" in err


# ---------------------------------------------------------------------------- item 19
HELP_PROBE = textwrap.dedent("""
    import contextlib, io, sys
    from tlcnn_helpers.cli import main
    for argv in (["--help"], ["course", "--help"], ["train", "--help"], ["tune", "--help"],
                 ["transfer", "--help"]):
        with contextlib.redirect_stdout(io.StringIO()) as shown:
            try:
                main(argv)
            except SystemExit:
                pass
        assert "usage" in shown.getvalue(), argv
    print("tensorflow" in sys.modules, "keras" in sys.modules)
""")


def test_help_answers_without_importing_tensorflow():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert "I0000" not in done.stderr and "absl" not in done.stderr


SETUP_CELL = '''import sys
from tlcnn_helpers.notebook import start_notebook

session = start_notebook(PROFILE, "01_quiet", quiet=True)
P = session.profile
import keras, numpy as np
keras.layers.Dense(2)(np.ones((1, 3))).shape'''
NOISE = ("absl::InitializeLog", "I0000", "E0000", "W0000", "oneDNN", "cuInit", "cuda drivers",
         "IPKernelApp", "without encryption")


def test_search_space_and_tuner_names_for_help_match_tuning():
    from tlcnn_helpers import settings, tuning

    assert tuple(tuning.SEARCH_SPACES) == settings.SEARCH_SPACE_NAMES
    assert tuning.TUNER_KINDS == settings.TUNER_KINDS


@pytest.mark.slow
def test_course_and_the_set_up_cell_show_no_tensorflow_or_kernel_chatter(tmp_path, capfd):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from tlcnn_helpers.commands.course import run_notebook

    params = new_code_cell('PROFILE = "teach"')
    params.metadata["tags"] = ["parameters"]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    notebook = tmp_path / "01_quiet.ipynb"
    nbformat.write(new_notebook(cells=[params, new_code_cell(SETUP_CELL)], metadata=kernel),
                   notebook)
    out = tmp_path / "out"
    out.mkdir()
    run = run_notebook(notebook, out, "smoke", tmp_path / "records", timeout=240)
    assert run.ok, run.status
    shown = capfd.readouterr()
    assert not [n for n in NOISE if n in shown.out + shown.err], shown.err[-2000:]
    executed = nbformat.read(out / "01_quiet.ipynb", as_version=4)
    streams = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", [])
                      if o.get("output_type") == "stream")
    assert not [n for n in NOISE if n in streams], streams[-2000:]
