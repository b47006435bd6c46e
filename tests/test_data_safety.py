"""Nothing lost, nothing fabricated: the dataset layer never deletes what it did not create,
never reads what is not a dataset as one, and says what is wrong when the system fails."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tlcnn_helpers import synthetic
from tlcnn_helpers.archives import extract_archive
from tlcnn_helpers.data import (
    STL10_MD5,
    archive_bytes,
    class_names,
    load_cifar10,
    load_dataset,
    load_stl10,
    stratified_subset,
)
from tlcnn_helpers.errors import DataError, DatasetFormatError, TLCNNError
from tlcnn_helpers.settings import get_profile

LOCK_NAME = ".tlcnn-data.lock"
# Never contacted: the archive is already in the folder (and TLCNN_OFFLINE is set).
PY_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def cifar_source(tmp_path_factory) -> Path:
    return synthetic.write_cifar10(tmp_path_factory.mktemp("cifar"), 10, 3, seed=1)


@pytest.fixture(scope="module")
def cifar_body(cifar_source) -> bytes:
    """The python-format synthetic CIFAR-10 as a .tar.gz, standing in for the official one."""
    return archive_bytes(cifar_source / "cifar-10-batches-py")


def repacked(body: bytes) -> bytes:
    """The same members in a new .tar.gz: what a user's own re-packing gives (another MD5)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(body)) as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src:
            member.mtime += 1
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out.getvalue()


class SlowServer:
    """Serves one body from 127.0.0.1 in two halves, calling ``midway()`` in between."""

    def __init__(self, body: bytes, midway=lambda: None) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(0.3)  # the client writes the first half meanwhile
                midway()
                self.wfile.write(body[len(body) // 2:])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------ 1. user archives are kept
def test_user_archive_with_unknown_md5_is_never_deleted(cifar_body, tmp_path, monkeypatch):
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)
    mine = repacked(cifar_body)
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(mine)
    server = SlowServer(cifar_body)
    try:
        with pytest.raises(DatasetFormatError) as info:
            load_cifar10(tmp_path, url=server.url("cifar-10-python.tar.gz"), md5=md5(cifar_body))
    finally:
        server.close()
    message = str(info.value)
    assert md5(mine) in message and md5(cifar_body) in message
    assert f'md5="{md5(mine)}"' in message and "move" in message
    assert archive.read_bytes() == mine, "a file the course did not download was changed"
    assert server.requests == [], "nothing may be downloaded over a user's file"


def test_user_archive_with_unknown_md5_offline_names_the_hash_not_missing_files(tmp_path):
    archive = tmp_path / "stl10_binary.tar.gz"
    archive.write_bytes(b"a partial copy")
    with pytest.raises(DatasetFormatError) as info:
        load_stl10(tmp_path)  # download allowed, but TLCNN_OFFLINE is set (conftest)
    message = str(info.value)
    assert md5(b"a partial copy") in message and STL10_MD5 in message
    assert "no STL-10 files" not in message
    assert archive.read_bytes() == b"a partial copy"


def test_known_copy_is_accepted_with_the_md5_argument(cifar_body, tmp_path):
    mine = repacked(cifar_body)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(mine)
    (x, _), _ = load_cifar10(tmp_path, md5=md5(mine))
    assert len(x) == 90


def test_download_goes_to_a_unique_temporary_name_until_checked(cifar_body, tmp_path, monkeypatch):
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)
    seen: list[list[str]] = []
    server = SlowServer(cifar_body, midway=lambda: seen.append(sorted(os.listdir(tmp_path))))
    try:
        (x, _), _ = load_cifar10(tmp_path, url=server.url("cifar-10-python.tar.gz"),
                                 md5=md5(cifar_body))
    finally:
        server.close()
    assert len(x) == 90
    (during,) = seen
    assert "cifar-10-python.tar.gz" not in during, "the final name appeared before the hash check"
    assert any(name.startswith(".cifar-10-python.tar.gz.") for name in during)
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == cifar_body
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".cifar-10-python")]


# ------------------------------------------------------------ 8. batches must be batches
def tiny_pickle_allocating(n: int) -> bytes:
    """``{b"data": bytearray(n), b"labels": []}`` as a hand-written protocol-2 pickle."""
    return (b"\x80\x02}(C\x04datacbuiltins\nbytearray\nJ" + n.to_bytes(4, "little")
            + b"\x85RC\x06labels]u.")


class _Unfilled:
    """Pickles as numpy's bare ``_reconstruct(ndarray, shape, code)``: memory never filled."""

    def __init__(self, shape, code):
        self.shape, self.code = shape, code

    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, self.shape, self.code))


class _Strided:
    """Pickles as ``numpy.ndarray(shape, dtype, zeros, 0, strides=0)``: many entries, no data."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)

    def __reduce__(self):
        return (np.ndarray, (self.shape, self.dtype, bytes(self.dtype.itemsize), 0,
                             (0,) * len(self.shape)))


def python_batches(tmp_path: Path, cifar_source: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar_source / "cifar-10-batches-py", folder)
    return folder


def test_49_byte_batch_cannot_allocate_a_gigabyte(cifar_source, tmp_path):
    folder = python_batches(tmp_path, cifar_source)
    bomb = tiny_pickle_allocating(10**9)
    assert len(bomb) < 60
    (folder / "data_batch_1").write_bytes(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetFormatError, match="data_batch_1"):
            load_cifar10(tmp_path, download=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"refusing a {len(bomb)}-byte file took {peak / 2**20:.0f} MB"


def test_tiny_batch_cannot_claim_100000_blank_images(cifar_source, tmp_path):
    folder = python_batches(tmp_path, cifar_source)
    # Zero strides over one zero: 100,000 blank images, all labelled 0 ("airplane").
    fake = pickle.dumps({b"data": _Strided((100000, 3072), "u1"),
                         b"labels": _Strided((100000,), "i8")}, protocol=4)
    assert len(fake) < 200
    (folder / "data_batch_4").write_bytes(fake)
    with pytest.raises(DatasetFormatError, match="data_batch_4"):
        load_cifar10(tmp_path, download=False)
    # Never-filled memory (numpy's bare _reconstruct) is no source of images either.
    unfilled = pickle.dumps({b"data": _Unfilled((10000, 3072), b"B"),
                             b"labels": [0] * 10000}, protocol=4)
    (folder / "data_batch_4").write_bytes(unfilled)
    with pytest.raises(DatasetFormatError, match="data_batch_4"):
        load_cifar10(tmp_path, download=False)


@pytest.mark.parametrize("record, complaint", [
    ({b"data": np.full((2, 3072), 0.5), b"labels": [0, 1]}, "uint8"),
    ({b"data": np.zeros((2, 3072), np.int16), b"labels": [0, 1]}, "uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.5, 1.7]}, "labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": np.array([0, 1])}, "labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "labels"),
    ({b"data": np.zeros((10001, 3072), np.uint8), b"labels": [0] * 10001}, "10,000"),
    ({b"data": _Strided((10000, 3072), "u1"), b"labels": [0] * 10000}, "ndarray"),
])
def test_batch_must_follow_the_official_schema(cifar_source, tmp_path, record, complaint):
    folder = python_batches(tmp_path, cifar_source)
    (folder / "data_batch_2").write_bytes(pickle.dumps(record, protocol=2))
    with pytest.raises(DatasetFormatError, match="data_batch_2") as info:
        load_cifar10(tmp_path, download=False)
    assert complaint in str(info.value)


def python2_batch(rows: np.ndarray, labels: list[int]) -> bytes:
    """A batch laid out as the official files are (Python 2 cPickle, protocol 2)."""
    data = rows.tobytes()
    array = (b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b"
             b"\x87Rq\x03(K\x01K" + bytes([len(rows)]) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x04U\x02u1"
             b"K\x00K\x01\x87Rq\x05(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
             + len(data).to_bytes(4, "little") + data + b"tb")
    return (b"\x80\x02}q\x00(U\x04dataq\x06" + array + b"U\x06labelsq\x07]q\x08("
            + b"".join(b"K" + bytes([v]) for v in labels) + b"eu.")


def test_official_batch_pickles_of_every_protocol_still_load(cifar_source, tmp_path):
    folder = python_batches(tmp_path, cifar_source)
    rows = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    record = {b"batch_label": b"x", b"labels": [3, 5], b"data": rows}
    for body in [python2_batch(rows, [3, 5])] + [pickle.dumps(record, protocol=p)
                                                  for p in (2, 4, 5)]:
        (folder / "test_batch").write_bytes(body)
        _, (xt, yt) = load_cifar10(tmp_path, download=False, classes="all")
        assert xt.shape == (2, 32, 32, 3) and yt.tolist() == [3, 5]
        assert xt[0, 0, 1, 0] == 1 and xt[1, 0, 0, 0] == 0  # pixels as written


# ------------------------------------------------------------ 9. user arrays are not coerced
def test_float_images_in_unit_range_are_refused_with_the_fix():
    x, y = np.random.default_rng(0).random((10, 8, 8, 3)), np.arange(10) % 2
    with pytest.raises(DataError, match=r"x .*float64.*multiply by 255 and cast to uint8"):
        stratified_subset(x, y, 4)


def test_int16_images_outside_uint8_are_refused_not_wrapped():
    x, y = np.full((10, 8, 8, 3), 300, np.int16), np.arange(10) % 2
    with pytest.raises(DataError, match=r"x .*int16.*0\.\.255"):
        stratified_subset(x, y, 4)


def test_float_labels_are_refused_not_truncated():
    x = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match=r"y .*float64.*astype"):
        stratified_subset(x, np.array([0.0, 1.5, 0.2, 1.0]), 2)
    with pytest.raises(ValueError, match="labels"):
        synthetic.render_images(np.array([0.7]), synthetic.CIFAR10_CLASSES, 8, seed=0)
    with pytest.raises(ValueError, match=r"labels .*-1"):  # would silently draw a truck
        synthetic.render_images(np.array([-1]), synthetic.CIFAR10_CLASSES, 8, seed=0)


def test_good_arrays_still_pass():
    x, y = np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) % 2
    assert stratified_subset(x, y, 4)[0].shape == (4, 8, 8, 3)
    assert np.bincount(stratified_subset(np.arange(10), y.astype(np.int32), 4)[1]).tolist() == [2, 2]


# ------------------------------------------------------------ 11, 12. concurrent extraction
def _extract_together(folder: str, url: str, checksum: str, barrier, results) -> None:
    barrier.wait()
    try:
        (x, y), _ = load_cifar10(folder, url=url, md5=checksum, download=False)
        results.put(("ok", int(x.sum()), len(y)))
    except BaseException as err:  # noqa: BLE001 (reported to the parent)
        results.put(("error", repr(err)))


def test_processes_extracting_one_archive_together_all_succeed(cifar_body, tmp_path):
    ctx = multiprocessing.get_context("fork")
    for round_ in range(3):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        (folder / "cifar-10-python.tar.gz").write_bytes(cifar_body)
        barrier, results = ctx.Barrier(4), ctx.Queue()
        workers = [ctx.Process(target=_extract_together,
                               args=(str(folder), "http://127.0.0.1:9/cifar-10-python.tar.gz",
                                     md5(cifar_body), barrier, results)) for _ in range(4)]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for w in workers:
            w.join(30)
        assert all(o[0] == "ok" for o in outcomes), outcomes
        assert len(set(outcomes)) == 1
        assert sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME) == [
            "cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_a_waiting_process_names_the_pid_it_waits_for(cifar_body, tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_body)
    with open(tmp_path / LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.truncate(0)
        lock.write(f"{os.getpid()} extracting CIFAR-10 (test)\n")
        lock.flush()
        code = ("from tlcnn_helpers.data import load_cifar10\n"
                f"(x, _), _ = load_cifar10({str(tmp_path)!r}, url={PY_URL!r},"
                f" md5={md5(cifar_body)!r})\n"
                "print('loaded', len(x))\n")
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        said = ""
        while "waiting for PID" not in said:  # blocks until the child reports that it waits
            line = child.stderr.readline()
            assert line, f"the child ended without saying whom it waits for: {said}"
            said += line
        assert f"waiting for PID {os.getpid()} to finish extracting" in said, said
        assert child.poll() is None and not (tmp_path / "cifar-10-batches-py").exists()
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "loaded 90" in out


def test_stale_extraction_folders_are_removed(cifar_body, tmp_path):
    stale = tmp_path / ".extracting-k1ll3d" / "cifar-10-batches-py"
    stale.mkdir(parents=True)
    (stale / "data_batch_1").write_bytes(bytes(2**20))
    part = tmp_path / ".cifar-10-python.tar.gz.123.k1ll3d.part"
    part.write_bytes(b"half a download")
    live = tmp_path / f".extracting-{os.getpid()}-busy"  # a direct extract_archive call
    live.mkdir()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_body)
    (x, _), _ = load_cifar10(tmp_path, url=PY_URL, md5=md5(cifar_body))
    assert len(x) == 90
    assert not (tmp_path / ".extracting-k1ll3d").exists() and not part.exists()
    assert live.is_dir(), "an extraction by a live process was removed"


def test_extraction_keeps_the_first_finished_folder(cifar_body, tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_body)
    first = tmp_path / "cifar-10-batches-py"
    first.mkdir()
    (first / "mine.txt").write_text("in use")
    extract_archive(tmp_path / "cifar-10-python.tar.gz", tmp_path)
    assert (first / "mine.txt").read_text() == "in use"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".extracting-")]


# ------------------------------------------------------------ 13. modes follow the umask
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_synthetic_and_extracted_folders_get_the_umask_modes(cifar_body, tmp_path, umask):
    old = os.umask(umask)
    try:
        synthetic.write_cifar10(tmp_path / "c", 1, 1)
        synthetic.write_stl10(tmp_path / "s", 1, 1)
        load_cifar10(tmp_path / "l", source="synthetic", synthetic_per_class=(1, 1))
        (tmp_path / "e").mkdir()
        (tmp_path / "e" / "cifar-10-python.tar.gz").write_bytes(cifar_body)
        load_cifar10(tmp_path / "e", url=PY_URL, md5=md5(cifar_body))
    finally:
        os.umask(old)
    folders = [tmp_path / "c" / "cifar-10-batches-py", tmp_path / "c" / "cifar-10-batches-bin",
               tmp_path / "s" / "stl10_binary", tmp_path / "e" / "cifar-10-batches-py",
               *(tmp_path / "l" / "synthetic").iterdir()]
    for folder in folders:
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder


# ------------------------------------------------------------ 15. a full disk is not corruption
def test_full_disk_during_extraction_says_space_not_corrupt(cifar_body, tmp_path, monkeypatch):
    """Simulated: writing a member fails with ENOSPC, as on a full disk."""
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(cifar_body)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "makefile", full)
    with pytest.raises(TLCNNError) as info:
        load_cifar10(tmp_path, url=PY_URL, md5=md5(cifar_body))
    message = str(info.value)
    assert not isinstance(info.value, DatasetFormatError)
    assert "space" in message and str(tmp_path) in message and " MB" in message
    assert "corrupt" not in message and "elete" not in message
    assert archive.read_bytes() == cifar_body
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".extracting-")]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 1 MB tmpfs; skipped where mounting is not allowed (needs root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_tmpfs_during_extraction_says_space(small_tmpfs):
    rows = np.zeros((1000, 3073), np.uint8)  # 3 MB per batch, a few KB compressed
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}.bin")
            info.size = rows.nbytes
            tar.addfile(info, io.BytesIO(rows.tobytes()))
    body = buffer.getvalue()
    (small_tmpfs / "cifar-10-binary.tar.gz").write_bytes(body)
    with pytest.raises(TLCNNError, match="space") as info:
        load_cifar10(small_tmpfs, file_format="binary", md5=md5(body),
                     url="http://127.0.0.1:9/cifar-10-binary.tar.gz")
    assert not isinstance(info.value, DatasetFormatError)
    assert str(small_tmpfs) in str(info.value) and "18 MB" in str(info.value)
    assert (small_tmpfs / "cifar-10-binary.tar.gz").read_bytes() == body


def test_full_tmpfs_during_download_says_space(small_tmpfs, monkeypatch):
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)
    body = np.random.default_rng(0).integers(0, 256, 2 * 2**20, dtype=np.uint8).tobytes()
    server = SlowServer(body)
    try:
        with pytest.raises(TLCNNError, match="space") as info:
            load_stl10(small_tmpfs, url=server.url("stl10_binary.tar.gz"), md5=md5(body))
    finally:
        server.close()
    assert str(small_tmpfs) in str(info.value) and "no STL-10 files" not in str(info.value)
    assert os.listdir(small_tmpfs) in ([], [LOCK_NAME]), "the partial download must go"


# ------------------------------------------------------------ 16. read-only data folders
def simulate_read_only(monkeypatch, *folders: Path) -> None:
    """Tests run as root, where a read-only mode does not stop writes: make ``os.access``
    report the folders read-only and creating anything inside them fail with EROFS."""
    real_access, real_mkdtemp, real_open = os.access, __import__("tempfile").mkdtemp, os.open
    roots = [str(f) for f in folders]

    def inside(path) -> bool:
        return any(str(path) == r or str(path).startswith(r + os.sep) for r in roots)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and inside(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    def mkdtemp(suffix=None, prefix=None, dir=None):  # noqa: A002 (tempfile's name)
        if dir is not None and inside(dir):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkdtemp(suffix, prefix, dir)

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr("tempfile.mkdtemp", mkdtemp)
    monkeypatch.setattr(os, "open", open_)


def test_read_only_data_folder_extracts_into_a_user_cache(cifar_body, tmp_path, monkeypatch,
                                                          capsys):
    """Read-only is simulated (see simulate_read_only): the tests run as root."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "cifar-10-python.tar.gz").write_bytes(cifar_body)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    simulate_read_only(monkeypatch, inputs)
    (x, _), _ = load_cifar10(inputs, url=PY_URL, md5=md5(cifar_body))
    assert len(x) == 90
    assert sorted(os.listdir(inputs)) == ["cifar-10-python.tar.gz"]
    said = capsys.readouterr()
    assert str(inputs) in said.err and str(tmp_path / "cache") in said.err
    (x2, _), _ = load_cifar10(inputs, url=PY_URL, md5=md5(cifar_body))  # reuses the cache
    np.testing.assert_array_equal(x, x2)


def test_read_only_data_folder_without_a_writable_cache_says_how(cifar_body, tmp_path,
                                                                 monkeypatch):
    """Read-only is simulated (see simulate_read_only): the tests run as root."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "cifar-10-python.tar.gz").write_bytes(cifar_body)
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    simulate_read_only(monkeypatch, inputs, tmp_path / "cache")
    with pytest.raises(DataError) as info:
        load_cifar10(inputs, url=PY_URL, md5=md5(cifar_body))
    message = str(info.value)
    assert str(inputs) in message and "TLCNN_DATA_DIR" in message and "data_dir" in message
    assert (inputs / "cifar-10-python.tar.gz").read_bytes() == cifar_body


# ------------------------------------------------------------ 18. clear refusals
@pytest.mark.parametrize("file_format, name", [("python", "cifar-10-batches-py/data_batch_3"),
                                                ("binary", "cifar-10-batches-bin/data_batch_3.bin")])
def test_batch_file_that_is_a_folder_is_refused_clearly(cifar_source, tmp_path, file_format, name):
    shutil.copytree(cifar_source / name.split("/")[0], tmp_path / name.split("/")[0])
    (tmp_path / name).unlink()
    (tmp_path / name).mkdir()
    with pytest.raises(DatasetFormatError, match="data_batch_3.* is a folder"):
        load_cifar10(tmp_path, file_format=file_format, download=False)


def test_dataset_names_are_case_insensitive_or_refused(tmp_path):
    assert class_names("all", "CIFAR10")[6] == "frog"
    assert class_names("all", "STL10")[7] == "monkey"
    with pytest.raises(DataError, match="dataset='mnist'.*cifar10.*stl10"):
        class_names("all", "mnist")
    (x, _), _ = load_dataset("CIFAR10", get_profile("smoke"), data_dir=tmp_path)
    assert x.shape[1:] == (32, 32, 3)


def test_empty_class_list_is_refused(cifar_source):
    with pytest.raises(DataError, match=r"classes=\[\] .*at least one"):
        load_cifar10(cifar_source, classes=[], download=False)
    with pytest.raises(DataError, match=r"classes=\[\]"):
        class_names([], "stl10")
