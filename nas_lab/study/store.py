"""A study's results store: one run record per line, appended and fsynced as it lands.

``STUDY_DIR/runs.jsonl`` is append-only, so a crash or ``kill -9`` loses at most
the runs in flight, and a half-written last line is dropped on the next open.
A damaged line elsewhere (blank, not JSON, not a complete run record: a missing
key, a field of the wrong type) is skipped and counted by readers; a resuming
study moves it to ``runs.damaged.jsonl`` and runs its run again.
One study writes a folder at a time (``FolderLock`` on ``study.lock``).

Each line is the run's record (``core.record``: the shape ``nas-lab run`` writes too), whose config holds the
study's fields: ``config.study`` = ``key`` (``label|objective|budget|repeat``), ``label`` (the row of
``searchers:``) and ``repeat``. Lines of an older nas_lab, from before runs had one record shape, are refused
with one sentence: such a study is run again into a new folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, write_atomic
from nas_lab.core.lock import ExclusiveLock, LockHeld
from nas_lab.core.record import from_record
from nas_lab.core.results import RunResult

RUNS_FILE = "runs.jsonl"
LOCK_FILE = "study.lock"
DAMAGED_FILE = "runs.damaged.jsonl"
SYNC_SECONDS = 1.0


def run_key(searcher: str, objective: str, budget: int, repeat: int) -> str:
    return f"{searcher}|{objective}|{budget}|{repeat}"


def key_of(result: RunResult) -> str:
    """The study key of a run read from a store."""
    return result.config["study"]["key"]


def _parse(line: bytes, source: str) -> RunResult | None:
    """The run a complete line of ``runs.jsonl`` holds, or None if it is damaged (blank, not JSON, not a study's
    run record); ``UserError`` for a record of an older nas_lab."""
    try:
        result = from_record(json.loads(line), source)
    except ValueError:  # not JSON (or not UTF-8), or a DamagedRecord
        return None
    return result if "study" in result.config else None


class Store:
    """Append-only record of a study's finished runs in ``directory/runs.jsonl``."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / RUNS_FILE
        self.damaged = 0  # damaged lines the last read of ``records()`` skipped

    def records(self) -> Iterator[RunResult]:
        """Every complete run, in the order the runs finished, read by the one loader (``core.record``).

        A damaged line (blank, not JSON, not a study's run record) is skipped
        and counted in ``self.damaged`` once the records have been read: its run
        is missing, so resuming the study runs it again.
        """
        self.damaged = 0
        if not self._readable():
            return
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    return  # half-written by a killed study; it will be run again
                result = _parse(line, f"line {number} of {self.path}")
                if result is None:
                    self.damaged += 1
                else:
                    yield result

    def damaged_note(self) -> str | None:
        """A sentence saying how many damaged lines the last read of ``records()`` skipped, or None if none."""
        if not self.damaged:
            return None
        return (f"skipped {self.damaged} damaged line(s) of {self.path} (blank, not JSON, or not a complete run "
                "record); "
                "their runs count as not recorded, so running the study again runs them")

    def set_aside_damaged(self) -> int:
        """Move damaged lines from ``runs.jsonl`` to ``runs.damaged.jsonl`` (appended there); how many moved.

        A resuming study does this (holding the folder lock) before it runs
        their runs again, so the store then holds each run once and reads clean;
        the damaged bytes are kept for inspection. ``runs.jsonl`` is replaced
        atomically: a crash leaves either the old or the new file.
        """
        if not self._readable():
            return 0
        parts = self.path.read_bytes().split(b"\n")
        lines = [part + b"\n" for part in parts[:-1]]  # parts[-1]: a half-written tail (``open`` drops it), or b""
        ok = [_parse(line, f"line {number} of {self.path}") is not None for number, line in enumerate(lines, start=1)]
        bad = [line for line, good in zip(lines, ok) if not good]
        if not bad:
            return 0
        with open(self.directory / DAMAGED_FILE, "ab") as fh:
            fh.writelines(bad)
            fh.flush()
            os.fsync(fh.fileno())
        write_atomic(self.path, b"".join(line for line, good in zip(lines, ok) if good))
        return len(bad)

    def _readable(self) -> bool:
        """Whether ``runs.jsonl`` exists (False: no run is recorded yet); ``UserError`` if it is not a readable
        file."""
        if not self.path.exists():
            return False
        if not self.path.is_file():
            raise UserError(f"{self.path} is not a file, so the study's records cannot be kept there; move it away "
                            f"(a study writes its runs to that file) or choose another out=DIR")
        if not os.access(self.path, os.R_OK):
            raise UserError(f"cannot read {self.path}: permission denied; make it readable")
        return True

    def finished(self) -> set[str]:
        """Keys of the runs already recorded."""
        return {key_of(r) for r in self.records()}

    def open(self) -> Store:
        """Prepare for appending: create the folder, drop a half-written last line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._readable():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(self.path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._synced, self._failed = time.monotonic(), False
        return self

    def append(self, record: dict[str, Any]) -> None:
        """Write one run record (``RunResult.to_record``): flushed at once (a killed process loses nothing
        written), fsynced at least every ``SYNC_SECONDS`` (an OS crash loses at most that much)."""
        try:
            self._fh.write(json.dumps(record, allow_nan=False) + "\n")
            self._fh.flush()
            if time.monotonic() - self._synced >= SYNC_SECONDS:
                os.fsync(self._fh.fileno())
                self._synced = time.monotonic()
        except OSError as err:  # a half-written line is dropped on the next open
            self._failed = True
            raise UserError(f"cannot record a finished run in {self.path}: {reason(err)}; the runs recorded before "
                            "are kept, so free space (or make it writable) and run the same command again") from None

    def close(self) -> None:
        if self._failed:  # that write is reported; closing retries its flush, which fails alike (the file closes)
            with contextlib.suppress(OSError):
                self._fh.close()
            return
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


class FolderLock(ExclusiveLock):
    """One writer per study folder: ``core.lock.ExclusiveLock`` on ``directory/study.lock``, with the study's
    sentences. The lock of a killed study is simply taken by the next one. Reading the folder (``nas-lab
    report``) takes no lock."""

    def __init__(self, directory: str | Path):
        super().__init__(Path(directory) / LOCK_FILE)
        self.directory = Path(directory)

    def acquire(self) -> FolderLock:
        """Take the lock; ``UserError`` naming the holder if another process has it."""
        try:
            super().acquire()
        except LockHeld as held:
            raise UserError(f"study folder {self.directory} is in use by {held.holder}, which is running a study in "
                            "it; wait for it to finish or stop it, or choose another out=DIR") from None
        except OSError as err:
            raise UserError(f"cannot write to the study folder {self.directory}: {reason(err)}; "
                            "choose another out=DIR") from None
        return self
