"""The Colab route, simulated without network: badges, the guarded install, GPU precision.

The set-up cell is taken from each notebook, its IPython magics are transformed the way
IPython does, and it is executed with a fake ``google.colab`` module and a fake
``get_ipython()`` that records the ``%pip`` call instead of running it.
"""

from __future__ import annotations

import re
import shlex
import sys
import types
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from course_notebooks import course_notebooks, read_notebook, setup_cell
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

from tlcnn_helpers import notebook as nbmod
from tlcnn_helpers.environment import COLAB_ENV_MARKERS, choose_precision, in_colab
from tlcnn_helpers.notebook import (
    COLAB_PIP_SPEC,
    REPO_URL,
    colab_badge_url,
    setup_cell_source,
    start_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course_notebooks()
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'>]+")
GITHUB_REPO_LINK = re.compile(r"github\.com/[\w.-]+/tlcnn\b")


class FakeIPython:
    """Stands in for Colab's shell: records every magic or shell call, runs none."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, method):
        def record(*args, **kwargs):
            self.calls.append((method, args))
        return record


def run_setup_source(source: str, *, colab: bool, monkeypatch) -> tuple[FakeIPython, dict]:
    """Execute a set-up cell's source as IPython would, in or out of simulated Colab."""
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
        for marker in COLAB_ENV_MARKERS:
            monkeypatch.delenv(marker, raising=False)
    shell = FakeIPython()
    namespace = {"get_ipython": lambda: shell, "PROFILE": "smoke", "__name__": "__main__"}
    exec(compile(TransformerManager().transform_cell(source), "<set-up cell>", "exec"), namespace)
    return shell, namespace


def assert_installs_the_course_from_the_repository(shell: FakeIPython):
    assert len(shell.calls) == 1, f"expected one %pip call, got {shell.calls}"
    method, (magic, line, *_) = shell.calls[0]
    assert (method, magic) == ("run_line_magic", "pip"), "install with %pip (right kernel), not !pip"
    words = shlex.split(line)
    assert words[:3] == ["install", "-q", "--no-deps"], "never let pip resolve Colab's packages"
    course, *others = [Requirement(word) for word in words[3:]]
    assert course.url == f"git+{REPO_URL}"
    assert course.name == "tlcnn-helpers"
    # With --no-deps pip installs exactly what is named: nothing Colab already has.
    assert {r.name for r in others} == {"keras-tuner"}


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_pip_spec_names_this_project_and_its_repository():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    requirement = Requirement(COLAB_PIP_SPEC)
    assert requirement.name == project
    assert requirement.url == f"git+{REPO_URL}"


def test_colab_install_never_touches_a_newer_preinstalled_tensorflow_or_keras():
    # Colab updates TensorFlow and Keras ahead of pyproject.toml's ranges (tensorflow<2.22):
    # the set-up line installs without dependency resolution and names only what Colab
    # lacks, with the same range as pyproject.toml.
    import tomllib

    from tlcnn_helpers.notebook import COLAB_EXTRA_REQUIREMENTS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {Requirement(r).name: str(Requirement(r).specifier) for r in project["dependencies"]}
    extras = {Requirement(r).name: str(Requirement(r).specifier) for r in COLAB_EXTRA_REQUIREMENTS}
    assert extras == {"keras-tuner": pinned["keras-tuner"]}
    words = shlex.split(setup_cell_source("99_demo").splitlines()[4].split("%pip", 1)[1])
    assert "--no-deps" in words
    named = {Requirement(w).name for w in words if not w.startswith("-") and w != "install"}
    assert not named & {"tensorflow", "keras", "tensorboard", "numpy", "ipywidgets"}


def test_colab_install_leaves_colabs_jupyter_and_widgets_alone():
    # Colab's kernel ships ipywidgets 7.7.1 (ipywidgets 8 widgets do not all render there,
    # googlecolab/colabtools#4525) and its own Jupyter server: the package's own
    # requirements must not upgrade them; jupyterlab and papermill are the `course` extra.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed_in_colab = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert not {"jupyterlab", "papermill", "notebook", "jupyter-server"} & set(installed_in_colab)
    assert installed_in_colab["ipywidgets"].specifier.contains("7.7.1")
    assert {"jupyterlab", "papermill"} <= {Requirement(r).name
                                          for r in project["optional-dependencies"]["course"]}


def test_setup_template_installs_from_the_repository_only_in_colab(monkeypatch, capsys):
    shell, namespace = run_setup_source(setup_cell_source("99_demo"), colab=True,
                                        monkeypatch=monkeypatch)
    assert_installs_the_course_from_the_repository(shell)
    assert namespace["session"].in_colab
    assert namespace["P"].name == "smoke"
    assert "99_demo: profile 'smoke'" in capsys.readouterr().out

    shell, namespace = run_setup_source(setup_cell_source("99_demo"), colab=False,
                                        monkeypatch=monkeypatch)
    assert shell.calls == []
    assert not namespace["session"].in_colab


def test_colab_is_recognised_by_its_module_or_environment_markers():
    assert in_colab(environ={}, modules={"google.colab": object()})
    assert in_colab(environ={"COLAB_RELEASE_TAG": "release-colab_2026"}, modules={})
    assert not in_colab(environ={"HOME": "/root"}, modules={"google": object()})


def simulate_devices(monkeypatch, *device_types: str) -> None:
    """Make TensorFlow report these physical devices (Colab's GPU runtime: CPU and GPU)."""
    devices = [tf.config.PhysicalDevice(f"/physical_device:{kind}:0", kind) for kind in device_types]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [
        d for d in devices if kind is None or d.device_type == kind])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_setup_cell_installs_and_uses_the_gpu_only_in_colab(path, monkeypatch):
    cell = setup_cell(read_notebook(path))
    assert cell is not None, f"{path.name}: no set-up cell (a code cell starting '# Set-up:')"
    simulate_devices(monkeypatch, "CPU", "GPU")
    shell, namespace = run_setup_source(cell.source, colab=True, monkeypatch=monkeypatch)
    assert_installs_the_course_from_the_repository(shell)
    assert namespace["session"].name == path.stem
    assert keras.mixed_precision.global_policy().name == "mixed_float16"

    keras.mixed_precision.set_global_policy("float32")
    simulate_devices(monkeypatch, "CPU")
    shell, namespace = run_setup_source(cell.source, colab=False, monkeypatch=monkeypatch)
    assert shell.calls == [], f"{path.name}: the set-up cell installs something outside Colab"
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_colab_badge_points_at_its_own_path(path):
    nb = read_notebook(path)
    first = nb.cells[0].source if nb.cells else ""
    assert colab_badge_url(path.name) in first, (
        f"{path.name}: the first cell needs the badge {nbmod.colab_badge_markdown(path.name)}")
    links = COLAB_LINK.findall("\n".join(c.source for c in nb.cells))
    assert set(links) == {colab_badge_url(path.name)}


def test_every_repository_link_agrees_with_repo_url():
    owner_and_name = REPO_URL.removeprefix("https://")
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "pyproject.toml", *NOTEBOOKS]
    texts = {p.name: p.read_text() for p in files if p.exists()}
    for name, text in texts.items():
        for link in GITHUB_REPO_LINK.findall(text):
            assert link == owner_and_name, f"{name} links to {link}, REPO_URL is {REPO_URL}"
    assert owner_and_name in texts["CONTRIBUTING.md"]


def test_a_gpu_switches_keras_to_mixed_float16(capsys):
    devices = [tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU"),
               tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
    session = start_notebook("smoke", "03_demo", environ={}, devices=devices)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert session.precision == "mixed_float16"
    assert session.gpus == ("/physical_device:GPU:0",)
    assert "mixed float16" in capsys.readouterr().out
    assert keras.layers.Dense(2).dtype_policy.compute_dtype == "float16"


def test_a_cpu_keeps_float32(capsys):
    devices = [tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU")]
    session = start_notebook("smoke", "03_demo", environ={}, devices=devices)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert session.precision == "float32" and session.gpus == ()
    assert "No GPU found" in capsys.readouterr().out


def notebook_precision(devices):
    return choose_precision("auto", devices, cpu_bfloat16=False)


def test_precision_decision_on_simulated_device_lists():
    assert notebook_precision([]) == "float32"
    assert notebook_precision(["CPU"]) == "float32"
    assert notebook_precision(["cpu", "gpu"]) == "mixed_float16"
    assert notebook_precision([tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]) \
        == "mixed_float16"


def test_this_machine_gets_the_policy_its_devices_call_for():
    session = start_notebook("smoke", "03_demo", environ={}, quiet=True)
    expected = notebook_precision(tf.config.list_physical_devices())
    assert session.precision == expected
    assert keras.mixed_precision.global_policy().name == expected


def test_the_docstring_examples_hold():
    import doctest

    assert doctest.testmod(nbmod).failed == 0


def test_smoke_profile_goes_offline_and_teach_comes_back():
    from tlcnn_helpers.notebook import start_notebook

    env = {}
    start_notebook("smoke", "00_setup", environ=env, quiet=True, devices=["CPU"])
    assert env["TLCNN_OFFLINE"] not in ("", "0")
    start_notebook("teach", "00_setup", environ=env, quiet=True, devices=["CPU"])
    assert "TLCNN_OFFLINE" not in env
    env = {"TLCNN_OFFLINE": "1"}  # the student's own choice stays
    start_notebook("teach", "00_setup", environ=env, quiet=True, devices=["CPU"])
    assert env["TLCNN_OFFLINE"] == "1"
