"""A bench run's folder: the run that owns it, the lock held while a run writes it, the files it writes.

A folder belongs to a run when it holds the run's ``config.json``, the first file every run
writes (atomically). A run resumes in its own folder when the settings are the same; with
``force`` it starts afresh there, deleting only what a run writes (:data:`RUN_FILES` and the
maps ``maps/<method>/<image>.npy`` of the methods its ``config.json`` names), never a file
it did not write. A folder that holds a run's file names but no ``config.json`` is refused
even with ``force``.

While a run writes, it holds an advisory lock (``fcntl.flock``) on ``bench.lock`` in the
folder, with its process id written in; a second run into the same folder stops at once with
that id. The lock is reentrant within a process, so a command that runs, then summarises,
holds it throughout.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from maskscope.errors import MaskscopeError, MaskscopeValueError

#: the files a run writes at the top of its folder (besides ``config.json`` and the lock)
RUN_FILES = ("records.jsonl", "summary.csv", "summary.md", "curves.png")
LOCK_NAME = "bench.lock"
#: errno values of a full disk or an exhausted quota
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

_held: dict[Path, list[int]] = {}  # resolved folder → [lock file descriptor, depth]


class RunFolderError(MaskscopeValueError):
    """The folder is not a bench run's (or overlaps the data); the message names it."""


class RunLocked(MaskscopeError):
    """Another run holds the folder's lock; the message names its process id."""


class RunStopped(MaskscopeError):
    """The run could not write into its folder (a full disk); what it wrote before is kept."""

    exit_status = 1  #: the command line's exit status: the run failed, its arguments were fine


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is an ``OSError`` of a full disk (``ENOSPC``) or quota (``EDQUOT``)."""
    return isinstance(error, OSError) and error.errno in DISK_FULL


def stopped(out: Path, error: OSError) -> RunStopped:
    """The one-line error of a run stopped by a full disk (``error``) while writing into ``out``."""
    what = "the disk is full" if error.errno == errno.ENOSPC else "the disk quota is exhausted"
    return RunStopped(f"{out}: {what}; the records written so far are kept: free space and run the same "
                      "command again to resume")


@contextmanager
def locked(out: str | os.PathLike) -> Iterator[None]:
    """Hold ``out/bench.lock`` (made with ``out`` if missing) for the block.

    Raises:
        RunLocked: another process holds it; the message gives that process's id.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _held:
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(out), 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if _held[key][1] == 0:
            os.close(_held.pop(key)[0])  # closing the descriptor releases the lock


def _acquire(out: Path) -> int:
    path = out / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise RunLocked(f"{out} is in use by another bench run (pid {holder}); wait for it to end or use "
                        "another --out") from None
    except OSError as error:  # a file system without flock (some network mounts): run unlocked
        warnings.warn(f"{path}: cannot lock ({error.strerror}); nothing stops a second run into {out}")
        return descriptor
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def read_run_config(out: str | os.PathLike) -> dict | None:
    """The ``config.json`` of the run in ``out``; ``None`` when there is none.

    Raises:
        RunFolderError: it exists but is not a bench run's configuration (empty, not JSON, no
            ``methods``); the message names the file.
    """
    path = Path(out) / "config.json"
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path}: cannot read it ({error})") from error
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path}: not a bench run's configuration (not JSON: {error}); "
                             "remove it or use another --out") from error
    if not isinstance(data, dict) or not isinstance(data.get("methods"), list):
        what = "empty" if data is None else "no list of methods"
        raise RunFolderError(f"{path}: not a bench run's configuration ({what}); remove it or use another --out")
    return data


def check_unclaimed(out: Path) -> None:
    """Refuse a folder without ``config.json`` that holds files of a run's names (they are not a run's)."""
    strays = [name for name in RUN_FILES if (out / name).exists()]
    if strays:
        raise RunFolderError(f"{out} holds {', '.join(strays)} but no bench run (no config.json); "
                             "use another --out")


def remove_run_files(out: Path, previous: dict) -> None:
    """Delete what the run described by ``previous`` (its ``config.json``) wrote in ``out``: the
    records, summaries, curves and ``maps/<method>/<image>.npy`` of its methods; nothing else."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    if previous.get("command", "bench") != "bench":
        return
    maps = out / "maps"
    for method in previous["methods"]:
        if not isinstance(method, str) or Path(method).name != method or method in (".", ".."):
            continue
        folder = maps / method
        if not folder.is_dir():
            continue
        for path in folder.glob("*.npy"):
            path.unlink()
        for path in folder.glob(".*.npy.*.tmp"):  # a map write interrupted mid-way (core.atomic)
            shutil.rmtree(path, ignore_errors=True)
        _remove_if_empty(folder)
    _remove_if_empty(maps)


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def check_apart(data: Path, out: Path) -> None:
    """Refuse an output folder that is the data folder, inside it, or holds it."""
    data, target = data.resolve(), out.resolve()
    if data == target or data in target.parents or target in data.parents:
        raise RunFolderError(f"--out {out} and the data {data} overlap: a run would read its own files as "
                             "photos (or its --force delete the data's); use an --out outside the data")
