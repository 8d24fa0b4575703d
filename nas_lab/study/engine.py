"""Run a study's grid in parallel, durably and resumably.

Runs are grouped into chunks of one grid cell (same searcher, objective, budget), so a
worker builds the space and objective once per chunk and the searcher once per
run. The main process appends each finished chunk's records to the store as it
arrives; a killed study loses at most the chunks in flight, and running it
again skips every recorded run. Each run's seed is ``[study seed, repeat]``, so
the results, and the report, are the same whatever the executor or worker count.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import yaml

from nas_lab.core import registry
from nas_lab.core.config import build
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.runner import run
from nas_lab.study.config import RunSpec, StudyConfig
from nas_lab.study.store import FolderLock, Store, record_of

CONFIG_FILE = "study.yaml"
EXECUTORS = ("local", "ray")
#: at most this many runs per chunk; fewer when that keeps every worker busy
MAX_CHUNK = 25
#: seconds stopped workers get to exit on SIGTERM before they are killed
STOP_GRACE = 3.0
T, R = TypeVar("T"), TypeVar("R")


@dataclass
class StudyOutcome:
    """What ``run_study`` did: runs recorded before, now, and still missing."""

    directory: Path
    total: int
    skipped: int
    ran: int
    damaged: int = 0  # damaged lines of runs.jsonl, moved to runs.damaged.jsonl (their runs were run again)


def run_chunk(specs: list[RunSpec]) -> list[dict]:
    """Run the specs of one grid cell and return their store records (executed in a worker)."""
    space, objective, _ = build(specs[0].run_config())
    records = []
    for spec in specs:
        searcher = registry.create("searcher", spec.searcher_name, dict(spec.searcher_params))
        result = run(space, objective, searcher, budget=spec.budget, seed=spec.seed)
        records.append(record_of(result, spec.searcher, spec.objective, spec.repeat, spec.describe()))
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
    directory.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(study.to_dict(), sort_keys=False))
    tmp.replace(saved)
    return Store(directory)


def run_study(
    study: StudyConfig,
    directory: str | Path,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    on_records: Callable[[list[dict]], None] | None = None,
) -> StudyOutcome:
    """Run every unfinished run of ``study`` into ``directory``; ``on_records`` sees each finished chunk."""
    workers = check_execution(executor, workers)
    directory = Path(directory)
    with FolderLock(directory):  # one writer per folder: a second study here is refused, naming this process
        store = prepare(study, directory)
        done = store.finished()
        damaged = store.set_aside_damaged() if store.damaged else 0  # their runs are pending: run again below
        specs = study.runs()
        pending = [s for s in specs if s.key not in done]
        ran = 0
        with store:
            for records in parallel_map(run_chunk, chunks(pending, workers), workers, executor, address):
                for record in records:
                    store.append(record)
                ran += len(records)
                if on_records is not None:
                    on_records(records)
    return StudyOutcome(directory, len(specs), len(specs) - len(pending), ran, damaged)


def check_execution(executor: str, workers: int | None) -> int:
    """The number of workers to use (default: every core); ``UserError`` for a bad executor or count."""
    if executor not in EXECUTORS:
        raise UserError(f"executor must be one of {', '.join(EXECUTORS)}, got {shorten(repr(executor))}")
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise UserError(f"workers must be at least 1 (leave it out for one per core), got {workers}")
    return workers


def parallel_map(fn: Callable[[T], R], work: list[T], workers: int, executor: str = "local",
                 address: str | None = None) -> Iterator[R]:
    """``fn(item)`` for every item of ``work`` on local processes or Ray, yielded as each finishes.

    ``fn`` must be a module-level function (it is pickled by name). Results come
    in completion order, so callers store them as they arrive; one worker or
    one item runs in this process.
    """
    source = _ray_map if executor == "ray" else _local_map
    return source(fn, work, workers, address)


def _local_map(fn, work: list, workers: int, address: str | None) -> Iterator:
    if address:
        raise UserError("executor.address is for executor=ray; the local executor runs on this machine")
    if workers == 1 or len(work) <= 1:
        for item in work:
            yield fn(item)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads_per_worker(workers),))
    try:
        futures = {pool.submit(fn, item) for item in work}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    except BaseException:  # Ctrl-C, SIGTERM (the CLI raises it as an interrupt), a failed item, an abandoned map
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now rather than after the items they are running: SIGTERM, then SIGKILL.

    Without this an interrupted study's workers would run on, orphaned, until
    their chunks finished. Further SIGINT/SIGTERM are ignored meanwhile, so an
    impatient second Ctrl-C cannot leave workers behind.
    """
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor's only handle on them
        for process in processes:
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` processes' share of the cores this process may use (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def _init_worker(threads: int) -> None:
    """Set up a pool worker: its share of the cores, and interrupts left to the main process.

    Ctrl-C reaches the whole process group: workers ignore it and the main
    process stops them (``_stop``); SIGTERM ends a worker at once (not through
    the handler a forked worker inherits from the CLI).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit_threads(threads)


def limit_threads(threads: int) -> None:
    """Limit this process's BLAS, OpenMP and torch thread pools to ``threads``.

    By default every process starts one thread per core in each pool: two
    workers on two cores then run four busy threads. NumPy's OpenBLAS spins
    while it waits, so a 2-worker BANANAS study (numpy least squares in its
    predictor) ran 13x slower, and supernet training more than 5x. A forked
    worker has numpy (and perhaps torch) loaded already with its pools sized,
    so the environment variables alone come too late: threadpoolctl resizes
    the loaded pools, the variables size those loaded later, and torch is told
    directly.
    """
    from threadpoolctl import threadpool_limits

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _ray_map(fn, work: list, workers: int, address: str | None) -> Iterator:
    try:
        import ray
    except ImportError:
        raise UserError("executor=ray needs Ray: pip install 'nas-lab[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if address:
            _check_ray_address(address)
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as err:
                raise UserError(f"cannot join the Ray cluster at executor.address={shorten(address)} ({err}); "
                                f"{RAY_HINT}") from None
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(fn)
        pending = [remote.remote(item) for item in work]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            yield ray.get(finished[0])
    finally:
        if started:
            ray.shutdown()


#: how to get a Ray cluster, or do without one
RAY_HINT = ("start one with `ray start --head` on this or another machine, or leave out executor.address to run "
            "Ray on this machine only")
#: seconds to wait for a Ray cluster's address to answer before saying it does not
RAY_CONNECT_TIMEOUT = 3.0


def _check_ray_address(address: str) -> None:
    """``UserError`` within seconds unless something listens at the Ray address ``address``.

    ``auto`` is resolved as Ray resolves it (``RAY_ADDRESS``, then the cluster
    last started on this machine, then any running one); ``ray.init`` itself
    would wait minutes on an address where nothing listens.
    """
    from ray._private import services

    target = address.removeprefix("ray://")
    if target == "auto":
        try:
            target = services.get_ray_address_from_environment("auto", None)
        except ConnectionError:
            raise UserError(f"executor.address=auto found no running Ray cluster on this machine; {RAY_HINT}") from None
    parsed = services.parse_address(target)
    if parsed is None:
        raise UserError(f"executor.address must be auto or HOST:PORT of a Ray cluster's head (e.g. 10.0.0.5:6379), "
                        f"got {shorten(repr(address))}")
    host, port = parsed
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as err:
        reason = "no answer" if isinstance(err, TimeoutError) else getattr(err, "strerror", None) or str(err)
        raise UserError(f"no Ray cluster answers at executor.address={shorten(address)} ({target}: {reason}); "
                        f"{RAY_HINT}") from None


class Progress:
    """A tqdm bar over runs, with ETA and each searcher's mean best value over its finished runs.

    The figures shown are for the objective most recently reported on, since
    values of different objectives are not comparable (for several targets: the mean
    hypervolume of the fronts found); the mean (not the max)
    because after a few hundred repeats every searcher has hit the optimum once.
    """

    def __init__(self, total: int, already: list[dict], enabled: bool = True):
        from tqdm import tqdm

        self.sums: dict[tuple[str, str], list[float]] = {}  # (objective, searcher) -> [sum of bests, runs]
        self.objective = ""
        self.bar = tqdm(total=total, initial=len(already), unit="run", disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
        self.update(already, advance=False)

    def update(self, records: list[dict], advance: bool = True) -> None:
        for r in records:
            values = [v for v in r["history_value"] if v is not None]
            if "hypervolume" in r:  # several targets: a run's figure is its front's hypervolume
                entry = self.sums.setdefault((r["objective"], r["searcher"]), [0.0, 0])
                entry[0] += r["hypervolume"]
                entry[1] += 1
            elif values:
                entry = self.sums.setdefault((r["objective"], r["searcher"]), [0.0, 0])
                entry[0] += max(values) if r["direction"] == "max" else min(values)
                entry[1] += 1
            self.objective = r["objective"]
        if advance:
            self.bar.update(len(records))
        what = "mean hypervolume" if "," in self.objective else "mean best"
        shown = " ".join(f"{s} {total / n:.{3 if ',' in o else 2}f}" for (o, s), (total, n) in self.sums.items()
                         if o == self.objective)
        self.bar.set_postfix_str(f"{what} {self.objective}: {shown}" if shown else "", refresh=False)

    def close(self) -> None:
        self.bar.close()
