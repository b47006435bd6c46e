"""Test-session defaults: smoke profile, offline, data and outputs in a temporary folder.

Set here (not only in the Makefile) so a bare ``pytest`` behaves like ``make test``; the
kernels that papermill and nbval start inherit these variables. The test process itself
may open network connections to loopback addresses only: anything else fails loudly.
"""

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile

_SESSION_DIR = tempfile.mkdtemp(prefix="tlcnn-tests-")
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ.setdefault("TLCNN_PROFILE", "smoke")
os.environ.setdefault("TLCNN_OFFLINE", "1")
os.environ.setdefault("TLCNN_DATA_DIR", os.path.join(_SESSION_DIR, "data"))
os.environ.setdefault("TLCNN_MODELS_DIR", os.path.join(_SESSION_DIR, "models"))
os.environ.setdefault("TLCNN_RECORDS_DIR", os.path.join(_SESSION_DIR, "records-nbval"))
os.environ.setdefault("TLCNN_TUNING_DIR", os.path.join(_SESSION_DIR, "tuning"))
os.environ.setdefault("TLCNN_LOGS_DIR", os.path.join(_SESSION_DIR, "logs"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _is_loopback(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"tests may connect to loopback addresses only, not {address}")


def _connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback names only, not {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo
