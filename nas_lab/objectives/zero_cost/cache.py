"""A persistent on-disk cache of zero-cost proxy values, safe for many concurrent writers.

A proxy value costs a model build and a forward/backward pass (up to seconds on
a CPU), while a 500-repeat study asks for the same few thousand archs over and
over; so every value computed anywhere (a run, a study worker, a Ray actor,
``nas-lab precompute``) lands in one SQLite file and is never computed again.

One row per (space, proxy, proxy version, seed, resolution, batch size,
nas_lab version, arch index) holds the value and the seconds it took to
compute. A proxy whose definition changes bumps its version, and a new nas_lab
release starts afresh, so a stale value is never served. The device is *not* in
the key: values computed on a GPU serve CPU runs (they differ only by
floating-point rounding). A NaN value is stored (as NULL) and served like any other.

Concurrency: WAL journal (readers never block writers), a busy timeout, writes in
``BEGIN IMMEDIATE`` transactions of ``INSERT OR IGNORE`` (the first writer of a
value wins; values are deterministic, so any writer would store the same). Put
the file on a local disk: SQLite's locking is unreliable on network file systems.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np

import nas_lab
from nas_lab.core.cache import ENV_DIR, cache_root
from nas_lab.core.errors import UserError

#: the cache file's name in nas_lab's cache folder (``core.cache``)
FILE_NAME = "zero_cost.sqlite"
#: a writer waits this long for another process's write transaction to end
BUSY_SECONDS = 60.0
#: ``PRAGMA user_version`` of a nas_lab zero-cost cache; another value means another layout
SCHEMA = 1

_COLUMNS = ("space", "proxy", "version", "seed", "resolution", "batch_size", "nas_lab")
_CREATE = f"""
CREATE TABLE IF NOT EXISTS proxy_values (
    space TEXT NOT NULL, proxy TEXT NOT NULL, version INTEGER NOT NULL, seed INTEGER NOT NULL,
    resolution INTEGER NOT NULL, batch_size INTEGER NOT NULL, nas_lab TEXT NOT NULL, idx INTEGER NOT NULL,
    value REAL, seconds REAL NOT NULL,
    PRIMARY KEY ({", ".join(_COLUMNS)}, idx)
) WITHOUT ROWID
"""
_MATCH = " AND ".join(f"{c} = ?" for c in _COLUMNS)
# one query for any number of archs: the indices travel as one JSON array parameter
_LOOKUP = f"SELECT idx, value, seconds FROM proxy_values WHERE {_MATCH} AND idx IN (SELECT value FROM json_each(?))"
_INSERT = (f"INSERT OR IGNORE INTO proxy_values ({', '.join(_COLUMNS)}, idx, value, seconds) "
           f"VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})")


def _db_key(index: int) -> int | str:
    """An arch index as stored: the integer itself, or (past SQLite's 64-bit integers, e.g. ViTAS's 10^43 archs)
    its decimal digits behind a ``big:`` prefix, a TEXT value that the INTEGER column keeps exactly."""
    index = int(index)
    return index if -(2**63) <= index < 2**63 else f"big:{index}"


@dataclass(frozen=True)
class CacheKey:
    """Everything a proxy value depends on, except the arch index."""

    space: str
    proxy: str
    version: int
    seed: int
    resolution: int
    batch_size: int
    nas_lab: str = field(default=nas_lab.__version__)


def cache_path(path: str | os.PathLike | None = None) -> Path:
    """``path`` if given, else ``$NAS_LAB_CACHE/zero_cost.sqlite``, else ``~/.cache/nas_lab/zero_cost.sqlite``."""
    return Path(path).expanduser().resolve() if path else (cache_root() / FILE_NAME).resolve()


class ProxyCache:
    """The cache file at ``path`` (see ``cache_path``), opened on first use.

    Each process opens its own connection; an object that crossed a fork must
    not be used in the child (SQLite forbids it), so workers build their own.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = cache_path(path)
        self._conn: sqlite3.Connection | None = None

    # -- public API --------------------------------------------------------------
    def lookup(self, key: CacheKey, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values, seconds, found)`` per index, in one query; NaN and False where nothing is stored."""
        keys = [_db_key(i) for i in np.atleast_1d(indices).tolist()]
        unique = list(dict.fromkeys(keys))
        with self._errors():
            rows = self._connection().execute(_LOOKUP, (*astuple(key), json.dumps(unique))).fetchall()
        stored = {idx: (np.nan if value is None else value, took) for idx, value, took in rows}
        missing = (np.nan, np.nan)
        values = np.array([stored.get(k, missing)[0] for k in keys], dtype=float)
        seconds = np.array([stored.get(k, missing)[1] for k in keys], dtype=float)
        found = np.array([k in stored for k in keys], dtype=bool)
        return values, seconds, found

    def store(self, key: CacheKey, indices, values, seconds) -> None:
        """Add values in one transaction; a value already stored for the same key and index is kept."""
        fixed = astuple(key)
        rows = [(*fixed, _db_key(i), None if np.isnan(v) else float(v), float(s))
                for i, v, s in zip(np.atleast_1d(indices).tolist(), np.atleast_1d(values).astype(float),
                                   np.atleast_1d(seconds))]
        with self._errors(), self._transaction() as conn:
            conn.executemany(_INSERT, rows)

    def close(self) -> None:
        """Close this process's connection (the next use reopens it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- plumbing -----------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise UserError(f"the zero-cost cache {self.path} is a folder; give a file, e.g. {self.path / FILE_NAME}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the folder {self.path.parent} for the zero-cost cache ({err.strerror}); "
                            f"choose another file with objective.cache=PATH or set {ENV_DIR}") from None
        # isolation_level=None: no implicit transactions, so the PRAGMAs run and writes are explicit
        with self._errors():
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            with self._errors():
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")  # durable against crashes in WAL mode; it is a cache
                with self._transaction(conn):
                    self._check_schema(conn)
        except UserError:
            conn.close()
            raise
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA:
            return
        others = conn.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]
        if version != 0 or others:
            raise UserError(f"{self.path} is an SQLite database but not a nas_lab zero-cost cache (or one of "
                            "another layout); delete it if it is an old cache, "
                            "or choose another file with objective.cache=PATH")
        conn.execute(_CREATE)
        conn.execute(f"PRAGMA user_version = {SCHEMA}")

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front: in WAL mode a deferred
        transaction that later needs it fails at once instead of waiting out the busy timeout."""
        conn = conn or self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (disk full, corruption)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite errors as one sentence naming the file and what to do."""
        try:
            yield
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise UserError(f"the zero-cost cache {self.path} stayed locked by another process for "
                                f"{BUSY_SECONDS:.0f} s; retry, or use another file with objective.cache=PATH") from None
            raise self._unusable(err) from None
        except sqlite3.DatabaseError as err:
            raise self._unusable(err) from None

    def _unusable(self, err: sqlite3.Error) -> UserError:
        why = _DISK_ERRORS.get(getattr(err, "sqlite_errorcode", 0) & 0xFF)  # an extended code's low byte is its kind
        if why is not None:  # the file is fine: the disk or the folder is not
            return UserError(f"cannot use the zero-cost cache {self.path}: {why}; free space or make it writable, or "
                             f"choose another file with objective.cache=PATH (or set {ENV_DIR})")
        return UserError(f"the zero-cost cache {self.path} is corrupt or unreadable ({err}); delete it (it holds only "
                         "values nas_lab can recompute) or choose another file with objective.cache=PATH")


#: SQLite's result codes for a disk or folder it cannot write, in words (not a corrupt cache: nothing to delete)
_DISK_ERRORS = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "it is read-only (the file, its folder or the disk)",
    sqlite3.SQLITE_CANTOPEN: "it cannot be opened (its folder is not writable, or the disk is read-only)",
    sqlite3.SQLITE_PERM: "permission denied",
    sqlite3.SQLITE_IOERR: "the disk failed to read or write it (an I/O error)",
}


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying: the switch ignores the busy timeout when several processes open a new file at once."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
