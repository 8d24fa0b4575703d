"""Measure a latency look-up table with torch on this machine, and validate it against whole models.

``build``: every block of ``space.latency_blocks`` at the input shape it meets in
the network, and ``calibrate`` random whole models (for the correction,
``table.py``), one after another in this process (parallel timing would measure
contention): batch 1, eval mode, ``torch.inference_mode``, random inputs,
``warmup`` untimed calls then the median of ``repeats`` timed ones (the
thread's CPU time, or wall time with ``clock=wall``: see ``table.py``), torch,
OpenMP and BLAS held to ``threads`` threads (``core.parallel.limit_threads``),
the allocator held steady (``allocator.py``); all of it ``rounds`` times over,
the fastest round kept. The file is rewritten as times come in, so a killed
build resumes where it stopped. One process at a time measures a table
(``measuring``: a second build or validation of it exits 2, naming the first).

``validate``: ``sample`` other random archs (none of the calibration's) measured
end to end in the same way (rounds over all of them), against the table's
prediction: Spearman rho (scipy), mean absolute percentage error and the share
within +-10 % (nn-Meter's accuracy measure), with and without the correction, and a
scatter plot.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, save_figure, write_atomic
from nas_lab.core.lock import ExclusiveLock, LockHeld
from nas_lab.core.parallel import limit_threads
from nas_lab.core.space import Space
from nas_lab.objectives.latency import allocator
from nas_lab.objectives.latency.table import Correction, LatencyTable, TableKey, entry

#: timing defaults: untimed warm-up calls and timed calls (median) per round, rounds (fastest kept), calibration archs
WARMUP, REPEATS, ROUNDS, CALIBRATE = 5, 20, 5, 10


def time_module(module, shape: tuple[int, ...], warmup: int = WARMUP, repeats: int = REPEATS,
                clock: str = "cpu") -> float:
    """Median time (ms) of ``module`` on one random input of ``shape`` (batch 1 added), in eval mode: the calling
    thread's CPU time (``clock="cpu"``, for one thread) or wall time (``"wall"``)."""
    import torch

    now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    module.eval()
    x = torch.randn(1, *shape)
    times = np.empty(repeats)
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for i in range(repeats):
            start = now()
            module(x)
            times[i] = now() - start
    return float(np.median(times)) / 1e6


def timing(warmup: int | None, repeats: int | None, rounds: int | None, stored: dict | None = None) -> dict:
    """The timing settings: those given, else a table's ``stored`` ones, else the defaults; ``UserError`` if bad or
    if they contradict the stored ones (a table is finished with the settings it was started with)."""
    given = {"warmup": warmup, "repeats": repeats, "rounds": rounds}
    base = {"warmup": WARMUP, "repeats": REPEATS, "rounds": ROUNDS, **(stored or {})}
    out = {k: base[k] if v is None else v for k, v in given.items()}
    if out["warmup"] < 0 or out["repeats"] < 1 or out["rounds"] < 1:
        raise UserError(f"warmup must be >= 0, repeats and rounds >= 1; got warmup={out['warmup']}, "
                        f"repeats={out['repeats']}, rounds={out['rounds']}")
    clash = [f"{k}={base[k]}" for k, v in given.items() if stored and v is not None and v != base[k]]
    if clash:
        raise UserError(f"this latency table was started with {', '.join(clash)}; finish it with the same settings "
                        "(leave them out), or delete it to start afresh")
    return out


@contextmanager
def measuring(path: Path):
    """Held while this process times models for the table at ``path`` (``PATH.lock`` beside it): a second build
    or validation of the same table would time the first one's load, and a build rewrites its file, so it is
    refused, naming the holder."""
    lock = ExclusiveLock(path.with_name(path.name + ".lock"))
    try:
        lock.acquire()
    except LockHeld as held:
        raise UserError(f"latency table {path} is being measured by {held.holder}; two measurements at once would "
                        "each time the other's load, so wait for it to finish or stop it") from None
    except OSError:  # a folder we may not write (a table copied read-only): validating it needs no lock file
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _sample(space: Space, n: int, seed: int, exclude=()) -> np.ndarray:
    """``n`` distinct random archs (by index) drawn with ``seed``, none of whose index is in ``exclude``."""
    rng = np.random.default_rng(seed)
    seen = {int(i) for i in exclude}
    out, tries = [], 0
    while len(out) < n and tries < 100 * n:
        tries += 1
        arch = space.sample(rng, 1)[0]
        i = int(space.index(arch))
        if i not in seen:
            seen.add(i)
            out.append(arch)
    if len(out) < n:
        raise UserError(f"space {space.name!r} has too few archs for a sample of {n} besides the calibration's")
    return np.array(out, dtype=np.int64)


def _rounds(jobs: list, rounds: int, settings: dict, clock: str, bar, record) -> int:
    """Time every job (``(times so far, module, shape)``) once per round until it has ``rounds`` times, job after
    job within a round, calling ``record`` after each; returns how many times were taken."""
    taken = 0
    for r in range(rounds):
        for times, module, shape in jobs:
            if len(times) > r:
                continue
            times.append(time_module(module, shape, settings["warmup"], settings["repeats"], clock))
            taken += 1
            record()
            bar.update()
    return taken


def build(space: Space, key: TableKey, path: Path | None = None, warmup: int | None = None,
          repeats: int | None = None, rounds: int | None = None, calibrate: int | None = None, seed: int | None = None,
          progress: bool = True) -> tuple[LatencyTable, int]:
    """Measure what the table at ``path`` (default: the key's file) lacks; returns it and how many times it took.
    One process at a time measures a table (``measuring``)."""
    path = path or key.default_path()
    with measuring(path):
        return _build(space, key, path, warmup, repeats, rounds, calibrate, seed, progress)


def _build(space: Space, key: TableKey, path: Path, warmup: int | None, repeats: int | None, rounds: int | None,
           calibrate: int | None, seed: int | None, progress: bool) -> tuple[LatencyTable, int]:
    import torch
    from tqdm import tqdm

    if path.exists():
        table = LatencyTable.read(path)
        if table.key != key:
            raise UserError(f"{path} holds a latency table built for other settings "
                            f"({'; '.join(key.differences(table.key))}); delete it or choose another out=PATH")
        stored = table.settings
    else:
        table, stored = None, None
    settings = timing(warmup, repeats, rounds, stored and {k: stored[k] for k in ("warmup", "repeats", "rounds")})
    fixed = {"calibrate": calibrate, "seed": seed}
    if stored and any(v is not None and v != stored[k] for k, v in fixed.items()):
        raise UserError(f"this latency table was started with calibrate={stored['calibrate']} seed={stored['seed']}; "
                        "finish it with the same settings (leave them out), or delete it to start afresh")
    settings.update(stored or {"calibrate": CALIBRATE if calibrate is None else calibrate, "seed": seed or 0})
    if settings["calibrate"] < 1:
        raise UserError(f"calibrate must be at least 1 (whole models measured for the correction), got "
                        f"{settings['calibrate']}")
    table = table or LatencyTable(path, key, settings=settings)
    limit_threads(key.threads)
    allocator.hold_steady()
    torch.manual_seed(settings["seed"])
    jobs = [(table.entries.setdefault(entry(n, s), []), space.latency_module(n), s)
            for n, s in dict.fromkeys(space.latency_blocks(key.resolution))]
    archs = _sample(space, settings["calibrate"], settings["seed"])
    cal = table.calibration
    cal["indices"] = [str(space.index(a)) for a in archs]
    cal["measured"] += [[] for _ in range(len(archs) - len(cal["measured"]))]
    side = key.resolution
    jobs += [(times, space.build(a), (3, side, side)) for times, a in zip(cal["measured"], archs)]
    todo = sum(max(0, settings["rounds"] - len(times)) for times, _, _ in jobs)
    last = [0.0]

    def record():  # at most twice a second: the table is rewritten whole
        if time.monotonic() - last[0] > 0.5:
            table.write()
            last[0] = time.monotonic()

    with tqdm(total=todo, unit="time", file=sys.stderr, disable=not progress, mininterval=0.5, dynamic_ncols=True,
              desc=f"lut {space.name}") as bar:
        try:
            taken = _rounds(jobs, settings["rounds"], settings, key.clock, bar, record)
        finally:
            table.write()
    return table, taken


@dataclass
class Validation:
    """Predicted against measured latency of sampled archs, and the figures comparing them."""

    indices: list
    predicted: np.ndarray
    summed: np.ndarray
    measured: np.ndarray
    correction: Correction
    load: tuple[float, float]
    paths: list[Path] = field(default_factory=list)

    @staticmethod
    def figures(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
        """Spearman rho, mean absolute percentage error (%) and share (%) within +-10 % of the measured value."""
        from scipy.stats import spearmanr

        error = np.abs(predicted - measured) / measured
        return {"rho": float(spearmanr(predicted, measured).statistic), "mape": 100 * float(error.mean()),
                "within10": 100 * float((error <= 0.10).mean())}

    def text(self, table: LatencyTable) -> str:
        k = table.key
        lines = [(f"lut validate {k.space}: {len(self.measured)} random archs measured end to end, {k.device}, "
                  f"torch {k.torch}, {k.threads} thread(s), {k.resolution}x{k.resolution} inputs, batch 1, "
                  f"{k.clock} clock"),
                 (f"  load average (1 min) {self.load[0]:.2f} before, {self.load[1]:.2f} after, "
                  f"on {os.cpu_count()} cores"),
                 (f"  measured {self.measured.min():.3f} .. {self.measured.max():.3f} ms (median "
                  f"{np.median(self.measured):.3f})")]
        for label, pred in (("sum of blocks", self.summed), (f"{self.correction}", self.predicted)):
            f = self.figures(pred, self.measured)
            lines.append(f"  {label:<28} Spearman rho {f['rho']:.3f}  MAPE {f['mape']:.1f} %  "
                         f"within +-10 %: {f['within10']:.0f} %")
        return "\n".join(lines)


def validate(space: Space, table: LatencyTable, sample: int = 50, seed: int = 1, warmup: int | None = None,
             repeats: int | None = None, rounds: int | None = None, out: Path | None = None,
             progress: bool = True) -> Validation:
    """Measure ``sample`` random archs (not the calibration's) end to end, as the table's blocks were measured
    (rounds over all archs, fastest round kept), and compare with the table's predictions; not while another
    process measures for the same table (``measuring``)."""
    import torch
    from tqdm import tqdm

    settings = timing(warmup, repeats, rounds, {k: table.settings[k] for k in ("warmup", "repeats", "rounds")}
                      if None in (warmup, repeats, rounds) else None)
    if sample < 2:
        raise UserError(f"sample must be at least 2 (a rank correlation needs two archs), got {sample}")
    limit_threads(table.key.threads)
    allocator.hold_steady()
    torch.manual_seed(seed)
    archs = _sample(space, sample, seed, exclude=[int(i) for i in table.calibration["indices"]])
    side = table.key.resolution
    jobs = [([], space.build(a), (3, side, side)) for a in archs]
    with measuring(table.path):
        load = os.getloadavg()[0]
        with tqdm(total=len(jobs) * settings["rounds"], unit="time", file=sys.stderr, disable=not progress,
                  mininterval=0.5, dynamic_ncols=True, desc=f"validate {space.name}") as bar:
            _rounds(jobs, settings["rounds"], settings, table.key.clock, bar, lambda: None)
    measured = np.array([min(times) for times, _, _ in jobs])
    result = Validation([str(i) for i in np.atleast_1d(space.index(archs))], table.predict(space, archs),
                        table.predict(space, archs, corrected=False), measured, table.correction(space),
                        (load, os.getloadavg()[0]))
    if out is not None:
        result.paths = _write(result, table, out)
    return result


def _write(v: Validation, table: LatencyTable, out: Path) -> list[Path]:
    """``validate.csv`` (index, predicted, summed, measured) and ``validate.png`` (predicted against measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv, png = out / "validate.csv", out / "validate.png"
    f = v.figures(v.predicted, v.measured)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lo, hi = min(v.measured.min(), v.predicted.min()), max(v.measured.max(), v.predicted.max())
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.9", label="+-10 %")
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)
    ax.scatter(v.measured, v.predicted, s=14)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("look-up table prediction (ms)")
    ax.set_title(f"{table.key.space}: rho {f['rho']:.3f}, MAPE {f['mape']:.1f} %, {f['within10']:.0f} % within 10 %",
                 fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    try:
        write_atomic(csv, "index,predicted_ms,summed_ms,measured_ms\n" + "".join(
            f"{i},{p:.6g},{s:.6g},{m:.6g}\n" for i, p, s, m in zip(v.indices, v.predicted, v.summed, v.measured)))
        save_figure(fig, png, dpi=120)
    except OSError as err:
        raise UserError(f"cannot write {csv.name} and {png.name} to {out}: {reason(err)}; choose another folder with "
                        "out=DIR") from None
    finally:
        plt.close(fig)
    return [csv, png]
