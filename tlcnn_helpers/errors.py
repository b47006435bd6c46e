"""Errors a student can cause, each with the file or argument at fault and the fix.

Every exception the package raises on purpose derives from :class:`TLCNNError`, so a
notebook can catch them all at once and show the message:

>>> try:
...     raise DatasetNotFoundError("no CIFAR-10 files in data/: copy them there")
... except TLCNNError as err:
...     print(err)
no CIFAR-10 files in data/: copy them there

Used by every module; a notebook can catch :class:`TLCNNError` to show the message.
"""

from __future__ import annotations


class TLCNNError(Exception):
    """Base class of every error the course raises on purpose."""


class ProfileError(TLCNNError, ValueError):
    """An unknown profile name or an impossible budget."""


class DataError(TLCNNError):
    """Something is wrong with a dataset on disk or with a loader argument."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """The dataset files are missing and could not be downloaded."""


class DatasetFormatError(DataError, ValueError):
    """A dataset file exists but is truncated, wrongly sized or not what it claims to be."""


class DownloadError(DataError):
    """A download failed or produced a file whose hash does not match."""


class UnsafeArchiveError(DataError):
    """An archive member would be written outside the target folder."""


class ModelInputError(TLCNNError, ValueError):
    """A model cannot take the images or the shape it was given."""


class CourseError(TLCNNError):
    """A command-line or course-run argument is contradictory or impossible."""


class TuningError(TLCNNError, ValueError):
    """An impossible or contradictory search setting (zero trials, unknown tuner, ...)."""


class SearchSpaceMismatchError(TuningError):
    """A search folder was made for a different search space or tuner."""


class SearchFolderInUseError(TuningError):
    """Another process is running a search in the same folder."""


class BackupMismatchError(TLCNNError):
    """A training backup was made by a run with other settings; resuming would mix the two."""


class RecordsError(CourseError, ValueError):
    """A records file was edited by hand into something the report cannot read."""


class ReusedSearchWarning(UserWarning):
    """A search folder with completed trials is about to be reused, not rerun."""


class UnfinishedAnswer(Exception):
    """Raised inside an exercise checker when the student's function still returns ``None``.

    Not a :class:`TLCNNError`: it is never shown as an error, only as "not done yet".
    """


class ArrayFormatError(DataError, ValueError):
    """An array passed to the data layer has the wrong dtype, shape or value range."""


class NotEnoughSpaceError(DataError, OSError):
    """The disk filled up while extracting or downloading; the archive itself is fine."""


class DataFolderNotWritableError(DataError, PermissionError):
    """The data folder is read-only and no writable place could stand in for it."""
