"""A latency look-up table on disk, and the lookup: predicted latency = sum of an arch's block entries.

No torch on this path: the table is JSON, the lookup is numpy indexing.

**Key.** A table holds times measured under one key: the space (name and
constructor parameters), a digest of its block list at the input side (a space
whose code or parameters change its blocks gets a new digest), the device name
(CPU model from ``/proc/cpuinfo``), the torch version, the thread count, the
input side, the clock and the allocator policy (``allocator.py``: freed memory
kept, so page faults do not add to some models' times; a table from before the
policy was recorded is stale).

**Clock** (ours). ``cpu`` (default, one thread): the measuring thread's CPU time
(``time.thread_time_ns``). On an idle machine it equals the wall time of a
one-thread run; on a shared one it leaves out the time spent waiting for a core
while other processes run, which would otherwise inflate long whole-model runs
(tens of ms, time-sliced) far more than sub-millisecond blocks. ``wall``: wall
time (``time.perf_counter_ns``), for several threads or an idle machine. The
default file is ``<space>_<digest of the key>.json`` in
``$NAS_LAB_CACHE/latency`` (else ``~/.cache/nas_lab/latency``); a lookup under
settings with no table says whether one exists for other settings (stale) and
which command builds the right one.

**Entries.** Per block ``name @ shape`` (contract.py), one time per round (ms):
a build measures every block once per round, ``rounds`` times over, so that a
machine whose load changes during the build loads every block alike. A block's
entry is its fastest round (each round's time is already the median of
``repeats`` calls): the least disturbed measurement of a deterministic
computation. Each round's time is written as it is measured, so an interrupted
build keeps what it measured and resumes; a lookup refuses an incomplete table.

**Correction** (ours; the paper states none, and its entries' measurement is
garbled, see the notes): the plain sum misses what no block holds (the
containers' call overhead, glue such as NB201's node sums) and that a block
timed alone, its weights and input hot in the caches, runs faster than inside a
whole model. ``nas-lab lut build`` measures a few random archs end to end in the
same rounds as the blocks (``calibrate=``, default 10), and predictions are
``scale x sum + offset``, the line through their (summed, measured) latencies
fitted by least squares with both terms non-negative (scipy's ``nnls``); with
fewer than three of them (or a fit without slope), ``offset`` is 0 and ``scale``
the median of measured / summed. The offset is the per-model constant: on NB201 a model's Python calls
and node sums cost ~1.5 ms whatever its cells (measured 1.13 x sum + 1.6 ms),
which one factor alone gets wrong for the smallest models; on AutoViT the fit
gives offset 0. Being increasing, the correction changes no ranking (Spearman
rho), only the absolute error.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from nas_lab.core import registry
from nas_lab.core.cache import cache_root
from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, write_atomic
from nas_lab.core.settings import current
from nas_lab.core.space import LATENCY, Space, overrides
from nas_lab.core.task import CIFAR_SIDE
from nas_lab.objectives.latency import allocator
from nas_lab.objectives.latency.contract import offers_blocks

#: ``format`` of a table file; another value is another layout
FORMAT = 1
#: what a time is: the measuring thread's CPU time, or wall time
CLOCKS = ("cpu", "wall")
#: the allocator a table's key names when its file names none (built before the policy was recorded)
UNRECORDED = "not recorded"
#: calibration archs from which the correction is a fitted line (fewer: a factor)
MIN_LINE = 3


def default_side(space: Space) -> int:
    """The input side a table is built at unless told: the space's ``resolution``, else 32 (CIFAR)."""
    return space.resolution or CIFAR_SIDE


def device_name() -> str:
    """This machine's CPU model (first ``model name`` of ``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu: " + line.partition(":")[2].strip()
    except OSError:
        pass
    return "cpu: " + (platform.processor() or platform.machine() or "unknown")


def torch_version() -> str:
    """The installed torch's version, read from its package metadata (torch is not imported)."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return "none"


def space_params(space: Space) -> dict[str, str]:
    """The space's constructor parameters that differ from their defaults, read as attributes (contract.py)."""
    out, values = {}, current(space)
    for p in registry.parameters(type(space)):
        value = values[p.name]
        if value != p.default:
            out[p.name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def registered_name(space: Space) -> str:
    """The name ``space=`` takes for this space's class (``autovit`` for ``autovit-xs``), else its own name."""
    return next((n for n in registry.names("space") if registry.load("space", n) is type(space)), space.name)


def entry(name: str, shape: tuple[int, ...]) -> str:
    """A table entry's key: block name and input shape, ``convnext(dim=48,...) @ 48x40x40``."""
    return f"{name} @ {'x'.join(map(str, shape))}"


@dataclass(frozen=True)
class TableKey:
    """What a table's times depend on; a lookup under another key refuses the table."""

    space: str
    space_params: dict
    blocks: str
    device: str
    torch: str
    threads: int
    resolution: int
    clock: str
    allocator: str

    @classmethod
    def current(cls, space: Space, threads: int = 1, resolution: int | None = None, clock: str = "cpu") -> TableKey:
        """The key of a table for ``space`` on this machine with this torch, ``threads``, input side and clock."""
        if not offers_blocks(space):
            raise UserError(f"space {space.name!r} does not describe its models as blocks, so it has no latency "
                            "look-up table; spaces that do: " + ", ".join(_block_spaces()))
        if threads < 1:
            raise UserError(f"threads must be at least 1, got {threads}")
        if clock not in CLOCKS or (clock == "cpu" and threads > 1):
            raise UserError(f"clock must be cpu (one thread's CPU time, threads=1) or wall (wall time, any threads), "
                            f"got clock={clock} with threads={threads}")
        side = default_side(space) if resolution is None else resolution
        space.check_side(side)
        listed = json.dumps(space.latency_blocks(side)).encode()
        return cls(registered_name(space), space_params(space), hashlib.sha256(listed).hexdigest()[:16], device_name(),
                   torch_version(), threads, side, clock, allocator.policy())

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def default_path(self) -> Path:
        return folder() / f"{self.space}_{self.digest()}.json"

    def command(self, path: Path | None = None) -> str:
        """The ``nas-lab lut build`` command that builds a table under this key."""
        words = ["nas-lab lut build", f"space={self.space}", *(f"space.{k}={v}" for k, v in self.space_params.items()),
                 f"threads={self.threads}", f"resolution={self.resolution}", f"clock={self.clock}"]
        if path is not None and path != self.default_path():
            words.append(f"out={path}")
        return " ".join(words)

    def differences(self, other: TableKey) -> list[str]:
        """What ``other`` (a table's key) has that this key does not, readably."""
        out = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine == theirs:
                continue
            if f.name == "blocks":  # the shapes follow the resolution: other blocks at the same one is news
                if self.resolution == other.resolution:
                    out.append("other blocks (the space's code changed since)")
            else:
                out.append(f"{f.name} {_show(theirs)} (here {_show(mine)})")
        return out


def _show(value) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    return str(value)


def _block_spaces() -> list[str]:
    return [n for n in registry.names("space") if all(overrides(registry.load("space", n), m) for m in LATENCY)]


def folder() -> Path:
    """Where tables live by default: ``latency`` beside nas_lab's other caches."""
    return cache_root() / "latency"


class LatencyTable:
    """One table file: its key, measured entries (ms), calibration, and the lookup."""

    def __init__(self, path: Path, key: TableKey, entries: dict | None = None, calibration: dict | None = None,
                 settings: dict | None = None):
        self.path = path
        self.key = key
        self.entries = dict(entries or {})
        self.calibration = dict(calibration or {"indices": [], "measured": []})
        self.settings = dict(settings or {})
        self._vector = self._correction = None  # block times in ``latency_blocks`` order, the correction: on first use

    # -- file --------------------------------------------------------------------------
    @classmethod
    def read(cls, path: Path) -> LatencyTable:
        """The table in ``path``; ``UserError`` if it is not a readable nas_lab latency table."""
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError("another format")
            key = TableKey(**{"allocator": UNRECORDED, **data["key"]})
            entries = {str(k): [float(t) for t in v] for k, v in data["entries"].items()}
            calibration = {f: list(data["calibration"][f]) for f in ("indices", "measured")}
            calibration["measured"] = [[float(t) for t in v] for v in calibration["measured"]]
            models = {f"calibration model {i}": v for i, v in zip(calibration["indices"], calibration["measured"])}
            bad = next((name for name, v in {**entries, **models}.items() if not all(0 <= t < np.inf for t in v)),
                       None)  # (NaN fails every comparison)
            if bad is not None:
                raise UserError(f"{path} is not a nas_lab latency table: its time of {bad} is negative or not finite; "
                                "delete it and build it again with `nas-lab lut build`")
            if len(calibration["indices"]) != len(calibration["measured"]) or not isinstance(
                    data["settings"]["rounds"], int):
                raise ValueError("bad values")
            return cls(path, key, entries, calibration, data["settings"])
        except OSError as err:
            raise UserError(f"cannot read the latency table {path}: {err.strerror}") from None
        except (ValueError, TypeError, KeyError, AttributeError):
            raise UserError(f"{path} is not a nas_lab latency table (corrupt or written by something else); delete "
                            "it and build it again with `nas-lab lut build`") from None

    def write(self) -> None:
        """Write atomically (``core.files``): a full disk leaves the previous table."""
        data = {"format": FORMAT, "key": asdict(self.key), "settings": self.settings, "entries": self.entries,
                "calibration": self.calibration}
        try:
            write_atomic(self.path, json.dumps(data, indent=1))
        except OSError as err:
            raise UserError(f"cannot write the latency table {self.path}: {reason(err)}; choose another file "
                            "with out=PATH") from None

    # -- lookup -----------------------------------------------------------------------------
    @property
    def rounds(self) -> int:
        return self.settings["rounds"]

    def complete(self, space: Space) -> bool:
        """Whether every block and calibration model has all its rounds."""
        names = [entry(n, s) for n, s in space.latency_blocks(self.key.resolution)]
        return (all(len(self.entries.get(n, ())) >= self.rounds for n in names) and
                len(self.calibration["measured"]) == self.settings["calibrate"] and
                all(len(v) >= self.rounds for v in self.calibration["measured"]))

    def vector(self, space: Space) -> np.ndarray:
        """Times (ms) of ``space.latency_blocks`` in order, then a 0 for empty slots (index -1);
        ``UserError`` naming the build command if the table is incomplete."""
        if not self.complete(space):
            raise UserError(f"the latency table {self.path} is incomplete (its build was interrupted); finish it "
                            f"with `{self.key.command(self.path)}`")
        names = [entry(n, s) for n, s in space.latency_blocks(self.key.resolution)]
        return np.array([min(self.entries[n]) for n in names] + [0.0])

    def slot_times(self, space: Space, archs) -> np.ndarray:
        """``(n, slots)`` time (ms) of each arch's blocks, 0 for an empty slot."""
        if self._vector is None:
            self._vector = self.vector(space)
        return self._vector[space.latency_slots(archs)]

    def predict(self, space: Space, archs, corrected: bool = True) -> np.ndarray:
        """``(n,)`` predicted latency (ms): each arch's slot entries summed, then corrected if ``corrected``."""
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below
            total = self.slot_times(space, archs).sum(axis=1)
            out = self.correction(space)(total) if corrected else total
        if not np.isfinite(out).all():  # finite entries so large (1e308) that their sum overflows
            largest = max(self.entries, key=lambda n: min(self.entries[n]))
            raise UserError(f"the latency table {self.path} sums to an infinite latency (its entry {largest} is "
                            f"{min(self.entries[largest]):.3g} ms); "
                            "delete it and build it again with `nas-lab lut build`")
        return out

    def correction(self, space: Space) -> Correction:
        """``scale x sum + offset`` fitted on the calibration archs (see the module docstring)."""
        if self._correction is None:
            c = self.calibration
            archs = space.arch(np.array([int(i) for i in c["indices"]], dtype=object if space.big else np.int64))
            measured = np.array([min(v) for v in c["measured"]])
            summed = self.predict(space, archs, corrected=False)
            scale = offset = 0.0
            if len(summed) >= MIN_LINE:
                from scipy.optimize import nnls

                (scale, offset), _ = nnls(np.c_[summed, np.ones_like(summed)], measured)
            if scale <= 0:  # too few models, or a line that would rank every arch alike: the median ratio
                scale, offset = float(np.median(measured / summed)), 0.0
            self._correction = Correction(float(scale), float(offset))
        return self._correction


@dataclass(frozen=True)
class Correction:
    """Predicted latency from summed block entries: ``scale x sum + offset`` (ms)."""

    scale: float
    offset: float

    def __call__(self, summed):
        return self.scale * summed + self.offset

    def __str__(self) -> str:
        return f"{self.scale:.3f} x sum + {self.offset:.3f} ms"


def locate(space: Space, threads: int = 1, resolution: int | None = None, path: str | None = None,
           clock: str = "cpu") -> LatencyTable:
    """The complete table for ``space`` under the current key, from ``path`` or the default file; ``UserError``
    (one sentence with the command to run) if it is missing, stale (built under another key) or corrupt."""
    key = TableKey.current(space, threads, resolution, clock)
    file = Path(path).expanduser().resolve() if path else key.default_path()
    if not file.is_file():
        if path:
            raise UserError(f"no latency table at {file}; build it with `{key.command(file)}`")
        others = [t for t in _tables(key.space) if t.key != key]
        if others:
            best = min(others, key=lambda t: len(key.differences(t.key)))
            raise UserError(f"the latency tables of space {space.name!r} in {file.parent} were built for other "
                            f"settings ({'; '.join(key.differences(best.key))}); build one for these with "
                            f"`{key.command()}`")
        raise UserError(f"no latency table for space {space.name!r} on this machine; build it with `{key.command()}`")
    table = LatencyTable.read(file)
    if table.key != key:
        raise UserError(f"the latency table {file} was built for other settings "
                        f"({'; '.join(key.differences(table.key))}); build one for these with `{key.command()}`")
    table.vector(space)  # refuses an incomplete table
    return table


def _tables(space: str) -> list[LatencyTable]:
    """The readable tables of ``space`` in the default folder (unreadable files are skipped here)."""
    out = []
    for file in sorted(folder().glob(f"{space}_*.json")):
        try:
            out.append(LatencyTable.read(file))
        except UserError:
            continue
    return out

