"""Writing a file so that a failed write (a full disk, a killed process) leaves its previous version, never a torn
file, and naming why a write failed in words a user can act on (the disk is full, read-only, not writable).

Every file nas_lab writes whole (records, reports, plots, latency tables, trained supernets, tables, study
configs) goes through ``replacing``: the new content is written to a temporary file in the same folder, fsynced,
and renamed over the old one with ``os.replace`` (atomic on POSIX). Only the append-only study store and the
SQLite cache write in place, each with its own crash safety.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: how each errno a user can fix reads in a sentence
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied (the folder is not writable)",
    errno.EPERM: "permission denied (the folder is not writable)",
}


def reason(err: OSError) -> str:
    """Why ``err`` happened, for a sentence: ``the disk is full``, ``the disk is read-only``, … or its strerror."""
    return _REASONS.get(err.errno) or err.strerror or str(err)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder to write the new content to; on success it is fsynced and
    renamed over ``path``, on any failure it is removed and ``path`` is left as it was (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through ``replacing``; ``OSError`` if it cannot."""
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def save_figure(fig, path: str | Path, **savefig) -> Path:
    """``fig.savefig`` (a matplotlib figure) through ``replacing``, its format chosen by ``path``'s suffix."""
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **savefig)
    return path
