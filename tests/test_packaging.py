"""The two ways to install the course name the same dependencies; make is offline once set up."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def normalized(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {normalized(r) for r in project["dependencies"] + extras["course"] + extras["dev"]}


def environment_requirements() -> tuple[set[str], list[str]]:
    """The pip entries of environment.yml, and the ones that lack a comment saying why."""
    entries, uncommented = set(), []
    in_pip = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"\s+- pip:\s*$", line):
            in_pip = True
            continue
        match = re.match(r"\s{6}- (?P<req>[^#]+?)\s*(#\s*(?P<why>.*))?$", line)
        if in_pip and match:
            if match["req"].startswith("-e"):
                continue
            entries.add(normalized(match["req"]))
            if not match["why"]:
                uncommented.append(match["req"])
    return entries, uncommented


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    in_env, uncommented = environment_requirements()
    in_pyproject = pyproject_requirements()
    assert in_env == in_pyproject, (
        f"only in environment.yml: {sorted(in_env - in_pyproject)}; "
        f"only in pyproject.toml: {sorted(in_pyproject - in_env)}")
    assert not uncommented, f"say which notebook needs each entry: {uncommented}"


def test_environment_yml_installs_the_package():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- -e \.\s", text, re.M), "the pip section must install the package"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_course_does_not_reinstall_once_set_up(tmp_path):
    """With the environment installed, `make course` runs the course and nothing else."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    stamp = venv / ".tlcnn-installed"
    stamp.touch()
    dry = subprocess.run(["make", "-n", "course", f"VENV={venv}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "pip install" not in dry and "tlcnn_helpers course --profile smoke" in dry
    # A fresh machine (no stamp) installs first.
    stamp.unlink()
    fresh = subprocess.run(["make", "-n", "test", f"VENV={venv}"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert "pip install" in fresh and "pytest" in fresh


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", script, re.M), ".ci/run must run `make test`"


def test_readme_has_exactly_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(make \w+[^\n]*)$", setup, re.M)
    assert commands == ["make course", "make test"], commands
