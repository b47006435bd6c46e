"""The two ways to install the course name the same dependencies; make is offline once set up."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tlcnn_helpers import environment

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def normalized(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


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


def test_each_environment_yml_entry_says_what_needs_it():
    entries, uncommented = environment_requirements()
    assert entries, "environment.yml has no pip entries"
    assert not uncommented, f"say which notebook needs each entry: {uncommented}"


def pyproject_project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_pins_each_dependency_to_pyprojects_range():
    # Compared as parsed requirements: ">=3.6, <4" and "<4,>=3.6" are the same range.
    project = pyproject_project()
    extras = project["optional-dependencies"]
    wanted = {(r := Requirement(text)).name: r.specifier
              for text in project["dependencies"] + extras["course"] + extras["dev"]}
    in_env = {(r := Requirement(text)).name: r.specifier
              for text in environment_requirements()[0]}
    assert in_env == wanted


def test_environment_yml_python_is_one_pyproject_allows():
    python = re.search(r"^\s+- python=(\S+)", (ROOT / "environment.yml").read_text(), re.M)
    assert python, "environment.yml must pin python"
    assert SpecifierSet(pyproject_project()["requires-python"]).contains(python[1])


def pyproject_minimums() -> dict[str, str]:
    project = pyproject_project()
    return environment.minimums_from_requirements(project["requires-python"],
                                                  project["dependencies"])


def test_package_minimum_versions_are_pyprojects_lower_bounds():
    assert environment.MINIMUM_VERSIONS == pyproject_minimums()
    assert set(environment.MINIMUM_VERSIONS) == {"python", *environment.CHECKED_DISTRIBUTIONS}


def test_fallback_minimum_versions_are_pyprojects_lower_bounds():
    assert environment.FALLBACK_MINIMUMS == pyproject_minimums()


def test_minimum_versions_come_from_the_installed_metadata(monkeypatch):
    from importlib import metadata

    monkeypatch.setattr(metadata, "requires", lambda dist: ["keras<4,>=3.9", "numpy>=2.0",
                                                            'keras-tuner>=9; extra == "dev"'])
    monkeypatch.setattr(metadata, "metadata", lambda dist: {"Requires-Python": ">=3.12"})
    assert environment.installed_minimums() == {"python": "3.12", "keras": "3.9", "numpy": "2.0"}


def test_minimum_versions_fall_back_when_the_package_is_not_installed(monkeypatch):
    from importlib import metadata

    def not_installed(dist):
        raise metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(metadata, "requires", not_installed)
    assert environment.installed_minimums() == environment.FALLBACK_MINIMUMS


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
