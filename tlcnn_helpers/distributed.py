"""A distributed keras-tuner search on one machine or several: the chief serves the oracle,
workers run trials.

keras-tuner's own protocol: every process runs the same script with
``KERASTUNER_TUNER_ID`` (``chief``, ``worker0``...), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``; the chief hands out trials over gRPC. :func:`launch_distributed`
starts and supervises those processes here, :func:`serve_as_chief` is the chief's loop.

>>> 0 < free_port() < 65536
True

Used by notebook 05 (optional section: a distributed search) and ``tune --workers``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile  # noqa: F401 (the doctests use it)
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras_tuner

from . import compat
from .errors import TuningError

CHIEF_ID = "chief"
LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port_free(host: str, port: int, error: Exception | None = None) -> None:
    """Raise ``error`` (a :class:`TuningError`) when ``host:port`` cannot be bound right now.

    A plain bind, without ``SO_REUSEPORT``, so a port a gRPC server holds counts as busy.

    >>> check_port_free(LOOPBACK, free_port())
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, port))
    except OSError as err:
        raise (error or TuningError(f"{host}:{port} is in use ({err.strerror}); choose a free "
                                    f"port")) from err


def serve_as_chief(tuner: keras_tuner.Tuner, expected_workers: int,
                   poll_seconds: float = 0.2) -> None:
    """Serve the tuner's oracle as keras-tuner's chief until every worker was told to stop.

    Uses keras-tuner's own gRPC servicer (``KERASTUNER_ORACLE_IP``/``_PORT``). Unlike
    ``tuner.search()`` on a chief, it waits for all ``expected_workers`` (a worker that
    starts late still gets its stop signal) and polls every ``poll_seconds``, not 20 s.

    >>> import os
    >>> from tlcnn_helpers.tuning import SEARCH_SPACES, STL10HyperModel, make_tuner
    >>> tuner = make_tuner("random", STL10HyperModel(SEARCH_SPACES["small"]),
    ...                    directory=tempfile.mkdtemp(), max_trials=1)
    >>> chief = {"KERASTUNER_ORACLE_IP": LOOPBACK, "KERASTUNER_ORACLE_PORT": str(free_port()),
    ...          "KERASTUNER_TUNER_ID": CHIEF_ID}
    >>> os.environ.update(chief)
    >>> serve_as_chief(tuner, expected_workers=0)  # no worker to wait for: serves, then stops
    >>> for name in chief:
    ...     del os.environ[name]
    """
    from concurrent import futures

    import grpc

    servicer_base, service, service_grpc = compat.oracle_service()

    class CountingServicer(servicer_base):
        def __init__(self, oracle: keras_tuner.Oracle) -> None:
            super().__init__(oracle)
            self.stopped: set[str] = set()

        def CreateTrial(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
            trial = self.oracle.create_trial(request.tuner_id)
            if trial.status == "STOPPED":
                self.stopped.add(request.tuner_id)
            return service.CreateTrialResponse(trial=trial.to_proto())

    host, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
    address = f"{host}:{port}"
    busy = TuningError(f"the chief cannot listen on {address}: the port is in use (another "
                       f"chief?); set KERASTUNER_ORACLE_PORT to a free port")
    check_port_free(host, int(port), busy)
    tuner.save()
    servicer = CountingServicer(tuner.oracle)
    # Without SO_REUSEPORT (gRPC's default) a second chief could share the port unnoticed.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1),
                         options=[("grpc.so_reuseport", 0)])
    service_grpc.add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:  # newer gRPC raises instead of returning 0
        raise busy from err
    if bound == 0:
        raise busy
    server.start()
    try:
        while len(servicer.stopped) < expected_workers or tuner.oracle.ongoing_trials:
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=2)
    tuner.save()


@dataclass
class DistributedRun:
    """The processes of a distributed search: exit codes, log files and wall time."""

    returncodes: dict[str, int]
    logs: dict[str, str]
    seconds: float


def _tail(path: str | os.PathLike, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the process and children
        except ProcessLookupError:
            pass
    process.wait()


def _raise_on_sigterm() -> Any:
    """Turn SIGTERM into an exception so that the clean-up of the processes still runs."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise TuningError("the distributed search was terminated (SIGTERM)")

    return signal.signal(signal.SIGTERM, handler)


def launch_distributed(command: Callable[[str], Sequence[str]], workers: int, *,
                       log_dir: str | os.PathLike, host: str = LOOPBACK,
                       port: int | None = None, timeout: float | None = None,
                       env: Mapping[str, str] | None = None) -> DistributedRun:
    """Start keras-tuner's chief and ``workers`` workers on ``host`` and wait for them.

    ``command(role)`` gives the command line of the chief (``role == "chief"``) and of each
    worker (``"worker0"``...). Each process gets ``KERASTUNER_TUNER_ID``,
    ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``, its output goes to
    ``log_dir/<role>.log``, and every process is ended when this function returns, also
    after a failure or the ``timeout`` (:class:`TuningError`).

    >>> import sys
    >>> launch_distributed(lambda role: [sys.executable, "-c", "pass"], 2,
    ...                    log_dir=tempfile.mkdtemp()).returncodes
    {'chief': 0, 'worker0': 0, 'worker1': 0}
    """
    if workers < 1:
        raise TuningError(f"workers={workers}: a distributed search needs at least 1 worker")
    port = port or free_port(host)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ if env is None else env)
    base_env.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port))
    # The workers share the cores; without a limit each would start one thread per core.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    roles = [CHIEF_ID] + [f"worker{i}" for i in range(workers)]
    processes: dict[str, subprocess.Popen] = {}
    logs = {role: str(log_dir / f"{role}.log") for role in roles}
    started = time.perf_counter()
    previous_handler = _raise_on_sigterm()
    try:
        for role in roles:
            role_env = dict(base_env, KERASTUNER_TUNER_ID=role)
            if role != CHIEF_ID:
                role_env.setdefault("TF_NUM_INTRAOP_THREADS", threads)
                role_env.setdefault("TF_NUM_INTEROP_THREADS", "1")
            with open(logs[role], "wb") as log:
                processes[role] = subprocess.Popen(
                    list(command(role)), env=role_env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
        while True:
            codes = {role: p.poll() for role, p in processes.items()}
            failed = [role for role, code in codes.items() if code not in (None, 0)]
            if failed:
                role = failed[0]
                raise TuningError(f"the distributed search's {role} failed (exit code "
                                  f"{codes[role]}); the end of {logs[role]}:\n"
                                  f"{_tail(logs[role])}")
            if all(code == 0 for code in codes.values()):
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                running = [role for role, code in codes.items() if code is None]
                raise TuningError(f"the distributed search did not finish within {timeout:.0f} "
                                  f"s ({', '.join(running)} still running); see the logs in "
                                  f"{log_dir}, or raise the time limit")
            time.sleep(0.2)
    finally:
        for process in processes.values():
            _stop(process)
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return DistributedRun({role: p.returncode for role, p in processes.items()}, logs,
                          round(time.perf_counter() - started, 1))
