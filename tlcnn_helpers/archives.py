"""Dataset archives: MD5 checks, downloads to unique temporary names, safe extraction, and
a lock so several processes sharing one data folder never step on each other.

A file the course did not download is never deleted or overwritten; a full disk is called
a full disk, never a corrupt archive; a read-only data folder is extracted into a per-user
cache instead.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> (folder / "a.txt").write_text("x")
1
>>> _md5(folder / "a.txt")
'9dd4e461268c8034f5c8564e155c67a6'

Used by :mod:`tlcnn_helpers.data` (notebook 00 explains the archives' formats).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from .errors import (
    DataError,
    DataFolderNotWritableError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    NotEnoughSpaceError,
    UnsafeArchiveError,
)
from .settings import OFFLINE_ENV_VAR, offline_mode

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first loads are not guarded
    fcntl = None

LOCK_NAME = ".tlcnn-data.lock"


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DatasetFormatError(
            f"{path} is a folder (or not a regular file), not a dataset file: move it away and "
            f"copy the official file there, or delete {path.parent} and extract the archive again.")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_member_path(target: Path, member: tarfile.TarInfo, archive: Path) -> Path:
    name = PurePosixPath(member.name)
    destination = (target / name).resolve()
    if name.is_absolute() or ".." in name.parts or not destination.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(
            f"{archive} contains the member {member.name!r}, which would be written outside "
            f"{target}. The archive is not the official one: delete it and download it again.")
    if member.issym() or member.islnk() or member.isdev():
        raise UnsafeArchiveError(
            f"{archive} contains the link or device {member.name!r}; the official archive has "
            f"only files and folders. Delete it and download it again.")
    return destination


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Locks held by this process: folder -> [thread lock, file descriptor, depth]. flock is per
# open file, so a second flock on the same file from this process would wait for itself.
_HELD: dict[Path, list] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def _data_lock(folder: Path, doing: str) -> Iterator[None]:
    """Hold ``folder/.tlcnn-data.lock`` (re-entrant); say whom we wait for if it is taken."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _not_writable(folder, err) from err
    key = folder.resolve()
    with _HELD_GUARD:
        entry = _HELD.setdefault(key, [threading.RLock(), None, 0])
    with entry[0]:
        if entry[2] == 0:
            entry[1] = _acquire_file_lock(key, doing)
        entry[2] += 1
        try:
            yield
        finally:
            entry[2] -= 1
            if entry[2] == 0 and entry[1] is not None:
                os.close(entry[1])  # releases the flock
                entry[1] = None


def _acquire_file_lock(folder: Path, doing: str) -> int | None:
    if fcntl is None:
        return None
    path = folder / LOCK_NAME
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: locking needs no write access
            fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        raise _not_writable(folder, err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip().split(" ", 1)
        pid, what = (holder + ["", ""])[:2] if holder[0] else ("?", "")
        _note(f"waiting for PID {pid} to finish {what or 'its work'} (lock {path}) ...")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:  # e.g. ENOLCK on some network file systems
        _note(f"cannot lock {path} ({err}); going on without: do not load the same dataset "
              f"into {folder} from several processes at once")
    with contextlib.suppress(OSError):  # read-only lock file: nobody learns our PID
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {doing}\n".encode(), 0)
    return fd


def _not_writable(folder: Path, err: OSError) -> DataError:
    return DataFolderNotWritableError(
        f"cannot write into {folder} ({err.strerror or err}). Set TLCNN_DATA_DIR (or pass "
        f"data_dir=) to a writable folder; an archive can stay where it is if you copy or link it "
        f"there.")


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(folder: Path, archive_name: str) -> None:
    """With the lock held, staging folders and partial downloads left here are stale.

    Loaders download and extract only under the lock. A direct :func:`extract_archive`
    call does not lock, so a staging folder named after a live process is kept.
    """
    for leftover in [*folder.glob(".extracting-*"), *folder.glob(f".{archive_name}.*.part")]:
        parts = leftover.name.split("-")  # .extracting-<pid>-<random>
        if leftover.name.startswith(".extracting-") and len(parts) > 2 and _alive(parts[1]):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _wanted(member: tarfile.TarInfo, members: Sequence[str] | None) -> bool:
    return member.isfile() and (members is None or PurePosixPath(member.name).name in members)


def _needed_mb(archive: Path, members: Sequence[str] | None) -> str:
    try:
        with tarfile.open(archive, "r:*") as tar:
            return f"{sum(m.size for m in tar if _wanted(m, members)) / 1e6:,.0f} MB"
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return f"more than {archive.stat().st_size / 1e6:,.0f} MB"


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike,
                    members: Sequence[str] | None = None, *, checked: bool = False) -> Path:
    """Extract a .tar.gz into ``target`` safely; returns ``target``.

    Every member is checked before it is written: no absolute path, no ``..``, no links.
    Extraction goes to a temporary folder inside ``target`` and each top-level folder is
    moved into place only when the whole archive was read, so an interrupted or refused
    extraction never leaves half a dataset behind and never touches existing folders: a
    folder already there (another process finished first, or the user's own) is kept.
    ``members`` limits extraction to files with those base names (STL-10's 2.7 GB
    ``unlabeled_X.bin`` is skipped this way). ``checked=True`` says the archive's MD5 was
    verified, so a failure is never blamed on the archive. A full disk raises
    :class:`~tlcnn_helpers.errors.NotEnoughSpaceError` saying how much is needed.

    >>> import tempfile, tarfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a").mkdir(); _ = (d / "a" / "x.txt").write_text("1")
    >>> with tarfile.open(d / "a.tar.gz", "w:gz") as tar: tar.add(d / "a", arcname="a")
    >>> (extract_archive(d / "a.tar.gz", d / "out") / "a" / "x.txt").read_text()
    '1'
    """
    archive, target = Path(archive), Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        # The PID in the name tells a live extraction from one a killed process left.
        staging = Path(tempfile.mkdtemp(dir=target, prefix=f".extracting-{os.getpid()}-"))
    except OSError as err:
        raise _not_writable(target, err) from err
    try:
        _extract_into(staging, archive, target, members, checked)
        for top in staging.iterdir():
            final = target / top.name
            if final.exists():  # the first finished extraction wins; nothing is replaced
                continue
            try:
                os.rename(top, final)
            except OSError:
                if not final.exists():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_into(staging: Path, archive: Path, target: Path, members: Sequence[str] | None,
                  checked: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _safe_member_path(staging, member, archive)
                if not _wanted(member, members):  # folders are made as files need them
                    continue
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extract(member, staging, filter="data")
                else:
                    tar.extract(member, staging)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        if checked:
            raise DataError(
                f"{archive} matches its MD5 but could not be extracted ({err}): the archive is "
                f"intact, so keep it; check the disk and memory of this machine and run again."
            ) from err
        raise DatasetFormatError(
            f"{archive} could not be read as a .tar.gz archive ({err}): it is truncated or "
            f"corrupted. Delete it and download it again.") from err
    except OSError as err:  # the system failed, not the archive
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            shutil.rmtree(staging, ignore_errors=True)  # so the free space below is honest
            free = shutil.disk_usage(target).free / 1e6
            raise NotEnoughSpaceError(
                f"not enough space in {target} to extract {archive.name}: it needs about "
                f"{_needed_mb(archive, members)} and {free:,.0f} MB are free there. The archive "
                f"is fine, keep it. Free some space, or set TLCNN_DATA_DIR (or pass data_dir=) to "
                f"a folder on a larger disk and move the archive there.") from err
        if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise _not_writable(target, err) from err
        raise DataError(f"extracting {archive} into {target} failed ({err}): a problem of the "
                        f"disk or system, not of the archive; fix it and run again.") from err


def _unknown_archive(archive: Path, actual: str, md5: str, dataset: str, loader: str | None = None
                     ) -> DatasetFormatError:
    loader = loader or {"CIFAR-10": "load_cifar10", "STL-10": "load_stl10"}.get(dataset, "the loader")
    return DatasetFormatError(
        f"{archive} has MD5 {actual}, expected {md5}: it is not the official {dataset} archive "
        f"(a re-packed or partial copy, or another file). The course did not download it, so it "
        f"is left untouched and nothing is downloaded over it. If it is a copy you trust, pass "
        f"md5=\"{actual}\" to {loader}(); otherwise move it out of {archive.parent} and run "
        f"again to use (or download) the official archive.")


def fetch_archive(url: str, md5: str, data_dir: Path, *, dataset: str) -> Path:
    """The checked archive in ``data_dir``: kept if its MD5 matches, else downloaded.

    A file already there whose MD5 differs is never deleted or overwritten: the error gives
    both hashes and the ways on. A download goes to a unique hidden ``.part`` name and is
    renamed into place only once its MD5 matches; a mismatching download is deleted and
    reported with the expected and actual hash. With no network, the error names the
    folder, the URL and the ways on.
    """
    target = data_dir / PurePosixPath(url.split("?")[0]).name
    if target.exists():
        actual = _md5(target)
        if actual == md5:
            return target
        raise _unknown_archive(target, actual, md5, dataset)
    return _download(url, md5, data_dir, dataset)


def _download(url: str, md5: str, data_dir: Path, dataset: str) -> Path:
    fname = PurePosixPath(url.split("?")[0]).name
    target = data_dir / fname
    if offline_mode():
        raise DatasetNotFoundError(
            f"no {dataset} files in {data_dir}, and {OFFLINE_ENV_VAR} is set, so {url} was not "
            f"downloaded. Either copy the official files (or archive {fname}) into {data_dir} "
            f"(or set TLCNN_DATA_DIR to where they are), unset {OFFLINE_ENV_VAR} to download, or "
            f"use PROFILE = \"smoke\" to run on synthetic data.")
    try:
        fd, name = tempfile.mkstemp(dir=data_dir, prefix=f".{fname}.", suffix=".part")
    except OSError as err:
        raise _not_writable(data_dir, err) from err
    part, digest, done, total = Path(name), hashlib.md5(), 0, 0
    try:
        try:
            _note(f"Downloading {url} into {data_dir}")
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0)
                shown = -1
                while block := response.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if total and (percent := 100 * done // total) // 10 != shown:
                        shown = percent // 10
                        _note(f"  {percent}% of {total / 1e6:,.0f} MB")
            if total and done < total:
                raise OSError(f"the connection closed after {done:,} of {total:,} bytes")
        except (OSError, http.client.HTTPException) as err:
            if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise NotEnoughSpaceError(
                    f"not enough space in {data_dir} to download {fname} ({total / 1e6:,.0f} MB). "
                    f"Free some space, or set TLCNN_DATA_DIR (or pass data_dir=) to a folder on a "
                    f"larger disk.") from err
            raise DatasetNotFoundError(
                f"no {dataset} files in {data_dir}, and downloading {url} failed ({err}). Either "
                f"copy the official files (or archive {fname}) into {data_dir} (or set "
                f"TLCNN_DATA_DIR to where they are), or use PROFILE = \"smoke\" to run on "
                f"synthetic data.") from err
        actual = digest.hexdigest()
        if actual != md5:
            raise DownloadError(
                f"the {dataset} archive downloaded from {url} has MD5 {actual}, expected {md5}: "
                f"the download is corrupted or incomplete and was deleted. Run again to retry.")
        try:
            os.link(part, target)  # fails rather than overwrite a file that appeared meanwhile
        except FileExistsError:
            raise _unknown_archive(target, _md5(target), md5, dataset) from None
        except OSError:  # file systems without hard links
            if target.exists():
                raise _unknown_archive(target, _md5(target), md5, dataset) from None
            os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _obtain_archive(url: str, md5: str, root: Path, work: Path, download: bool, dataset: str,
                    loader: str) -> Path | None:
    """A hash-checked archive in ``root`` (or ``work``), downloaded into ``work`` if allowed.

    None if there is none and downloading is not allowed. A file of the archive's name
    whose hash differs is refused, never replaced.
    """
    fname = PurePosixPath(url.split("?")[0]).name
    for folder in dict.fromkeys([root, work]):
        archive = folder / fname
        if archive.exists():
            _require_file(archive)
            actual = _md5(archive)  # once: STL-10's is 2.6 GB
            if actual == md5:
                return archive
            raise _unknown_archive(archive, actual, md5, dataset, loader)
    return _download(url, md5, work, dataset) if download else None


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written (or created), without creating anything."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _user_cache_dir(root: Path) -> Path:
    """Where a read-only data folder's archives are extracted: one folder per data folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return base / "tlcnn" / "data" / f"{root.resolve().name or 'root'}-{tag}"


def _prepare(root: Path, find: Callable[[Path], object], *, url: str, md5: str, download: bool,
             dataset: str, loader: str, members: Sequence[str] | None = None):
    """Check, download and extract under the folder's lock; returns ``find``'s result or None.

    A read-only ``root`` is extracted into :func:`_user_cache_dir` (said on stderr).
    """
    fname = PurePosixPath(url.split("?")[0]).name
    work = root if _writable(root) else _user_cache_dir(root)
    if work != root and (found := find(work)) is not None:
        return found
    if not download and not (root / fname).exists() and not (work / fname).exists():
        return None  # nothing to extract: create no lock file
    if work != root and not _writable(work):
        raise DataFolderNotWritableError(
            f"{root} is read-only and the per-user cache {work} is not writable either, so "
            f"{dataset} cannot be extracted. Set TLCNN_DATA_DIR (or pass data_dir=) to a writable "
            f"folder and copy or link {fname} there (the archive itself can stay where it is).")
    with _data_lock(work, f"extracting {dataset} into {work}"):
        if (found := find(work)) is not None:  # another process finished while we waited
            return found
        _remove_stale(work, fname)
        archive = _obtain_archive(url, md5, root, work, download, dataset, loader)
        if archive is None:
            return None
        if work != root:
            _note(f"{root} is read-only: extracting {archive.name} into {work} (set "
                  f"TLCNN_DATA_DIR or pass data_dir= to choose another writable folder)")
        extract_archive(archive, work, members=members, checked=True)
        return find(work)
