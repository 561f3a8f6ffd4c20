"""Locks between processes (flock on a lock file) and folders that a refused call removes again.

A run folder is locked by the process working on it; stage 1 also locks the theta0 it writes, so that
two stage-1 calls of one seed (another exp_id, another exp_tag) never train it twice: the second waits
and then finds it. A lock file may be removed by its holder on release, so a lock taken is checked to
be on the file still at its path (otherwise the next one is taken).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TextIO


class RunLockedError(RuntimeError):
    """Another process works on the same run folder."""


def acquire_lock(path: Path, wait: bool, what: str) -> tuple[TextIO, list[Path]]:
    """An exclusive lock on `path` (created when missing, with its folder), which then holds this process's pid,
    and the folders made for it (innermost first, for `remove_empty`). When another process holds it: wait for
    it, saying so, or (wait False) raise RunLockedError naming `what`."""
    created: list[Path] = []
    while True:
        created += [p for p in make_folders(path.parent) if p not in created]  # again if its holder removed them
        handle = open(path, "a+")  # noqa: SIM115 (held open: the lock lives as long as it)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(handle)
            if not wait:
                handle.close()
                raise RunLockedError(f"{what} is in use by another process (pid {pid}): wait for it to finish or "
                                     "use another --exp_id") from None
            print(f"{what} is in use by another process (pid {pid}): waiting for it", flush=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if _still_at(handle, path):
            break
        handle.close()  # its holder removed the file on release: lock the one at the path now
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle, created


def release_lock(handle: TextIO) -> None:
    """Let the next process in (a waiting one takes the lock at once); no pid of a finished process stays behind."""
    handle.truncate(0)
    handle.flush()
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


def wait_for_lock(path: Path, what: str) -> None:
    """Wait while another process holds the lock `path` (no file: nothing to wait for; none is created)."""
    try:
        handle = open(path)  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{what} is in use by another process (pid {_holder(handle)}): waiting for it", flush=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)


def _holder(handle: TextIO) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown"


def _still_at(handle: TextIO, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def make_folders(path: Path) -> list[Path]:
    """`path` and its missing parents created; returns the folders created, innermost first, for
    `remove_empty`."""
    created = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    path.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders, innermost first, as long as they are empty: what a call refused before its first
    write created goes again (a folder another process has written into stays)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
