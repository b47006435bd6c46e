"""The dataset layer: formats, class alignment, downloads and every bad input it must refuse."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tlcnn_helpers import synthetic
from tlcnn_helpers.archives import extract_archive
from tlcnn_helpers.data import (
    SHARED_CLASSES,
    archive_bytes,
    class_names,
    load_cifar10,
    load_dataset,
    load_stl10,
    stratified_subset,
)
from tlcnn_helpers.errors import (
    DataError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    TLCNNError,
    UnsafeArchiveError,
)
from tlcnn_helpers.settings import get_profile


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cifar_source(tmp_path_factory) -> Path:
    """Synthetic CIFAR-10 in both official layouts (10 train / 3 test images per class)."""
    return synthetic.write_cifar10(tmp_path_factory.mktemp("cifar"), 10, 3, seed=1)


@pytest.fixture(scope="module")
def stl_source(tmp_path_factory) -> Path:
    return synthetic.write_stl10(tmp_path_factory.mktemp("stl"), 4, 2, seed=1)


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


class ArchiveServer:
    """An HTTP server on 127.0.0.1 serving in-memory files, counting requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:  # announce all, send half, hang up
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    """A loopback archive server; downloads are allowed while it runs (conftest sets offline)."""
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)
    srv = ArchiveServer()
    yield srv
    srv.close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


# ----------------------------------------------------------------------------- formats
def test_cifar_python_and_binary_layouts_agree(cifar_source):
    (x_py, y_py), (xt_py, yt_py) = load_cifar10(cifar_source, file_format="python", download=False)
    (x_bin, y_bin), (xt_bin, yt_bin) = load_cifar10(cifar_source, file_format="binary",
                                                    download=False)
    assert x_py.shape == (90, 32, 32, 3) and x_py.dtype == np.uint8
    assert xt_py.shape == (27, 32, 32, 3)
    np.testing.assert_array_equal(x_py, x_bin)
    np.testing.assert_array_equal(y_py, y_bin)
    np.testing.assert_array_equal(yt_py, yt_bin)


def test_cifar_pixels_are_decoded_in_official_order(tmp_path):
    """Row layout is all red, then green, then blue, each row-major: check one pixel."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rows = np.zeros((1, 3073), np.uint8)
    rows[0, 0] = 3  # cat
    rows[0, 1 + 0 * 1024 + 1 * 32 + 2] = 200  # red at row 1, column 2
    rows[0, 1 + 2 * 1024 + 5 * 32 + 7] = 99  # blue at row 5, column 7
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f"{name}.bin").write_bytes(rows.tobytes())
    (x, y), _ = load_cifar10(tmp_path, download=False)
    assert x.shape == (5, 32, 32, 3)
    assert x[0, 1, 2, 0] == 200 and x[0, 5, 7, 2] == 99 and x[0].sum() == 299
    assert class_names()[y[0]] == "cat"


def test_stl_pixels_are_column_major_per_channel(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    image = np.zeros((3, 96, 96), np.uint8)  # stored as [channel][column][row]
    image[1, 10, 4] = 77  # green at row 4, column 10
    for split in ("train", "test"):
        (folder / f"{split}_X.bin").write_bytes(image.tobytes())
        (folder / f"{split}_y.bin").write_bytes(bytes([3]))  # label 3 = car
    (x, y), _ = load_stl10(tmp_path, download=False)
    assert x.shape == (1, 96, 96, 3)
    assert x[0, 4, 10, 1] == 77 and x.sum() == 77
    assert SHARED_CLASSES[y[0]] == "car"


def test_shared_classes_align_both_datasets(cifar_source, stl_source):
    (_, y_c), (_, yt_c) = load_cifar10(cifar_source, download=False)
    (_, y_s), (_, yt_s) = load_stl10(stl_source, download=False)
    assert np.bincount(y_c).tolist() == [10] * 9  # frog dropped, automobile -> car
    assert np.bincount(y_s).tolist() == [4] * 9  # monkey dropped
    assert class_names("shared") == list(SHARED_CLASSES)


def test_all_classes_in_official_order(cifar_source, stl_source):
    (x, y), _ = load_cifar10(cifar_source, classes="all", download=False)
    (xs, ys), _ = load_stl10(stl_source, classes="all", download=False)
    assert len(x) == 100 and sorted(set(y.tolist())) == list(range(10))
    assert len(xs) == 40 and sorted(set(ys.tolist())) == list(range(10))
    assert class_names("all", "cifar10")[6] == "frog" and class_names("all", "stl10")[7] == "monkey"


def test_class_subset_by_name_relabels_in_given_order(cifar_source):
    (x, y), _ = load_cifar10(cifar_source, classes=["dog", "automobile"], download=False)
    (xa, ya), _ = load_cifar10(cifar_source, classes="all", download=False)
    assert len(x) == 20 and sorted(set(y.tolist())) == [0, 1]
    np.testing.assert_array_equal(np.sort(x[y == 0].ravel()), np.sort(xa[ya == 5].ravel()))


def test_synthetic_is_deterministic_and_same_semantics_at_both_sizes(tmp_path):
    first = load_cifar10(tmp_path / "a", source="synthetic", synthetic_per_class=(4, 1), seed=3)
    second = load_cifar10(tmp_path / "b", source="synthetic", synthetic_per_class=(4, 1), seed=3)
    np.testing.assert_array_equal(first[0][0], second[0][0])
    # A 96x96 image of a class, shrunk to 32x32, still shows the same pattern family:
    # stripes classes keep their dominant orientation at both sizes.
    small = synthetic.render_images(np.zeros(20, int), synthetic.STL10_CLASSES, 32, seed=0)
    large = synthetic.render_images(np.zeros(20, int), synthetic.STL10_CLASSES, 96, seed=0)
    for images in (small, large):
        grey = images.mean(axis=-1)
        vertical_change = np.abs(np.diff(grey, axis=1)).mean()
        horizontal_change = np.abs(np.diff(grey, axis=2)).mean()
        assert vertical_change > 1.5 * horizontal_change  # horizontal stripes: airplane


def test_load_dataset_follows_profile(tmp_path):
    smoke = get_profile("smoke")
    (x, y), (xt, yt) = load_dataset("cifar10", smoke, data_dir=tmp_path)
    per_class = smoke.data.synthetic_train_per_class
    assert x.shape == (9 * per_class, 32, 32, 3)
    assert len(xt) == 9 * smoke.data.synthetic_test_per_class
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        load_dataset("mnist", smoke, data_dir=tmp_path)


def test_stratified_subset_keeps_classes_balanced():
    y = np.repeat(np.arange(9), 50)
    x = np.arange(len(y))
    xs, ys = stratified_subset(x, y, 90, seed=1)
    assert np.bincount(ys).tolist() == [10] * 9
    np.testing.assert_array_equal(xs, stratified_subset(x, y, 90, seed=1)[0])


@pytest.mark.slow
def test_synthetic_cifar_is_learnable_well_above_chance(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    (x, y), (xt, yt) = load_cifar10(tmp_path, source="synthetic", synthetic_per_class=(120, 40))
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(9, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    assert accuracy > 0.6, f"synthetic CIFAR should be learnable; got {accuracy:.2f} (chance 0.11)"


# ----------------------------------------------------------------------------- bad files
def test_truncated_cifar_binary_batch_names_file_and_fix(cifar_source, tmp_path):
    copy_tree(cifar_source / "cifar-10-batches-bin", tmp_path / "cifar-10-batches-bin")
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DatasetFormatError, match="data_batch_3.bin.*not a whole number.*download"):
        load_cifar10(tmp_path, download=False)


def test_truncated_cifar_python_batch_names_file(cifar_source, tmp_path):
    copy_tree(cifar_source / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(DatasetFormatError, match="test_batch is not a readable CIFAR-10"):
        load_cifar10(tmp_path, download=False)


def test_wrong_sized_cifar_python_batch(cifar_source, tmp_path):
    copy_tree(cifar_source / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    record = {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(record))
    with pytest.raises(DatasetFormatError, match=r"data_batch_2 holds data of shape \(3, 100\)"):
        load_cifar10(tmp_path, download=False)


def test_pickle_that_would_run_code_is_refused(cifar_source, tmp_path):
    copy_tree(cifar_source / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(DatasetFormatError, match="system is not allowed"):
        load_cifar10(tmp_path, download=False)
    assert not (tmp_path / "owned").exists()


def test_wrong_sized_stl_bin(stl_source, tmp_path):
    copy_tree(stl_source / "stl10_binary", tmp_path / "stl10_binary")
    images = tmp_path / "stl10_binary" / "test_X.bin"
    images.write_bytes(images.read_bytes()[:-96])
    with pytest.raises(DatasetFormatError, match="test_X.bin is .* bytes, but test_y.bin has 20"):
        load_stl10(tmp_path, download=False)


def test_labels_out_of_range(cifar_source, stl_source, tmp_path):
    copy_tree(cifar_source / "cifar-10-batches-bin", tmp_path / "c" / "cifar-10-batches-bin")
    batch = tmp_path / "c" / "cifar-10-batches-bin" / "data_batch_1.bin"
    raw = bytearray(batch.read_bytes())
    raw[0] = 12
    batch.write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match="data_batch_1.bin has label 12, outside 0..9"):
        load_cifar10(tmp_path / "c", download=False)
    copy_tree(stl_source / "stl10_binary", tmp_path / "s" / "stl10_binary")
    labels = tmp_path / "s" / "stl10_binary" / "train_y.bin"
    labels.write_bytes(bytes([0]) + labels.read_bytes()[1:])
    with pytest.raises(DatasetFormatError, match="train_y.bin has label 0, outside 1..10"):
        load_stl10(tmp_path / "s", download=False)


def test_unknown_class_name_lists_the_valid_ones(cifar_source):
    with pytest.raises(DataError, match=r"unknown class name\(s\) \['zebra'\].*airplane, car"):
        load_cifar10(cifar_source, classes=["cat", "zebra"], download=False)
    with pytest.raises(DataError, match="classes='some'"):
        load_cifar10(cifar_source, classes="some", download=False)
    with pytest.raises(DataError, match="monkey"):  # STL has no frog: its own list is shown
        load_stl10(cifar_source, classes=["frog"], download=False)


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(DataError, match="source='kaggle'"):
        load_cifar10(tmp_path, source="kaggle")
    with pytest.raises(DataError, match="file_format='png'"):
        load_cifar10(tmp_path, file_format="png")


# ----------------------------------------------------------------------------- downloads
def test_download_hash_check_and_extract_then_cache(cifar_source, tmp_path, server):
    body = archive_bytes(cifar_source / "cifar-10-batches-py")
    server.files["/cifar-10-python.tar.gz"] = body
    url = server.url("/cifar-10-python.tar.gz")
    (x, _), _ = load_cifar10(tmp_path, url=url, md5=md5(body))
    assert x.shape == (90, 32, 32, 3)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").exists()
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == body
    load_cifar10(tmp_path, url=url, md5=md5(body))
    assert server.requests == ["/cifar-10-python.tar.gz"], "the second load must use the cache"


def test_archive_already_in_folder_is_checked_and_used_offline(cifar_source, tmp_path):
    assert os.environ["TLCNN_OFFLINE"] == "1"  # set by conftest: no download may be tried
    body = archive_bytes(cifar_source / "cifar-10-batches-py")
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(body)
    (x, _), _ = load_cifar10(tmp_path, url=closed_port_url(), md5=md5(body))
    assert len(x) == 90


def test_download_with_wrong_hash_is_deleted_and_reported(cifar_source, tmp_path, server):
    body = archive_bytes(cifar_source / "cifar-10-batches-py")
    server.files["/cifar-10-python.tar.gz"] = body
    expected = "0" * 32
    with pytest.raises(DownloadError) as info:
        load_cifar10(tmp_path, url=server.url("/cifar-10-python.tar.gz"), md5=expected)
    message = str(info.value)
    assert expected in message and md5(body) in message and "deleted" in message
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_interrupted_download_leaves_nothing_taken_for_good(cifar_source, tmp_path, server):
    body = archive_bytes(cifar_source / "cifar-10-batches-py")
    path = "/cifar-10-python.tar.gz"
    server.files[path] = body
    server.truncate.add(path)
    with pytest.raises(DatasetNotFoundError):
        load_cifar10(tmp_path, url=server.url(path), md5=md5(body))
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    # A killed download leaves only its hidden .part file: removed, and fetched again.
    partial = tmp_path / ".cifar-10-python.tar.gz.4242.x1.part"
    partial.write_bytes(body[:1000])
    server.truncate.clear()
    (x, _), _ = load_cifar10(tmp_path, url=server.url(path), md5=md5(body))
    assert len(x) == 90
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == body
    assert not partial.exists()


def test_no_data_and_no_network_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("TLCNN_OFFLINE", raising=False)
    url = closed_port_url()
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(tmp_path, url=url, md5="0" * 32)
    message = str(info.value)
    assert str(tmp_path) in message and url in message
    assert "copy" in message and 'PROFILE = "smoke"' in message
    assert isinstance(info.value, TLCNNError)
    with pytest.raises(DatasetNotFoundError, match="stl10_binary"):
        load_stl10(tmp_path, download=False)


def test_stl_archive_skips_unlabeled_images(stl_source, tmp_path, server):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(stl_source / "stl10_binary", arcname="stl10_binary")
        info = tarfile.TarInfo("stl10_binary/unlabeled_X.bin")
        info.size = 4 * 27648
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    body = buffer.getvalue()
    server.files["/stl10_binary.tar.gz"] = body
    (x, _), (xt, _) = load_stl10(tmp_path, url=server.url("/stl10_binary.tar.gz"), md5=md5(body))
    assert x.shape == (36, 96, 96, 3) and xt.shape == (18, 96, 96, 3)
    assert not (tmp_path / "stl10_binary" / "unlabeled_X.bin").exists()


# ----------------------------------------------------------------------------- archives
def evil_archive(path: Path, member_name: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        evil = tarfile.TarInfo(member_name)
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/absolute-escape.txt",
                                    "cifar-10-batches-py/../../escaped.txt"])
def test_archive_member_escaping_target_is_refused(tmp_path, member):
    target = tmp_path / "data"
    (target / "cifar-10-batches-py").mkdir(parents=True)
    (target / "cifar-10-batches-py" / "keep.txt").write_text("cached")
    archive = evil_archive(tmp_path / "evil.tar.gz", member)
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_archive(archive, target)
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/absolute-escape.txt").exists()
    assert (target / "cifar-10-batches-py" / "keep.txt").read_text() == "cached"
    assert sorted(p.name for p in target.iterdir()) == ["cifar-10-batches-py"]


def test_archive_with_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(archive, tmp_path / "out")


def test_good_cached_files_survive_a_failed_download(cifar_source, tmp_path, server):
    copy_tree(cifar_source / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    before = {p.name: p.read_bytes() for p in (tmp_path / "cifar-10-batches-py").iterdir()}
    server.files["/stl10_binary.tar.gz"] = b"not really an archive"
    with pytest.raises(DownloadError):
        load_stl10(tmp_path, url=server.url("/stl10_binary.tar.gz"), md5="1" * 32)
    after = {p.name: p.read_bytes() for p in (tmp_path / "cifar-10-batches-py").iterdir()}
    assert before == after
    assert len(load_cifar10(tmp_path, download=False)[0][0]) == 90


def _load_synthetic_stl(folder: str) -> int:
    (x, _), _ = load_stl10(folder, source="synthetic", synthetic_per_class=(3, 1), seed=5)
    return int(x.sum())


def _load_synthetic_stl_together(barrier, folder: str, sums) -> None:
    barrier.wait(timeout=120)  # every writer starts at once, so their writes overlap
    sums.put(_load_synthetic_stl(folder))


def test_concurrent_synthetic_writers_all_see_a_complete_dataset(tmp_path):
    """Tuning workers may create the same synthetic data at once; none may break another."""
    import multiprocessing

    writers = 3
    barrier, sums = multiprocessing.Barrier(writers), multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_load_synthetic_stl_together,
                                         args=(barrier, str(tmp_path), sums))
                 for _ in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    assert [p.exitcode for p in processes] == [0] * writers, "a writer failed or hung"
    sums = [sums.get(timeout=5) for _ in range(writers)]
    assert len(set(sums)) == 1
    leftovers = [p.name for p in (tmp_path / "synthetic").rglob(".*")]
    assert leftovers == [] and sums[0] == _load_synthetic_stl(str(tmp_path))


def test_offline_mode_refuses_downloads_without_trying(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TLCNN_OFFLINE", "1")
    server.files["/cifar-10-python.tar.gz"] = b"never fetched"
    with pytest.raises(DatasetNotFoundError, match="TLCNN_OFFLINE is set"):
        load_cifar10(tmp_path, url=server.url("/cifar-10-python.tar.gz"), md5="0" * 32)
    assert server.requests == []


def test_the_test_session_cannot_reach_beyond_loopback():
    """conftest.py blocks non-loopback connections, so no test can touch the internet."""
    import socket

    with pytest.raises(OSError, match="loopback"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OSError):
        socket.getaddrinfo("www.cs.toronto.edu", 443)
