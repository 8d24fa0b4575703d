"""Worker processes die with the command that started them, however it ends: `kill -9` of a 2-worker precompute or
study leaves no worker computing, SIGTERM to precompute, correlate and lut ends in one sentence and exit 143, and
a worker count far above the work starts no more processes than there are items."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_study_robustness import REPO, SMALL, alive, children, one_sentence, signalled_once_shown, study, wait_for

from nas_lab.core.parallel import parallel_map

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds child processes in /proc")

#: a precompute that keeps two workers busy for a minute
PRECOMPUTE = ["precompute", "space=hyvitas", "proxies=naswot", "sample=300", "workers=2", "--no-progress"]


def started(args: list[str], tmp_path: Path, workers: int = 2) -> tuple[subprocess.Popen, list[int]]:
    """``nas-lab *args`` running, once it has ``workers`` child processes, and their pids."""
    env = {**os.environ, "NAS_LAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "nas_lab.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    if not wait_for(lambda: len(children(proc.pid)) >= workers or proc.poll() is not None, 120):
        proc.kill()
    assert proc.poll() is None, proc.communicate()
    return proc, children(proc.pid)


def stopped(proc: subprocess.Popen, sig: int, workers: list[int]) -> str:
    """Send ``sig``; ``proc``'s stderr once it and every one of ``workers`` have ended (each gets 10 s)."""
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 10), [p for p in workers if alive(p)]
    finally:
        for pid in [proc.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    return proc.stderr.read()  # only now: a surviving worker would hold the pipe open


@pytest.mark.parametrize("args", [PRECOMPUTE, ["study", str(REPO / "experiments" / "hyvitas_table4.yaml"),
                                               "searchers=bananas", "repeats=20", "budget=30", "workers=2"]])
def test_kill_9_takes_the_workers_with_it(tmp_path, args):
    """Before, a killed precompute's workers computed on, orphaned, for minutes (220 MB each)."""
    if args[0] == "study":
        args = [*args, f"out={tmp_path / 'study'}", "--no-progress"]
    proc, workers = started(args, tmp_path)
    stopped(proc, signal.SIGKILL, workers)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("args, sentence", [
    (PRECOMPUTE, "every value computed so far is in the cache; run the same command again to finish"),
    (["correlate", *PRECOMPUTE[1:], "metric=id", "out=corr"],
     "the proxy values computed so far are in the cache; run the same command again"),
])
def test_sigterm_stops_the_workers_with_one_sentence_and_exit_143(tmp_path, args, sentence):
    proc, workers = started(args, tmp_path)
    err = stopped(proc, signal.SIGTERM, workers)
    assert proc.returncode == 143, err
    assert one_sentence(err) and err.startswith("nas-lab: interrupted; ") and sentence in err
    assert not (tmp_path / "corr").exists()


def test_sigterm_to_a_lut_build_is_one_sentence_and_exit_143(tmp_path):
    table = tmp_path / "nb201.json"
    cmd = [sys.executable, "-m", "nas_lab.cli.main", "lut", "build", "space=nb201", "repeats=2000", f"out={table}"]
    err, _ = signalled_once_shown(cmd, b"lut nb201:", signal.SIGTERM, 143, cwd=tmp_path)  # measuring, with its bar
    assert err.replace("\r", "\n").strip().splitlines()[-1] == (
        f"nas-lab: interrupted; every block measured so far is in {table}; "
        "run the same command again to finish the table")


def _pid(_) -> int:
    time.sleep(0.2)  # long enough that one worker cannot take every item before another starts
    return os.getpid()


def test_workers_far_above_the_work_start_one_process_per_item(tmp_path):
    """A pool of 1,024 forked every worker at once; now it has one per item, and a 2-run study finishes."""
    pids = set(parallel_map(_pid, [0, 1, 2], workers=1024))
    assert len(pids) <= 3 and os.getpid() not in pids
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "repeats": 1}))
    done = subprocess.run(study(config, tmp_path / "out", "workers=1024"), capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 runs now" in done.stdout


def _first_fast(item: int) -> int:
    if item:
        time.sleep(60)  # what the pool would still be running if nothing stopped it
    return item


def test_an_exception_in_the_loop_body_stops_the_pool_at_once():
    """A SIGTERM landing while a study stored a result left the map suspended, kept alive by the traceback: the
    process then waited at exit for the pool to run every remaining item (a CI run hung this way)."""
    import contextlib
    import multiprocessing

    def consume():
        with contextlib.closing(parallel_map(_first_fast, [0, 1, 2, 3], workers=2)) as finished:
            for _ in finished:
                raise KeyboardInterrupt  # as the CLI's SIGTERM handler raises it, outside the map's own frame

    earlier = set(multiprocessing.active_children())  # other tests' processes, if any are still ending
    with pytest.raises(KeyboardInterrupt) as caught:
        consume()
    assert caught.traceback  # the traceback (and with it the consuming frame) is still alive here
    pool = lambda: set(multiprocessing.active_children()) - earlier  # noqa: E731
    assert wait_for(lambda: not pool(), 10), pool()
