"""One process at a time: an exclusive ``fcntl.flock`` on a lock file, naming its holder to whoever is refused.

Used where two processes at once would spoil each other's work: a study folder
(both would append the same runs) and a latency table being measured (each
would time the other's load). The OS releases the lock when its process ends,
however it ends, so a killed holder leaves no stale lock to clean up (its file
stays, and is taken over). The holder writes its pid and host into the file, so
a refused process can say who holds it, and deletes the file on release, so a
command leaves no lock file behind: a process that locked a file deleted under
it sees that the path no longer names its file and tries again. Processes forked
while it is held (pool workers) close their copy of the descriptor: only the
process that took the lock holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

#: descriptors of the locks this process holds; a forked child closes its copies
_HELD: set[int] = set()


def _drop_inherited_locks() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` says which (``process PID on host HOST``)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class ExclusiveLock:
    """An exclusive lock on the file ``path`` (created if missing, its folder too), held from ``acquire`` to
    ``release``. ``acquire`` raises ``LockHeld`` when another process has it and ``OSError`` when the file cannot
    be created; on a file system without locks it goes on unlocked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> ExclusiveLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)  # a file system without locks: go on unlocked
                    return self
                holder = self._holder(fd)
                os.close(fd)
                raise LockHeld(holder) from None
            if self._still_named(fd):
                break
            os.close(fd)  # its holder deleted it as we opened it: lock the file the path names now
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd
        _HELD.add(fd)
        return self

    def _still_named(self, fd: int) -> bool:
        """Whether ``self.path`` still names the file open as ``fd``."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _holder(fd: int) -> str:
        """``process PID on host HOST`` as the holder wrote it (it may be writing it at this moment)."""
        for _ in range(10):
            pid, _, host = os.pread(fd, 512, 0).decode(errors="replace").strip().partition(" ")
            if pid:
                return f"process {pid} on host {host or 'unknown'}"
            time.sleep(0.05)
        return "another process"

    def release(self) -> None:
        if self.fd is not None:
            _HELD.discard(self.fd)
            self.path.unlink(missing_ok=True)  # while still held: a process that opened it meanwhile tries again
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
