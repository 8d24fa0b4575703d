"""Run a function over a list of work items on local worker processes or a Ray cluster, yielded as each finishes.

Studies run their grid through it, and whole-space tools (zero-cost precompute,
correlate) their archs: it sits in ``core`` so those tools need not import
``study``. Workers share the cores: each limits its BLAS, OpenMP and torch
thread pools to its share, and an interrupted map stops its workers at once.

Items may need GPUs (a study's supernet runs on ``device=cuda``): the caller
says how many each item needs. Ray is asked for them as the task's
``num_gpus`` (Ray then shows the task only its own GPUs); a cluster with fewer
GPUs in all than an item asks for is asked for none, so such a run reaches its
own device check and fails with its usual sentence rather than waiting for
ever. Local workers are pinned instead: worker ``k`` of the pool sees only GPU
``k mod n`` of the ``n`` this process sees (``CUDA_VISIBLE_DEVICES``), so
runs on different workers do not pile onto the first GPU; such a pool starts
its workers fresh (spawn, not fork), since CUDA cannot be used in a forked
child of a process that has touched it. GPUs are found without torch
(``visible_gpus``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TypeVar

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Setting

EXECUTORS = ("local", "ray")
#: seconds stopped workers get to exit on SIGTERM before they are killed
STOP_GRACE = 3.0
#: the variables that size the OpenMP and BLAS pools of libraries loaded later
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
T, R = TypeVar("T"), TypeVar("R")


#: how a command spreads its work, declared once for every command that takes them (study, precompute, correlate)
WORKERS = Setting("workers", int, None, ge=1, le=1024, help="parallel workers (none: one per core)")
EXECUTOR = Setting("executor", str, "local", choices=EXECUTORS, help="local processes or Ray")
ADDRESS = Setting("executor.address", str, None, help="Ray cluster to join, e.g. auto (none: a local Ray)")
GPUS_PER_RUN = Setting("executor.gpus_per_run", float, 1.0, ge=0.0, le=64.0,
                       help="GPUs Ray reserves per run that trains on cuda (0.5: two share one)")
#: seconds ``nvidia-smi -L`` may take to list the GPUs
GPU_LIST_TIMEOUT = 10.0


def check_execution(executor: str, workers: int | None) -> int:
    """The number of workers to use (default: every core); ``UserError`` for a bad executor or count."""
    EXECUTOR.coerce(executor)
    workers = WORKERS.coerce(workers)
    return os.cpu_count() or 1 if workers is None else workers


def parallel_map(fn: Callable[[T], R], work: list[T], workers: int, executor: str = "local",
                 address: str | None = None, gpus: list[float] | None = None) -> Iterator[R]:
    """``fn(item)`` for every item of ``work`` on local processes or Ray, yielded as each finishes.

    ``fn`` must be a module-level function (it is pickled by name). Results come
    in completion order, so callers store them as they arrive. Consume it inside
    ``contextlib.closing``: an exception raised in the caller's loop body (a
    SIGTERM landing while a result is stored) leaves the generator suspended,
    and the exception's traceback keeps it alive, so without ``close`` the pool
    would run every remaining item before the interpreter could exit. One worker or
    one item runs in this process. Local workers are at most one per item (so
    ``workers=1024`` on a 10-run study starts 10) and die with this process,
    however it ends (``_die_with_parent``). ``gpus[i]`` is the number of GPUs
    item ``i`` needs (none: every item runs on CPUs only).
    """
    gpus = list(gpus) if gpus is not None else [0.0] * len(work)
    if len(gpus) != len(work):
        raise ValueError(f"{len(gpus)} GPU counts for {len(work)} items")
    source = _ray_map if executor == "ray" else _local_map
    return source(fn, work, workers, address, gpus)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them: that variable's list when set (up to
    its first negative entry, where CUDA stops reading), else every GPU ``nvidia-smi -L`` lists (none without it).

    Found without torch: ``core`` never imports it, and a process that asked
    CUDA for its devices could no longer fork workers that use CUDA.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        out = []
        for name in (part.strip() for part in listed.split(",")):
            if not name or name.startswith("-"):
                break
            out.append(name)
        return out
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=GPU_LIST_TIMEOUT, check=False)
        lines = listing.stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(k) for k, _ in enumerate(line for line in lines.splitlines() if line.startswith("GPU "))]


def _local_map(fn, work: list, workers: int, address: str | None, gpus: list[float]) -> Iterator:
    if address:
        raise UserError("executor.address is for executor=ray; the local executor runs on this machine")
    if workers == 1 or len(work) <= 1:
        for item in work:
            yield fn(item)
        return
    size = min(workers, len(work))  # never more processes than items (a pool that forks starts all of them at once)
    devices = visible_gpus() if any(gpus) else []
    if devices:  # each worker pinned to one GPU, round-robin over worker slots; started by spawn (see the docstring)
        context = multiprocessing.get_context("spawn")
        slots = context.SimpleQueue()
        for slot in range(size):
            slots.put(devices[slot % len(devices)])
        pool = ProcessPoolExecutor(max_workers=size, mp_context=context, initializer=_init_worker,
                                   initargs=(threads_per_worker(workers), slots))
    else:
        pool = ProcessPoolExecutor(max_workers=size, initializer=_init_worker, initargs=(threads_per_worker(workers),))
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


def _init_worker(threads: int, gpu_slots=None) -> None:
    """Set up a pool worker: its share of the cores, its GPU if the pool pins them, interrupts left to the main
    process, and its end tied to it.

    Ctrl-C reaches the whole process group: workers ignore it and the main
    process stops them (``_stop``); SIGTERM ends a worker at once (not through
    the handler a forked worker inherits from the CLI). ``gpu_slots`` holds one
    GPU name per worker: each takes one, before anything here can touch CUDA.
    """
    if gpu_slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_slots.get()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    limit_threads(threads)


#: ``prctl`` option: the signal this process gets when its parent ends (linux/prctl.h)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """End this worker when the process that started it ends, whatever ends it (SIGKILL included).

    ``_stop`` ends workers only when the main process lives to run it; killed
    with SIGKILL it cannot, and its workers ran on, orphaned, for minutes. On
    Linux the kernel sends SIGKILL at the parent's end (``prctl``; the parent is
    the thread that forked, ``_local_map``'s, or a fork server, which ends with
    this process); elsewhere a thread waits on the pipe multiprocessing closes
    at the parent's end.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child
        return
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None
    if prctl is None or prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        threading.Thread(target=_exit_after, args=(parent,), name="die-with-parent", daemon=True).start()
    elif not parent.is_alive():  # it ended before prctl could ask to be told
        os._exit(1)


def _exit_after(parent) -> None:
    parent.join()
    os._exit(1)


def limit_threads(threads: int) -> contextlib.ExitStack:
    """Hold this process's BLAS, OpenMP and torch thread pools to ``threads`` from now on, or, as
    ``with limit_threads(1):``, for the block only: its end restores the sizes they had.

    By default every process starts one thread per core in each pool: two
    workers on two cores then run four busy threads. NumPy's OpenBLAS spins
    while it waits, so a 2-worker BANANAS study (numpy least squares in its
    predictor) ran 13x slower, and supernet training more than 5x; so pool
    workers hold to their share for good. Small work is faster on one thread
    even in a lone process: a searcher's round on small matrices (gp ran 10x
    and BANANAS 4x slower on 2 busy cores), a zero-cost proxy of a small model
    (whose stored seconds are then CPU-seconds, comparable whoever computed
    them). A forked worker has numpy (and perhaps torch) loaded already with
    its pools sized, so the environment variables alone come too late:
    threadpoolctl resizes the loaded pools, the variables size those loaded
    later, and torch, if loaded, is told directly (``core`` never imports it).
    """
    restore = contextlib.ExitStack()
    restore.enter_context(_thread_pools().limit(limits=threads))
    for name in THREAD_VARIABLES:
        restore.callback(_set_variable, name, os.environ.get(name))
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        restore.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(threads)
    return restore


def _thread_pools():
    """threadpoolctl's handle on the loaded thread pools, found again only after an import may have loaded more
    (finding them takes about 1 ms, and searchers limit every round of every run of a study)."""
    return _pools_found_with(len(sys.modules))


@functools.lru_cache(maxsize=1)
def _pools_found_with(modules: int):
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _set_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _ray_map(fn, work: list, workers: int, address: str | None, gpus: list[float]) -> Iterator:
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
        cluster = float(ray.cluster_resources().get("GPU", 0)) if any(gpus) else 0.0
        # a run asking for more GPUs than the whole cluster has would wait for ever: it asks for none and meets its
        # own device check instead
        pending = [remote.options(num_gpus=g if g <= cluster else 0).remote(item) for item, g in zip(work, gpus)]
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
