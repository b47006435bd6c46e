"""Notebook 01 in JupyterLab, driven in headless Chromium as a student would use it.

Starts JupyterLab on 127.0.0.1 (free port, known token, temporary root and settings),
opens a copy of ``notebooks/01_convolution.ipynb``, runs the cells up to and including
the convolution explorer with Shift+Enter, moves one of its controls, checks that the
rendered output changes, and saves a screenshot under the test's temporary folder.

Needs Debian's ``chromium`` (``.ci/install-browser`` installs it); without it the test is
skipped, naming the package, except on CI (``CI=true``), where it fails: CI installs
Chromium first, so a missing one means the browser test silently stopped running.
Playwright only drives it: no browser is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_convolution.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = (f"{CHROMIUM} not found: install Debian's package with "
                    "`apt-get install chromium` (or run .ci/install-browser)")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# How the explorer cell is recognised in notebook 01: it calls the widget from tlcnn_helpers.
EXPLORER_CALL = "convolution_explorer("
# Stable hooks of tlcnn_helpers.widgets.ConvolutionExplorer: its CSS classes and the
# slider described "Stride".
EXPLORER_CLASS = "tlcnn-conv-explorer"
SERVER_START_SECONDS = 90
CELLS_RUN_SECONDS = 240
OUTPUT_CHANGE_SECONDS = 30
# Warnings and tracebacks are both rendered as stderr; a traceback says so.
STDERR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"

# JupyterLab settings for a quiet, deterministic page: every cell in the DOM (no
# windowing), no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def explorer_cell_index(nb) -> int:
    """Index of the first code cell that builds the convolution explorer."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and EXPLORER_CALL in cell.source:
            return index
    raise AssertionError(f"{NOTEBOOK.name} has no code cell calling {EXPLORER_CALL}...)")


def on_ci(environ=None) -> bool:
    """True when ``CI`` is set to a true value (GitHub Actions, GitLab CI and others set it)."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_chromium_outcome(environ=None) -> str:
    """``"fail"`` on CI, which installs Chromium before the tests; ``"skip"`` elsewhere."""
    return "fail" if on_ci(environ) else "skip"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if missing_chromium_outcome() == "fail":
        pytest.fail(f"CI=true but {CHROMIUM_MISSING}")
    pytest.skip(CHROMIUM_MISSING)


def _server_log(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"


@dataclass(frozen=True)
class LabServer:
    base_url: str
    token: str
    wait_until_ready: Callable[[], None]


@contextmanager
def jupyter_lab(root_dir: Path, state_dir: Path, started: list[int]):
    """Start JupyterLab on 127.0.0.1 (ready once ``wait_until_ready()`` returns); always stop it.

    Appends the process ids of the server and, when it stops, of its kernels to ``started``.
    """
    port, token = free_port(), secrets.token_hex(16)
    settings_dir = state_dir / "settings"
    for name, values in LAB_SETTINGS.items():
        plugin, _, file_name = name.rpartition("/")
        (settings_dir / plugin).mkdir(parents=True, exist_ok=True)
        (settings_dir / plugin / file_name).write_text(json.dumps(values))
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # let the kernel pick the inline backend, as for a student
    env.update({
        "TLCNN_PROFILE": "smoke",
        "JUPYTER_CONFIG_DIR": str(state_dir / "config"),
        "JUPYTER_DATA_DIR": str(state_dir / "data"),
        "JUPYTER_RUNTIME_DIR": str(state_dir / "runtime"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    })
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False", "--ServerApp.allow_root=True",
    ]
    log_path = state_dir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=root_dir)
    started.append(server.pid)
    base_url = f"http://127.0.0.1:{port}"

    def wait_until_ready() -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode} before serving:\n"
                            + _server_log(log_path))
            try:
                with urllib.request.urlopen(f"{base_url}/api/status?token={token}", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base_url} within "
                                f"{SERVER_START_SECONDS} s:\n" + _server_log(log_path))
                time.sleep(0.3)

    try:
        yield LabServer(base_url, token, wait_until_ready)
    finally:
        stop_server(server, started)


def stop_server(server: subprocess.Popen, started: list[int]) -> None:
    """Stop JupyterLab and the kernels it started (each in its own session), by process id.

    SIGTERM to all of them, SIGKILL to whatever lingers.
    Adds the kernels' process ids to ``started``.
    """
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    started.extend(child.pid for child in children)
    for child in children:  # a kernel exits at once on SIGTERM; no need to wait for a reply
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    _, lingering = psutil.wait_procs(children, timeout=5)
    for child in lingering:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(lingering, timeout=5)


def still_running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that are alive (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


@contextmanager
def chromium_page():
    """A page in headless Debian Chromium driven by Playwright; always closed."""
    require_chromium()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                 timeout=60_000)
        except PlaywrightError as err:
            pytest.fail(f"{CHROMIUM} is installed but could not start; run "
                        f"`{CHROMIUM} --headless --no-sandbox about:blank` to see why.\n{err}")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            yield page
        finally:
            browser.close()


def stride_and_shape(summary_text: str) -> tuple[str, str]:
    """The stride and output shape the explorer's summary line reports."""
    stride = re.search(r"stride (\d+)", summary_text)
    shape = re.search(r"Output shape: (\([^)]*\))", summary_text)
    assert stride and shape, f"unexpected explorer summary: {summary_text!r}"
    return stride.group(1), shape.group(1)


@pytest.mark.parametrize("ci, outcome", [("true", "fail"), ("1", "fail"), ("", "skip"),
                                          ("false", "skip"), (None, "skip")])
def test_missing_chromium_fails_on_ci_and_skips_elsewhere(ci, outcome):
    environ = {} if ci is None else {"CI": ci}
    assert missing_chromium_outcome(environ) == outcome


def outcome_of(call) -> tuple[str, str]:
    """How ``call`` ends a test: ``("fail" | "skip" | "ran", message)``."""
    try:
        call()
    except pytest.fail.Exception as err:
        return "fail", str(err)
    except pytest.skip.Exception as err:
        return "skip", str(err)
    return "ran", ""


def test_browser_test_fails_on_ci_when_chromium_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    outcome, message = outcome_of(require_chromium)
    assert outcome == "fail" and "apt-get install chromium" in message
    monkeypatch.delenv("CI")
    outcome, message = outcome_of(require_chromium)
    assert outcome == "skip" and "apt-get install chromium" in message


@pytest.mark.browser
@pytest.mark.slow
def test_convolution_explorer_reacts_to_its_controls_in_jupyterlab(tmp_path):
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} is missing: the browser test opens it")
    explorer_index = explorer_cell_index(nbformat.read(NOTEBOOK, as_version=4))
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)

    require_chromium()

    started_pids: list[int] = []
    started = time.monotonic()
    # JupyterLab starts while Chromium launches.
    with jupyter_lab(root, tmp_path / "state", started_pids) as lab, chromium_page() as page:
        page.set_default_timeout(90_000)
        lab.wait_until_ready()
        print(f"{time.monotonic() - started:.1f} s: JupyterLab answers on {lab.base_url}")
        page.goto(f"{lab.base_url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        cells.first.wait_for()
        # The status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected.
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for()

        print(f"{time.monotonic() - started:.1f} s: notebook open, kernel idle")
        # Run cells from the top, one Shift+Enter each, like a student.
        cells.first.locator(".jp-InputArea").click()
        page.keyboard.press("Escape")
        for _ in range(explorer_index + 1):
            page.keyboard.press("Shift+Enter")

        explorer = cells.nth(explorer_index)
        prompt = explorer.locator(".jp-InputPrompt")
        deadline = time.monotonic() + CELLS_RUN_SECONDS
        while not prompt.inner_text().strip().strip("[]:").isdigit():
            tracebacks = [text for text in page.locator(STDERR_OUTPUT).all_inner_texts()
                          if "Traceback" in text]
            if tracebacks:
                page.screenshot(path=tmp_path / "cell-error.png", full_page=True)
                pytest.fail("a cell before the explorer raised:\n" + tracebacks[0][-2000:])
            if time.monotonic() > deadline:
                page.screenshot(path=tmp_path / "timeout.png", full_page=True)
                pytest.fail(f"cells 0..{explorer_index} did not finish within "
                            f"{CELLS_RUN_SECONDS} s (explorer prompt {prompt.inner_text()!r})")
            page.wait_for_timeout(250)

        print(f"{time.monotonic() - started:.1f} s: cells 0..{explorer_index} ran")
        widget = explorer.locator(f".{EXPLORER_CLASS}")
        summary = widget.locator(f".{EXPLORER_CLASS}-summary")
        picture = widget.locator(f".{EXPLORER_CLASS}-picture")
        expect(summary).to_contain_text("Output shape", timeout=30_000)
        widget.scroll_into_view_if_needed()
        stride_before, shape_before = stride_and_shape(summary.inner_text())
        src_before = picture.get_attribute("src")
        pixels_before = picture.screenshot(path=tmp_path / "explorer-before.png")

        # Move the Stride slider one step with the keyboard, as a student could.
        handle = widget.locator(".widget-slider").filter(has_text="Stride").locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")

        expect(summary).to_contain_text(f"stride {int(stride_before) + 1}",
                                        timeout=OUTPUT_CHANGE_SECONDS * 1000)
        expect(picture).not_to_have_attribute("src", src_before or "",
                                               timeout=OUTPUT_CHANGE_SECONDS * 1000)
        stride_after, shape_after = stride_and_shape(summary.inner_text())
        assert shape_after != shape_before, f"stride {stride_after} kept shape {shape_before}"
        page.wait_for_timeout(300)  # let the new picture paint
        assert picture.screenshot(path=tmp_path / "explorer.png") != pixels_before
        page.screenshot(path=tmp_path / "jupyterlab.png")
        print(f"{time.monotonic() - started:.1f} s: the explorer reacted to {stride_after=}")

    print(f"{time.monotonic() - started:.1f} s: JupyterLab, its kernel and Chromium stopped")
    assert len(started_pids) >= 2, "JupyterLab started no kernel"
    assert not still_running(started_pids), "JupyterLab or its kernel is still running"
