"""Exclusive locks on output locations, so that two runs never write into one place.

``exclusive(path)`` holds an ``fcntl.flock`` on ``<path>.lock`` (a file holding the holder's pid, host and start
time) for the duration of a ``with`` block, and removes the file on release. The kernel releases the lock when the
holder dies, so a lock file left by a killed run is stale by construction and is simply taken over; a live holder
makes the second run fail at once with a message naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator

__all__ = ["LockedError", "exclusive", "lock_path"]


class LockedError(RuntimeError):
    """Another live run holds the lock."""


def lock_path(path: str, directory: bool) -> str:
    """``<dir>/.midalign.lock`` for a directory (created if missing), ``<file>.lock`` for a file."""
    path = os.path.abspath(path.rstrip("/"))
    if directory:
        os.makedirs(path, exist_ok=True)
        return os.path.join(path, ".midalign.lock")
    return path + ".lock"


@contextlib.contextmanager
def exclusive(path: str, *, directory: bool, what: str = "output") -> Iterator[str]:
    """Hold the lock of ``path`` (a directory or a file) or raise :class:`LockedError` naming the holder. The lock
    file is removed on release (while still held), so that a clean exit leaves none behind; a process that locked
    the file just removed sees it is no longer the one at the path and takes the new one."""
    lock = lock_path(path, directory)
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                with open(lock, encoding="utf-8") as fh:
                    holder = json.load(fh)
                who = f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
            except (OSError, ValueError, AttributeError):
                who = "another process"
            raise LockedError(
                f"{what} {path} is in use by another run ({who}); wait for it to finish or choose another {what}"
            ) from None
        try:
            current = os.stat(lock)
            held = os.fstat(fd)
            if (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed it as we locked it: lock the file now at the path
    try:
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # still held: no other process can hold this file now
        os.close(fd)  # releases the flock
