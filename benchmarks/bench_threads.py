"""DARTS training speed against ``threads=``, on an idle and on a loaded machine: why the run default is 1.

The default DARTS run (``nas-lab run searcher=darts``, HyViTas supernet on digits), cut to one epoch
of a few batches, runs in a fresh process with ``threads=1`` and with ``threads=<cores>`` (what torch
starts with on its own), first alone, then beside two CPU-bound processes (``while True: pass``),
which die with this script. It prints the training images/s the search reports, and the run
process's CPU seconds, and whether the run's result (derived arch, supernet accuracies, the
record's best) is the same with either thread count for the same seed. Issue 22 measured 4.7 img/s
with torch's default threads under load against 80 img/s with one thread. Other work on the machine
adds noise: the load average is printed with each figure.

Measured here (2 cores, 3 batches). On a nearly idle machine (load average 1): torch's default 2
threads 112 img/s, 1 thread 63; beside two busy processes: 2 threads 14 img/s, 1 thread 41. With
other sessions' work on the machine too (load average 5-7 before the hogs): 2 threads 5.5-5.9 img/s
alone and 1.6-2.8 beside the busy processes, 1 thread 60.4-60.5 and 11.6-22.9. So one thread is the
default that does not collapse under load, at the cost of speed on an idle machine. Same seed:
identical results on 1 and 2 threads, idle or loaded.

    python benchmarks/bench_threads.py [--batches 3] [--hogs 2]
"""

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile

from results_page import add_docs_flag, recorded


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when the benchmark dies, whatever kills it."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def load(hogs: int):
    """``hogs`` busy-looping processes for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_die_with_parent)
             for _ in range(hogs)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def darts(threads: int, batches: int) -> tuple[float, float, dict]:
    """Training images/s of a short default DARTS run on ``threads`` threads, the run's CPU seconds, and what
    it found (the report without its timings, and the best arch's metrics)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run(
            [sys.executable, "-m", "nas_lab.cli.main", "run", "searcher=darts", "searcher.epochs=1",
             f"searcher.max_batches={batches}", "searcher.recalibration=1", f"threads={threads}",
             "--json", "--no-save", "--no-progress"],
            cwd=empty, capture_output=True, text=True, check=True, preexec_fn=_die_with_parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = json.loads(out.stdout)
    report = record["searcher_report"]
    found = {k: v for k, v in report.items() if k not in ("train images/s", "seconds")} | {"best": record["best"]}
    return report["train images/s"], (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="batches of 64 images trained (default 3)")
    parser.add_argument("--hogs", type=int, default=2, help="competing CPU-bound processes under load (default 2)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "threads", "DARTS training speed against threads=",
                  "Why a run computes on one thread by default: a short DARTS run, idle and beside busy processes."):
        cores = len(os.sched_getaffinity(0))
        print(f"DARTS, default run cut to {args.batches} batches of 64 images; {cores} cores usable")
        print(f"{'load':<14}{'threads':<22}{'train img/s':>12}{'CPU s':>8}{'loadavg':>9}")
        found = {}
        for hogs in (0, args.hogs):
            with load(hogs):
                for threads, name in ((cores, f"{cores} (torch default)"), (1, "1 (run default)")):
                    rate, cpu, found[hogs, threads] = darts(threads, args.batches)
                    print(f"{f'{hogs} busy procs':<14}{name:<22}{rate:>12.1f}{cpu:>8.1f}{os.getloadavg()[0]:>9.2f}",
                          flush=True)
        for threads in (cores, 1):
            print(f"same seed, {threads} thread(s), idle vs loaded: "
                  f"{'identical' if found[0, threads] == found[args.hogs, threads] else 'DIFFERENT'}")
        differ = sorted(k for k in found[0, 1] if found[0, 1][k] != found[0, cores][k])
        print(f"same seed, 1 vs {cores} threads: {'identical' if not differ else 'differs in ' + ', '.join(differ)}")


if __name__ == "__main__":
    main()
