"""Run a study's grid in parallel, durably and resumably.

Runs are grouped into chunks of one grid cell (same searcher, objective, budget), so a
worker builds the space and objective once per chunk and the searcher once per
run. The main process appends each finished chunk's records to the store as it
arrives; a killed study loses at most the chunks in flight, and running it
again skips every recorded run. Each run's seed is ``[study seed, repeat]``, so
the results, and the report, are the same whatever the executor or worker count.

GPUs: a chunk whose runs train or evaluate networks (its searcher or one of
its objective's families takes the task) on ``device=cuda`` needs
``executor.gpus_per_run`` GPUs: Ray reserves them for its task, and the local
executor pins each worker to one GPU. Every other chunk (tabular, zero-cost,
latency, and anything on ``device=cpu``) asks for none.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from nas_lab.core import registry
from nas_lab.core.config import RunConfig, build_problem, build_searcher, objective_metrics, split_objective
from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, write_atomic
from nas_lab.core.parallel import GPUS_PER_RUN, check_execution, limit_threads, parallel_map
from nas_lab.core.record import from_record
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run
from nas_lab.study.config import RunSpec, StudyConfig
from nas_lab.study.store import FolderLock, Store

CONFIG_FILE = "study.yaml"
#: at most this many runs per chunk; fewer when that keeps every worker busy
MAX_CHUNK = 25


@dataclass
class StudyOutcome:
    """What ``run_study`` did: runs recorded before, now, and still missing."""

    directory: Path
    total: int
    skipped: int
    ran: int
    damaged: int = 0  # damaged lines of runs.jsonl, moved to runs.damaged.jsonl (their runs were run again)


def run_chunk(specs: list[RunSpec]) -> list[dict]:
    """Run the specs of one grid cell and return their run records (executed in a worker)."""
    cfg = specs[0].run_config()
    records = []
    with limit_threads(cfg.threads):  # the run default, as a run's record says
        space, objective = build_problem(cfg)
        for spec in specs:
            searcher = build_searcher(spec.run_config(), space)
            result = run(space, objective, searcher, budget=spec.budget, seed=spec.seed, report=spec.study.report or ())
            result.config = spec.describe()
            records.append(result.to_record())
    return records


def chunks(specs: list[RunSpec], workers: int) -> list[list[RunSpec]]:
    """Split pending runs into per-cell chunks small enough to keep ``workers`` busy.

    Runs of searchers that are not ``cheap`` (they train networks) get a chunk
    each, and those chunks come first: they are recorded as each finishes, and
    no worker is left with a queue of them while the others are idle.
    """
    size = max(1, min(MAX_CHUNK, len(specs) // (4 * workers) or 1))
    costly, cheap, current = [], [], []
    for spec in specs:
        cell = (spec.searcher, spec.objective, spec.budget)
        if current and (len(current) == size or (current[0].searcher, current[0].objective, current[0].budget) != cell):
            cheap.append(current)
            current = []
        if registry.load("searcher", spec.searcher_name).cheap:
            current.append(spec)
        else:
            costly.append([spec])
    if current:
        cheap.append(current)
    return costly + cheap


def trains(cfg: RunConfig) -> bool:
    """Whether a run trains or evaluates networks on its task: its searcher or one of its objective's families
    takes the task (one-shot searchers, supernet objectives), found from the classes without building anything."""
    classes = [registry.load("searcher", cfg.searcher)]
    classes += [registry.load("objective", split_objective(m)[0]) for m in objective_metrics(cfg.objective)]
    return any("task" in inspect.signature(cls).parameters for cls in classes)


def gpus_of(chunk: list[RunSpec], gpus_per_run: float) -> float:
    """GPUs a chunk's runs need: ``gpus_per_run`` if they train on a CUDA device, else none (a chunk is one grid
    cell, whose runs differ only in repeat)."""
    cfg = chunk[0].run_config()
    return gpus_per_run if cfg.device.startswith("cuda") and trains(cfg) else 0.0


def prepare(study: StudyConfig, directory: Path) -> Store:
    """Check ``directory`` holds this study (or nothing yet) and record its config there."""
    saved = directory / CONFIG_FILE
    if saved.exists():
        previous = StudyConfig.load(saved)
        if not previous.same_grid(study):
            raise UserError(
                f"{directory} holds a different study ({previous.name!r} with other settings); "
                "choose another out=DIR or delete that folder to start afresh"
            )
    try:
        write_atomic(saved, yaml.safe_dump(study.to_dict(), sort_keys=False))
    except OSError as err:
        raise UserError(f"cannot write {saved}: {reason(err)}; free space (or make it writable), or choose another "
                        "out=DIR") from None
    return Store(directory)


def run_study(
    study: StudyConfig,
    directory: str | Path,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    on_records: Callable[[list[RunResult]], None] | None = None,
    gpus_per_run: float = GPUS_PER_RUN.default,
) -> StudyOutcome:
    """Run every unfinished run of ``study`` into ``directory``; ``on_records`` sees each finished chunk's runs;
    runs that train on CUDA get ``gpus_per_run`` GPUs each (``gpus_of``)."""
    workers = check_execution(executor, workers)
    gpus_per_run = GPUS_PER_RUN.coerce(gpus_per_run)
    directory = Path(directory)
    with FolderLock(directory):  # one writer per folder: a second study here is refused, naming this process
        store = prepare(study, directory)
        done = store.finished()
        damaged = store.set_aside_damaged() if store.damaged else 0  # their runs are pending: run again below
        specs = study.runs()
        pending = [s for s in specs if s.key not in done]
        ran = 0
        with store:
            work = chunks(pending, workers)
            gpus = [gpus_of(chunk, gpus_per_run) for chunk in work]
            with contextlib.closing(parallel_map(run_chunk, work, workers, executor, address, gpus)) as finished:
                for records in finished:
                    for record in records:
                        store.append(record)
                    ran += len(records)
                    if on_records is not None:
                        on_records([from_record(r) for r in records])
    return StudyOutcome(directory, len(specs), len(specs) - len(pending), ran, damaged)


class Progress:
    """A tqdm bar over runs, with ETA and each searcher's mean best value over its finished runs.

    The figures shown are for the objective most recently reported on, since
    values of different objectives are not comparable (for several targets: the mean
    hypervolume of the fronts found); the mean (not the max)
    because after a few hundred repeats every searcher has hit the optimum once.
    """

    def __init__(self, total: int, already: list[RunResult], enabled: bool = True):
        from tqdm import tqdm

        self.sums: dict[tuple[str, str], list[float]] = {}  # (objective, searcher) -> [sum of bests, runs]
        self.objective, self.several = "", False
        self.bar = tqdm(total=total, initial=len(already), unit="run", disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
        self.update(already, advance=False)

    def update(self, results: list[RunResult], advance: bool = True) -> None:
        for r in results:
            objective, label = r.config["objective"], r.config["study"]["label"]
            figure = (r.front["hypervolume"] if r.front is not None
                      else r.best_so_far()[-1] if r.evaluations else -np.inf)
            if np.isfinite(figure):  # several targets: a run's figure is its front's hypervolume
                entry = self.sums.setdefault((objective, label), [0.0, 0])
                entry[0] += figure
                entry[1] += 1
            self.objective, self.several = objective, len(r.targets) > 1
        if advance:
            self.bar.update(len(results))
        what = "mean hypervolume" if self.several else "mean best"
        shown = " ".join(f"{s} {total / n:.{3 if self.several else 2}f}" for (o, s), (total, n) in self.sums.items()
                         if o == self.objective)
        self.bar.set_postfix_str(f"{what} {self.objective}: {shown}" if shown else "", refresh=False)

    def close(self) -> None:
        self.bar.close()
