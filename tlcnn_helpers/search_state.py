"""A search's folder on disk: what makes it resumable, safe to share and safe to delete.

keras-tuner keeps a search in a folder and reloads whatever it finds there. The course adds:
the oracle's and trials' JSON written atomically (a kill never corrupts them, a completed
trial is never rerun), a fingerprint of the search space (:data:`FINGERPRINT_FILE`, also the
marker that the course made the folder, so ``--fresh`` deletes only such folders), a lock
(two searches never share a folder), per-trial facts (:func:`trial_infos`) and plain folder
names (:func:`check_project_name`).

>>> import tempfile
>>> completed_trials(tempfile.mkdtemp())
[]

Used by :mod:`tlcnn_helpers.tuning` (notebook 05's optional section on resuming) and the
``tune`` command.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile  # noqa: F401 (the doctests use it)
from pathlib import Path
from typing import Any

import keras_tuner

from .errors import SearchFolderInUseError, SearchSpaceMismatchError, TuningError
from .files import folder_lock, null_nonfinite, read_json, write_json

FINGERPRINT_FILE = "tlcnn_search.json"  # the marker: this course made the folder
TRIAL_INFO_FILE = "tlcnn_trial.json"
LOCK_FILE = "tlcnn_search.lock"
FRESH = "start the search over with --fresh (overwrite=True), or move the folder away"
ENDED = ("COMPLETED", "FAILED")


def write_state_json(path: str | os.PathLike, obj: Any) -> None:
    write_json(null_nonfinite(obj), path, indent=None)  # a diverged trial's NaN becomes null


ENDED = ("COMPLETED", "FAILED")


class AtomicOracleMixin:
    """Write the oracle's and the trials' JSON atomically (a kill never corrupts them), and
    never rerun a trial that completed.

    keras-tuner saves the oracle while an ended trial is still listed as ongoing, and
    reloading sends ongoing trials for a retry: a search killed in that moment would rerun
    a completed trial. Ended trials are left out of the saved ``ongoing_trials`` and out of
    the retry queue after a reload.
    """

    def save(self) -> None:
        state = self.get_state()
        state["ongoing_trials"] = {
            tuner_id: trial_id for tuner_id, trial_id in state["ongoing_trials"].items()
            if self.trials[trial_id].status not in ENDED}
        write_state_json(self._get_oracle_fname(), state)

    def reload(self) -> None:
        super().reload()
        self._retry_queue = [trial_id for trial_id in self._retry_queue
                             if self.trials[trial_id].status not in ENDED]

    def _save_trial(self, trial: keras_tuner.engine.trial.Trial) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        write_state_json(path, trial.get_state())


def trial_infos(project_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Per-trial facts recorded by the course's tuners: keras-tuner's status and score,
    and who ran the trial (``tuner_id``, ``pid``), its seconds, epochs and memory.

    >>> trial_infos(tempfile.mkdtemp())
    {}
    """
    infos: dict[str, dict[str, Any]] = {}
    for trial_file in sorted(Path(project_dir).glob("trial_*/trial.json")):
        try:
            state = json.loads(trial_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        info_file = trial_file.parent / TRIAL_INFO_FILE
        info = read_json(info_file, fix=FRESH, error=TuningError) if info_file.exists() else {}
        info.update(trial_id=state["trial_id"], status=state["status"], score=state["score"],
                    hyperparameters=state["hyperparameters"]["values"])
        infos[state["trial_id"]] = info
    return infos


def completed_trials(project_dir: str | os.PathLike) -> list[str]:
    """Ids of the trials completed in a search folder.

    >>> completed_trials(tempfile.mkdtemp())
    []
    """
    return [tid for tid, info in trial_infos(project_dir).items() if info["status"] == "COMPLETED"]


def check_fingerprint(project_dir: Path, fingerprint: dict[str, Any]) -> None:
    stored_file = project_dir / FINGERPRINT_FILE
    has_state = (project_dir / "oracle.json").exists()
    if not stored_file.exists():
        if has_state:
            raise SearchSpaceMismatchError(
                f"the search folder {project_dir} holds a keras-tuner search that this course "
                f"did not make (no {FINGERPRINT_FILE}); pass another directory or project "
                f"name, or start fresh (overwrite=True, or --fresh) to delete it")
        return
    stored = read_json(stored_file, fix=FRESH, error=TuningError)
    if stored.get("sha256") == fingerprint["sha256"]:
        return
    old, new = stored.get("described", {}), fingerprint["described"]
    differing = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    raise SearchSpaceMismatchError(
        f"the search folder {project_dir} was made for a different search "
        f"(differs in: {', '.join(differing)}); reusing it would mix trials of two searches. "
        f"Pass another project name or directory, or start fresh (overwrite=True, or --fresh) "
        f"to delete its {len(completed_trials(project_dir))} completed trials")



def empty_for_fresh(project_dir: Path) -> None:  # only a folder this course made
    entries = [p for p in project_dir.iterdir() if p.name != LOCK_FILE]
    if entries and not (project_dir / FINGERPRINT_FILE).exists():
        raise TuningError(f"{project_dir} holds no {FINGERPRINT_FILE}, so the course did not make "
                          f"it and --fresh (overwrite=True) will not delete it; delete it yourself")
    for entry in entries:  # the lock file stays: another process may be waiting on it
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def check_project_name(project_name: str) -> str:
    """A search's folder name must be one plain name, so it stays inside the tuning folder.

    >>> check_project_name("stl10_random_smoke")  # "..", "." or "a/b" raise TuningError
    'stl10_random_smoke'
    """
    name = str(project_name)
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise TuningError(f"--project {name!r} must be one plain folder name (such as "
                          f"stl10_random_smoke), not a path: searches live in the tuning folder")
    return name


def lock_search_folder(project_dir: str | os.PathLike):
    """Hold ``project_dir``: a second search there gets :class:`SearchFolderInUseError`.

    >>> with lock_search_folder(Path(tempfile.mkdtemp()) / "p") as lock_file:
    ...     lock_file.name
    'tlcnn_search.lock'
    """
    return folder_lock(project_dir, LOCK_FILE, SearchFolderInUseError,
                       "two searches in one folder would overwrite each other's trials: wait "
                       "for it to finish, or pass another project name (--project)")
