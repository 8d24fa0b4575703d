"""A study's results store: one JSON line per finished run, appended and fsynced as it lands.

``STUDY_DIR/runs.jsonl`` is append-only, so a crash or ``kill -9`` loses at most
the runs in flight, and a half-written last line is dropped on the next open.
A damaged line elsewhere (blank, not JSON) is skipped and counted by readers;
a resuming study moves it to ``runs.damaged.jsonl`` and runs its run again.
One study writes a folder at a time (``FolderLock`` on ``study.lock``).
It reads with one pandas call: ``pandas.read_json("STUDY_DIR/runs.jsonl", lines=True)``.

Each line holds the run's key (``searcher|objective|budget|repeat``), the target's direction, its full config
(space, table, searcher name and parameters, objective, budget, seed), what it
found (``best_index``, ``best_arch``, ``best`` = reported metrics of the best
arch) and its history (``history_index``: arch index per evaluation, in order;
``history_value``: the optimised value of each, null where NaN or infeasible,
so an incumbent read from it is always a feasible arch; a list of all targets' values
per evaluation when the objective has several). A run with several targets also
keeps its front (``front_index``, ``front_values``), ``hypervolume``,
``hypervolume_curve``, the ``scale`` it was measured on and, on a tabulated space,
``igd``, ``recovered`` and ``true_hypervolume``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from nas_lab.core.errors import UserError
from nas_lab.core.lock import ExclusiveLock, LockHeld
from nas_lab.core.results import RunResult, finite_or_none, json_safe

RUNS_FILE = "runs.jsonl"
LOCK_FILE = "study.lock"
DAMAGED_FILE = "runs.damaged.jsonl"
SYNC_SECONDS = 1.0


def run_key(searcher: str, objective: str, budget: int, repeat: int) -> str:
    return f"{searcher}|{objective}|{budget}|{repeat}"


def record_of(result: RunResult, searcher: str, objective: str, repeat: int, config: dict[str, Any]) -> dict[str, Any]:
    """The store line of a finished run (``searcher`` is the study's label for it)."""
    return {
        "key": run_key(searcher, objective, result.budget, repeat),
        "searcher": searcher,
        "objective": objective,
        "budget": result.budget,
        "repeat": repeat,
        "direction": result.directions[0],
        "config": config,
        "evaluations": result.evaluations,
        "cost": result.total_cost,
        "cost_unit": result.cost_unit,
        "wall_time": result.wall_time,
        "note": result.note,
        "best_index": result.best_index,
        "best_arch": result.best_arch,
        "best": result.best_metrics,
        "history_index": result.history["index"].tolist(),
        "history_value": _history_values(result),
        **(_front_fields(result) if result.front is not None else {}),
    }


def _history_values(result: RunResult) -> list:
    """Each evaluation's optimised value(s), null where infeasible: one number per row with one target, a list
    of all k with several (so no target is lost on disk)."""
    h = result.history
    if h["value"].shape[1] == 1:
        return [finite_or_none(v) if ok else None for v, ok in zip(h["value"][:, 0], h["feasible"])]
    return [[finite_or_none(x) for x in v] if ok else None for v, ok in zip(h["value"], h["feasible"])]


def _front_fields(result: RunResult) -> dict[str, Any]:
    """What a study keeps of a run's front: its archs and values, its quality, and how that was measured."""
    f = result.front
    return {
        "targets": list(result.targets),
        "directions": list(result.directions),
        "front_index": f["index"],
        "front_values": f["values"],
        "hypervolume": f["hypervolume"],
        "hypervolume_curve": f["curve"],
        "scale": f["scale"],
        **{k: f[k] for k in ("igd", "recovered", "true_hypervolume", "true_size") if k in f},
    }


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record a complete line of ``runs.jsonl`` holds, or None if it is damaged (blank, not JSON, no ``key``)."""
    try:
        record = json.loads(line)
    except ValueError:  # also UnicodeDecodeError
        return None
    return record if isinstance(record, dict) and isinstance(record.get("key"), str) else None


class Store:
    """Append-only record of a study's finished runs in ``directory/runs.jsonl``."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / RUNS_FILE
        self.damaged = 0  # damaged lines the last read of ``records()`` skipped

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete record, in the order the runs finished.

        A damaged line (blank, not JSON, not a record with a ``key``) is skipped
        and counted in ``self.damaged`` once the records have been read: its run
        is missing, so resuming the study runs it again.
        """
        self.damaged = 0
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    return  # half-written by a killed study; it will be run again
                record = _parse(line)
                if record is None:
                    self.damaged += 1
                else:
                    yield record

    def damaged_note(self) -> str | None:
        """A sentence saying how many damaged lines the last read of ``records()`` skipped, or None if none."""
        if not self.damaged:
            return None
        return (f"skipped {self.damaged} damaged line(s) of {self.path} (blank, or not a JSON run record); "
                "their runs count as not recorded, so running the study again runs them")

    def set_aside_damaged(self) -> int:
        """Move damaged lines from ``runs.jsonl`` to ``runs.damaged.jsonl`` (appended there); how many moved.

        A resuming study does this (holding the folder lock) before it runs
        their runs again, so the store then holds each run once and reads clean;
        the damaged bytes are kept for inspection. ``runs.jsonl`` is replaced
        atomically: a crash leaves either the old or the new file.
        """
        if not self.path.exists():
            return 0
        parts = self.path.read_bytes().split(b"\n")
        lines = [part + b"\n" for part in parts[:-1]]  # parts[-1]: a half-written tail (``open`` drops it), or b""
        ok = [_parse(line) is not None for line in lines]
        bad = [line for line, good in zip(lines, ok) if not good]
        if not bad:
            return 0
        with open(self.directory / DAMAGED_FILE, "ab") as fh:
            fh.writelines(bad)
            fh.flush()
            os.fsync(fh.fileno())
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.writelines(line for line, good in zip(lines, ok) if good)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        return len(bad)

    def finished(self) -> set[str]:
        """Keys of the runs already recorded."""
        return {r["key"] for r in self.records()}

    def open(self) -> "Store":
        """Prepare for appending: create the folder, drop a half-written last line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(self.path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._synced = time.monotonic()
        return self

    def append(self, record: dict[str, Any]) -> None:
        """Write one record: flushed at once (a killed process loses nothing written),
        fsynced at least every ``SYNC_SECONDS`` (an OS crash loses at most that much)."""
        self._fh.write(json.dumps(json_safe(record), allow_nan=False) + "\n")
        self._fh.flush()
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> "Store":
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

    def acquire(self) -> "FolderLock":
        """Take the lock; ``UserError`` naming the holder if another process has it."""
        try:
            super().acquire()
        except LockHeld as held:
            raise UserError(f"study folder {self.directory} is in use by {held.holder}, which is running a study in "
                            "it; wait for it to finish or stop it, or choose another out=DIR") from None
        except OSError as err:
            raise UserError(f"cannot write to the study folder {self.directory}: {err.strerror}; "
                            "choose another out=DIR") from None
        return self
