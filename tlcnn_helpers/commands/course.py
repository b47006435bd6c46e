"""``python -m tlcnn_helpers course``: execute every notebook and write the results report.

Each notebook in ``notebooks/`` runs with papermill (``PROFILE`` injected into its
``parameters`` cell, ``TLCNN_PROFILE`` set for the kernel) into the output folder; the
notebooks' recorded metrics go to ``<out>/records/`` and become ``results.md`` and
``results.html``. Nothing is downloaded in the ``smoke`` profile.

``make course`` runs ``main(["course", "--profile", "smoke", "--out", "build/course"])``; the
source notebooks are never an output folder:

>>> from tlcnn_helpers.cli import main
>>> from tlcnn_helpers.settings import repo_root
>>> main(["course", "--profile", "smoke", "--out", str(repo_root() / "notebooks")])
2
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CourseError
from ..settings import (
    DATA_DIR_ENV_VAR,
    LOGS_DIR_ENV_VAR,
    MODELS_DIR_ENV_VAR,
    PROFILE_ENV_VAR,
    RECORDS_DIR_ENV_VAR,
    TUNING_DIR_ENV_VAR,
    environment_overrides,
    get_profile,
    repo_root,
)

# Folder variables a kernel inherits: it runs in notebooks/, so relative ones are made absolute.
FOLDER_ENV_VARS = (DATA_DIR_ENV_VAR, MODELS_DIR_ENV_VAR, TUNING_DIR_ENV_VAR, LOGS_DIR_ENV_VAR)


@dataclass(frozen=True)
class NotebookRun:
    """How one notebook's execution went."""

    notebook: str
    seconds: float
    status: str  # "ok", or "failed: <reason>"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def find_notebooks(folder: Path, names: Sequence[str] | None = None) -> list[Path]:
    """The course notebooks in order, or the ones ``names`` picks (by file name or prefix).

    >>> [p.name for p in find_notebooks(repo_root() / "notebooks", ["00"])]
    ['00_setup.ipynb']
    """
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise CourseError(f"no notebooks (NN_name.ipynb) in {folder}: run from the course checkout")
    if not names:
        return notebooks
    picked = []
    for name in names:
        matches = [p for p in notebooks if p.name == name or p.name.startswith(name)]
        if not matches:
            raise CourseError(f"--notebooks {name!r} matches none of "
                              f"{', '.join(p.name for p in notebooks)}")
        picked += [p for p in matches if p not in picked]
    return picked


def _kernel_manager_logging_to(log) -> type:
    """A kernel manager whose kernels write their own stdout and stderr (ZeroMQ transport
    warnings, TensorFlow's C++ lines) to ``log``, not over the course's progress table."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw.update(stdout=log, stderr=log)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def run_notebook(notebook: Path, out_dir: Path, profile: str, records_dir: Path,
                 timeout: float | None = None) -> NotebookRun:
    """Execute one notebook with papermill; never raises for a failing cell.

    The kernel's own output goes to ``<out_dir>/kernel-logs/<notebook>.log``.
    """
    import papermill

    overrides = {PROFILE_ENV_VAR: profile, RECORDS_DIR_ENV_VAR: str(Path(records_dir).resolve())}
    for var in FOLDER_ENV_VARS:  # relative to where the course was started, not notebooks/
        if os.environ.get(var):
            overrides[var] = os.path.abspath(os.path.expanduser(os.environ[var]))
    log_path = Path(out_dir) / "kernel-logs" / f"{notebook.stem}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with environment_overrides(overrides), open(log_path, "wb") as log:
            papermill.execute_notebook(
                str(notebook), str(out_dir / notebook.name), parameters={"PROFILE": profile},
                cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
                execution_timeout=timeout,
                kernel_manager_class=_kernel_manager_logging_to(log))
        status = "ok"
    except papermill.PapermillExecutionError as err:
        status = f"failed: {err.ename} in cell {err.exec_count} (see {out_dir / notebook.name})"
    except Exception as err:  # kernel died, timeout, ...: reported in the table, run goes on
        status = (f"failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                  f" (kernel log: {log_path})")
    return NotebookRun(notebook.name, time.perf_counter() - start, status)


def format_table(runs: Sequence[NotebookRun]) -> str:
    """The run table printed at the end: notebook, seconds, status.

    >>> print(format_table([NotebookRun("00_setup.ipynb", 4.21, "ok")]))
    notebook        seconds  status
    00_setup.ipynb      4.2  ok
    total               4.2  1 ok, 0 failed
    """
    width = max([len("notebook"), len("total")] + [len(r.notebook) for r in runs])
    lines = [f"{'notebook':<{width}}  {'seconds':>7}  status"]
    lines += [f"{r.notebook:<{width}}  {r.seconds:>7.1f}  {r.status}" for r in runs]
    failed = sum(not r.ok for r in runs)
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in runs):>7.1f}  "
                 f"{len(runs) - failed} ok, {failed} failed")
    return "\n".join(lines)


def _require_papermill() -> None:
    try:
        import papermill  # noqa: F401
    except ImportError as err:
        raise CourseError(
            "running the course needs papermill, which comes with the course extra: "
            "pip install -e '.[course]' in the checkout (make course does it for you)") from err


def run_course(profile: str, out_dir: Path, names: Sequence[str] | None = None,
               timeout: float | None = None, notebooks_dir: Path | None = None
               ) -> list[NotebookRun]:
    """Execute the notebooks, print the table and write the report; returns the runs."""
    from ..report import write_course_report

    get_profile(profile)  # an unknown name fails before anything runs
    _require_papermill()  # and so does a missing runner, before last run's records go
    notebooks_dir = Path(notebooks_dir or repo_root() / "notebooks").resolve()
    notebooks = find_notebooks(notebooks_dir, names)
    out_dir = Path(out_dir).resolve()  # kernels run in notebooks/: relative paths would move
    if out_dir == notebooks_dir:
        raise CourseError(f"--out {out_dir} is the folder of the source notebooks: their executed "
                          f"copies would overwrite them; choose another folder, such as "
                          f"{repo_root() / 'build' / 'course'}")
    records_dir = out_dir / "records"
    records_dir.mkdir(parents=True, exist_ok=True)
    for notebook in notebooks:  # only this run's notebooks: other records (interactive) stay
        (records_dir / f"{notebook.stem}.json").unlink(missing_ok=True)
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} (profile {profile}) ...", flush=True)
        runs.append(run_notebook(notebook, out_dir, profile, records_dir, timeout))
        print(f"  {runs[-1].status} in {runs[-1].seconds:.1f} s", flush=True)
    print()
    print(format_table(runs))
    md_path, html_path = write_course_report(
        records_dir, out_dir, profile=profile,
        notebook_timings={r.notebook: r.seconds for r in runs})
    print(f"\nexecuted notebooks in {out_dir}; report: {md_path} and {html_path}")
    return runs


def _command(args: argparse.Namespace) -> int:
    runs = run_course(args.profile, Path(args.out), args.notebooks, args.timeout)
    return 0 if all(r.ok for r in runs) else 1


def register(subparsers) -> None:
    """Add the ``course`` command."""
    parser = subparsers.add_parser(
        "course", help="execute every notebook with papermill and write the results report",
        description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="smoke (default), teach or paper")
    parser.add_argument("--out", default=str(repo_root() / "build" / "course"),
                        help="folder for the executed notebooks and the report")
    parser.add_argument("--notebooks", nargs="*", metavar="NAME",
                        help="only these notebooks (file names or prefixes such as 04)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a single cell may run before it is stopped")
    parser.set_defaults(func=_command)
